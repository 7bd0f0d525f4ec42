"""The PixelRL environment: every pixel of a batch of images is an agent.

Shapes: `B` batch, `H, W` height and width, `C` channels, `A` actions.

An episode starts from a corrupted image `s_0` and its clean target `I`; at
each of `t_max` steps every pixel picks an action (a filter, a +-1 move, ...),
all filters are applied to the image before the step and each pixel takes its
own action's result. The reward is a `[H,W]` map per image (`rewards`).

Images are never clipped inside an episode. The step itself is TF ops
(`transition`), shared by this Python environment and the in-graph
`tf_pixel_env.PixelTFEnvironment` that training, evaluation and the exported
model run.
"""

import numpy as np
import tensorflow as tf
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.environments import rewards


def transition(images, actions, targets, action_set=None,
               reward_fn=rewards.squared_error_decrease):
  """One environment step as TF ops.

  Args:
    images: `[B,H,W,C]` current images `s_t`.
    actions: `[B,H,W]` int32 action map.
    targets: `[B,H,W,C]` clean images `I`.
    action_set: the `ActionSet` (defaults to the denoising actions).
    reward_fn: `(targets, images, next_images) -> [B,H,W]` rewards.

  Returns:
    `(next_images [B,H,W,C], rewards [B,H,W])`.
  """
  action_set = action_set or action_set_lib.DENOISE_ACTIONS
  next_images = action_set.apply(images, actions)
  return next_images, reward_fn(targets, images, next_images)


class PixelEnvironment(py_environment.PyEnvironment):
  """A natively batched TF-Agents environment over pairs of images.

  Observation: the current images `[B,H,W,C]` (float32, unbounded).
  Action: `[B,H,W]` int32 in `[0, A-1]`. Reward: `[B,H,W]` float32 maps.
  Each episode lasts `t_max` steps and ends with discount 0 (the reference
  bootstraps nothing after the last step).
  """

  def __init__(self, episode_source, image_shape, batch_size, t_max=5,
               action_set=None, reward_fn=rewards.squared_error_decrease):
    """Creates the environment.

    Args:
      episode_source: zero-argument callable returning `(start, target)`
        float32 arrays `[B,H,W,C]` for a new episode (e.g. noisy and clean
        crops).
      image_shape: `(H, W, C)` of one image.
      batch_size: `B`.
      t_max: steps per episode.
      action_set: the `ActionSet`; defaults to the 9 denoising actions.
      reward_fn: TF reward function, see `transition`.
    """
    super().__init__(handle_auto_reset=True)
    self._episode_source = episode_source
    self._image_shape = tuple(int(d) for d in image_shape)
    self._batch_size = int(batch_size)
    self._t_max = int(t_max)
    self._action_set = action_set or action_set_lib.DENOISE_ACTIONS
    height, width, _ = self._image_shape
    self._observation_spec = array_spec.ArraySpec(
        self._image_shape, np.float32, name='observation')
    self._action_spec = array_spec.BoundedArraySpec(
        (height, width), np.int32, minimum=0,
        maximum=self._action_set.num_actions - 1, name='action')
    self._reward_spec = array_spec.ArraySpec((height, width), np.float32,
                                             name='reward')
    batched_image = tf.TensorSpec((None,) + self._image_shape, tf.float32)
    action_set_used = self._action_set
    self._transition = tf.function(
        lambda images, actions, targets: transition(
            images, actions, targets, action_set_used, reward_fn),
        input_signature=[batched_image,
                         tf.TensorSpec((None, height, width), tf.int32),
                         batched_image])
    self._images = None
    self._targets = None
    self._steps = 0

  @property
  def batched(self):
    return True

  @property
  def batch_size(self):
    return self._batch_size

  @property
  def t_max(self):
    return self._t_max

  @property
  def action_set(self):
    return self._action_set

  @property
  def targets(self):
    """The clean targets `[B,H,W,C]` of the current episode."""
    return self._targets

  def observation_spec(self):
    return self._observation_spec

  def action_spec(self):
    return self._action_spec

  def reward_spec(self):
    return self._reward_spec

  def _reset(self):
    start, target = self._episode_source()
    expected = (self._batch_size,) + self._image_shape
    start = np.asarray(start, np.float32)
    target = np.asarray(target, np.float32)
    if start.shape != expected or target.shape != expected:
      raise ValueError(
          f'episode source gave {start.shape} / {target.shape}, the '
          f'environment expects {expected}')
    self._images, self._targets = start, target
    self._steps = 0
    return ts.restart(self._images, batch_size=self._batch_size,
                      reward_spec=self._reward_spec)

  def _step(self, action):
    next_images, rewards = self._transition(
        self._images, np.asarray(action, np.int32), self._targets)
    self._images = next_images.numpy()
    self._steps += 1
    rewards = rewards.numpy()
    if self._steps >= self._t_max:
      return ts.termination(self._images, rewards,
                            outer_dims=(self._batch_size,))
    return ts.transition(self._images, rewards,
                         discount=np.ones(self._batch_size, np.float32),
                         outer_dims=(self._batch_size,))

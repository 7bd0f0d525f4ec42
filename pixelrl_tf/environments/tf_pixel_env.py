"""The PixelRL environment as an in-graph TF-Agents `TFEnvironment`.

Shapes: `B` batch, `H, W` height and width, `C` image channels, `E` extra
observation channels (e.g. a saliency mask), `A` actions.

The same step as the Python `pixel_env.PixelEnvironment` (`transition`: every
action on the image before the step, each pixel takes its own, then the
reward map), as TF ops, so that a whole episode traces into one graph:
training, validation, evaluation and the exported SavedModel all step this
environment through `drivers.rollout`.

The environment holds its state (the current images, the targets, the step
count) as tensors of the graph being traced, not as variables: an episode
starts with `start_episode(start, target)` and every `step` returns the next
`TimeStep`. A traced episode is therefore a pure function of its inputs, which
is what a SavedModel serving concurrent requests needs; the flip side is that
one environment object runs one episode at a time inside one trace.

Time steps: observation `[B,H,W,C+E]` (the images, followed by the extra
channels given to `start_episode`), reward `[B,H,W]` (zeros when no target is
given, e.g. at test time), discount `[B]`, step type `[B]`. After `t_max`
steps the step is `LAST` with discount 0 (the reference bootstraps nothing
after the last step); without `t_max` every step is `MID`.
"""

from typing import Callable, Optional

import tensorflow as tf
from tf_agents.environments import tf_environment
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from pixelrl_tf.environments import pixel_env
from pixelrl_tf.environments import rewards as rewards_lib

# `(next_images [B,H,W,C], start [B,H,W,C]) -> [B,H,W,C]`, applied after
# every step (e.g. the guided filter of saliency editing at test time).
PostStepFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


class PixelTFEnvironment(tf_environment.TFEnvironment):
  """Batched per-pixel image environment stepping through TF filter ops."""

  def __init__(self, action_set, reward_fn=rewards_lib.squared_error_decrease,
               channels: int = 1, extra_channels: int = 0,
               image_size=(None, None), batch_size: Optional[int] = None,
               t_max: Optional[int] = None,
               post_step_fn: Optional[PostStepFn] = None):
    """Creates the environment.

    Args:
      action_set: the `ActionSet` (index = action).
      reward_fn: `(targets, images, next_images) -> [B,H,W]` rewards, or the
        name of a registered reward.
      channels: `C`, channels of the images the actions change.
      extra_channels: `E`, channels appended to the observation unchanged.
      image_size: `(H, W)`; None for any size.
      batch_size: `B`; None for any batch.
      t_max: steps after which the episode ends (`LAST`, discount 0); None
        never ends it (the caller decides how many steps to run).
      post_step_fn: optional `PostStepFn`.
    """
    height, width = image_size
    observation_spec = tf.TensorSpec(
        [height, width, channels + extra_channels], tf.float32, 'observation')
    reward_spec = tf.TensorSpec([height, width], tf.float32, 'reward')
    action_spec = tensor_spec.BoundedTensorSpec(
        [height, width], tf.int32, 0, action_set.num_actions - 1, 'action')
    super().__init__(ts.time_step_spec(observation_spec, reward_spec),
                     action_spec, batch_size)
    self._action_set = action_set
    self._reward_fn = rewards_lib.get_reward_fn(reward_fn)
    self._channels = channels
    self._t_max = t_max
    self._post_step_fn = post_step_fn
    self._images = None
    self._start = None
    self._targets = None
    self._extra = None
    self._time_step = None
    self._steps = 0
    self._images_before = None

  @property
  def action_set(self):
    return self._action_set

  @property
  def action_rewards(self) -> tf.Tensor:
    """`[B,H,W,A]` the reward each action would have earned at each pixel
    in the last step (from the image before it), for a per-pixel reward.

    Computed when asked (in the graph being traced), so that episodes that
    do not use it do not pay for it.

    Raises:
      RuntimeError: no step with a target has run yet.
      ValueError: the reward is not per pixel (`rewards.is_per_pixel`).
    """
    if self._images_before is None or self._targets is None:
      raise RuntimeError('action_rewards needs a step with a target first')
    if not rewards_lib.is_per_pixel(self._reward_fn):
      raise ValueError('the reward of this environment is not per pixel '
                       '(rewards.register_reward(..., per_pixel=True)); '
                       'every action\'s reward is not defined')
    with tf.name_scope('action_rewards'):
      images = self._images_before
      outputs = self._action_set.outputs(images)
      return tf.stack([self._reward_fn(self._targets, images, outputs[a])
                       for a in range(self._action_set.num_actions)],
                      axis=-1)

  @property
  def images(self) -> tf.Tensor:
    """`[B,H,W,C]` the current images `s_t`."""
    return self._images

  def start_episode(self, start, target=None, extra=None) -> ts.TimeStep:
    """Begins an episode and returns its first (`FIRST`) time step.

    Args:
      start: `[B,H,W,C]` float32 first states `s_0` (e.g. noisy images).
      target: `[B,H,W,C]` targets of the reward, or None (reward zeros).
      extra: optional `[B,H,W,E]` channels appended to every observation.

    Returns:
      The first `TimeStep`.
    """
    self._start = tf.convert_to_tensor(start, tf.float32)
    self._images = self._start
    self._targets = (None if target is None else
                     tf.convert_to_tensor(target, tf.float32))
    self._extra = (None if extra is None else
                   tf.convert_to_tensor(extra, tf.float32))
    self._steps = 0
    self._images_before = None
    batch = tf.shape(self._images)[0]
    self._time_step = ts.TimeStep(
        step_type=tf.fill([batch], ts.StepType.FIRST),
        reward=tf.zeros(tf.shape(self._images)[:3], tf.float32),
        discount=tf.ones([batch], tf.float32),
        observation=self._observation())
    return self._time_step

  def resume(self, images, step) -> ts.TimeStep:
    """Continues the episode from `images` after `step` steps (a tensor).

    For rollouts written as a `tf.while_loop`, whose body receives the
    images as a loop variable: the time step is `FIRST` at step 0 and `MID`
    after (the rewards of the step that led here are not kept).
    """
    if self._start is None:
      raise RuntimeError('call start_episode(start, target) first')
    self._images = images
    batch = tf.shape(images)[0]
    self._time_step = ts.TimeStep(
        step_type=tf.fill([batch], tf.where(
            tf.equal(step, 0), ts.StepType.FIRST, ts.StepType.MID)),
        reward=tf.zeros(tf.shape(images)[:3], tf.float32),
        discount=tf.ones([batch], tf.float32),
        observation=self._observation())
    return self._time_step

  def _observation(self):
    if self._extra is None:
      return self._images
    return tf.concat([self._images, self._extra], axis=-1)

  def _current_time_step(self):
    if self._time_step is None:
      raise RuntimeError('call start_episode(start, target) first')
    return self._time_step

  def _reset(self):
    if self._start is None:
      raise RuntimeError('call start_episode(start, target) first')
    return self.start_episode(self._start, self._targets, self._extra)

  def _step(self, action):
    if self._time_step is None:
      raise RuntimeError('call start_episode(start, target) first')
    with tf.name_scope('pixel_env_step'):
      images = self._images
      if self._targets is None:
        next_images = self._action_set.apply(images, action)
        reward = tf.zeros(tf.shape(images)[:3], tf.float32)
      else:
        next_images, reward = pixel_env.transition(
            images, action, self._targets, self._action_set, self._reward_fn)
      if self._post_step_fn is not None:
        next_images = self._post_step_fn(next_images, self._start)
      self._images_before = images
      self._images = next_images
      self._steps += 1
      batch = tf.shape(images)[0]
      last = self._t_max is not None and self._steps >= self._t_max
      self._time_step = ts.TimeStep(
          step_type=tf.fill([batch], ts.StepType.LAST if last
                            else ts.StepType.MID),
          reward=reward,
          discount=tf.fill([batch], 0.0 if last else 1.0),
          observation=self._observation())
      return self._time_step

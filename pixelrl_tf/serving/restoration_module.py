"""The greedy PixelRL restoration loop, in process and as a SavedModel module.

Shapes: `B` batch, `T` steps (`t_max`), `H, W` height and width, `C` image
channels (1 gray, 3 colour), `A` actions, `F` GRU feature channels.

At test time PixelRL starts from the corrupted image `s_0` and a zero ConvGRU
state and, for `t = 0 .. T-1`, lets every pixel take the argmax action of the
policy and applies the per-pixel action map:

    (logits, h_{t+1}) = network(s_t, h_t)       h_0 = 0
    a_t = argmax_A logits                        [B,H,W]
    s_{t+1} = action_set.apply(s_t, a_t)         [B,H,W,C]

The loop is `drivers.rollout.run_episode` with the greedy policy on a
`PixelTFEnvironment`. `RestorationModule` wraps it in `tf.function`s with
fixed input signatures so that the whole loop (network, GRU state, filters)
is one graph that TF Serving or `tf.saved_model.load` run without any Python
code; evaluation, validation and `restore` call the same module in process
(`Restorer`, which also gives the uniformly random agents of the paper's
baseline).

Images are float32 on the 0..1 scale and are never clipped inside the loop
(as the reference code); `restored_uint8` is the clipped 8-bit image of the
official protocol, `floor(clip(v, 0, 1) * 255 + 0.5)`.

A model takes images with exactly the `C` channels it was trained on: a gray
image given to a colour model, or a colour image to a gray model, is an error
(the SavedModel signatures enforce `C`; convert images before calling, as the
`restore` command does).
"""

import dataclasses
from typing import Callable, Dict, Sequence

import numpy as np
import tensorflow as tf

from pixelrl_tf.agents import pixel_policy
from pixelrl_tf.drivers import rollout
from pixelrl_tf.environments import tf_pixel_env

SIGNATURE_FLOAT = 'serving_default'
SIGNATURE_UINT8 = 'restore_uint8'
SIGNATURE_STEPS = 'restore_steps'
SIGNATURE_METADATA = 'metadata'
INPUT_KEY = 'images'

# Radius of the image filters of the PixelRL action tables (5x5 windows).
DEFAULT_FILTER_RADIUS = 2

# Layers on the image -> policy path of `FcnActorCritic`, in order; every one
# is a "same" convolution (docs/design.md, "Network variable names").
_POLICY_PATH_LAYERS = ('conv1', 'diconv2', 'diconv3', 'diconv4', 'diconv5_pi',
                       'diconv6_pi')


def check_images(network, images):
  """Returns `images` as a float32 tensor after checking rank and channels.

  Args:
    network: the actor-critic network; its input spec gives `C`.
    images: `[B,H,W,C]` images on the 0..1 scale.

  Returns:
    float32 `[B,H,W,C]` tensor.

  Raises:
    ValueError: if `images` is not rank 4 or its channel count is not `C`.
  """
  images = tf.convert_to_tensor(images, dtype=tf.float32)
  channels = network.input_tensor_spec.shape[-1]
  if images.shape.rank != 4:
    raise ValueError(f'images must be [B,H,W,C], got shape {images.shape}')
  if images.shape[-1] is not None and images.shape[-1] != channels:
    raise ValueError(
        f'the model takes {channels}-channel images '
        f'({"gray" if channels == 1 else "colour"}), got '
        f'{images.shape[-1]} channels; convert the images first')
  return images


def greedy_policy(network, environment):
  """The greedy `PixelActorCriticPolicy` (the agent's `policy`) of a network."""
  return pixel_policy.PixelActorCriticPolicy(
      environment.time_step_spec(), environment.action_spec(), network,
      greedy=True, name='greedy_policy')


def _environment(network, action_set):
  channels = int(network.input_tensor_spec.shape[-1])
  return tf_pixel_env.PixelTFEnvironment(action_set, channels=channels)


def uint8_to_float(images):
  """uint8 -> float32 `v / 255`, bit-identical to numpy's division.

  A table lookup, because graph optimisation may turn a division by the
  constant 255 into a multiplication by its rounded reciprocal, which is one
  float32 ulp off for some values.
  """
  table = tf.constant(np.arange(256, dtype=np.float32) / np.float32(255.0))
  return tf.gather(table, tf.cast(images, tf.int32))


def quantize_uint8(images):
  """`floor(clip(v, 0, 1) * 255 + 0.5)` as uint8 (the official protocol)."""
  clipped = tf.clip_by_value(images, 0.0, 1.0)
  return tf.cast(tf.floor(clipped * 255.0 + 0.5), tf.uint8)


def policy_step_radius(network):
  """Radius of one step's action map on that step's image, from the layers.

  Every layer is a 3x3 (in general `k x k`) "same" convolution with dilation
  `d`, which widens the dependency by `d * (k - 1) / 2`. Along the policy
  path, `x_t` (the output of diconv6_pi) sees the image within
  `r_x = 1 + 2 + 3 + 4 + 3 + 2 = 15`. The ConvGRU (kernel radius `g = 1`)
  makes `h_{t+1}` depend on the image within `r_x + 2g` (`W x` in `h~`, and
  `r = sigmoid(Wr x + Ur h)` seen through `U (r . h)`) and on `h_t` within
  `2g`; the logits head adds `e = 1`. The plain FCN has no state:
  image -> logits is `r_x + e`.

  Args:
    network: an `FcnActorCritic`.

  Returns:
    `(image_to_state, state_to_state, head)` radii in pixels: `(17, 2, 1)`
    for the "+convGRU" network. For the plain FCN, which has no state,
    `(r_x, None, head)` = `(15, None, 1)`: image -> logits is
    `image_to_state + head` there too.
  """
  def radius(layer):
    kernel = layer.kernel_size[0]
    dilation = layer.dilation_rate[0]
    return dilation * (kernel - 1) // 2

  features_radius = sum(radius(network.layer_by_name(name))
                        for name in _POLICY_PATH_LAYERS)
  if network.use_conv_gru:
    gru_radius = (network.layer_by_name('conv_gru').kernel_size - 1) // 2
    head_radius = radius(network.layer_by_name('conv8_pi'))
    return features_radius + 2 * gru_radius, 2 * gru_radius, head_radius
  head_radius = radius(network.layer_by_name('conv7_pi'))
  return features_radius, None, head_radius


def dependency_radius(network, t_max, filter_radius=DEFAULT_FILTER_RADIUS):
  """How far the result of a `t_max`-step greedy episode looks, in pixels.

  With `R_s(k)` the radius of `s_k` on `s_0`, `R_h(k)` that of the GRU state
  `h_k` (`h_0 = 0` is a constant) and `R_a(k)` that of the action map `a_k`:

      R_h(k+1) = max(R_s(k) + image_to_state, R_h(k) + state_to_state)
      R_a(k)   = R_h(k+1) + head
      R_s(k+1) = max(R_s(k) + filter_radius, R_a(k))

  (a pixel of `s_{k+1}` is its action's filter applied to `s_k` within
  `filter_radius`). For the "+convGRU" network, `image_to_state = 17`,
  `state_to_state = 2`, `head = 1`, so `R_s` grows by
  `max(17 + 1, 2 + 1, filter_radius) = 18` per step: 90 pixels for `T = 5`,
  270 for `T = 15`. For the plain FCN it grows by `max(16, filter_radius)`:
  80 for `T = 5`. Every `a_k` and `s_k` (k <= T) looks within `R_s(T)`.

  (The bound is tight up to one pixel: on the first step the zero state
  makes `U (r . h)` vanish, so the exact radius is `18 T - 1`.)

  Args:
    network: an `FcnActorCritic`.
    t_max: `T`.
    filter_radius: the largest window radius of the action set's filters
      (2 for the 5x5 PixelRL filters).

  Returns:
    int radius `R_s(T)`: every output pixel (restored image and all action
    maps) depends only on input pixels at most this far away in each axis,
    and on the image border only through pixels that far from it.
  """
  image_to_state, state_to_state, head = policy_step_radius(network)
  image_radius = 0
  state_radius = None
  for _ in range(t_max):
    if state_to_state is None:
      action_radius = image_radius + image_to_state + head
    else:
      state_radius = max(image_radius + image_to_state,
                         -1 if state_radius is None
                         else state_radius + state_to_state)
      action_radius = state_radius + head
    image_radius = max(image_radius + filter_radius, action_radius)
  return image_radius


class RestorationModule(tf.Module):
  """The greedy restoration loop as a `tf.Module` with serving signatures.

  Attributes (all `tf.function`s with fixed input signatures, saved with the
  module and also exported as signatures by `signatures()`):
    restore: float32 `images [B,H,W,C]` on 0..1 -> dict
      `restored` float32 `[B,H,W,C]` (unclipped), `restored_uint8` uint8
      `[B,H,W,C]`, `actions` int32 `[B,T,H,W]`.
    restore_uint8: the same from uint8 `images [B,H,W,C]` (divided by 255).
    restore_steps: float32 `images` -> dict `images` float32
      `[B,T+1,H,W,C]` (input, then after each step) and `actions`.
    metadata: no input -> dict `t_max`, `channels`, `dependency_radius`
      (int32 scalars), `action_names` string `[A]`, `action_colors` uint8
      `[A,3]` RGB.
  In process only (not exported): `random_steps(images, seed)`, the same
  rollout with uniformly random actions (int64 `[2]` seed).
  """

  def __init__(self, network, action_set, t_max,
               filter_radius=DEFAULT_FILTER_RADIUS, name='restoration',
               jit_compile=False):
    """Wraps a network and an action set.

    Args:
      network: the actor-critic network, variables created; its input spec
        fixes `C`.
      action_set: the `ActionSet` the model was trained with.
      t_max: `T`, steps of the restoration loop.
      filter_radius: largest filter radius of `action_set` (for
        `dependency_radius`).
      name: module name.
      jit_compile: compile the loop with XLA.
    """
    super().__init__(name=name)
    if t_max < 1:
      raise ValueError(f't_max must be at least 1, got {t_max}')
    self.network = network
    self._action_set = action_set
    self._t_max = int(t_max)
    self._channels = int(network.input_tensor_spec.shape[-1])
    self._environment = _environment(network, action_set)
    self.policy = greedy_policy(network, self._environment)
    self._random_policy = pixel_policy.RandomPixelPolicy(
        self._environment.time_step_spec(), self._environment.action_spec())
    self._dependency_radius = dependency_radius(network, t_max, filter_radius)
    self._action_names = list(action_set.names)
    self._action_colors = np.asarray(action_set.colors, np.uint8)
    image_shape = [None, None, None, self._channels]
    image_spec = tf.TensorSpec(image_shape, tf.float32, INPUT_KEY)
    self.restore = tf.function(
        self._restore, autograph=False, input_signature=[image_spec])
    self.restore_uint8 = tf.function(
        self._restore_uint8, autograph=False,
        input_signature=[tf.TensorSpec(image_shape, tf.uint8, INPUT_KEY)])
    self.restore_steps = tf.function(
        self._restore_steps, autograph=False, jit_compile=jit_compile,
        input_signature=[image_spec])
    self.random_steps = tf.function(
        self._random_steps, autograph=False,
        input_signature=[image_spec, tf.TensorSpec([2], tf.int64)])
    self.metadata = tf.function(self._metadata, autograph=False,
                                input_signature=[])

  @property
  def t_max(self):
    return self._t_max

  @property
  def channels(self):
    return self._channels

  @property
  def action_set(self):
    return self._action_set

  @property
  def dependency_radius(self):
    return self._dependency_radius

  def _restore(self, images):
    # Calls the traced `restore_steps`, so the SavedModel holds one loop.
    steps = self.restore_steps(images)
    restored = steps['images'][:, -1]
    return {'restored': restored, 'restored_uint8': quantize_uint8(restored),
            'actions': steps['actions']}

  def _restore_uint8(self, images):
    return self.restore(uint8_to_float(images))

  def _run(self, policy, images, seed=None):
    images = check_images(self.network, images)
    episode = rollout.run_episode(
        self._environment, policy, self._environment.start_episode(images),
        self._t_max, seed=seed)
    return {'images': episode.images, 'actions': episode.actions}

  def _restore_steps(self, images):
    return self._run(self.policy, images)

  def _random_steps(self, images, seed):
    return self._run(self._random_policy, images, seed)

  def _metadata(self):
    return {
        't_max': tf.constant(self._t_max, tf.int32),
        'channels': tf.constant(self._channels, tf.int32),
        'dependency_radius': tf.constant(self._dependency_radius, tf.int32),
        'action_names': tf.constant(self._action_names, tf.string),
        'action_colors': tf.constant(self._action_colors, tf.uint8),
    }

  def signatures(self):
    """The SavedModel signatures: `serving_default` is the float restore."""
    return {
        SIGNATURE_FLOAT: self.restore.get_concrete_function(),
        SIGNATURE_UINT8: self.restore_uint8.get_concrete_function(),
        SIGNATURE_STEPS: self.restore_steps.get_concrete_function(),
        SIGNATURE_METADATA: self.metadata.get_concrete_function(),
    }


def _to_numpy(outputs):
  return {key: value.numpy() for key, value in outputs.items()}


@dataclasses.dataclass
class Restorer:
  """A restoration model, whatever it was loaded from.

  Attributes:
    channels: `C` of the images the model takes.
    t_max: `T`, steps of the restoration loop.
    dependency_radius: tile margin (see `dependency_radius`).
    action_names: the `A` action names.
    action_colors: uint8 `[A,3]` RGB palette.
    restore_fn: float32 `[1,H,W,C]` -> dict of numpy `restored [1,H,W,C]`,
      `restored_uint8`, `actions [1,T,H,W]`.
    restore_steps_fn: float32 `[1,H,W,C]` -> dict of numpy
      `images [1,T+1,H,W,C]`, `actions`.
    random_steps_fn: `(float32 [1,H,W,C], seed [2]) ->` the `restore_steps`
      dict of uniformly random agents, or None (SavedModels).
    description: what was loaded, for messages.
  """
  channels: int
  t_max: int
  dependency_radius: int
  action_names: Sequence[str]
  action_colors: np.ndarray
  restore_fn: Callable[[np.ndarray], Dict[str, np.ndarray]]
  restore_steps_fn: Callable[[np.ndarray], Dict[str, np.ndarray]]
  random_steps_fn: Callable[..., Dict[str, np.ndarray]] = None
  description: str = ''


def restorer_from_module(module: RestorationModule,
                         description: str = '') -> Restorer:
  """The `Restorer` of an in-process `RestorationModule`."""
  return Restorer(
      channels=module.channels, t_max=module.t_max,
      dependency_radius=module.dependency_radius,
      action_names=list(module.action_set.names),
      action_colors=module.action_set.colors,
      restore_fn=lambda x: _to_numpy(module.restore(tf.constant(x))),
      restore_steps_fn=lambda x: _to_numpy(module.restore_steps(
          tf.constant(x))),
      random_steps_fn=lambda x, seed: _to_numpy(module.random_steps(
          tf.constant(x), tf.constant(seed, tf.int64))),
      description=description)


def restorer_from_saved_model(path: str) -> Restorer:
  """The `Restorer` of an exported SavedModel folder.

  Raises:
    ValueError: the SavedModel lacks the restoration signatures.
  """
  loaded = tf.saved_model.load(path)
  signatures = loaded.signatures
  needed = (SIGNATURE_FLOAT, SIGNATURE_STEPS, SIGNATURE_METADATA)
  missing = [name for name in needed if name not in signatures]
  if missing:
    raise ValueError(f'{path} is not a pixelrl_tf restoration model '
                     f'(no signature {", ".join(missing)})')
  metadata = _to_numpy(signatures[SIGNATURE_METADATA]())
  restore = signatures[SIGNATURE_FLOAT]
  restore_steps = signatures[SIGNATURE_STEPS]
  return Restorer(
      channels=int(metadata['channels']), t_max=int(metadata['t_max']),
      dependency_radius=int(metadata['dependency_radius']),
      action_names=[name.decode() for name in metadata['action_names']],
      action_colors=metadata['action_colors'],
      restore_fn=lambda x: _to_numpy(restore(images=tf.constant(x))),
      restore_steps_fn=lambda x: _to_numpy(
          restore_steps(images=tf.constant(x))),
      description=f'SavedModel {path}')

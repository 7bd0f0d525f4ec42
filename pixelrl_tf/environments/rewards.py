"""Per-pixel rewards of PixelRL, and the registry that makes them open.

Shapes: `B` batch, `H, W` height and width, `C` channels.

A reward function maps `(targets, images, next_images)`, each `[B,H,W,C]`,
to a `[B,H,W]` float32 reward map (traceable TF ops). Two are built in:

  * `'squared_error'`: the decrease of the squared error on the 0..255 scale
    divided by 255, as in the reference code (denoising, restoration):
    `r_t = 255 * ((I - s_t)^2 - (I - s_{t+1})^2)` for images on 0..1;
  * `'lab_distance'`: the decrease of the per-pixel CIE Lab distance, eq. (21)
    (colour enhancement);
  * `'saliency'`: eq. (22) of saliency-driven editing, `alpha dS` inside the
    mask and `-beta dS` outside, with `dS` the change of OpenCV's
    fine-grained saliency (`metrics.saliency_map`) of the 8-bit image; the
    targets are the `[B,H,W,1]` mask (1 inside).

A user adds their own with `register_reward('name', fn)` from their module
(imported by a gin file) and selects it in a task (`make_task.reward`).

A reward is *per pixel* when a pixel's reward depends only on that pixel's
values before and after the step (and its target): then the reward every
action would have earned at every pixel is that action's whole-image result
rewarded pixel by pixel, which the agent's all-action options use. The
squared error and the Lab distance are; the saliency reward (a map of the
whole image) is not. `register_reward(..., per_pixel=True)` declares it.
"""

from typing import Callable

import numpy as np
import tensorflow as tf

from pixelrl_tf import metrics
from pixelrl_tf.filters import color_ops

RewardFn = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


def squared_error_decrease(targets, images, next_images):
  """`[B,H,W]` reward `255 * ((I - s_t)^2 - (I - s_{t+1})^2)`, summed over C."""
  before = tf.reduce_sum(tf.square(targets - images), axis=-1)
  after = tf.reduce_sum(tf.square(targets - next_images), axis=-1)
  return 255.0 * (before - after)


def lab_distance_decrease(targets, images, next_images):
  """`[B,H,W]` colour reward, eq. (21) of the paper.

  `r = ||Lab(I) - Lab(s_t)||_2 - ||Lab(I) - Lab(s_{t+1})||_2` per pixel, in
  raw CIE Lab units (no 255 factor), with OpenCV's float BGR->Lab conversion
  (`color_ops.bgr_to_lab`, which clips its input to [0, 1]) on unclipped
  states, as the reference colour code computes it.

  Args:
    targets: `[B,H,W,3]` BGR targets `I`.
    images: `[B,H,W,3]` BGR states `s_t`.
    next_images: `[B,H,W,3]` BGR states `s_{t+1}`.

  Returns:
    float32 `[B,H,W]`.
  """
  target_lab = color_ops.bgr_to_lab(targets)

  def distance(states):
    difference = target_lab - color_ops.bgr_to_lab(states)
    return tf.sqrt(tf.reduce_sum(tf.square(difference), axis=-1))

  return distance(images) - distance(next_images)


def _fine_grained_saliency(images):
  return np.stack([metrics.saliency_map(image) for image in images])


def fine_grained_saliency_tf(images):
  """`metrics.saliency_map` of every `[B,H,W,3]` BGR image -> `[B,H,W]`."""
  maps = tf.numpy_function(_fine_grained_saliency, [images], tf.float32,
                           stateful=False)
  maps.set_shape(images.shape[:3])
  return maps


# Weights of eq. (22) (paper Sec. VI-D).
SALIENCY_ALPHA = 1.0
SALIENCY_BETA = 0.5


def saliency_change_reward(alpha: float = SALIENCY_ALPHA,
                           beta: float = SALIENCY_BETA) -> RewardFn:
  """The reward of eq. (22) with weights `alpha` (inside) and `beta`."""

  def saliency_reward(targets, images, next_images):
    inside = targets[..., 0] > 0.5
    change = (fine_grained_saliency_tf(next_images[..., :3]) -
              fine_grained_saliency_tf(images[..., :3]))
    return tf.where(inside, alpha * change, -beta * change)

  return saliency_reward


SQUARED_ERROR = 'squared_error'
LAB_DISTANCE = 'lab_distance'
SALIENCY = 'saliency'
_REWARDS = {SQUARED_ERROR: squared_error_decrease,
            LAB_DISTANCE: lab_distance_decrease,
            SALIENCY: saliency_change_reward()}
_PER_PIXEL = {squared_error_decrease, lab_distance_decrease}


def register_reward(name: str, fn: RewardFn, overwrite: bool = False,
                    per_pixel: bool = False) -> None:
  """Makes `fn` available as reward `name` (see the module docstring).

  Args:
    name: the reward's name.
    fn: the reward function.
    overwrite: replace a reward of that name.
    per_pixel: a pixel's reward depends only on its own values (and
      target); see the module docstring.
  """
  if name in _REWARDS and _REWARDS[name] is not fn and not overwrite:
    raise ValueError(f'a reward called {name!r} is already registered')
  _REWARDS[name] = fn
  if per_pixel:
    _PER_PIXEL.add(fn)
  else:
    _PER_PIXEL.discard(fn)


def is_per_pixel(name_or_fn) -> bool:
  """Whether a reward (name or function) is declared per pixel."""
  return get_reward_fn(name_or_fn) in _PER_PIXEL


def get_reward_fn(name_or_fn) -> RewardFn:
  """Returns the reward registered as `name` (a callable is returned as is)."""
  if callable(name_or_fn):
    return name_or_fn
  try:
    return _REWARDS[name_or_fn]
  except KeyError:
    raise ValueError(f'unknown reward {name_or_fn!r}; known: '
                     f'{", ".join(sorted(_REWARDS))}') from None

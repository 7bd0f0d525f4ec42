"""Batched TensorFlow image filters that reproduce OpenCV's float32 results.

These are the PixelRL actions (Table I of the paper) written as TF ops so that
the environment step, training and the exported SavedModel share one
implementation. Each filter matches its OpenCV counterpart (`cv2.boxFilter`,
`cv2.GaussianBlur`, `cv2.medianBlur`, `cv2.bilateralFilter`) to float32
round-off, border handling included, on images of any size down to 1x1.

Shapes: `B` batch, `H, W` height and width, `C` channels. Images are float32
`[B, H, W, C]`; `H`, `W` and `C` may be unknown when traced. Channels are
filtered independently (a colour image is filtered as if each channel were
passed to OpenCV on its own). Values are never clipped, so inputs outside
[0, 1] pass through as OpenCV would treat them.

Every filter works on shifted slices of one padded tensor (weighted sums, or
a min/max network for the median). On CPU, at the sizes PixelRL uses (batches
of 70x70 crops, 481x321 test images), this was as fast as or faster than
`depthwise_conv2d` and `extract_patches` with `top_k`, and it keeps the
summation order close to OpenCV's.
"""

import functools
import math
from typing import List, Sequence, Tuple

import numpy as np
import tensorflow as tf

# Compare-exchange pairs `(i, j)` that leave the median of 9 values at index 4
# (Paeth, "Median finding on a 3x3 grid", Graphics Gems, 1990) and of 25
# values at index 12 (Devillard, "Fast median search", 1998). Min/max networks
# are exact, need no sort kernel, and are about 20 times faster on CPU than
# `tf.sort` or `tf.math.top_k` over stacked neighbourhoods. Both are checked
# exhaustively against all 0/1 inputs in the tests (0-1 principle).
_MEDIAN_NETWORKS = {
    3: ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8),
        (0, 3), (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4),
        (4, 2)),
    5: ((0, 1), (3, 4), (2, 4), (2, 3), (6, 7), (5, 7), (5, 6), (9, 10),
        (8, 10), (8, 9), (12, 13), (11, 13), (11, 12), (15, 16), (14, 16),
        (14, 15), (18, 19), (17, 19), (17, 18), (21, 22), (20, 22), (20, 21),
        (23, 24), (2, 5), (3, 6), (0, 6), (0, 3), (4, 7), (1, 7), (1, 4),
        (11, 14), (8, 14), (8, 11), (12, 15), (9, 15), (9, 12), (13, 16),
        (10, 16), (10, 13), (20, 23), (17, 23), (17, 20), (21, 24), (18, 24),
        (18, 21), (19, 22), (8, 17), (9, 18), (0, 18), (0, 9), (10, 19),
        (1, 19), (1, 10), (11, 20), (2, 20), (2, 11), (12, 21), (3, 21),
        (3, 12), (13, 22), (4, 22), (4, 13), (14, 23), (5, 23), (5, 14),
        (15, 24), (6, 24), (6, 15), (7, 16), (7, 19), (13, 21), (15, 23),
        (7, 13), (7, 15), (1, 9), (3, 11), (5, 17), (11, 17), (9, 17), (4, 10),
        (6, 12), (7, 14), (4, 6), (4, 7), (12, 14), (10, 14), (6, 7), (10, 12),
        (6, 10), (6, 17), (12, 17), (7, 17), (7, 10), (12, 18), (7, 12),
        (10, 18), (12, 20), (10, 20), (10, 12)),
}


@functools.lru_cache(maxsize=None)
def _live_comparisons(size: int) -> Tuple[Tuple[int, int, bool, bool], ...]:
  """The median network of `size` without outputs the median never reads.

  Args:
    size: window side, a key of `_MEDIAN_NETWORKS`.

  Returns:
    `(low, high, keep_min, keep_max)` per remaining comparison, in order:
    compute the min into `low` if `keep_min` and the max into `high` if
    `keep_max`.
  """
  live = {size * size // 2}
  kept = []
  for low, high in reversed(_MEDIAN_NETWORKS[size]):
    keep_min, keep_max = low in live, high in live
    if keep_min or keep_max:
      kept.append((low, high, keep_min, keep_max))
      live.update((low, high))
  return tuple(reversed(kept))


def _check_odd_size(size: int, what: str) -> None:
  if size < 1 or size % 2 == 0:
    raise ValueError(f'{what} must be a positive odd integer, got {size}.')


def _reflect_101_indices(length: tf.Tensor, pad: int) -> tf.Tensor:
  """OpenCV's `borderInterpolate` for BORDER_REFLECT_101.

  The border of `abcdefgh` reads `gfedcb|abcdefgh|gfedcba`.

  Args:
    length: int32 scalar, the size of the padded axis (>= 1).
    pad: number of positions added on each side.

  Returns:
    int32 `[length + 2 * pad]`: the source index of every padded position.
  """
  positions = tf.range(-pad, length + pad)
  # Reflection without repeating the edge is periodic with period 2 (n - 1),
  # which handles any pad, even one larger than the axis.
  period = tf.maximum(2 * (length - 1), 1)
  folded = tf.math.floormod(positions, period)
  reflected = tf.where(folded >= length, period - folded, folded)
  # OpenCV maps every position of a length-1 axis to 0.
  return tf.where(length > 1, reflected, tf.zeros_like(positions))


def _replicate_indices(length: tf.Tensor, pad: int) -> tf.Tensor:
  """OpenCV's `borderInterpolate` for BORDER_REPLICATE (`aa|abcdefgh|hh`)."""
  return tf.clip_by_value(tf.range(-pad, length + pad), 0, length - 1)


def _pad_spatial(images: tf.Tensor, pad: int, indices_fn) -> tf.Tensor:
  """Gathers rows, then columns, at the positions `indices_fn` gives."""
  if pad < 0:
    raise ValueError(f'pad must be non-negative, got {pad}.')
  shape = tf.shape(images)
  padded = tf.gather(images, indices_fn(shape[1], pad), axis=1)
  padded = tf.gather(padded, indices_fn(shape[2], pad), axis=2)
  batch, height, width, channels = images.shape.with_rank(4).as_list()
  padded.set_shape([
      batch, None if height is None else height + 2 * pad,
      None if width is None else width + 2 * pad, channels
  ])
  return padded


def pad_reflect_101(images: tf.Tensor, pad: int) -> tf.Tensor:
  """Pads H and W like OpenCV's BORDER_REFLECT_101, for any image size.

  Unlike `tf.pad(..., 'REFLECT')` this accepts `pad >= H` or `pad >= W`
  (OpenCV keeps reflecting; a size-1 axis repeats its only value).

  Args:
    images: float32 `[B, H, W, C]`.
    pad: non-negative number of rows and columns added on each side.

  Returns:
    float32 `[B, H + 2 pad, W + 2 pad, C]`.
  """
  with tf.name_scope('pad_reflect_101'):
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    return _pad_spatial(images, pad, _reflect_101_indices)


def pad_replicate(images: tf.Tensor, pad: int) -> tf.Tensor:
  """Pads H and W like OpenCV's BORDER_REPLICATE (edge values repeated).

  Args:
    images: float32 `[B, H, W, C]`.
    pad: non-negative number of rows and columns added on each side.

  Returns:
    float32 `[B, H + 2 pad, W + 2 pad, C]`.
  """
  with tf.name_scope('pad_replicate'):
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    return _pad_spatial(images, pad, _replicate_indices)


def _shifted_windows(padded: tf.Tensor, height: tf.Tensor, width: tf.Tensor,
                     offsets: Sequence[Tuple[int, int]]) -> List[tf.Tensor]:
  """Slices `padded[:, dy:dy + height, dx:dx + width]` for each offset."""
  return [padded[:, dy:dy + height, dx:dx + width] for dy, dx in offsets]


def _separable_filter(images: tf.Tensor, taps: np.ndarray) -> tf.Tensor:
  """Correlates H then W with the same odd-length 1-D taps, reflect-101 border.

  Args:
    images: float32 `[B, H, W, C]`.
    taps: float `[K]`, K odd.

  Returns:
    float32 `[B, H, W, C]`.
  """
  radius = len(taps) // 2
  taps = [float(tap) for tap in np.asarray(taps, np.float32)]
  shape = tf.shape(images)
  height, width = shape[1], shape[2]
  padded = pad_reflect_101(images, radius)
  filtered_rows = tf.add_n(
      [tap * padded[:, k:k + height] for k, tap in enumerate(taps)])
  filtered = tf.add_n(
      [tap * filtered_rows[:, :, k:k + width] for k, tap in enumerate(taps)])
  filtered.set_shape(images.shape)
  return filtered


def box_filter(images: tf.Tensor, size: int = 5) -> tf.Tensor:
  """Normalised box filter, as `cv2.boxFilter(img, -1, (size, size))`.

  Args:
    images: float32 `[B, H, W, C]`.
    size: odd window side.

  Returns:
    float32 `[B, H, W, C]`, the mean over each `size x size` window with a
    reflect-101 border.
  """
  _check_odd_size(size, 'size')
  with tf.name_scope('box_filter'):
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    return _separable_filter(images, np.full([size], 1.0 / size))


def gaussian_kernel_1d(sigma: float, size: int = 5) -> np.ndarray:
  """The taps of `cv2.getGaussianKernel(size, sigma)` (for `sigma > 0`).

  Args:
    sigma: standard deviation in pixels.
    size: odd number of taps.

  Returns:
    float64 `[size]`, summing to one.
  """
  _check_odd_size(size, 'size')
  if sigma <= 0:
    raise ValueError(f'sigma must be positive, got {sigma}.')
  positions = np.arange(size, dtype=np.float64) - (size - 1) / 2
  taps = np.exp(-0.5 / (sigma * sigma) * positions * positions)
  return taps / taps.sum()


def gaussian_filter(images: tf.Tensor, sigma: float,
                    size: int = 5) -> tf.Tensor:
  """Gaussian blur, as `cv2.GaussianBlur(img, (size, size), sigma)`.

  Args:
    images: float32 `[B, H, W, C]`.
    sigma: standard deviation in pixels, the same along H and W.
    size: odd kernel side.

  Returns:
    float32 `[B, H, W, C]`, blurred with a reflect-101 border.
  """
  taps = gaussian_kernel_1d(sigma, size)
  with tf.name_scope('gaussian_filter'):
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    return _separable_filter(images, taps)


def median_filter(images: tf.Tensor, size: int = 5) -> tf.Tensor:
  """Median filter, as `cv2.medianBlur(img, size)` on float32 images.

  Args:
    images: float32 `[B, H, W, C]`.
    size: window side, 3 or 5 (the sizes OpenCV accepts for float32).

  Returns:
    float32 `[B, H, W, C]`, the median of each `size x size` window with a
    replicated border (OpenCV's median border, unlike its other filters).
  """
  if size not in _MEDIAN_NETWORKS:
    raise ValueError(f'size must be 3 or 5, got {size}.')
  with tf.name_scope('median_filter'):
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    shape = tf.shape(images)
    padded = pad_replicate(images, size // 2)
    values = _shifted_windows(padded, shape[1], shape[2],
                              [(dy, dx) for dy in range(size)
                               for dx in range(size)])
    for low, high, keep_min, keep_max in _live_comparisons(size):
      smaller = tf.minimum(values[low], values[high]) if keep_min else None
      larger = tf.maximum(values[low], values[high]) if keep_max else None
      values[low], values[high] = smaller, larger
    median = values[size * size // 2]
    median.set_shape(images.shape)
    return median


def bilateral_filter(images: tf.Tensor, sigma_color: float,
                     sigma_space: float = 5.0, diameter: int = 5) -> tf.Tensor:
  """Bilateral filter, as `cv2.bilateralFilter` on float32 images.

  Matches `cv2.bilateralFilter(img, diameter, sigma_color, sigma_space)` per
  channel: radius `diameter // 2` (at least 1), a circular support of the
  offsets with `dy^2 + dx^2 <= radius^2` (13 taps for diameter 5), weights
  `exp(-r^2 / (2 sigma_space^2)) * exp(-(I_n - I_c)^2 / (2 sigma_color^2))`,
  and a reflect-101 border.

  The colour weight is evaluated in closed form; OpenCV 4.11 agrees with it to
  float32 round-off (under 1e-6) whatever the value range. Older releases,
  such as the 3.4 pinned by the reference code, interpolate the colour weight
  in a 4096-bin table over the image's [min, max]; an emulation of that table
  moves results by under 1e-6 for value ranges up to about 2, and the gap
  grows with the square of the range (about 1e-4 at a range of 30). OpenCV
  filters a multi-channel image with one weight from the summed channel
  differences; here each channel is filtered on its own, as PixelRL does for
  colour images.

  Args:
    images: float32 `[B, H, W, C]`.
    sigma_color: colour standard deviation, in image units (0.1 is 25.5 grey
      levels on the 0..1 scale).
    sigma_space: spatial standard deviation in pixels.
    diameter: support diameter in pixels; non-positive means
      `2 * round(1.5 * sigma_space) + 1`, as in OpenCV.

  Returns:
    float32 `[B, H, W, C]`.
  """
  if sigma_color <= 0 or sigma_space <= 0:
    raise ValueError('sigma_color and sigma_space must be positive, got '
                     f'{sigma_color} and {sigma_space}.')
  radius = diameter // 2 if diameter > 0 else round(1.5 * sigma_space)
  radius = max(radius, 1)
  color_coeff = -0.5 / (sigma_color * sigma_color)
  offsets = [(dy, dx)
             for dy in range(-radius, radius + 1)
             for dx in range(-radius, radius + 1)
             if 0 < dy * dy + dx * dx <= radius * radius]
  with tf.name_scope('bilateral_filter'):
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    shape = tf.shape(images)
    padded = pad_reflect_101(images, radius)
    windows = _shifted_windows(padded, shape[1], shape[2],
                               [(radius + dy, radius + dx)
                                for dy, dx in offsets])
    # The centre tap has weight exp(0) * exp(0) = 1.
    weighted_sum = images
    weight_sum = tf.ones_like(images)
    for (dy, dx), neighbour in zip(offsets, windows):
      space_weight = float(np.float32(
          math.exp(-0.5 * (dy * dy + dx * dx) / (sigma_space * sigma_space))))
      weight = space_weight * tf.exp(
          color_coeff * tf.square(neighbour - images))
      weighted_sum += weight * neighbour
      weight_sum += weight
    filtered = weighted_sum / weight_sum
    filtered.set_shape(images.shape)
    return filtered


def shift(images: tf.Tensor, delta: float) -> tf.Tensor:
  """Adds `delta` to every value (PixelRL's +-1/255 actions); no clipping.

  Args:
    images: float32 `[B, H, W, C]`.
    delta: the constant to add.

  Returns:
    float32 `[B, H, W, C]`.
  """
  with tf.name_scope('shift'):
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    return images + delta

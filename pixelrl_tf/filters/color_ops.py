"""Colour conversions and the colour actions of PixelRL, as batched TF ops.

Shapes: `B` batch, `H, W` height and width. Images are float32 `[B, H, W, 3]`
in OpenCV's **BGR** channel order on the 0..1 scale (the order of the
reference colour code, which reads images with `cv2.imread`). Nothing is
clipped: the actions run on unclipped episode states, as in the reference
code, and the conversions treat out-of-range values exactly as OpenCV's
float32 `cv2.cvtColor` does.

Conversions (each matches `cv2.cvtColor` on float32 input):

  * `bgr_to_hsv` / `hsv_to_bgr`: `COLOR_BGR2HSV` / `COLOR_HSV2BGR`; H in
    degrees [0, 360), S = (max - min) / (|max| + FLT_EPSILON), V = max.
  * `bgr_to_lab`: `COLOR_BGR2Lab` (sRGB, D65), L in 0..100, a and b roughly
    -108..98. OpenCV's float path clips the input to [0, 1] and does not
    evaluate the CIE formula per pixel: it rounds each channel to 1/16384,
    looks the colour up in a 33x33x33 table of Lab values (entries stored on
    a 1/16384 grid) and interpolates trilinearly with 4-bit fractions. The
    result differs from the exact formula by up to ~0.5 Lab units, so the
    same table and interpolation are used here. The table's entries are read
    from OpenCV itself (the grid colours convert exactly to their entries):
    OpenCV builds it with software floating point, and a float64 evaluation
    of the formula differs from it by one table unit in about 70 of its
    107,811 entries.
  * `bgr_to_scaled_lab`: the network input of the colour models,
    `(L / 100, a / 127, b / 127)` (the reference `State.set`).

Colour actions (Table VII of the paper; the released code's index order,
`do nothing` first), per pixel, `v` every channel value, `k` 0.95 or 1.05:

  * contrast x k: `k v + 0.5 (1 - k)`, scaling about mid grey, in both
    tables (the released code writes `v*0.95+0.025`, `v*1.05-0.025`);
  * saturation x k: `'color'`: BGR -> HSV, `S <- k S`, HSV -> BGR;
    `'color_reference'`: the same round trip scaling image ROW 1 (H, S, V);
  * brightness x k: `'color'`: `k v` (= HSV `V <- k V`);
    `'color_reference'`: `v -/+ 0.025` (additive);
  * red and green x k: `G, R <- k G, k R` (the code's `[1:]`);
  * green and blue x k: `B, G <- k B, k G` (`[:2]`);
  * red and blue x k: `B, R <- k B, k R` (`[0, 2]`).

Contrast: the paper gives only the factor. Both tables scale about mid
grey, as the authors' code does: a fixed pivot keeps the action local,
whereas a pivot at the image mean would make a pixel's result depend on the
whole image and differ between 70x70 training crops and full test images.
Saturation: the reference code multiplies `hsv[1]` of an `[H, W, 3]` array,
i.e. the second image row, not the S channel, so its saturation actions are
no-ops everywhere except on row 1 (where hue, S and V are all scaled);
`'color_reference'` reproduces that, `'color'` scales S.
Brightness: Table VII says x0.95 / x1.05; the code adds -/+0.025
(`0.5 * 0.05`).
"""

import functools

import numpy as np
import tensorflow as tf

# OpenCV's float HSV uses degrees.
HUE_DEGREES = 360.0
# Divisors of the network input (L, a, b) of the reference colour code.
LAB_INPUT_SCALE = (100.0, 127.0, 127.0)

# Default step of the colour actions (Table VII: x0.95 / x1.05).
FACTOR_DOWN = 0.95
FACTOR_UP = 1.05
# The additive brightness step of the released code (0.5 * 0.05).
REFERENCE_BRIGHTNESS_STEP = 0.025

# Channel indices in BGR order.
BLUE, GREEN, RED = 0, 1, 2
RED_AND_GREEN = (GREEN, RED)
GREEN_AND_BLUE = (BLUE, GREEN)
RED_AND_BLUE = (BLUE, RED)

_FLT_EPSILON = float(np.finfo(np.float32).eps)

# OpenCV's trilinear Lab table (color_lab.cpp): 2^14 steps per unit, a
# 33-point grid per axis, 4-bit interpolation fractions.
_LAB_BASE_SHIFT = 14
_LAB_LUT_SHIFT = 5
_LAB_LUT_DIM = (1 << _LAB_LUT_SHIFT) + 1
_TRILINEAR_SHIFT = 8 - _LAB_LUT_SHIFT + 1
_TRILINEAR_BASE = 1 << _TRILINEAR_SHIFT
_LAB_BASE = 1 << _LAB_BASE_SHIFT


def _as_images(images):
  images = tf.convert_to_tensor(images, dtype=tf.float32)
  if images.shape.rank is not None and images.shape.rank < 1:
    raise ValueError(f'images must have a channel axis, got {images.shape}')
  if images.shape[-1] is not None and images.shape[-1] != 3:
    raise ValueError(
        f'colour operations need 3 BGR channels, got {images.shape[-1]}')
  return images


# ---------------------------------------------------------------------------
# HSV.


def bgr_to_hsv(images):
  """`cv2.cvtColor(images, cv2.COLOR_BGR2HSV)` for float32 images.

  Args:
    images: float32 `[..., 3]` BGR values (any range).

  Returns:
    float32 `[..., 3]`: H in degrees [0, 360), S, V (V = max channel).
  """
  images = _as_images(images)
  blue, green, red = tf.unstack(images, axis=-1)
  value = tf.maximum(tf.maximum(red, green), blue)
  minimum = tf.minimum(tf.minimum(red, green), blue)
  difference = value - minimum
  saturation = difference / (tf.abs(value) + _FLT_EPSILON)
  inverse = 60.0 / (difference + _FLT_EPSILON)
  hue = tf.where(
      tf.equal(red, value), (green - blue) * inverse,
      tf.where(tf.equal(green, value), (blue - red) * inverse + 120.0,
               (red - green) * inverse + 240.0))
  hue = tf.where(hue < 0.0, hue + HUE_DEGREES, hue)
  return tf.stack([hue, saturation, value], axis=-1)


def hsv_to_bgr(hsv):
  """`cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)` for float32 images.

  Args:
    hsv: float32 `[..., 3]`: H in degrees (any value >= 0; it wraps every
      360), S, V.

  Returns:
    float32 `[..., 3]` BGR values (not clipped).
  """
  hsv = _as_images(hsv)
  hue, saturation, value = tf.unstack(hsv, axis=-1)
  hue = hue * (6.0 / HUE_DEGREES)
  whole = tf.math.floor(hue)
  fraction = hue - whole
  sector = tf.math.floormod(whole, 6.0)
  # The four candidate values of OpenCV's HSV2RGB (tab[0..3]).
  full = value
  low = value * (1.0 - saturation)
  falling = value * (1.0 - saturation * fraction)
  rising = value * (1.0 - saturation * (1.0 - fraction))

  def pick(choices):
    """Selects `choices[sector]` per pixel (sectors 0..5)."""
    result = choices[5]
    for index in range(4, -1, -1):
      result = tf.where(tf.equal(sector, float(index)), choices[index],
                        result)
    return result

  # OpenCV's sector_data {1,3,0}, {1,0,2}, {3,0,1}, {0,2,1}, {0,1,3},
  # {2,1,0} with tab = (full, low, falling, rising), per output B, G, R.
  blue = pick([low, low, rising, full, full, falling])
  green = pick([rising, full, full, falling, low, low])
  red = pick([full, falling, low, low, rising, full])
  return tf.stack([blue, green, red], axis=-1)


# ---------------------------------------------------------------------------
# Lab.


@functools.lru_cache(maxsize=None)
def _lab_table():
  """int32 `[33^3, 3]` OpenCV's Lab table; row `(b * 33 + g) * 33 + r`.

  Entries are `(round(2^14 L / 100), round(2^14 (a + 128) / 256),
  round(2^14 (b + 128) / 256))` of the grid colour `(b, g, r) / 32`, read
  from `cv2.cvtColor`, which returns them exactly at grid colours.
  """
  import cv2  # pylint: disable=g-import-not-at-top
  grid = np.arange(_LAB_LUT_DIM, dtype=np.float32) / (_LAB_LUT_DIM - 1)
  colours = np.stack(np.meshgrid(grid, grid, grid, indexing='ij'), axis=-1)
  colours = colours.reshape(_LAB_LUT_DIM, -1, 3)
  lab = cv2.cvtColor(colours, cv2.COLOR_BGR2Lab).reshape(-1, 3)
  lab = lab.astype(np.float64)
  table = np.stack([
      np.rint(lab[:, 0] * _LAB_BASE / 100.0),
      np.rint((lab[:, 1] + 128.0) * _LAB_BASE / 256.0),
      np.rint((lab[:, 2] + 128.0) * _LAB_BASE / 256.0)], axis=1)
  return table.astype(np.int32)


def bgr_to_lab(images):
  """`cv2.cvtColor(images, cv2.COLOR_BGR2Lab)` for float32 BGR images.

  Values are clipped to [0, 1] first (as OpenCV does); see the module
  docstring for the table interpolation.

  Args:
    images: float32 `[..., 3]` BGR values.

  Returns:
    float32 `[..., 3]`: L in 0..100, a, b.
  """
  images = _as_images(images)
  with tf.name_scope('bgr_to_lab'):
    table = tf.constant(_lab_table())
    fixed = tf.cast(
        tf.round(tf.clip_by_value(images, 0.0, 1.0) * float(_LAB_BASE)),
        tf.int32)
    cells = tf.bitwise.right_shift(fixed, _LAB_BASE_SHIFT - _LAB_LUT_SHIFT)
    fractions = tf.bitwise.bitwise_and(
        tf.bitwise.right_shift(fixed, _LAB_BASE_SHIFT - 8 - 1),
        _TRILINEAR_BASE - 1)
    cell_b, cell_g, cell_r = tf.unstack(cells, axis=-1)
    frac_b, frac_g, frac_r = tf.unstack(fractions, axis=-1)
    last = _LAB_LUT_DIM - 1
    total = None
    for step_b in (0, 1):
      index_b = tf.minimum(cell_b + step_b, last)
      weight_b = frac_b if step_b else _TRILINEAR_BASE - frac_b
      for step_g in (0, 1):
        index_g = tf.minimum(cell_g + step_g, last)
        weight_g = frac_g if step_g else _TRILINEAR_BASE - frac_g
        for step_r in (0, 1):
          index_r = tf.minimum(cell_r + step_r, last)
          weight_r = frac_r if step_r else _TRILINEAR_BASE - frac_r
          rows = (index_b * _LAB_LUT_DIM + index_g) * _LAB_LUT_DIM + index_r
          term = tf.gather(table, rows) * tf.expand_dims(
              weight_b * weight_g * weight_r, -1)
          total = term if total is None else total + term
    shift = 3 * _TRILINEAR_SHIFT
    fixed_lab = tf.bitwise.right_shift(total + (1 << (shift - 1)), shift)
    fixed_l, fixed_a, fixed_b = tf.unstack(
        tf.cast(fixed_lab, tf.float32), axis=-1)
    return tf.stack([fixed_l * (100.0 / _LAB_BASE),
                     fixed_a * (256.0 / _LAB_BASE) - 128.0,
                     fixed_b * (256.0 / _LAB_BASE) - 128.0], axis=-1)


def bgr_to_scaled_lab(observations):
  """The colour network input: `(L / 100, a / 127, b / 127)`.

  Channels after the first three (e.g. the 0/1 mask of saliency-driven
  editing) pass through unchanged.

  Args:
    observations: float32 `[..., C]`, `C >= 3`, BGR first.

  Returns:
    float32 `[..., C]`.
  """
  observations = tf.convert_to_tensor(observations, dtype=tf.float32)
  lab = bgr_to_lab(observations[..., :3]) / tf.constant(LAB_INPUT_SCALE)
  return tf.concat([lab, observations[..., 3:]], axis=-1)


# ---------------------------------------------------------------------------
# Actions (all map float32 [B, H, W, 3] BGR to the same shape).


def contrast(images, factor):
  """Contrast about mid grey: `factor * v + 0.5 * (1 - factor)`."""
  images = _as_images(images)
  return images * factor + 0.5 * (1.0 - factor)


def saturation(images, factor):
  """Scales the HSV saturation: BGR -> HSV, `S <- factor S`, -> BGR."""
  hsv = bgr_to_hsv(images)
  hue, sat, value = tf.unstack(hsv, axis=-1)
  return hsv_to_bgr(tf.stack([hue, sat * factor, value], axis=-1))


def brightness(images, factor):
  """Multiplicative brightness `factor * v` (= HSV `V <- factor V`)."""
  return _as_images(images) * factor


def scale_channels(images, channels, factor):
  """Multiplies the BGR channels `channels` (indices) by `factor`."""
  images = _as_images(images)
  scale = np.ones(3, np.float32)
  scale[list(channels)] = factor
  return images * tf.constant(scale)


def reference_saturation(images, factor):
  """The released code's saturation action, reproduced exactly.

  It converts each `[H, W, 3]` image to HSV, multiplies `hsv[1]` -- image
  ROW 1, all of H, S and V -- by `factor` and converts back. Every other row
  only makes the float HSV round trip (~1e-7 change).

  Args:
    images: float32 `[B, H, W, 3]` BGR.
    factor: 0.95 or 1.05.

  Returns:
    float32 `[B, H, W, 3]`.
  """
  hsv = bgr_to_hsv(images)
  rows = tf.range(tf.shape(hsv)[1])
  is_row_one = tf.reshape(tf.equal(rows, 1), [1, -1, 1, 1])
  hsv = tf.where(is_row_one, hsv * factor, hsv)
  return hsv_to_bgr(hsv)


def reference_brightness(images, step):
  """The released code's brightness action: `v + step` (+-0.025)."""
  return _as_images(images) + step

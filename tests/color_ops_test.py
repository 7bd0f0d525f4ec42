"""Tests for pixelrl_tf.filters.color_ops and the colour action sets.

OpenCV's float32 `cv2.cvtColor` is the oracle of the conversions; every
colour action is checked against a numpy / OpenCV implementation of its
formula (the paper's, or the released code's).
"""

import cv2
import gin
import numpy as np
import pytest
import tensorflow as tf

from conftest import shared_data_path
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.filters import color_ops

_HUE_TOLERANCE = 1e-4  # degrees
_TOLERANCE = 1e-5


def _random_images(seed, shape=(2, 17, 23, 3), low=0.0, high=1.0):
  rng = np.random.default_rng(seed)
  return rng.uniform(low, high, shape).astype(np.float32)


def _per_image(fn, images):
  return np.stack([fn(np.ascontiguousarray(image)) for image in images])


def _fpop_images(count=2, size=96):
  folder = shared_data_path('fpop', 'train', 'input')
  paths = sorted(folder.glob('*.png'))[:count]
  images = [cv2.imread(str(p), cv2.IMREAD_COLOR)[:size, :size] for p in paths]
  return np.stack(images).astype(np.float32) / 255.0


def _cv2_bgr2hsv(image):
  return cv2.cvtColor(image, cv2.COLOR_BGR2HSV)


def _cv2_hsv2bgr(image):
  return cv2.cvtColor(image, cv2.COLOR_HSV2BGR)


def _cv2_bgr2lab(image):
  return cv2.cvtColor(image, cv2.COLOR_BGR2Lab)


def _assert_hsv_close(actual, expected):
  np.testing.assert_allclose(actual[..., 0], expected[..., 0],
                             atol=_HUE_TOLERANCE)
  np.testing.assert_allclose(actual[..., 1:], expected[..., 1:],
                             atol=_TOLERANCE)


# ---------------------------------------------------------------------------
# Conversions.


@pytest.mark.parametrize('low,high', [(0.0, 1.0), (-0.3, 1.3)])
def test_bgr_to_hsv_matches_opencv(low, high):
  images = _random_images(0, low=low, high=high)
  _assert_hsv_close(color_ops.bgr_to_hsv(images).numpy(),
                    _per_image(_cv2_bgr2hsv, images))


def test_bgr_to_hsv_of_greys_and_primaries():
  colours = np.array([[[0, 0, 0], [0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0],
                       [0, 0, 1], [0.2, 0.7, 0.7]]], np.float32)[None]
  _assert_hsv_close(color_ops.bgr_to_hsv(colours).numpy(),
                    _per_image(_cv2_bgr2hsv, colours))


def test_hsv_to_bgr_matches_opencv():
  rng = np.random.default_rng(1)
  hsv = np.stack([rng.uniform(0, 378, (2, 17, 23)),  # > 360 wraps.
                  rng.uniform(0, 1.05, (2, 17, 23)),
                  rng.uniform(-0.1, 1.1, (2, 17, 23))], axis=-1)
  hsv = hsv.astype(np.float32)
  np.testing.assert_allclose(color_ops.hsv_to_bgr(hsv).numpy(),
                             _per_image(_cv2_hsv2bgr, hsv), atol=_TOLERANCE)


@pytest.mark.parametrize('low,high', [(0.0, 1.0), (-0.3, 1.3)])
def test_bgr_to_lab_matches_opencv(low, high):
  images = _random_images(2, low=low, high=high)
  np.testing.assert_allclose(color_ops.bgr_to_lab(images).numpy(),
                             _per_image(_cv2_bgr2lab, images), atol=1e-4)


def test_bgr_to_lab_of_8bit_values_and_table_points():
  eight_bit = np.arange(256, dtype=np.float32) / 255.0
  grid = np.arange(33, dtype=np.float32) / 32.0
  for values in (eight_bit, grid):
    rng = np.random.default_rng(3)
    images = rng.choice(values, size=(1, 31, 29, 3)).astype(np.float32)
    np.testing.assert_allclose(color_ops.bgr_to_lab(images).numpy(),
                               _per_image(_cv2_bgr2lab, images), atol=1e-4)


def test_bgr_to_lab_white_and_black_are_exact():
  lab = color_ops.bgr_to_lab(np.array([[[[1, 1, 1], [0, 0, 0]]]],
                                      np.float32)).numpy()[0, 0]
  np.testing.assert_allclose(lab, [[100, 0, 0], [0, 0, 0]], atol=1e-4)


def test_conversions_match_opencv_on_real_photographs():
  images = _fpop_images()
  _assert_hsv_close(color_ops.bgr_to_hsv(images).numpy(),
                    _per_image(_cv2_bgr2hsv, images))
  np.testing.assert_allclose(color_ops.bgr_to_lab(images).numpy(),
                             _per_image(_cv2_bgr2lab, images), atol=1e-4)


def test_bgr_to_scaled_lab_scales_and_passes_extra_channels():
  images = _random_images(4)
  mask = (np.arange(17 * 23).reshape(1, 17, 23, 1) % 2).astype(np.float32)
  observations = np.concatenate([images, np.repeat(mask, 2, 0)], axis=-1)
  scaled = color_ops.bgr_to_scaled_lab(observations).numpy()
  lab = _per_image(_cv2_bgr2lab, images)
  np.testing.assert_allclose(scaled[..., :3], lab / [100.0, 127.0, 127.0],
                             atol=1e-6)
  np.testing.assert_array_equal(scaled[..., 3:], observations[..., 3:])
  assert color_ops.bgr_to_scaled_lab(images).shape == images.shape


def test_conversions_reject_non_colour_images():
  with pytest.raises(ValueError, match='3 BGR channels'):
    color_ops.bgr_to_lab(np.zeros((1, 4, 4, 1), np.float32))


def test_conversions_trace_with_unknown_sizes():
  fn = tf.function(color_ops.bgr_to_lab, input_signature=[
      tf.TensorSpec([None, None, None, 3], tf.float32)])
  images = _random_images(5, shape=(1, 5, 7, 3))
  np.testing.assert_allclose(fn(images).numpy(),
                             _per_image(_cv2_bgr2lab, images), atol=1e-4)


# ---------------------------------------------------------------------------
# Actions: numpy / OpenCV versions of each formula.


def _np_saturation(image, factor):
  hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
  hsv[..., 1] *= np.float32(factor)
  return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def _np_reference_saturation(image, factor):
  hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
  hsv[1] *= np.float32(factor)  # The released code's row-1 scaling.
  return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def _np_channels(image, channels, factor):
  image = image.copy()
  image[..., channels] *= np.float32(factor)
  return image


_PAPER = {
    'do_nothing': lambda x: x,
    'contrast_x0.95': lambda x: x * np.float32(0.95) + np.float32(0.025),
    'contrast_x1.05': lambda x: x * np.float32(1.05) - np.float32(0.025),
    'saturation_x0.95': lambda x: _np_saturation(x, 0.95),
    'saturation_x1.05': lambda x: _np_saturation(x, 1.05),
    'brightness_x0.95': lambda x: x * np.float32(0.95),
    'brightness_x1.05': lambda x: x * np.float32(1.05),
    'red_green_x0.95': lambda x: _np_channels(x, [1, 2], 0.95),
    'red_green_x1.05': lambda x: _np_channels(x, [1, 2], 1.05),
    'green_blue_x0.95': lambda x: _np_channels(x, [0, 1], 0.95),
    'green_blue_x1.05': lambda x: _np_channels(x, [0, 1], 1.05),
    'red_blue_x0.95': lambda x: _np_channels(x, [0, 2], 0.95),
    'red_blue_x1.05': lambda x: _np_channels(x, [0, 2], 1.05),
}

_REFERENCE = dict(_PAPER)
for _name in ('saturation', 'brightness'):
  for _suffix in ('x0.95', 'x1.05'):
    del _REFERENCE[f'{_name}_{_suffix}']
_REFERENCE.update({
    'saturation_row1_x0.95': lambda x: _np_reference_saturation(x, 0.95),
    'saturation_row1_x1.05': lambda x: _np_reference_saturation(x, 1.05),
    'brightness_-0.025': lambda x: x - np.float32(0.025),
    'brightness_+0.025': lambda x: x + np.float32(0.025),
})


@pytest.mark.parametrize('set_name,formulas', [
    ('color', _PAPER), ('color_reference', _REFERENCE)])
def test_each_action_matches_its_formula(set_name, formulas):
  action_set = action_set_lib.get_action_set(set_name)
  assert set(action_set.names) == set(formulas)
  # Unclipped states: values outside [0, 1] occur inside episodes.
  images = _random_images(6, low=-0.1, high=1.1)
  for action in action_set:
    expected = _per_image(formulas[action.name], images)
    np.testing.assert_allclose(action.fn(tf.constant(images)).numpy(),
                               expected, atol=_TOLERANCE,
                               err_msg=action.name)


def test_actions_match_their_formulas_on_real_photographs():
  images = _fpop_images(count=1)
  for set_name, formulas in (('color', _PAPER),
                             ('color_reference', _REFERENCE)):
    for action in action_set_lib.get_action_set(set_name):
      np.testing.assert_allclose(
          action.fn(tf.constant(images)).numpy(),
          _per_image(formulas[action.name], images), atol=_TOLERANCE,
          err_msg=f'{set_name} {action.name}')


def test_reference_saturation_changes_only_row_one():
  images = _random_images(7, low=0.1, high=0.9)
  changed = color_ops.reference_saturation(images, 1.05).numpy()
  difference = np.abs(changed - images).max(axis=(0, 2, 3))
  assert difference[1] > 1e-2
  assert np.delete(difference, 1).max() < 1e-5


def test_paper_saturation_keeps_value_and_hue():
  images = _random_images(8, low=0.05, high=0.95)
  for factor in (0.95, 1.05):
    before = color_ops.bgr_to_hsv(images).numpy()
    after = color_ops.bgr_to_hsv(
        color_ops.saturation(images, factor)).numpy()
    np.testing.assert_allclose(after[..., 2], before[..., 2], atol=1e-6)
    np.testing.assert_allclose(after[..., 1], before[..., 1] * factor,
                               atol=1e-5)
    np.testing.assert_allclose(after[..., 0], before[..., 0], atol=1e-3)


def test_contrast_is_about_mid_grey():
  grey = np.full((1, 2, 2, 3), 0.5, np.float32)
  for factor in (0.95, 1.05):
    np.testing.assert_allclose(color_ops.contrast(grey, factor).numpy(),
                               grey, atol=1e-7)


# ---------------------------------------------------------------------------
# Action sets.


@pytest.mark.parametrize('name', ['color', 'color_reference'])
def test_colour_action_sets_are_registered(name):
  action_set = action_set_lib.get_action_set(name)
  assert action_set.num_actions == 13
  assert action_set.names[0] == 'do_nothing'
  colors = [tuple(c) for c in action_set.colors]
  assert len(set(colors)) == 13
  assert action_set_lib.action_names(name) == action_set.names


def test_colour_action_sets_share_indices_and_colours():
  paper = action_set_lib.get_action_set('color')
  reference = action_set_lib.get_action_set('color_reference')
  np.testing.assert_array_equal(paper.colors, reference.colors)
  for index in (0, 1, 2, 7, 8, 9, 10, 11, 12):
    assert paper.names[index] == reference.names[index]


def test_action_map_applies_each_pixels_action():
  action_set = action_set_lib.get_action_set('color')
  images = _random_images(9, shape=(1, 4, 13, 3))
  actions = np.arange(13, dtype=np.int32)[None, None].repeat(4, axis=1)
  result = action_set.apply(images, actions).numpy()
  for index, action in enumerate(action_set):
    np.testing.assert_allclose(
        result[:, :, index], action.fn(tf.constant(images)).numpy()[:, :,
                                                                      index],
        atol=1e-6)


def test_gin_switch_picks_the_action_set():
  assert action_set_lib.color_action_set() == 'color'
  gin.parse_config('color_action_set.reference_code_actions = True')
  assert action_set_lib.color_action_set() == 'color_reference'

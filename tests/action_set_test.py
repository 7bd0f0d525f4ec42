"""Tests for pixelrl_tf.filters.action_set, with OpenCV as the oracle."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from conftest import shared_data_path
from pixelrl_tf.filters import action_set
from pixelrl_tf.filters import image_ops

_TOLERANCE = 1e-5
_DENOISE = action_set.DENOISE_ACTIONS

# The reference State.step on one [H, W] float32 plane, in its index order.
_OPENCV_DENOISE_ACTIONS = {
    'subtract_one': lambda plane: plane - np.float32(1 / 255),
    'do_nothing': lambda plane: plane,
    'add_one': lambda plane: plane + np.float32(1 / 255),
    'gaussian_0.5': lambda plane: cv2.GaussianBlur(plane, (5, 5), 0.5),
    'bilateral_0.1': lambda plane: cv2.bilateralFilter(plane, 5, 0.1, 5),
    'median_5': lambda plane: cv2.medianBlur(plane, 5),
    'gaussian_1.5': lambda plane: cv2.GaussianBlur(plane, (5, 5), 1.5),
    'bilateral_1.0': lambda plane: cv2.bilateralFilter(plane, 5, 1.0, 5),
    'box_5': lambda plane: cv2.boxFilter(plane, -1, (5, 5)),
}


def _opencv_action_map(images, actions, names=_DENOISE.names):
  """Per-pixel numpy selection among OpenCV results.

  Args:
    images: float32 [B, H, W, C].
    actions: int [B, H, W], indices into `names`.
    names: action names, in index order.

  Returns:
    float32 [B, H, W, C].
  """
  filtered = np.stack([
      np.stack([
          np.stack([
              _OPENCV_DENOISE_ACTIONS[name](
                  np.ascontiguousarray(image[:, :, channel]))
              for channel in range(image.shape[-1])
          ], axis=-1) for image in images
      ]) for name in names
  ])  # [A, B, H, W, C]
  selected = np.take_along_axis(filtered, actions[None, ..., None], axis=0)
  return selected[0]


def _random_images(shape, seed=0):
  # Values outside [0, 1] must pass through unclipped.
  return np.random.default_rng(seed).uniform(-0.2, 1.2,
                                             shape).astype(np.float32)


def _hand_made_action_maps(height, width):
  """[4, H, W] maps: diagonal stripes, quadrants, rows and a single pixel."""
  rows, cols = np.mgrid[:height, :width]
  stripes = (rows + cols) % 9
  quadrants = (rows >= height // 2) * 2 + (cols >= width // 2) * 5
  row_bands = (rows * 9) // height
  single_pixel = np.full([height, width], 1)
  single_pixel[height // 3, width // 2] = 5
  return np.stack([stripes, quadrants, row_bands, single_pixel]).astype(
      np.int32)


def test_denoise_actions_follow_reference_order():
  assert _DENOISE.names == ('subtract_one', 'do_nothing', 'add_one',
                            'gaussian_0.5', 'bilateral_0.1', 'median_5',
                            'gaussian_1.5', 'bilateral_1.0', 'box_5')
  assert _DENOISE.num_actions == 9
  assert len(_DENOISE) == 9
  for index, name in enumerate(_DENOISE.names):
    assert _DENOISE.index(name) == index
    assert _DENOISE[index].name == name


def test_index_of_unknown_name_raises():
  with pytest.raises(KeyError):
    _DENOISE.index('guided_filter')


def test_colors_are_distinct_rgb_bytes():
  colors = _DENOISE.colors
  assert colors.shape == (9, 3)
  assert colors.dtype == np.uint8
  assert len({tuple(color) for color in colors}) == 9


@pytest.mark.parametrize('name', _DENOISE.names)
def test_each_action_matches_opencv(name):
  images = _random_images((2, 9, 13, 1))
  actions = np.full([2, 9, 13], _DENOISE.index(name), np.int32)
  applied = action_set.apply_action_map(images, actions).numpy()
  expected = _opencv_action_map(images, actions)
  assert np.abs(applied - expected).max() <= _TOLERANCE


@pytest.mark.parametrize('shape', [(4, 20, 31, 1), (4, 31, 20, 3),
                                   (4, 2, 7, 1), (4, 1, 1, 2)], ids=str)
def test_hand_made_maps_match_per_pixel_selection(shape):
  images = _random_images(shape)
  actions = _hand_made_action_maps(*shape[1:3])
  applied = action_set.apply_action_map(images, actions).numpy()
  expected = _opencv_action_map(images, actions)
  assert np.abs(applied - expected).max() <= _TOLERANCE


def test_random_maps_on_photo_crops_match_per_pixel_selection():
  folder = shared_data_path('BSD432_gray_train')
  rng = np.random.default_rng(3)
  crops = []
  for path in sorted(folder.glob('*.jpg'))[:4]:
    photo = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) / 255
    noisy = photo + rng.normal(0, 50 / 255, photo.shape)
    crops += [noisy[:70, :70], noisy[-70:, -70:]]
  images = np.stack(crops).astype(np.float32)[..., None]
  actions = rng.integers(0, 9, images.shape[:3]).astype(np.int32)
  applied = action_set.apply_action_map(images, actions).numpy()
  expected = _opencv_action_map(images, actions)
  assert np.abs(applied - expected).max() <= _TOLERANCE


def test_values_outside_unit_range_are_not_clipped():
  images = np.array([[-0.2, 1.2]], np.float32).reshape(1, 1, 2, 1)
  lowered = action_set.apply_action_map(images, np.zeros([1, 1, 2], np.int32))
  raised = action_set.apply_action_map(images, np.full([1, 1, 2], 2, np.int32))
  np.testing.assert_array_equal(lowered.numpy(),
                                images - np.float32(1 / 255))
  np.testing.assert_array_equal(raised.numpy(), images + np.float32(1 / 255))


def test_accepts_int64_actions():
  images = _random_images((2, 6, 5, 1))
  actions = _hand_made_action_maps(6, 5)[:2]
  np.testing.assert_array_equal(
      action_set.apply_action_map(images, actions.astype(np.int64)).numpy(),
      action_set.apply_action_map(images, actions).numpy())


def test_out_of_range_actions_take_action_zero():
  images = _random_images((1, 4, 4, 1))
  applied = action_set.apply_action_map(images, np.full([1, 4, 4], 9))
  np.testing.assert_array_equal(
      applied.numpy(), image_ops.shift(images, -1 / 255).numpy())


def test_subset_keeps_given_order_and_reindexes():
  subset = _DENOISE.subset(['box_5', 'do_nothing', 'median_5'])
  assert subset.names == ('box_5', 'do_nothing', 'median_5')
  assert subset.num_actions == 3
  np.testing.assert_array_equal(
      subset.colors, _DENOISE.colors[[8, 1, 5]])
  images = _random_images((2, 12, 10, 1))
  actions = _hand_made_action_maps(12, 10)[:2] % 3
  expected = _opencv_action_map(images, actions, subset.names)
  applied = action_set.apply_action_map(images, actions, subset).numpy()
  assert np.abs(applied - expected).max() <= _TOLERANCE


@pytest.mark.parametrize('names, error', [
    ([], ValueError),
    (['box_5', 'box_5'], ValueError),
    (['box_5', 'guided_filter'], KeyError),
])
def test_subset_rejects_bad_names(names, error):
  with pytest.raises(error):
    _DENOISE.subset(names)


@pytest.mark.parametrize('color', [(0, 0), (0, 0, 256), (0, 0, -1),
                                   (0.5, 0, 0)])
def test_rejects_bad_colors(color):
  with pytest.raises(ValueError):
    action_set.ActionSet([action_set.Action('identity', tf.identity, color)])


def test_new_action_tables_need_no_class_change():
  # Shaped like the colour-enhancement table: point operations per channel.
  contrast_up = action_set.Action('contrast_up',
                                  lambda images: images * 1.05 - 0.025,
                                  (200, 0, 0))
  red_green_down = action_set.Action(
      'red_green_down', lambda images: images * [0.95, 0.95, 1.0], (0, 200, 0))
  table = action_set.ActionSet(
      [action_set.Action('do_nothing', tf.identity, (0, 0, 0)),
       contrast_up, red_green_down])
  images = _random_images((1, 1, 3, 3))
  actions = np.array([[[0, 1, 2]]], np.int32)
  applied = table.apply(images, actions).numpy()
  np.testing.assert_allclose(applied[0, 0, 0], images[0, 0, 0])
  np.testing.assert_allclose(applied[0, 0, 1], images[0, 0, 1] * 1.05 - 0.025,
                             rtol=1e-6)
  np.testing.assert_allclose(applied[0, 0, 2],
                             images[0, 0, 2] * [0.95, 0.95, 1.0], rtol=1e-6)


class _Stepper(tf.Module):

  @tf.function(input_signature=[
      tf.TensorSpec([None, None, None, None], tf.float32),
      tf.TensorSpec([None, None, None], tf.int32)
  ])
  def step(self, images, actions):
    return action_set.apply_action_map(images, actions)


def test_saved_model_round_trip_with_unknown_shape(tmp_path):
  tf.saved_model.save(_Stepper(), str(tmp_path))
  restored = tf.saved_model.load(str(tmp_path))
  for seed, shape in enumerate([(2, 9, 13, 1), (1, 2, 7, 3)]):
    images = _random_images(shape, seed)
    actions = _hand_made_action_maps(*shape[1:3])[:shape[0]]
    applied = restored.step(tf.constant(images), tf.constant(actions)).numpy()
    expected = _opencv_action_map(images, actions)
    assert np.abs(applied - expected).max() <= _TOLERANCE

"""Tests for pixelrl_tf.filters.image_ops, with OpenCV as the oracle."""

import itertools

import cv2
import numpy as np
import pytest
import tensorflow as tf

from conftest import shared_data_path
from pixelrl_tf.filters import image_ops

_TOLERANCE = 1e-5

# name -> (TF filter on [B, H, W, C], OpenCV filter on one [H, W] float32 plane)
_FILTERS = {
    'box_5': (image_ops.box_filter,
              lambda plane: cv2.boxFilter(plane, -1, (5, 5))),
    'box_3': (lambda images: image_ops.box_filter(images, size=3),
              lambda plane: cv2.boxFilter(plane, -1, (3, 3))),
    'gaussian_0.5': (lambda images: image_ops.gaussian_filter(images, 0.5),
                     lambda plane: cv2.GaussianBlur(plane, (5, 5), 0.5)),
    'gaussian_1.5': (lambda images: image_ops.gaussian_filter(images, 1.5),
                     lambda plane: cv2.GaussianBlur(plane, (5, 5), 1.5)),
    'gaussian_2.0_size_7': (
        lambda images: image_ops.gaussian_filter(images, 2.0, size=7),
        lambda plane: cv2.GaussianBlur(plane, (7, 7), 2.0)),
    'median_5': (image_ops.median_filter,
                 lambda plane: cv2.medianBlur(plane, 5)),
    'median_3': (lambda images: image_ops.median_filter(images, size=3),
                 lambda plane: cv2.medianBlur(plane, 3)),
    'bilateral_0.1': (
        lambda images: image_ops.bilateral_filter(images, 0.1),
        lambda plane: cv2.bilateralFilter(plane, 5, 0.1, 5)),
    'bilateral_1.0': (
        lambda images: image_ops.bilateral_filter(images, 1.0),
        lambda plane: cv2.bilateralFilter(plane, 5, 1.0, 5)),
    'bilateral_d9_0.3_3': (
        lambda images: image_ops.bilateral_filter(images, 0.3, 3.0, 9),
        lambda plane: cv2.bilateralFilter(plane, 9, 0.3, 3)),
    'bilateral_d0_0.3_2': (
        lambda images: image_ops.bilateral_filter(images, 0.3, 2.0, 0),
        lambda plane: cv2.bilateralFilter(plane, 0, 0.3, 2)),
    'shift_down': (lambda images: image_ops.shift(images, -1 / 255),
                   lambda plane: plane - np.float32(1 / 255)),
}

# Tiny sizes exercise borders wider than the image; 3 channels and batch > 1
# check that channels and images are filtered independently.
_RANDOM_SHAPES = [
    (1, 1, 1, 1), (1, 2, 7, 1), (1, 7, 2, 1), (2, 2, 2, 1), (1, 1, 9, 1),
    (1, 9, 1, 1), (3, 5, 9, 1), (2, 13, 11, 3), (1, 3, 4, 2)
]


def _opencv_per_channel(opencv_fn, images):
  """Applies an OpenCV filter to every [H, W] plane of `images` [B,H,W,C]."""
  return np.stack([
      np.stack([
          opencv_fn(np.ascontiguousarray(image[:, :, channel]))
          for channel in range(image.shape[-1])
      ], axis=-1) for image in images
  ])


def _random_images(shape, seed=0):
  # Values outside [0, 1] must pass through every filter unclipped.
  rng = np.random.default_rng(seed)
  return rng.uniform(-0.2, 1.2, shape).astype(np.float32)


def _max_error(filter_name, images, tf_fn=None):
  tf_filter, opencv_filter = _FILTERS[filter_name]
  tf_fn = tf_fn or tf_filter
  filtered = tf_fn(tf.constant(images)).numpy()
  expected = _opencv_per_channel(opencv_filter, images)
  assert filtered.shape == expected.shape
  return np.abs(filtered - expected).max()


@pytest.fixture(scope='module')
def noisy_photos():
  """One landscape (321x481) and one portrait (481x321) noisy photo."""
  folder = shared_data_path('BSD432_gray_train')
  rng = np.random.default_rng(25)
  photos = {}
  for path in sorted(folder.glob('*.jpg')):
    clean = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    orientation = 'landscape' if clean.shape[1] > clean.shape[0] else 'portrait'
    if orientation not in photos:
      noisy = clean / 255 + rng.normal(0, 25 / 255, clean.shape)
      photos[orientation] = noisy.astype(np.float32)[None, :, :, None]
    if len(photos) == 2:
      return photos
  pytest.skip('BSD432_gray_train needs a landscape and a portrait photo')


@pytest.mark.parametrize('filter_name', sorted(_FILTERS))
@pytest.mark.parametrize('orientation', ['landscape', 'portrait'])
def test_matches_opencv_on_photo(noisy_photos, filter_name, orientation):
  assert _max_error(filter_name, noisy_photos[orientation]) <= _TOLERANCE


@pytest.mark.parametrize('filter_name', sorted(_FILTERS))
def test_matches_opencv_on_batch_of_photo_crops(noisy_photos, filter_name):
  crops = np.concatenate([
      photo[:, top:top + 70, left:left + 70]
      for photo in noisy_photos.values()
      for top, left in [(0, 0), (100, 37), (251, 251), (250, 3)]
  ])
  assert _max_error(filter_name, crops) <= _TOLERANCE


@pytest.mark.parametrize('filter_name', sorted(_FILTERS))
@pytest.mark.parametrize('shape', _RANDOM_SHAPES, ids=str)
def test_matches_opencv_on_random_images(filter_name, shape):
  assert _max_error(filter_name, _random_images(shape)) <= _TOLERANCE


@pytest.mark.parametrize('filter_name', sorted(_FILTERS))
def test_traces_with_unknown_shape(filter_name):
  tf_filter, _ = _FILTERS[filter_name]
  traced = tf.function(
      tf_filter,
      input_signature=[tf.TensorSpec([None, None, None, None], tf.float32)])
  for seed, shape in enumerate([(1, 7, 2, 1), (2, 13, 11, 3), (3, 20, 31, 1)]):
    images = _random_images(shape, seed)
    assert _max_error(filter_name, images, traced) <= _TOLERANCE


@pytest.mark.parametrize('filter_name', sorted(_FILTERS))
def test_keeps_static_shape_when_traced(filter_name):
  tf_filter, _ = _FILTERS[filter_name]
  spec = tf.TensorSpec([4, 70, 70, 1], tf.float32)
  traced = tf.function(tf_filter).get_concrete_function(spec)
  assert traced.structured_outputs.shape.as_list() == [4, 70, 70, 1]


@pytest.mark.parametrize(
    'pad_fn, border',
    [(image_ops.pad_reflect_101, cv2.BORDER_REFLECT_101),
     (image_ops.pad_replicate, cv2.BORDER_REPLICATE)],
    ids=['reflect_101', 'replicate'])
@pytest.mark.parametrize('height, width',
                         [(1, 1), (1, 2), (2, 3), (3, 1), (4, 6), (5, 5)])
def test_pad_equals_copy_make_border(pad_fn, border, height, width):
  images = _random_images((2, height, width, 2))
  for pad in range(7):
    padded = pad_fn(tf.constant(images), pad).numpy()
    expected = _opencv_per_channel(
        lambda plane: cv2.copyMakeBorder(  # pylint: disable=cell-var-from-loop
            plane, pad, pad, pad, pad, border), images)
    np.testing.assert_array_equal(padded, expected)


def test_pad_rejects_negative_pad():
  with pytest.raises(ValueError):
    image_ops.pad_reflect_101(tf.zeros([1, 3, 3, 1]), -1)


@pytest.mark.parametrize('sigma, size',
                         itertools.product([0.3, 0.5, 1.5, 4.0], [1, 3, 5, 7]))
def test_gaussian_kernel_equals_opencv(sigma, size):
  np.testing.assert_allclose(
      image_ops.gaussian_kernel_1d(sigma, size),
      cv2.getGaussianKernel(size, sigma)[:, 0], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize('size', [3, 5])
def test_median_network_selects_median_of_every_binary_input(size):
  # A comparator network selects the k-th value of all inputs if it does so
  # for every 0/1 input (Knuth's 0-1 principle), so this check is a proof.
  num_values = size * size
  # pylint: disable-next=protected-access
  comparisons = image_ops._live_comparisons(size)
  chunk_bits = min(num_values, 20)
  for chunk in range(2**(num_values - chunk_bits)):
    inputs = np.arange(2**chunk_bits, dtype=np.int64) + (chunk << chunk_bits)
    values = [((inputs >> bit) & 1).astype(bool) for bit in range(num_values)]
    ones = np.sum(values, axis=0)
    for low, high, keep_min, keep_max in comparisons:
      smaller = values[low] & values[high] if keep_min else None
      larger = values[low] | values[high] if keep_max else None
      values[low], values[high] = smaller, larger
    np.testing.assert_array_equal(values[num_values // 2],
                                  ones > num_values // 2)


def test_shift_adds_without_clipping():
  images = np.array([-0.2, 0.0, 0.5, 1.0, 1.2], np.float32).reshape(1, 1, 5, 1)
  np.testing.assert_array_equal(
      image_ops.shift(tf.constant(images), 1 / 255).numpy(),
      images + np.float32(1 / 255))
  np.testing.assert_array_equal(
      image_ops.shift(tf.constant(images), -1 / 255).numpy(),
      images - np.float32(1 / 255))


@pytest.mark.parametrize('make_filter', [
    lambda: image_ops.box_filter(tf.zeros([1, 4, 4, 1]), size=4),
    lambda: image_ops.gaussian_filter(tf.zeros([1, 4, 4, 1]), 1.0, size=6),
    lambda: image_ops.gaussian_filter(tf.zeros([1, 4, 4, 1]), 0.0),
    lambda: image_ops.median_filter(tf.zeros([1, 4, 4, 1]), size=7),
    lambda: image_ops.bilateral_filter(tf.zeros([1, 4, 4, 1]), 0.0),
    lambda: image_ops.bilateral_filter(tf.zeros([1, 4, 4, 1]), 0.1, 0.0),
])
def test_rejects_invalid_arguments(make_filter):
  with pytest.raises(ValueError):
    make_filter()

"""Tests of pixelrl_tf.data.noise."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from pixelrl_tf.data import noise

SEED = tf.constant([7, 11], tf.int32)
OTHER_SEED = tf.constant([7, 12], tf.int32)


def _constant_images(value, shape=(4, 64, 64, 1)):
  return tf.fill(shape, tf.constant(value, tf.float32))


def test_gaussian_noise_statistics():
  images = _constant_images(0.5)
  noisy = noise.add_gaussian_noise(images, 25.0, SEED).numpy()
  residual = noisy - 0.5
  assert noisy.dtype == np.float32
  assert noisy.shape == (4, 64, 64, 1)
  assert abs(residual.mean()) < 0.003
  assert residual.std() == pytest.approx(25.0 / 255.0, rel=0.03)


def test_gaussian_noise_is_not_clipped_by_default():
  images = _constant_images(0.98)
  noisy = noise.add_gaussian_noise(images, 50.0, SEED).numpy()
  assert noisy.max() > 1.0
  clipped = noise.add_gaussian_noise(images, 50.0, SEED, clip=True).numpy()
  assert clipped.max() == 1.0
  assert clipped.min() >= 0.0
  np.testing.assert_array_equal(clipped, np.clip(noisy, 0.0, 1.0))


def test_poisson_noise_statistics():
  peak = 30.0
  for value in (0.2, 0.7):
    images = _constant_images(value, (8, 64, 64, 1))
    noisy = noise.add_poisson_noise(images, peak, SEED).numpy()
    assert noisy.mean() == pytest.approx(value, rel=0.02)
    assert noisy.var() == pytest.approx(value / peak, rel=0.05)
    counts = noisy * peak
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-4)


def test_poisson_noise_clip_option():
  images = _constant_images(0.95)
  noisy = noise.add_poisson_noise(images, 10.0, SEED).numpy()
  assert noisy.max() > 1.0
  clipped = noise.add_poisson_noise(images, 10.0, SEED, clip=True).numpy()
  assert clipped.max() == 1.0


def test_poisson_noise_of_negative_values_is_zero():
  images = _constant_images(-0.1, (1, 8, 8, 1))
  noisy = noise.add_poisson_noise(images, 30.0, SEED).numpy()
  np.testing.assert_array_equal(noisy, 0.0)


def test_salt_pepper_fraction_and_values():
  density = 0.3
  images = _constant_images(0.5, (4, 64, 64, 1))
  noisy = noise.add_salt_pepper_noise(images, density, SEED).numpy()
  corrupted = noisy != 0.5
  assert corrupted.mean() == pytest.approx(density, abs=0.015)
  assert set(np.unique(noisy[corrupted])) == {0.0, 1.0}
  assert (noisy == 0.0).mean() == pytest.approx(density / 2, abs=0.01)
  assert (noisy == 1.0).mean() == pytest.approx(density / 2, abs=0.01)


def test_salt_pepper_corrupts_whole_colour_pixels():
  images = _constant_images(0.5, (2, 32, 32, 3))
  noisy = noise.add_salt_pepper_noise(images, 0.5, SEED).numpy()
  corrupted = noisy != 0.5
  assert (corrupted.all(axis=-1) == corrupted.any(axis=-1)).all()
  assert (noisy.min(axis=-1) == noisy.max(axis=-1)).all()


def test_salt_pepper_keeps_unclipped_values_unless_asked():
  images = _constant_images(1.2, (1, 16, 16, 1))
  noisy = noise.add_salt_pepper_noise(images, 0.2, SEED).numpy()
  assert (noisy == np.float32(1.2)).any()
  clipped = noise.add_salt_pepper_noise(images, 0.2, SEED, clip=True).numpy()
  assert clipped.max() == 1.0
  assert set(np.unique(clipped)) <= {0.0, 1.0}


@pytest.mark.parametrize('spec', ['gaussian:25', 'poisson:30',
                                  'salt_pepper:0.5'])
def test_same_seed_same_noise_other_seed_other_noise(spec):
  model = noise.parse_noise(spec)
  images = _constant_images(0.4, (2, 16, 16, 1))
  first = model.apply(images, SEED).numpy()
  again = model.apply(images, SEED).numpy()
  other = model.apply(images, OTHER_SEED).numpy()
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_noise_inside_tf_function_and_dataset():
  model = noise.parse_noise('gaussian:15')
  images = _constant_images(0.5, (2, 8, 8, 1))
  eager = model.apply(images, SEED).numpy()
  graph = tf.function(model.apply)(images, SEED).numpy()
  np.testing.assert_array_equal(eager, graph)
  dataset = tf.data.Dataset.from_tensors(images).map(
      lambda batch: model.apply(batch, tf.constant([7, 11], tf.int64)))
  np.testing.assert_array_equal(next(iter(dataset)).numpy(), eager)


@pytest.mark.parametrize('spec, expected', [
    ('gaussian:25', noise.NoiseModel('gaussian', 25.0)),
    ('poisson:30', noise.NoiseModel('poisson', 30.0)),
    ('salt_pepper:0.5', noise.NoiseModel('salt_pepper', 0.5)),
    ('gaussian:25:clip', noise.NoiseModel('gaussian', 25.0, clip=True)),
    (' Salt-Pepper:0.1 ', noise.NoiseModel('salt_pepper', 0.1)),
    ('sp:0.9', noise.NoiseModel('salt_pepper', 0.9)),
    ('gaussian:12.5', noise.NoiseModel('gaussian', 12.5)),
])
def test_parse_noise(spec, expected):
  assert noise.parse_noise(spec) == expected


@pytest.mark.parametrize('spec', [
    'gaussian:25', 'poisson:30', 'salt_pepper:0.5', 'gaussian:25:clip',
    'gaussian:12.5', 'poisson:0.125:clip'
])
def test_str_round_trips(spec):
  model = noise.parse_noise(spec)
  assert str(model) == spec
  assert noise.parse_noise(str(model)) == model


@pytest.mark.parametrize('spec', [
    '', 'gaussian', 'gaussian:', ':25', 'gaussian:abc', 'speckle:3',
    'gaussian:25:clamp', 'gaussian:25:clip:x', 'gaussian:-1', 'poisson:0',
    'salt_pepper:50', 'salt_pepper:-0.1', 25,
])
def test_parse_noise_errors_are_one_line(spec):
  with pytest.raises(ValueError) as error:
    noise.parse_noise(spec)
  message = str(error.value)
  assert '\n' not in message
  assert message.startswith('bad noise')


def test_noise_model_validates_fields():
  with pytest.raises(ValueError, match='unknown noise kind'):
    noise.NoiseModel('speckle', 1.0)
  with pytest.raises(ValueError, match='density'):
    noise.NoiseModel('salt_pepper', 2.0)


def test_noise_model_is_frozen():
  model = noise.NoiseModel('gaussian', 25)
  assert isinstance(model.level, float)
  with pytest.raises(AttributeError):
    model.level = 15.0


def test_noise_model_is_gin_configurable():
  gin.parse_config("""
      noise_model.kind = 'poisson'
      noise_model.level = 10
      noise_model.clip = True
  """)
  assert noise.noise_model() == noise.NoiseModel('poisson', 10.0, clip=True)
  gin.clear_config()
  gin.parse_config("pixelrl_tf.data.noise_model.level = 50")
  assert noise.noise_model() == noise.NoiseModel('gaussian', 50.0)

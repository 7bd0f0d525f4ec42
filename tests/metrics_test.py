"""Tests of pixelrl_tf.metrics."""

import math

import cv2
import numpy as np
import pytest
from skimage import metrics as skimage_metrics

from pixelrl_tf import metrics


def _random_images(seed, shape, noise_scale=0.1):
  rng = np.random.default_rng(seed)
  clean = rng.random(shape).astype(np.float32)
  noisy = clean + noise_scale * rng.standard_normal(shape).astype(np.float32)
  return clean, noisy


def test_quantize_rounds_half_up_and_clips():
  values = np.array([-0.3, 0.0, 0.5 / 255, 0.49 / 255, 1.0, 1.7], np.float32)
  np.testing.assert_array_equal(
      metrics.quantize_to_uint8(values), [0, 0, 1, 0, 255, 255])


def test_psnr_one_pixel_off_by_one():
  clean = np.zeros((10, 10), np.float32)
  restored = clean.copy()
  restored[3, 4] = 1.0 / 255.0
  # MSE = 1 / 100, so PSNR = 10 * log10(255^2 * 100).
  expected = 10.0 * math.log10(255.0**2 * 100.0)
  assert metrics.psnr(clean, restored) == pytest.approx(expected, abs=1e-9)
  assert expected == pytest.approx(68.1308036, abs=1e-6)


@pytest.mark.parametrize('shape', [(33, 47), (33, 47, 1), (21, 30, 3)])
def test_psnr_matches_cv2_psnr(shape):
  clean, noisy = _random_images(0, shape)
  expected = cv2.PSNR(metrics.quantize_to_uint8(clean),
                      metrics.quantize_to_uint8(noisy))
  assert metrics.psnr(clean, noisy) == pytest.approx(expected, abs=1e-9)


def test_psnr_of_identical_images_is_cv2_finite_value():
  image = np.random.default_rng(1).random((16, 16, 1)).astype(np.float32)
  value = metrics.psnr(image, image)
  assert math.isfinite(value)
  assert value == pytest.approx(metrics.IDENTICAL_PSNR)
  quantized = metrics.quantize_to_uint8(image)
  assert value == pytest.approx(cv2.PSNR(quantized, quantized))


def test_psnr_clips_before_measuring():
  clean = np.full((8, 8), 1.0, np.float32)
  assert metrics.psnr(clean, clean + 0.3) == pytest.approx(
      metrics.IDENTICAL_PSNR)


def test_psnr_shape_mismatch():
  with pytest.raises(ValueError, match='shapes differ'):
    metrics.psnr(np.zeros((4, 4)), np.zeros((4, 5)))


def test_ssim_identical_is_one_and_noise_lowers_it():
  clean, noisy = _random_images(3, (40, 40, 1), noise_scale=0.2)
  assert metrics.ssim(clean, clean) == pytest.approx(1.0)
  assert metrics.ssim(clean, noisy) < 0.9
  colour_clean, colour_noisy = _random_images(4, (40, 40, 3), 0.2)
  assert metrics.ssim(colour_clean, colour_clean) == pytest.approx(1.0)
  assert metrics.ssim(colour_clean, colour_noisy) < 0.9


def test_ssim_uses_gaussian_weights_on_8_bit_values():
  clean, noisy = _random_images(5, (32, 36), noise_scale=0.1)
  expected = skimage_metrics.structural_similarity(
      metrics.quantize_to_uint8(clean),
      metrics.quantize_to_uint8(noisy),
      data_range=255,
      gaussian_weights=True,
      sigma=1.5,
      use_sample_covariance=False)
  assert metrics.ssim(clean, noisy) == pytest.approx(expected)
  assert metrics.ssim(clean[..., None], noisy[..., None]) == pytest.approx(
      expected)


def test_mean_lab_distance():
  rng = np.random.default_rng(6)
  target = rng.random((12, 10, 3)).astype(np.float32)
  assert metrics.mean_lab_distance(target, target) == pytest.approx(0.0)
  output = target + 0.05
  target_lab = cv2.cvtColor(target, cv2.COLOR_BGR2Lab)
  output_lab = cv2.cvtColor(np.clip(output, 0, 1), cv2.COLOR_BGR2Lab)
  expected = np.mean(np.linalg.norm(target_lab - output_lab, axis=2))
  assert metrics.mean_lab_distance(target, output) == pytest.approx(
      expected, rel=1e-5)
  black = np.zeros((4, 4, 3), np.float32)
  white = np.ones((4, 4, 3), np.float32)
  # Black and white differ by L = 100 only; the output is clipped first.
  assert metrics.mean_lab_distance(black, white + 1.0) == pytest.approx(
      100.0, abs=1e-3)
  with pytest.raises(ValueError, match='BGR'):
    metrics.mean_lab_distance(black[..., :1], black[..., :1])

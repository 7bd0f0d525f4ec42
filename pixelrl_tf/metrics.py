"""Image quality metrics with the PixelRL evaluation protocol.

PSNR and SSIM are measured on 8-bit images: both images are clipped to
[0, 1] and quantised as the reference test script does,
`floor(v * 255 + 0.5)` in float32 arithmetic, by the project's one 8-bit
quantiser `pixelrl_tf.io.images.quantize_uint8`. PSNR then equals `cv2.PSNR`
on those images (peak 255, mean squared error over all pixels and channels),
including OpenCV's `DBL_EPSILON` guard, so identical images score a finite
361.20 dB (`IDENTICAL_PSNR`) rather than infinity. Average per-image values
to get a data set's score, as the paper does.

The colour-enhancement error is the mean per-pixel Euclidean distance in
CIE Lab (OpenCV's float conversion: L in 0..100), with the output clipped to
[0, 1] and not quantised, as in the reference colour test script.

Image arguments are float arrays on the 0..1 scale, `[H, W]` or `[H, W, C]`.
"""

import sys

import cv2
import numpy as np
from skimage import metrics as skimage_metrics

from pixelrl_tf.io import images

PEAK_VALUE = 255.0
# cv2.PSNR adds DBL_EPSILON to the root mean squared error.
_RMSE_EPSILON = sys.float_info.epsilon
IDENTICAL_PSNR = 20.0 * np.log10(PEAK_VALUE / _RMSE_EPSILON)

# Gaussian-weighted SSIM of Wang et al. (2004).
_SSIM_SIGMA = 1.5


# The official quantiser under its historical name in this module.
quantize_to_uint8 = images.quantize_uint8


def _check_same_shape(clean, restored):
  if clean.shape != restored.shape:
    raise ValueError(f'image shapes differ: {clean.shape} vs {restored.shape}')


def psnr(clean, restored):
  """PSNR in dB of two 0..1 images after 8-bit quantisation (= cv2.PSNR).

  Args:
    clean: float `[H, W]` or `[H, W, C]` reference image.
    restored: float image of the same shape.

  Returns:
    Python float; `IDENTICAL_PSNR` (361.2) when the quantised images match.
  """
  clean = images.quantize_uint8(clean)
  restored = images.quantize_uint8(restored)
  _check_same_shape(clean, restored)
  difference = clean.astype(np.float64) - restored.astype(np.float64)
  rmse = np.sqrt(np.mean(np.square(difference)))
  return float(20.0 * np.log10(PEAK_VALUE / (rmse + _RMSE_EPSILON)))


def ssim(clean, restored):
  """Gaussian-weighted SSIM (Wang et al.) of two 0..1 images on 8-bit values.

  Uses `skimage.metrics.structural_similarity` with `data_range=255`,
  `gaussian_weights=True`, `sigma=1.5`, `use_sample_covariance=False`;
  colour images are averaged over channels. Images need at least 7 pixels
  per side.

  Args:
    clean: float `[H, W]` or `[H, W, C]` reference image.
    restored: float image of the same shape.

  Returns:
    Python float in [-1, 1]; 1.0 for identical quantised images.
  """
  clean = images.quantize_uint8(clean)
  restored = images.quantize_uint8(restored)
  _check_same_shape(clean, restored)
  if clean.ndim == 3 and clean.shape[2] == 1:
    clean, restored = clean[:, :, 0], restored[:, :, 0]
  channel_axis = -1 if clean.ndim == 3 else None
  return float(
      skimage_metrics.structural_similarity(
          clean,
          restored,
          data_range=PEAK_VALUE,
          gaussian_weights=True,
          sigma=_SSIM_SIGMA,
          use_sample_covariance=False,
          channel_axis=channel_axis))


def mean_lab_distance(bgr_target, bgr_output):
  """Mean per-pixel Euclidean CIE Lab distance of two BGR 0..1 images.

  The output is clipped to [0, 1] (not quantised); both images go through
  `cv2.cvtColor(..., COLOR_BGR2Lab)` on float32.

  Args:
    bgr_target: float `[H, W, 3]` target image in BGR order.
    bgr_output: float `[H, W, 3]` produced image in BGR order.

  Returns:
    Python float, the mean distance in Lab units.
  """
  bgr_target = np.asarray(bgr_target, dtype=np.float32)
  bgr_output = np.clip(np.asarray(bgr_output, dtype=np.float32), 0.0, 1.0)
  _check_same_shape(bgr_target, bgr_output)
  if bgr_target.ndim != 3 or bgr_target.shape[2] != 3:
    raise ValueError(f'expected [H, W, 3] BGR images, got {bgr_target.shape}')
  target_lab = cv2.cvtColor(bgr_target, cv2.COLOR_BGR2Lab)
  output_lab = cv2.cvtColor(bgr_output, cv2.COLOR_BGR2Lab)
  distances = np.sqrt(
      np.sum(np.square(target_lab.astype(np.float64) - output_lab), axis=2))
  return float(np.mean(distances))


# ---------------------------------------------------------------------------
# Saliency (saliency-driven editing, Table IX).

FINE_GRAINED = 'fine_grained'
SPECTRAL_RESIDUAL = 'spectral_residual'
SALIENCY_METHODS = (FINE_GRAINED, SPECTRAL_RESIDUAL)


def saliency_map(bgr_image, method=FINE_GRAINED):
  """OpenCV static saliency of a BGR image on the 0..1 scale.

  Args:
    bgr_image: float `[H, W, 3]` BGR (any range; clipped and rounded to
      8 bits first).
    method: `'fine_grained'` or `'spectral_residual'`.

  Returns:
    float32 `[H, W]` in [0, 1] (min-max normalised per image by OpenCV).
  """
  if method == FINE_GRAINED:
    detector = cv2.saliency.StaticSaliencyFineGrained_create()
  elif method == SPECTRAL_RESIDUAL:
    detector = cv2.saliency.StaticSaliencySpectralResidual_create()
  else:
    raise ValueError(f'unknown saliency method {method!r}; use one of '
                     f'{SALIENCY_METHODS}')
  image = images.quantize_uint8(bgr_image)
  ok, saliency = detector.computeSaliency(image)
  if not ok:
    raise RuntimeError(f'OpenCV {method} saliency failed on an image of '
                       f'shape {image.shape}')
  return np.asarray(saliency, np.float32).reshape(image.shape[:2])


def pearson_cc(mask, saliency):
  """Pearson correlation of a mask and a saliency map (None if undefined)."""
  mask = np.asarray(mask, np.float64).ravel()
  saliency = np.asarray(saliency, np.float64).ravel()
  if mask.std() == 0 or saliency.std() == 0:
    return None
  return float(np.corrcoef(mask, saliency)[0, 1])

"""End-to-end tiny runs of the other corruptions: Poisson, salt and pepper,
and blind text removal with windowed updates (15-step episodes in the paper,
updated every 5 steps)."""

import json
import os
import subprocess
import sys

import gin
import numpy as np
import pytest

from conftest import PROJECT_ROOT
from pixelrl_tf import cli
from pixelrl_tf.data import datasets
from pixelrl_tf.jobs import eval_lib
from pixelrl_tf.jobs import train_lib
from pixelrl_tf.models import model_io

TINY = str(PROJECT_ROOT / 'configs' / 'tiny.gin')


def _train(root_dir, bindings):
  gin.clear_config()
  cli.parse_gin([TINY], bindings)
  with open(os.devnull, 'w') as stream:
    return train_lib.train(str(root_dir), progress_stream=stream)


def _expected_noisy_psnr(clean, noise):
  """PSNR (dB) of `clean` [H,W] under `noise`, from its distribution.

  Each clean level's expected squared error of the noisy value (clipped to
  0..1, as the PSNR protocol clips), averaged over the image's pixels:
  Poisson `k / peak` with `k ~ Poisson(peak * x)`; salt and pepper of
  density `d` sets a pixel to 0 or to 1 with probability `d / 2` each.
  """
  kind, value = noise.split(':')
  levels = np.round(clean * 255.0) / 255.0
  if kind == 'poisson':
    peak = float(value)
    counts = np.arange(0, int(peak * 4) + 60)
    log_factorial = np.cumsum(np.log(np.maximum(counts, 1)))
    rate = peak * levels.reshape(-1, 1)
    with np.errstate(divide='ignore'):
      log_pmf = counts * np.log(rate) - rate - log_factorial
    pmf = np.where(rate > 0, np.exp(log_pmf), counts == 0)
    noisy = np.minimum(counts / peak, 1.0)
    errors = (pmf * (noisy - levels.reshape(-1, 1)) ** 2).sum(axis=1)
  else:
    density = float(value)
    errors = density / 2 * (levels ** 2 + (1 - levels) ** 2)
  return 10 * np.log10(1.0 / np.mean(errors))


@pytest.mark.parametrize('task,noise', [('poisson', 'poisson:30'),
                                        ('salt_pepper', 'salt_pepper:0.5')])
def test_noise_models_train_and_evaluate(tmp_path, task, noise):
  result = _train(tmp_path, [f'make_task.name = "{task}"',
                             f'make_task.noise = "{noise}"',
                             'Optimization.num_episodes = 2',
                             'Cadence.eval_interval = 2'])
  assert result['episode'] == 2
  assert result['task'].noise == noise
  # The validation inputs carry the task's noise: their PSNR is the one its
  # distribution predicts for the clean validation image (the default
  # photographs' held-out split, one image in configs/tiny.gin), and far
  # from what the other noises give.
  (_, clean), = datasets.image_source(
      'default', datasets.VALIDATION)[:1]
  expected = _expected_noisy_psnr(clean[..., 0], noise)
  assert result['input_metric'] == pytest.approx(expected, abs=0.1)
  for other in ('poisson:30', 'salt_pepper:0.5'):
    if other != noise:
      assert abs(_expected_noisy_psnr(clean[..., 0], other) - expected) > 3
  # The final report compares on those inputs; the best fixed schedule of
  # the task's filters is far above them.
  report = result['final_report']
  assert result['val_metric'] == pytest.approx(report['model'])
  assert report['input'] == pytest.approx(result['input_metric'])
  assert report['best_fixed_schedule'] > report['input'] + 3


def test_text_removal_with_windowed_updates(tmp_path):
  run_dir = tmp_path / 'run'
  result = _train(run_dir, ['make_task.name = "text_removal"',
                            'make_task.t_max = 4',
                            'make_task.update_interval = 2',
                            'Optimization.num_episodes = 2',
                            'Cadence.eval_interval = 2'])
  assert result['episode'] == 2
  # Two updates per episode: the agent's step counter counts them.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(
      tf.train.latest_checkpoint(str(run_dir / 'train')))
  assert reader.get_tensor('train_step/.ATTRIBUTES/VARIABLE_VALUE') == 4
  assert model_io.read_model_config(str(run_dir)).t_max == 4
  # A fixed corrupted set, then paired evaluation with the per-step curve.
  images = tmp_path / 'clean'
  images.mkdir()
  import cv2  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for i in range(2):
    cv2.imwrite(str(images / f'{i}.png'),
                rng.integers(0, 255, (40, 52), dtype=np.uint8))
  subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.make_restoration_set',
       f'--input_dir={images}', f'--output_dir={tmp_path / "set"}',
       '--seed=3'], cwd=PROJECT_ROOT, check=True, capture_output=True)
  report = eval_lib.evaluate(
      str(run_dir), input_dir=str(tmp_path / 'set' / 'input'),
      target_dir=str(tmp_path / 'set' / 'target'), t_max=6)
  assert report['num_images'] == 2
  assert len(report['rows']['model']['per_step']) == 6
  eval_lib.write_curve_png(report, str(tmp_path / 'curve.png'))
  assert (tmp_path / 'curve.png').stat().st_size > 0
  json.dumps(report)


def test_update_interval_must_divide_t_max(tmp_path):
  with pytest.raises(ValueError, match='multiple of'):
    _train(tmp_path, ['make_task.t_max = 5', 'make_task.update_interval = 2'])

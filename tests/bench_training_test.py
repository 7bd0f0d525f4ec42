"""Tests of bench/bench_training.py: train for a budget, then the baselines."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

import reference_numpy
from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT, load_module_from_file
from pixelrl_tf.data import noise as noise_lib

SCRIPT = str(PROJECT_ROOT / 'bench' / 'bench_training.py')
TINY = str(PROJECT_ROOT / 'configs' / 'tiny.gin')
SIZE = 40
CROP = 32


def _run(*args, timeout=HANG_TIMEOUT_SECONDS):
  result = subprocess.run([sys.executable, SCRIPT, *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr
  return result


def _smooth_image(seed, channels):
  """A smooth float32 `[SIZE, SIZE, channels]` picture on 0..1."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1.0)
  planes = []
  for _ in range(channels):
    a, b, c = rng.uniform(0.2, 0.8, 3)
    disc = ((y - a) ** 2 + (x - b) ** 2 < 0.08).astype(np.float32)
    planes.append(np.clip(0.25 + 0.4 * c * x + 0.3 * disc, 0.0, 1.0))
  return np.stack(planes, axis=-1).astype(np.float32)


def _to_uint8(image):
  return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


@pytest.fixture(name='gray_folder')
def _gray_folder(tmp_path):
  folder = tmp_path / 'gray'
  folder.mkdir()
  for index in range(2):
    cv2.imwrite(str(folder / f'img{index}.png'),
                _to_uint8(_smooth_image(index, 1)[..., 0]))
  return folder


def _quantise(image):
  """The official protocol: `floor(clip(v, 0, 1) * 255 + 0.5)` in float32."""
  return (np.clip(image, 0, 1).astype(np.float32) * np.float32(255) +
          np.float32(0.5)).astype(np.uint8)


def _lab(bgr):
  return cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)


def _noisy_crops(folder):
  """`(name, noisy, clean)` of the centre crops the benchmark tests on.

  The clean crops are read and cropped here; only the seeded noise comes
  from the library (`noise_lib.noisy_pairs`, seed `(0, image index)`).
  """
  offset = (SIZE - CROP) // 2
  images = []
  for path in sorted(folder.iterdir()):
    clean = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    clean = clean[offset:offset + CROP, offset:offset + CROP, None] / 255.0
    images.append((path.name, clean))
  return list(noise_lib.noisy_pairs(
      images, noise_lib.parse_noise('gaussian:25'), 0))


def _box_schedule_psnr(folder, count):
  """Mean PSNR of `count` 5x5 box filters, by hand with OpenCV."""
  values = []
  for _, noisy, clean in _noisy_crops(folder):
    image = noisy[..., 0]
    for _ in range(count):
      image = cv2.boxFilter(image, -1, (5, 5),
                            borderType=cv2.BORDER_REFLECT_101)
    values.append(cv2.PSNR(_quantise(clean[..., 0]), _quantise(image)))
  return float(np.mean(values))


def _bench_module():
  return load_module_from_file(SCRIPT)


def test_wall_clock_chunks_fit_the_remaining_time():
  next_chunk = _bench_module().next_chunk
  assert next_chunk([], 600.0, 10) == 10
  # One chunk: a set-up as long as the chunk, then 10 s per episode.
  assert next_chunk([{'episodes': 10, 'seconds': 100.0}], 250.0, 10) == 15
  assert next_chunk([{'episodes': 10, 'seconds': 100.0}], 105.0, 10) == 0
  # Two chunks of different lengths: 50 s set-up + 5 s per episode.
  chunks = [{'episodes': 10, 'seconds': 100.0},
            {'episodes': 20, 'seconds': 150.0}]
  assert next_chunk(chunks, 102.0, 10) == 10
  assert next_chunk(chunks, 54.0, 10) == 0
  # A chunk that trained nothing (budget reached) stops the loop.
  assert next_chunk([{'episodes': 0, 'seconds': 30.0}], 600.0, 10) == 0
  # Similar lengths: the shortest chunk's set-up, the pooled rate (8 s).
  chunks = [{'episodes': 10, 'seconds': 100.0},
            {'episodes': 11, 'seconds': 68.0}]
  assert next_chunk(chunks, 200.0, 10) == 16


def test_a_chosen_step_count_picks_the_row_from_its_curve():
  module = _bench_module()
  curve = [{'psnr': 20.0, 'ssim': 0.5}, {'psnr': 22.0, 'ssim': 0.6},
           {'psnr': 21.0, 'ssim': 0.55}]
  rows = {'model': dict(curve[-1], per_step=curve),
          'original': {'psnr': 18.0, 'ssim': 0.4}}
  per_image = {'a.png': {'model': dict(curve[-1], per_step=curve)}}
  module._use_inference_steps(rows, per_image, 'model', 2)
  assert rows['model'] == {'psnr': 22.0, 'ssim': 0.6, 'per_step': curve}
  assert per_image['a.png']['model']['psnr'] == 22.0
  assert rows['original'] == {'psnr': 18.0, 'ssim': 0.4}
  text = module._checkpoint_text({'episode': 150, 'inference_steps': 4}, 10)
  assert text == 'episode 150, 4 of 10 steps, chosen on validation'
  assert module._checkpoint_text(
      {'episode': 150, 'inference_steps': 10}, 10) == 'episode 150'


def test_gray_run_rows_and_best_fixed_schedule(gray_folder, tmp_path):
  run_dir = tmp_path / 'run'
  output = tmp_path / 'bench.json'
  markdown = tmp_path / 'bench.md'
  result = _run(f'--gin_file={TINY}', f'--root_dir={run_dir}',
                '--num_episodes=2', f'--test_dir={gray_folder}',
                f'--test_crop={CROP}', f'--output_json={output}',
                f'--output_markdown={markdown}')
  report = json.loads(output.read_text())
  for key in ('gin_files', 'gin_bindings', 'machine', 'date', 'tensorflow',
              'model', 'training', 'test_set', 'metric', 'rows',
              'best_fixed_schedule', 'fixed_schedules', 'per_step',
              'checkpoints', 'per_image'):
    assert key in report, key
  assert report['gin_files'] == [TINY]
  assert 'Optimization.num_episodes = 2' in report['gin_bindings']
  assert set(report['machine']) == {'node', 'processor', 'cpu_count'}
  training = report['training']
  assert not training['skipped']
  assert (training['episodes_start'], training['episodes_end'],
          training['episodes_done'], training['num_episodes']) == (0, 2, 2, 2)
  assert training['seconds'] > 0
  test_set = report['test_set']
  assert (test_set['kind'], test_set['noise'], test_set['num_images'],
          test_set['sizes']) == ('noise', 'gaussian:25', 2,
                                 [[CROP, CROP]] * 2)
  assert report['metric'] == 'psnr' and report['higher_is_better']

  # Every row, with per-step values where the row has steps (t_max 2).
  rows = report['rows']
  assert list(rows) == ['original', 'random_agents', 'best_fixed_schedule',
                        'model', 'best_checkpoint']
  for values in rows.values():
    assert 0 < values['psnr'] < 100 and 0 < values['ssim'] <= 1
  for row in ('random_agents', 'model', 'best_checkpoint'):
    assert len(rows[row]['per_step']) == 2
    assert report['per_step'][row][-1] == pytest.approx(rows[row]['psnr'])
  assert report['checkpoints']['model']['episode'] == 2
  assert set(report['per_image']) == {'img0.png', 'img1.png'}

  # The best fixed schedule is the best of those considered...
  schedules = report['fixed_schedules']
  assert set(schedules) == set(report['model']['actions'])
  assert all(len(values) == 2 for values in schedules.values())
  best = rows['best_fixed_schedule']['psnr']
  assert best == pytest.approx(max(max(v) for v in schedules.values()))
  name, count = report['best_fixed_schedule'].rsplit(' x', 1)
  assert schedules[name][int(count) - 1] == pytest.approx(best)
  assert rows['best_fixed_schedule']['margin_over_best_fixed'] == 0
  assert report['per_step']['best_fixed_action'] == schedules[name]
  # ... and the box filter schedules agree with OpenCV.
  for count in (1, 2):
    by_hand = _box_schedule_psnr(gray_folder, count)
    assert schedules['box_5'][count - 1] == pytest.approx(by_hand, abs=0.02)
    assert best >= by_hand - 0.02
  assert rows['original']['psnr'] == pytest.approx(schedules['do_nothing'][0])
  # The model's curve by hand: the numpy model of the network
  # (tests/reference_numpy.py) on the final checkpoint's weights, OpenCV's
  # filters and PSNR.
  weights = reference_numpy.weights_from_checkpoint(
      tf.train.latest_checkpoint(str(run_dir / 'train')))
  curves = []
  for _, noisy, clean in _noisy_crops(gray_folder):
    _, steps = reference_numpy.run_episode(weights, noisy[..., 0], t_max=2)
    curves.append([reference_numpy.psnr(clean[..., 0], image)
                   for image in steps[1:]])
  np.testing.assert_allclose(report['per_step']['model'],
                             np.mean(curves, axis=0), atol=0.01)
  assert rows['model']['psnr'] == pytest.approx(np.mean(curves, axis=0)[-1],
                                                abs=0.01)

  text = markdown.read_text()
  assert text in result.stdout
  assert f'Best fixed schedule ({report["best_fixed_schedule"]})' in text
  assert 'PSNR (dB) after each step' in text

  # --skip_training evaluates the run as it is.
  skipped = tmp_path / 'skipped.json'
  _run(f'--root_dir={run_dir}', '--skip_training', f'--test_dir={gray_folder}',
       '--max_test_images=1', f'--output_json={skipped}')
  again = json.loads(skipped.read_text())
  assert again['training']['skipped']
  assert again['training']['episodes_end'] == 2
  assert again['test_set']['num_images'] == 1
  assert again['test_set']['sizes'] == [[SIZE, SIZE]]


def test_colour_paired_run(tmp_path):
  data = tmp_path / 'pairs'
  inputs, targets = [], []
  for sub in ('input', 'target'):
    (data / sub).mkdir(parents=True)
  for index in range(2):
    image = _smooth_image(10 + index, 3)
    target = np.clip(image * 1.15 + 0.02, 0.0, 1.0)
    inputs.append(_to_uint8(image))
    targets.append(_to_uint8(target))
    cv2.imwrite(str(data / 'input' / f'p{index}.png'), inputs[-1])
    cv2.imwrite(str(data / 'target' / f'p{index}.png'), targets[-1])
  output = tmp_path / 'colour.json'
  _run(f'--gin_file={TINY}', "--gin_bindings=make_task.name='color_enhance'",
       '--gin_bindings=make_task.update_interval=2',
       f"--gin_bindings=TrainingData.data_source='{data}'",
       f'--root_dir={tmp_path / "run"}', '--num_episodes=2',
       f'--test_input_dir={data / "input"}',
       f'--test_target_dir={data / "target"}', f'--output_json={output}')
  report = json.loads(output.read_text())
  assert report['model']['task'] == 'color_enhance'
  assert report['metric'] == 'lab' and not report['higher_is_better']
  assert report['test_set']['kind'] == 'paired'
  assert report['training']['episodes_done'] == 2
  rows = report['rows']
  # No validation images in this run: no best validated checkpoint.
  assert list(rows) == ['original', 'random_agents', 'best_fixed_schedule',
                        'model']
  assert all('lab' in values for values in rows.values())
  assert len(rows['model']['per_step']) == 2
  best = rows['best_fixed_schedule']['lab']
  schedules = report['fixed_schedules']
  assert best == pytest.approx(min(min(v) for v in schedules.values()))
  assert best <= rows['original']['lab']
  # The input row by hand: mean per-pixel Lab distance of the BGR files.
  by_hand = np.mean([np.linalg.norm(_lab(t) - _lab(i), axis=-1).mean()
                     for i, t in zip(inputs, targets)])
  assert rows['original']['lab'] == pytest.approx(by_hand, rel=1e-4)

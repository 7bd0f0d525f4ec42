"""Tests of evaluation: protocol rows, x8 augmentation, reports, CLI."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

import reference_numpy
import cli_driver
from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT
from pixelrl_tf import metrics
from pixelrl_tf.data import known_files
from pixelrl_tf.evaluation import protocol
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.io import images as image_io
from pixelrl_tf.jobs import eval_lib
from pixelrl_tf.models import model_io
from pixelrl_tf.models import restorers
from pixelrl_tf.serving import restoration_module


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  run_dir = tmp_path_factory.mktemp('run')
  config = model_io.ModelConfig(filters=8, t_max=3)
  model_io.save_model(str(run_dir), config, model_io.build_network(config))
  return run_dir


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
  folder = tmp_path_factory.mktemp('images')
  rng = np.random.default_rng(0)
  for name, shape in (('a.png', (24, 20)), ('b.jpg', (17, 31))):
    ramp = np.linspace(30, 220, shape[0] * shape[1]).reshape(shape)
    image = np.clip(ramp + rng.normal(0, 5, shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(folder / name), image)
  return folder


def test_transforms_invert():
  image = np.arange(2 * 3 * 5 * 1, dtype=np.float32).reshape(2, 3, 5, 1)
  seen = set()
  for flip, turns in protocol.X8_TRANSFORMS:
    moved = protocol._transform(image, flip, turns)  # pylint: disable=protected-access
    seen.add(moved.tobytes() + bytes(moved.shape))
    back = protocol._inverse_transform(moved, flip, turns)  # pylint: disable=protected-access
    np.testing.assert_array_equal(back, image)
  assert len(seen) == 8


def _box_restorer():
  """A restorer whose 'policy' is a dihedrally equivariant box filter."""

  def restore_steps(images):
    blurred = cv2.boxFilter(np.ascontiguousarray(images[0, ..., 0]), -1,
                            (3, 3))
    return {'images': np.stack([images[0], blurred[..., None]])[None],
            'actions': np.zeros((1, 1) + images.shape[1:3], np.int32)}

  return restoration_module.Restorer(
      channels=1, t_max=1, dependency_radius=1, action_names=['box'],
      action_colors=np.zeros((1, 3), np.uint8), restore_fn=None,
      restore_steps_fn=restore_steps)


def test_x8_average_of_an_equivariant_restorer_is_itself():
  image = np.random.default_rng(1).uniform(size=(9, 13, 1)).astype(np.float32)
  restorer = _box_restorer()
  np.testing.assert_allclose(protocol.greedy_x8(restorer, image)[0],
                             protocol.greedy(restorer, image)[0][0],
                             atol=1e-6)


def test_best_fixed_schedule_row(tiny_run, image_folder):
  config, restorer = restorers.restorer_from_run(str(tiny_run))
  images = eval_lib.datasets.load_images(
      image_io.list_image_files(str(image_folder)), 1)
  noise = eval_lib.noise_lib.parse_noise('gaussian:25')
  pairs = list(eval_lib.noise_lib.noisy_pairs(images, noise, 0))
  schedules = protocol.FixedSchedules(config.get_action_set(), 3)
  report = protocol.evaluate_images(restorer, pairs, include_random=False,
                                    fixed_schedules=schedules)
  # Brute force: every action repeated 1..3 times with cv2's box filter for
  # the box action; the chosen one is the best mean PSNR.
  label = report['best_fixed_schedule']
  name, count = label.rsplit(' x', 1)
  best = report['rows']['best_fixed_schedule']['psnr']
  box = []
  for _, noisy, clean in pairs:
    image = noisy[..., 0]
    for _ in range(3):
      image = cv2.boxFilter(image, -1, (5, 5),
                            borderType=cv2.BORDER_REFLECT_101)
    box.append(metrics.psnr(clean, image[..., None]))
  assert best >= np.mean(box) - 1e-9
  assert name in config.get_action_set().names and 1 <= int(count) <= 3
  assert best > report['rows']['original']['psnr']


def _arithmetic_actions():
  """Whole-image actions whose sequences can be worked out by hand."""
  return action_set_lib.ActionSet([
      action_set_lib.Action('do_nothing', lambda x: x, (0, 0, 0)),
      action_set_lib.Action('add_0.1', lambda x: x + 0.1, (255, 0, 0)),
      action_set_lib.Action('double', lambda x: 2.0 * x, (0, 255, 0))])


@pytest.mark.parametrize('channels,lab_metric', [(1, False), (3, True)])
def test_best_fixed_sequence_exhaustive_and_pruned(channels, lab_metric):
  # From 0.15 the only three-step way to the clean 0.8 is double, add,
  # double (0.3, 0.4, 0.8); keeping one prefix per length goes the greedy
  # way, double, double, add (0.3, 0.6, 0.7). Two image shapes: two batches.
  pairs = [(f'{h}x{w}', np.full((h, w, channels), 0.15, np.float32),
            np.full((h, w, channels), 0.8, np.float32))
           for h, w in ((4, 5), (6, 3), (4, 5))]
  actions = _arithmetic_actions()
  found = protocol.best_fixed_sequence(actions, pairs, 3,
                                       lab_metric=lab_metric)
  assert found['actions'] == ['double', 'add_0.1', 'double']
  assert found['exhaustive']
  exact = 0.0 if lab_metric else metrics.IDENTICAL_PSNR
  assert found['score'] == pytest.approx(exact, abs=1e-6)
  greedy_beam = protocol.best_fixed_sequence(actions, pairs, 3,
                                             lab_metric=lab_metric,
                                             beam_width=1)
  assert greedy_beam['actions'] == ['double', 'double', 'add_0.1']
  assert not greedy_beam['exhaustive']
  clean, seventy = pairs[0][2], np.full_like(pairs[0][2], 0.7)
  expected = (metrics.mean_lab_distance(clean, seventy) if lab_metric
              else metrics.psnr(clean, seventy))
  assert greedy_beam['score'] == pytest.approx(expected, rel=1e-6)


def test_best_fixed_sequence_stops_at_its_best_length():
  # 0.25 -> clean 0.5 in one doubling; every longer sequence is worse or
  # the same, and the shortest best one is reported.
  pairs = [('a', np.full((3, 3, 1), 0.25, np.float32),
            np.full((3, 3, 1), 0.5, np.float32))]
  found = protocol.best_fixed_sequence(_arithmetic_actions(), pairs, 4)
  assert found['actions'] == ['double']
  with pytest.raises(ValueError, match='no images'):
    protocol.best_fixed_sequence(_arithmetic_actions(), [], 2)


def test_evaluate_rows_and_protocol(tiny_run, image_folder):
  report = eval_lib.evaluate(str(tiny_run), data_dir=str(image_folder),
                             noise='gaussian:25', seed=3, augment_x8=True)
  assert report['num_images'] == 2
  rows = report['rows']
  assert list(rows) == ['original', 'random_agents', 'best_fixed_schedule',
                        'model', 'model_x8']
  assert len(rows['model']['per_step']) == 3
  assert rows['model']['psnr'] == rows['model']['per_step'][-1]['psnr']
  # Each image keeps its per-step curve; the rows average them.
  for step in range(3):
    np.testing.assert_allclose(
        np.mean([image['model']['per_step'][step]['psnr']
                 for image in report['per_image'].values()]),
        rows['model']['per_step'][step]['psnr'])
  assert 'per_step' not in next(iter(report['per_image'].values()))[
      'original']
  # Independently: the images read with OpenCV, the seeded noise of the
  # library, then the numpy model of the network on the checkpoint's
  # weights (tests/reference_numpy.py) and OpenCV's PSNR of the 8-bit
  # images: the original row and the model's curve.
  assert model_io.read_model_config(str(tiny_run)).t_max == 3
  weights = reference_numpy.weights_from_checkpoint(
      tf.train.latest_checkpoint(str(tiny_run / 'train')))
  images = [(path.name, reference_numpy.read_gray(path)[..., None])
            for path in sorted(image_folder.iterdir())]
  noise = eval_lib.noise_lib.parse_noise('gaussian:25')
  original, curves = [], []
  for _, noisy, clean in eval_lib.noise_lib.noisy_pairs(images, noise, 3):
    original.append(reference_numpy.psnr(clean[..., 0], noisy[..., 0]))
    _, steps = reference_numpy.run_episode(weights, noisy[..., 0], t_max=3)
    curves.append([reference_numpy.psnr(clean[..., 0], image)
                   for image in steps[1:]])
  np.testing.assert_allclose(rows['original']['psnr'], np.mean(original),
                             atol=1e-6)
  np.testing.assert_allclose(
      [step['psnr'] for step in rows['model']['per_step']],
      np.mean(curves, axis=0), atol=0.01)
  # The best fixed schedule by brute force with OpenCV's filters: every
  # action repeated 1..3 times over the whole image; and the learned gain.
  scores = np.zeros((9, 3))
  for _, noisy, clean in eval_lib.noise_lib.noisy_pairs(images, noise, 3):
    for action in range(9):
      image = noisy[..., 0]
      for count in range(3):
        image = reference_numpy.apply_actions(
            image, np.full(image.shape, action))
        scores[action, count] += reference_numpy.psnr(clean[..., 0],
                                                      image) / 2
  action, count = np.unravel_index(np.argmax(scores), scores.shape)
  names = model_io.read_model_config(str(tiny_run)).get_action_set().names
  assert report['best_fixed_schedule'] == f'{names[action]} x{count + 1}'
  assert rows['best_fixed_schedule']['psnr'] == pytest.approx(
      scores.max(), abs=0.01)
  assert report['learned_gain'] == pytest.approx(
      rows['model']['psnr'] - scores.max(), abs=0.02)
  again = eval_lib.evaluate(str(tiny_run), data_dir=str(image_folder),
                            noise='gaussian:25', seed=3)
  assert again['rows']['model'] == rows['model']
  assert again['rows']['random_agents'] == rows['random_agents']
  markdown = eval_lib.report_markdown(report)
  assert '| Random agents |' in markdown and 't=3' in markdown
  assert (f'| Best fixed schedule ({report["best_fixed_schedule"]}) |'
          in markdown)
  assert ('Learned gain of the model over the best fixed schedule: '
          f'{report["learned_gain"]:+.2f} dB.') in markdown


def test_paired_folders(tiny_run, image_folder, tmp_path):
  (tmp_path / 'input').mkdir()
  for path in image_folder.iterdir():
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(tmp_path / 'input' / (path.stem + '.png')), 255 - image)
  report = eval_lib.evaluate(str(tiny_run), input_dir=str(tmp_path / 'input'),
                             target_dir=str(image_folder))
  assert report['num_images'] == 2 and report['noise'] is None


def test_cli_writes_json_and_markdown(tiny_run, image_folder, tmp_path):
  output = tmp_path / 'report.json'
  markdown = tmp_path / 'report.md'
  result = subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.eval', f'--checkpoint={tiny_run}',
       f'--data_dir={image_folder}', '--noise=poisson:30', '--seed=1',
       f'--output_json={output}', f'--output_markdown={markdown}',
       f'--curve_png={tmp_path / "curve.png"}', '--t_max=2',
       '--fixed_sequence'],
      cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS)
  assert result.returncode == 0, result.stderr
  report = json.loads(output.read_text())
  # The reported sequence, applied again action by action, scores what the
  # report says, at least as well as the best repeated action, and the
  # gain over it is the model's PSNR minus that score.
  config, _ = restorers.restorer_from_run(str(tiny_run))
  actions = config.get_action_set()
  sequence = report['best_fixed_sequence']
  assert 1 <= len(sequence['actions']) <= 2 and sequence['exhaustive']
  images = eval_lib.datasets.load_images(
      image_io.list_image_files(str(image_folder)), 1)
  pairs = eval_lib.noise_lib.noisy_pairs(
      images, eval_lib.noise_lib.parse_noise('poisson:30'), 1)
  scores = []
  for _, noisy, clean in pairs:
    image = tf.constant(noisy[None])
    for name in sequence['actions']:
      image = actions[actions.names.index(name)].fn(image)
    scores.append(metrics.psnr(clean, image.numpy()[0]))
  assert sequence['score'] == pytest.approx(np.mean(scores), abs=1e-9)
  assert sequence['score'] >= (
      report['rows']['best_fixed_schedule']['psnr'] - 1e-9)
  assert report['learned_gain_over_sequence'] == pytest.approx(
      report['rows']['model']['psnr'] - sequence['score'])
  assert 'Best fixed sequence' in result.stdout
  for row in ('original', 'random_agents', 'model'):
    assert 0 < report['rows'][row]['psnr'] < 100
    assert 0 < report['rows'][row]['ssim'] <= 1
  assert report['noise'] == 'poisson:30'
  assert 'PSNR' in markdown.read_text()
  assert len(report['rows']['model']['per_step']) == 2
  curve = cv2.imread(str(tmp_path / 'curve.png'))
  assert curve.shape == (400, 640, 3)
  bad = subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.eval', f'--checkpoint={tmp_path}',
       f'--data_dir={image_folder}'],
      cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS)
  assert bad.returncode == 1
  assert bad.stderr.strip().startswith('error:')
  assert len(bad.stderr.strip().splitlines()) == 1


def _known_files_env(tmp_path, data_root=None):
  """The environment of a command: offline, an empty cache, `data_root`."""
  env = {k: v for k, v in os.environ.items() if not k.startswith('PIXELRL_')}
  env.update({known_files.CACHE_DIR_ENV: str(tmp_path / 'cache'),
              known_files.OFFLINE_ENV: '1'})
  if data_root is not None:
    env[known_files.DATA_ROOT_ENV] = str(data_root)
  return env


def _bsd68_data_root(root, image_folder):
  """A data root laid out as the registry expects `bsd68`: list and images."""
  folder = root / known_files.get_entry('bsd68').relpath
  folder.mkdir(parents=True)
  names = sorted(path.name for path in image_folder.iterdir())
  for name in names:
    shutil.copy(image_folder / name, folder / name)
  listing = root / known_files.get_entry('bsd68_list').relpath
  listing.write_text(''.join(f'BSD68/gray/test/{name}\n' for name in names))
  return root


def test_cli_data_dir_takes_a_known_name(tiny_run, image_folder, tmp_path):
  root = _bsd68_data_root(tmp_path / 'data', image_folder)
  output = tmp_path / 'report.json'
  args = [f'--checkpoint={tiny_run}', '--data_dir=bsd68', '--seed=3',
          f'--output_json={output}']
  # With the data root, then offline without it: one process for both.
  (result, offline), _ = cli_driver.run_cases('eval', [
      cli_driver.Case(args, _known_files_env(tmp_path, root)),
      cli_driver.Case(args[:-1], _known_files_env(tmp_path))],
                                            tmp_path / 'driver')
  assert result.status == 0, result.stderr
  report = json.loads(output.read_text())
  assert report['data'] == 'bsd68' and report['num_images'] == 2
  want = eval_lib.evaluate(str(tiny_run), data_dir=str(image_folder), seed=3)
  for row in ('original', 'model'):
    assert report['rows'][row]['psnr'] == pytest.approx(
        want['rows'][row]['psnr'], abs=1e-9)

  assert offline.status == 1
  lines = offline.stderr.strip().splitlines()
  assert len(lines) == 1, offline.stderr
  assert lines[0].startswith('error: bsd68 (BSD68_gray_test) is not '
                             'available'), lines
  assert '`python -m pixelrl_tf.download bsd68`' in lines[0]
  assert not (tmp_path / 'cache').exists()


def test_folders_that_are_neither_paths_nor_names(tiny_run, image_folder):
  with pytest.raises(known_files.KnownFileError) as error:
    eval_lib.evaluate(str(tiny_run), data_dir='bsd86')
  assert str(error.value).startswith(
      "image folder 'bsd86' does not exist and is not a known name; did you "
      'mean bsd68?')
  with pytest.raises(FileNotFoundError,
                     match="image folder 'nowhere/target' does not exist"):
    eval_lib.evaluate(str(tiny_run), input_dir=str(image_folder),
                      target_dir='nowhere/target')


def test_table_layout(tiny_run, image_folder, tmp_path):
  fcn_dir = tmp_path / 'fcn'
  config = model_io.ModelConfig(filters=8, t_max=2, use_conv_gru=False)
  model_io.save_model(str(fcn_dir), config, model_io.build_network(config))
  output = tmp_path / 'table.json'
  result = subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.eval', '--table',
       f'--data_dir={image_folder}', '--augment_x8', '--max_images=1',
       f'--model=FCN@gaussian:15={fcn_dir}',
       f'--model=FCN@gaussian:50={fcn_dir}',
       f'--model=+convGRU@gaussian:15={tiny_run}',
       f'--output_json={output}'],
      cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS)
  assert result.returncode == 0, result.stderr
  table = json.loads(output.read_text())
  assert table['columns'] == ['gaussian:15', 'gaussian:50']
  assert table['rows'] == ['Original', 'Random agents', 'FCN', '+convGRU',
                           '+convGRU+aug']
  assert set(table['cells']['FCN']) == {'gaussian:15', 'gaussian:50'}
  assert set(table['cells']['+convGRU+aug']) == {'gaussian:15'}
  original = table['cells']['Original']
  assert original['gaussian:15']['psnr'] > original['gaussian:50']['psnr']
  lines = result.stdout.splitlines()
  assert '| | gaussian:15 | gaussian:50 |' in lines
  assert any(line.startswith('| +convGRU | ') and line.endswith(' | - |')
             for line in lines)


def test_table_entry_errors():
  assert eval_lib.parse_table_entry('A@b@gaussian:25=x/y=z') == (
      'A@b', 'gaussian:25', 'x/y=z')
  with pytest.raises(ValueError, match='LABEL@NOISE=CHECKPOINT'):
    eval_lib.parse_table_entry('FCN=runs/x')

"""Tests for saliency-driven editing (jobs.saliency_lib, saliency_edit)."""

import io
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from skimage import data as skimage_data

import cli_driver
from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT
from conftest import shared_data_path
from pixelrl_tf import metrics
from pixelrl_tf.data import known_files
from pixelrl_tf.environments import rewards as rewards_lib
from pixelrl_tf.environments import tf_pixel_env
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.jobs import saliency_lib
from pixelrl_tf.models import model_io


def _photo(size=(64, 48)):
  bgr = cv2.cvtColor(skimage_data.chelsea(), cv2.COLOR_RGB2BGR)
  return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)


def test_fine_grained_saliency_scale():
  saliency = metrics.saliency_map(_photo() / 255.0)
  assert saliency.dtype == np.float32 and saliency.shape == (48, 64)
  assert saliency.min() == 0.0 and saliency.max() == 1.0
  np.testing.assert_allclose(saliency * 255, np.round(saliency * 255),
                             atol=1e-3)
  # The 8-bit conversion is what OpenCV sees.
  ok, direct = cv2.saliency.StaticSaliencyFineGrained_create(
  ).computeSaliency(_photo())
  assert ok
  np.testing.assert_array_equal(saliency, direct)
  flat = metrics.saliency_map(np.full((8, 8, 3), 0.5, np.float32))
  assert not flat.any()


def test_spectral_residual_saliency_is_in_unit_range():
  saliency = metrics.saliency_map(_photo() / 255.0,
                                       metrics.SPECTRAL_RESIDUAL)
  assert saliency.shape == (48, 64)
  assert 0.0 <= saliency.min() and saliency.max() <= 1.0
  with pytest.raises(ValueError, match='unknown saliency'):
    metrics.saliency_map(_photo() / 255.0, 'nope')


def test_reward_is_eq_22():
  rng = np.random.default_rng(0)
  image = (_photo() / 255.0).astype(np.float32)
  edited = np.clip(image * rng.uniform(0.8, 1.2, image.shape), 0, 1)
  mask = np.zeros((48, 64, 1), np.float32)
  mask[10:30, 20:40] = 1.0
  rewards = rewards_lib.saliency_change_reward(alpha=1.0, beta=0.5)(
      tf.constant(mask[None]), tf.constant(image[None]),
      tf.constant(edited.astype(np.float32)[None])).numpy()[0]
  change = (metrics.saliency_map(edited) -
            metrics.saliency_map(image))
  expected = np.where(mask[..., 0] > 0.5, change, -0.5 * change)
  np.testing.assert_allclose(rewards, expected, atol=1e-6)


def test_pearson_cc():
  mask = np.array([[0, 1], [1, 0]], np.float32)
  assert metrics.pearson_cc(mask, mask) == pytest.approx(1.0)
  assert metrics.pearson_cc(mask, 1 - mask) == pytest.approx(-1.0)
  assert metrics.pearson_cc(mask, np.zeros((2, 2))) is None


def test_colour_actions_leave_the_mask_channel():
  """The mask is an extra observation channel the actions never touch."""
  environment = tf_pixel_env.PixelTFEnvironment(
      action_set_lib.get_action_set('color'), channels=3, extra_channels=1)
  rng = np.random.default_rng(1)
  images = rng.uniform(0, 1, (1, 5, 6, 3)).astype(np.float32)
  mask = np.round(rng.uniform(0, 1, (1, 5, 6, 1))).astype(np.float32)
  environment.start_episode(images, extra=mask)
  step = environment.step(tf.fill([1, 5, 6], 6))
  np.testing.assert_allclose(environment.images.numpy(), images * 1.05,
                             rtol=1e-6)
  np.testing.assert_array_equal(step.observation.numpy()[..., 3:], mask)
  np.testing.assert_allclose(step.observation.numpy()[..., :3], images * 1.05,
                             rtol=1e-6)


def test_guided_filter_keeps_an_unedited_image():
  image = (_photo((96, 72)) / 255.0).astype(np.float32)
  filtered = saliency_lib.guided_filter(image, image)
  assert np.abs(filtered - image).mean() < 0.01


def _network(filters):
  return model_io.build_network(model_io.ModelConfig(
      channels=3, extra_channels=1, action_set='color', filters=filters,
      input_transform='lab'))


def test_initialise_from_the_released_colour_fcn():
  path = shared_data_path('official_weights', 'fpop_with_convGRU',
                          '200model.npz')
  network = _network(64)
  gru_before = [w.copy() for w in network.layer_by_name(
      'conv_gru').get_weights()]
  note = saliency_lib.initialise_from(network, str(path))
  assert 'initialised' in note
  weights = np.load(path)
  kernel = network.layer_by_name('conv1').kernel.numpy()
  np.testing.assert_allclose(kernel[:, :, :3],
                             weights['conv1/W'].transpose(2, 3, 1, 0))
  assert not kernel[:, :, 3].any()
  np.testing.assert_allclose(
      network.layer_by_name('diconv5_v').kernel.numpy(),
      weights['diconv5/diconv/W'].transpose(2, 3, 1, 0))
  for before, after in zip(gru_before, network.layer_by_name(
      'conv_gru').get_weights()):
    np.testing.assert_array_equal(before, after)


def test_initialise_from_a_known_name(monkeypatch):
  network = _network(64)
  with pytest.raises(known_files.KnownFileError,
                     match="^init 'colour_init' does not exist and is not a "
                     'known name; did you mean color_init'):
    saliency_lib.initialise_from(network, 'colour_init')
  path = shared_data_path('official_weights', 'fpop_with_convGRU',
                          '200model.npz')
  monkeypatch.setenv(known_files.DATA_ROOT_ENV,
                     str(path.parent.parent.parent))
  note = saliency_lib.initialise_from(network, 'color_init')
  assert f'initialised from color_init ({path})' in note
  by_path = _network(64)
  saliency_lib.initialise_from(by_path, str(path))
  for name in ('conv1', 'diconv6_v'):
    np.testing.assert_array_equal(
        network.layer_by_name(name).kernel.numpy(),
        by_path.layer_by_name(name).kernel.numpy())


def test_initialise_from_a_run_of_another_width_fails(tmp_path):
  config = model_io.ModelConfig(channels=3, action_set='color', filters=8,
                                input_transform='lab')
  model_io.save_model(str(tmp_path), config, model_io.build_network(config))
  network = _network(8)
  saliency_lib.initialise_from(network, str(tmp_path))
  source = model_io.load_model(str(tmp_path))[1]
  np.testing.assert_array_equal(
      network.layer_by_name('diconv3').kernel.numpy(),
      source.layer_by_name('diconv3').kernel.numpy())
  with pytest.raises(saliency_lib.SaliencyEditError, match="filters.*edit_image.filters"):
    saliency_lib.initialise_from(_network(16), str(tmp_path))


def _write_inputs(folder):
  rng = np.random.default_rng(2)
  image = (rng.uniform(0, 1, (48, 64, 3)) * 80 + 60).astype(np.uint8)
  cv2.circle(image, (30, 24), 10, (40, 160, 200), -1)
  mask = np.zeros((48, 64), np.uint8)
  cv2.circle(mask, (30, 24), 12, 255, -1)
  paths = {name: os.path.join(folder, f'{name}.png')
           for name in ('image', 'mask', 'small_mask')}
  cv2.imwrite(paths['image'], image)
  cv2.imwrite(paths['mask'], mask)
  cv2.imwrite(paths['small_mask'], mask[:20, :30])
  return paths


def _run_cli(*flags):
  return subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.saliency_edit', *flags],
      cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS)


def test_command_line_edit_writes_outputs(tmp_path):
  paths = _write_inputs(str(tmp_path))
  output = str(tmp_path / 'out')
  completed = _run_cli(
      f'--image={paths["image"]}', f'--mask={paths["mask"]}',
      f'--output={output}', '--episodes=3', '--t_max=4',
      '--gin_bindings=edit_image.filters=8',
      '--gin_bindings=edit_image.update_interval=2')
  assert completed.returncode == 0, completed.stderr[-2000:]
  assert 'episode 3/3' in completed.stderr
  assert 'cc_fine_grained' in completed.stdout
  for suffix in ('_edited.png', '_actions.png', '_saliency.png',
                 '_metrics.json'):
    assert os.path.isfile(os.path.join(output, 'image' + suffix)), suffix
  edited = cv2.imread(os.path.join(output, 'image_edited.png'))
  assert edited.shape == (48, 64, 3)
  with open(os.path.join(output, 'image_metrics.json')) as f:
    report = json.load(f)
  assert report['input']['ssim'] == 1.0
  for row in ('input', 'random_agents', 'output'):
    assert set(report[row]) == {'cc_fine_grained', 'cc_spectral_residual',
                                'ssim'}
  assert len(report['per_step']) == 4
  assert report['action_set'] == 'color'
  assert report['guided_filter'] == {'radius': 4, 'eps': 1e-4}
  assert sum(v[0] for v in report['action_fractions'].values()) == (
      pytest.approx(1.0))


def test_command_line_errors_are_one_line(tmp_path):
  paths = _write_inputs(str(tmp_path))
  (missing, wrong_size), _ = cli_driver.run_cases('saliency_edit', [
      cli_driver.Case([f'--image={tmp_path}/nope.png',
                       f'--mask={paths["mask"]}', f'--output={tmp_path}/o']),
      cli_driver.Case([f'--image={paths["image"]}',
                       f'--mask={paths["small_mask"]}',
                       f'--output={tmp_path}/o'])], tmp_path / 'driver')
  for completed, text in ((missing, 'does not exist'),
                          (wrong_size, 'same size')):
    assert completed.status == 1
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and text in last, completed.stderr
    assert 'Traceback' not in completed.stderr


def test_a_window_that_does_not_divide_t_max_is_refused(tmp_path):
  # Checked once, by the task, before any file is read or written.
  with pytest.raises(saliency_lib.SaliencyEditError,
                     match=r't_max \(3\) must be a multiple of '
                     r'update_interval \(2\)'):
    saliency_lib.edit_image(str(tmp_path / 'no.png'),
                            str(tmp_path / 'no_mask.png'),
                            str(tmp_path / 'out'), t_max=3,
                            update_interval=2)
  assert not (tmp_path / 'out').exists()


def test_the_default_window_is_five_where_it_divides_t_max(monkeypatch,
                                                            tmp_path):
  windows = []

  class _Stop(Exception):
    pass

  def record(*args, **kwargs):
    del kwargs
    windows.append(args[5])
    raise _Stop()
  monkeypatch.setattr(saliency_lib, 'SaliencyEditor', record)
  paths = _write_inputs(tmp_path)
  for t_max in (10, 3):
    with pytest.raises(_Stop):
      saliency_lib.edit_image(paths['image'], paths['mask'],
                              str(tmp_path / 'out'),
                              t_max=t_max, filters=8,
                              progress_stream=io.StringIO())
  assert windows == [5, 3]

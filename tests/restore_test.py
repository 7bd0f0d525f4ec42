"""Tests of the dependency radius, tiled restoration and the restore command."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import cli_driver
from conftest import HANG_TIMEOUT_SECONDS
import seeded_models
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.io import images as image_io
from pixelrl_tf.jobs import export_lib
from pixelrl_tf.jobs import restore_lib
from pixelrl_tf.models import model_io
from pixelrl_tf.models import restorers
from pixelrl_tf.networks import fcn_actor_critic
from pixelrl_tf.serving import restoration_module
from pixelrl_tf.serving import tiling

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T_MAX = 3


def seeded_network(use_conv_gru=True, channels=1, filters=8, seed=0,
                   head_scale=20.0):
  """A network with reproducible weights and varied greedy actions."""
  network = fcn_actor_critic.FcnActorCritic(
      tf.TensorSpec([None, None, channels], tf.float32), 9, filters=filters,
      use_conv_gru=use_conv_gru)
  network.create_variables()
  return seeded_models.seed_weights(network, seed, head_scale)


def _radius_of_gradient(gradient, centre):
  rows, cols = np.nonzero(np.abs(gradient).sum(axis=-1))
  return max(centre - rows.min(), rows.max() - centre, centre - cols.min(),
             cols.max() - centre)


def test_per_step_radii_match_gradients():
  # Empirical receptive radii of one step (cf. tests/network_test.py), with
  # a non-zero incoming GRU state so that every path is live.
  size, centre = 61, 30
  network = seeded_network(filters=4)
  image = tf.Variable(tf.random.uniform([1, size, size, 1], seed=1))
  state = tf.Variable(tf.random.normal([1, size, size, 4], seed=2))

  def gradients(output_fn):
    with tf.GradientTape() as tape:
      (logits, _), new_state = network(image, network_state=state)
      value = output_fn(logits, new_state)[0, centre, centre]
    return tape.gradient(value, image).numpy()[0]

  image_to_state, state_to_state, head = restoration_module.policy_step_radius(
      network)
  assert (image_to_state, state_to_state, head) == (17, 2, 1)
  assert _radius_of_gradient(
      gradients(lambda l, s: s[..., 0]), centre) == image_to_state
  assert _radius_of_gradient(
      gradients(lambda l, s: l[..., 0]), centre) == image_to_state + head
  # State paths (the network stops gradients into its incoming state, so
  # call the GRU cell and the head directly): h -> h' and h -> logits.
  cell = network.layer_by_name('conv_gru')
  features = tf.random.normal([1, size, size, 4], seed=3)
  head_layer = network.layer_by_name('conv8_pi')
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(state)
    new_state = cell(features, state)
    logits = head_layer(new_state)
    new_state_value = new_state[0, centre, centre, 0]
    logits_value = logits[0, centre, centre, 0]
  assert _radius_of_gradient(tape.gradient(new_state_value, state).numpy()[0],
                             centre) == state_to_state
  assert _radius_of_gradient(tape.gradient(logits_value, state).numpy()[0],
                             centre) == state_to_state + head
  plain = seeded_network(use_conv_gru=False, filters=4)
  features_radius, none, plain_head = restoration_module.policy_step_radius(
      plain)
  assert none is None and features_radius + plain_head == 16
  with tf.GradientTape() as tape:
    (logits, _), _ = plain(image)
    value = logits[0, centre, centre, 0]
  assert _radius_of_gradient(tape.gradient(value, image).numpy()[0],
                             centre) == 16


def test_filter_radius_by_perturbation():
  # Which input pixels can change the centre output of each action's filter:
  # perturb every pixel of a 9x9 image in turn.
  size, centre = 9, 4
  rng = np.random.default_rng(0)
  base = rng.random((size, size, 1)).astype(np.float32)
  batch = np.repeat(base[None], size * size + 1, axis=0)
  for index in range(size * size):
    batch[index + 1, index // size, index % size, 0] += 0.7
  radii = []
  for action in action_set_lib.DENOISE_ACTIONS:
    outputs = action.fn(tf.constant(batch)).numpy()[:, centre, centre, 0]
    changed = np.nonzero(outputs[1:] != outputs[0])[0]
    rows, cols = changed // size, changed % size
    radii.append(int(max(np.abs(rows - centre).max(),
                         np.abs(cols - centre).max())))
  assert max(radii) == restoration_module.DEFAULT_FILTER_RADIUS


@pytest.mark.parametrize('t_max', [1, 2, 5, 15])
def test_dependency_radius(t_max):
  gru = seeded_network(filters=4)
  plain = seeded_network(use_conv_gru=False, filters=4)
  assert restoration_module.dependency_radius(gru, t_max) == 18 * t_max
  assert restoration_module.dependency_radius(plain, t_max) == 16 * t_max
  # A filter wider than the network's per-step reach would dominate.
  assert restoration_module.dependency_radius(
      plain, t_max, filter_radius=20) == 20 * t_max


def test_tiles_partition_the_image():
  height, width = 50, 37
  covered = np.zeros((height, width), np.int32)
  for tile in tiling.tiles(height, width, 16, 5):
    top, bottom, left, right = tile.core
    covered[top:bottom, left:right] += 1
    w_top, w_bottom, w_left, w_right = tile.window
    assert (max(0, top - 5), min(height, bottom + 5)) == (w_top, w_bottom)
    assert (max(0, left - 5), min(width, right + 5)) == (w_left, w_right)
  np.testing.assert_array_equal(covered, 1)
  assert len(list(tiling.tiles(height, width, None, 5))) == 1


@pytest.mark.parametrize('use_conv_gru,channels', [(True, 1), (False, 1),
                                                   (True, 3)])
def test_tiled_restoration_equals_untiled(use_conv_gru, channels):
  network = seeded_network(use_conv_gru=use_conv_gru, channels=channels)
  action_set = action_set_lib.DENOISE_ACTIONS
  module = restoration_module.RestorationModule(network, action_set, 2)
  margin = module.dependency_radius
  assert margin == (36 if use_conv_gru else 32)
  rng = np.random.default_rng(2)
  # Larger than a tile in both axes, with odd sizes, so tiles meet the true
  # image borders on every side as well as each other.
  image = rng.random((1, 181, 163, channels)).astype(np.float32)

  def restore_fn(window):
    outputs = module.restore(tf.constant(window))
    return {key: value.numpy() for key, value in outputs.items()}

  whole = restore_fn(image)
  assert len(np.unique(whole['actions'])) >= 4
  tiled = tiling.restore_tiled(restore_fn, image[0], 40, margin)
  assert len(list(tiling.tiles(181, 163, 40, margin))) == 25
  np.testing.assert_array_equal(tiled['actions'], whole['actions'][0])
  np.testing.assert_allclose(tiled['restored'], whole['restored'][0], rtol=0,
                             atol=1e-6)
  np.testing.assert_array_equal(tiled['restored_uint8'],
                                whole['restored_uint8'][0])
  # The margin is needed: without it the tiles' borders show.
  seams = tiling.restore_tiled(restore_fn, image[0], 40, 0)
  assert (seams['actions'] != whole['actions'][0]).any()


def _write_images(folder):
  rng = np.random.default_rng(3)
  os.makedirs(folder, exist_ok=True)
  gray = (rng.random((41, 57)) * 255).astype(np.uint8)
  colour = (rng.random((30, 23, 3)) * 255).astype(np.uint8)
  cv2.imwrite(os.path.join(folder, 'gray.png'), gray)
  cv2.imwrite(os.path.join(folder, 'colour.jpg'), colour)
  return {'gray': gray.shape[:2], 'colour': colour.shape[:2]}


@pytest.fixture(scope='module')
def models(tmp_path_factory):
  """A gray run exported as a SavedModel, and a colour run directory."""
  base = tmp_path_factory.mktemp('restore')
  gray_config = model_io.ModelConfig(filters=8, t_max=2)
  gray_run = str(base / 'gray_run')
  model_io.save_model(gray_run, gray_config,
                      seeded_network(filters=8))
  exported = export_lib.export_model(gray_run, str(base / 'models'), 'gray')
  colour_config = model_io.ModelConfig(filters=8, t_max=2, channels=3)
  colour_run = str(base / 'colour_run')
  model_io.save_model(colour_run, colour_config,
                      seeded_network(filters=8, channels=3))
  return {'saved_model': exported.model_dir, 'gray_run': gray_run,
          'colour_run': colour_run, 'served_model': str(base / 'models' /
                                                         'gray')}


def _restore_cli(*args):
  return subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.restore', *args],
      capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS, check=False,
      cwd=PROJECT_ROOT)


def test_cli_with_a_saved_model(models, tmp_path):
  sizes = _write_images(tmp_path / 'in')
  ran = _restore_cli(f'--model={models["saved_model"]}',
                     f'--input={tmp_path / "in"}',
                     f'--output={tmp_path / "out"}')
  assert ran.returncode == 0, ran.stderr[-2000:]
  assert 'colour image converted to gray' in ran.stdout
  for name, size in sizes.items():
    restored = cv2.imread(str(tmp_path / 'out' / f'{name}.png'),
                          cv2.IMREAD_UNCHANGED)
    assert restored.shape == size  # Gray model: one channel.
  assert sorted(os.listdir(tmp_path / 'out')) == ['colour.png', 'gray.png']
  # The same file through the in-process path, whole and tiled, through a
  # run directory and the served model's folder (its latest version).
  image = image_io.read_image(tmp_path / 'in' / 'gray.png', channels=1)
  for model in (models['gray_run'], models['served_model']):
    restorer = restorers.load_restorer(model)
    whole = restore_lib.restore_image(restorer, image, tile_size=0)
    tiled = restore_lib.restore_image(restorer, image, tile_size=16)
    np.testing.assert_array_equal(tiled['actions'], whole['actions'])
    np.testing.assert_array_equal(tiled['restored_uint8'],
                                  whole['restored_uint8'])
    np.testing.assert_array_equal(
        whole['restored_uint8'][..., 0],
        cv2.imread(str(tmp_path / 'out' / 'gray.png'), cv2.IMREAD_UNCHANGED))


def test_cli_with_a_colour_run_and_action_maps(models, tmp_path):
  sizes = _write_images(tmp_path / 'in')
  ran = _restore_cli(f'--model={models["colour_run"]}',
                     f'--input={tmp_path / "in"}',
                     f'--output={tmp_path / "out"}', '--save_actions',
                     '--tile_size=20')
  assert ran.returncode == 0, ran.stderr[-2000:]
  assert 'gray image converted to colour' in ran.stdout
  for name, size in sizes.items():
    restored = cv2.imread(str(tmp_path / 'out' / f'{name}.png'),
                          cv2.IMREAD_UNCHANGED)
    assert restored.shape == size + (3,)
    strip = cv2.imread(str(tmp_path / 'out' / f'{name}_actions.png'))
    assert strip.shape[0] > 2 * size[0] and strip.shape[1] > 3 * size[1]
    with Image.open(tmp_path / 'out' / f'{name}_actions.gif') as gif:
      assert gif.n_frames >= 1
  # The tiled CLI run equals an untiled in-process one.
  image = image_io.read_image(tmp_path / 'in' / 'colour.jpg', channels=3,
                              bgr=True)
  whole = restore_lib.restore_image(
      restorers.load_restorer(models['colour_run']), image, tile_size=0)
  np.testing.assert_array_equal(
      whole['restored_uint8'],
      cv2.imread(str(tmp_path / 'out' / 'colour.png'), cv2.IMREAD_UNCHANGED))


def test_cli_single_file(models, tmp_path):
  _write_images(tmp_path / 'in')
  ran = _restore_cli(f'--model={models["gray_run"]}',
                     f'--input={tmp_path / "in" / "gray.png"}',
                     f'--output={tmp_path / "out"}')
  assert ran.returncode == 0, ran.stderr[-2000:]
  assert os.listdir(tmp_path / 'out') == ['gray.png']


def test_cli_bad_inputs_fail_with_one_line(models, tmp_path):
  os.makedirs(tmp_path / 'empty')
  os.makedirs(tmp_path / 'corrupt')
  (tmp_path / 'corrupt' / 'broken.png').write_bytes(b'not an image at all')
  _write_images(tmp_path / 'corrupt')
  cases = {
      'does not exist': [f'--input={tmp_path / "missing.png"}'],
      'no image files': [f'--input={tmp_path / "empty"}'],
      'cannot decode': [f'--input={tmp_path / "corrupt"}'],
  }
  outcomes, _ = cli_driver.run_cases(
      'restore', [cli_driver.Case([f'--model={models["gray_run"]}', *args,
                                   f'--output={tmp_path / "out"}'])
                  for args in cases.values()], tmp_path / 'driver')
  for message, ran in zip(cases, outcomes):
    assert ran.status != 0, message
    assert ran.stderr.strip().count('\n') == 0, ran.stderr
    assert ran.stderr.startswith('error: ') and message in ran.stderr
  # Nothing is written when any input is bad.
  assert not os.path.exists(tmp_path / 'out')
  with pytest.raises(restore_lib.RestoreError, match='does not exist'):
    restorers.load_restorer(str(tmp_path / 'no_model'))
  with pytest.raises(restore_lib.RestoreError, match='no SavedModel'):
    restorers.load_restorer(str(tmp_path / 'empty'))


@pytest.mark.parametrize('use_conv_gru', [True, False])
def test_xla_restoration_equals_the_plain_graph(use_conv_gru):
  network = seeded_network(use_conv_gru=use_conv_gru, channels=1)
  action_set = action_set_lib.DENOISE_ACTIONS
  image = tf.constant(
      np.random.default_rng(3).random((1, 37, 29, 1)).astype(np.float32))
  plain = restoration_module.RestorationModule(
      network, action_set, 3).restore(image)
  compiled = restoration_module.RestorationModule(
      network, action_set, 3, jit_compile=True).restore(image)
  # XLA fuses the network's arithmetic differently: a near-tie between two
  # actions may go the other way at a rare pixel, nothing more.
  assert np.mean(compiled['actions'].numpy() ==
                 plain['actions'].numpy()) >= 0.99
  differs = np.abs(compiled['restored'].numpy() -
                   plain['restored'].numpy()) > 1e-4
  assert np.mean(differs) <= 0.01

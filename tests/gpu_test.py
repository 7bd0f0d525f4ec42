"""Checks that need a GPU (skipped without one; run by bench/gpu_check.sh).

* XLA training gives the weights of graph training within a tolerance.
* Mixed-precision training (`mixed_float16` with loss scaling, and
  `mixed_bfloat16`) follows float32 training: from the same seeded weights,
  over the same episodes and data, its total update of the network points
  the way the float32 run's does and has about its size (an update that is
  skipped, zero, reversed or noise fails), and the weights stay finite.
* Mirrored training over two or more local GPUs gives the weights of one
  replica with the same global batch; with fewer than two GPUs it is
  skipped, saying so (one replica would only be compared with itself).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT

GPUS = tf.config.list_physical_devices('GPU')

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not GPUS, reason='needs a GPU'),
]

TINY = str(PROJECT_ROOT / 'configs' / 'tiny.gin')
EPISODES = 3
# The mixed-precision runs keep a checkpoint after every episode, so that
# the update from the first checkpoint to the last can be compared.
UPDATE_EPISODES = 4
UPDATE_BINDINGS = ('Cadence.checkpoint_interval = 1',
                   f'Cadence.keep_checkpoints = {UPDATE_EPISODES}',
                   'Scale.update_recompute = False')
# Both runs start from the same seeded weights and draw the same noise,
# crops and action-sampling numbers; reduced precision changes only the
# rounding and the actions sampled at pixels whose probabilities nearly tie
# with the draw. The updates then nearly coincide: these bounds leave a wide
# margin for that, and an update that is skipped, zero, reversed or noise
# falls outside them.
MIN_UPDATE_COSINE = 0.5
UPDATE_NORM_RATIO = (0.5, 2.0)


def _train(root_dir, *bindings, batch_size=4, episodes=EPISODES):
  result = subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.train', f'--gin_file={TINY}',
       f'--root_dir={root_dir}',
       f'--gin_bindings=Optimization.num_episodes={episodes}',
       f'--gin_bindings=TrainingData.batch_size={batch_size}',
       '--gin_bindings=Cadence.final_report=False',
       *[f'--gin_bindings={b}' for b in bindings]],
      cwd=PROJECT_ROOT, capture_output=True, text=True,
      timeout=HANG_TIMEOUT_SECONDS)
  assert result.returncode == 0, result.stderr
  return result


def _weights(root_dir, prefix=None):
  """The network's variables in a checkpoint (by default the latest)."""
  prefix = prefix or tf.train.latest_checkpoint(
      os.path.join(root_dir, 'train'))
  reader = tf.train.load_checkpoint(prefix)
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
          if n.startswith('network')}


def _assert_weights_close(got_dir, want_dir):
  want, got = _weights(want_dir), _weights(got_dir)
  assert want.keys() == got.keys()
  for name, value in want.items():
    np.testing.assert_allclose(got[name], value, rtol=1e-3, atol=1e-4,
                               err_msg=name)


def _update(root_dir):
  """Each network variable's change from the first checkpoint to the last."""
  state = tf.train.get_checkpoint_state(os.path.join(root_dir, 'train'))
  paths = list(state.all_model_checkpoint_paths)
  assert len(paths) == UPDATE_EPISODES, paths
  first, last = _weights(root_dir, paths[0]), _weights(root_dir, paths[-1])
  for name, value in last.items():
    assert np.all(np.isfinite(value)), name
  return {name: last[name].astype(np.float64) - first[name] for name in last}


@pytest.fixture(scope='module')
def float32_update(tmp_path_factory):
  """The float32 run's update, shared by the mixed-precision tests."""
  root_dir = tmp_path_factory.mktemp('float32')
  _train(root_dir, *UPDATE_BINDINGS, episodes=UPDATE_EPISODES)
  return _update(root_dir)


@pytest.mark.parametrize('policy', ['mixed_float16', 'mixed_bfloat16'])
def test_mixed_precision_training_follows_float32(tmp_path, policy,
                                                  float32_update):
  _train(tmp_path, *UPDATE_BINDINGS, f"Scale.mixed_precision = '{policy}'",
         episodes=UPDATE_EPISODES)
  update = _update(tmp_path)
  assert update.keys() == float32_update.keys()
  want = np.concatenate([v.ravel() for v in float32_update.values()])
  got = np.concatenate([update[name].ravel() for name in float32_update])
  want_norm, got_norm = np.linalg.norm(want), np.linalg.norm(got)
  assert want_norm > 0 and got_norm > 0, 'an update was not applied'
  cosine = float(want @ got) / (want_norm * got_norm)
  ratio = got_norm / want_norm
  assert cosine >= MIN_UPDATE_COSINE, (
      f'{policy} update points elsewhere than float32: cosine {cosine:.3f}')
  low, high = UPDATE_NORM_RATIO
  assert low <= ratio <= high, (
      f'{policy} update is {ratio:.3f} times the size of float32\'s')


def test_xla_training_matches_the_graph_within_tolerance(tmp_path):
  _train(tmp_path / 'graph')
  _train(tmp_path / 'xla', 'Scale.jit_compile = True')
  _assert_weights_close(tmp_path / 'xla', tmp_path / 'graph')


@pytest.mark.skipif(
    len(GPUS) < 2,
    reason=f'needs at least 2 GPUs to compare mirrored replicas with one '
    f'replica (this machine has {len(GPUS)})')
def test_mirrored_over_the_local_gpus_matches_one_replica(tmp_path):
  batch_size = 2 * len(GPUS)
  _train(tmp_path / 'one', batch_size=batch_size)
  result = _train(tmp_path / 'mirrored', "Scale.strategy = 'mirrored'",
                  batch_size=batch_size)
  assert 'Using MirroredStrategy' in result.stderr
  _assert_weights_close(tmp_path / 'mirrored', tmp_path / 'one')

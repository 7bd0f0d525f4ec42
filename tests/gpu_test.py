"""Checks that need a GPU (skipped without one; see bench/gpu_check.sh)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import PROJECT_ROOT

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not tf.config.list_physical_devices('GPU'),
                       reason='needs a GPU'),
]

TINY = str(PROJECT_ROOT / 'configs' / 'tiny.gin')


def _train(root_dir, *bindings):
  result = subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.train', f'--gin_file={TINY}',
       f'--root_dir={root_dir}', '--gin_bindings=train.num_episodes=3',
       '--gin_bindings=train.batch_size=4',
       '--gin_bindings=train.final_report=False',
       *[f'--gin_bindings={b}' for b in bindings]],
      cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  return result


def _weights(root_dir):
  reader = tf.train.load_checkpoint(
      tf.train.latest_checkpoint(os.path.join(root_dir, 'train')))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
          if n.startswith('network')}


def _assert_weights_close(got_dir, want_dir):
  want, got = _weights(want_dir), _weights(got_dir)
  for name, value in want.items():
    np.testing.assert_allclose(got[name], value, rtol=1e-3, atol=1e-4,
                               err_msg=name)


def test_mirrored_over_the_local_gpus(tmp_path):
  _train(tmp_path / 'one')
  _train(tmp_path / 'mirrored', "train.strategy = 'mirrored'")
  _assert_weights_close(tmp_path / 'mirrored', tmp_path / 'one')


@pytest.mark.parametrize('policy', ['mixed_float16', 'mixed_bfloat16'])
def test_mixed_precision_training_runs_and_stays_finite(tmp_path, policy):
  _train(tmp_path, f"train.mixed_precision = '{policy}'",
         'train.update_recompute = False')
  for value in _weights(tmp_path).values():
    assert np.all(np.isfinite(value))


def test_xla_training_matches_the_graph_within_tolerance(tmp_path):
  _train(tmp_path / 'graph')
  _train(tmp_path / 'xla', 'train.jit_compile = True')
  _assert_weights_close(tmp_path / 'xla', tmp_path / 'graph')

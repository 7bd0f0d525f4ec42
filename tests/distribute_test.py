"""Training under tf.distribute: mirrored replicas and several workers.

Both must give the weights of one replica with the same global batch (every
random draw is made for the global batch and sliced per replica, and the
replicas' gradients are summed), and both must resume.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT

TINY = str(PROJECT_ROOT / 'configs' / 'tiny.gin')
COMMON = ['Optimization.num_episodes = 3', 'TrainingData.batch_size = 4',
          'Cadence.eval_interval = 100', 'Cadence.final_report = False',
          'Cadence.image_summary_interval = 100', 'Cadence.checkpoint_interval = 1',
          'Scale.update_recompute = True']


def _command(root_dir, *bindings):
  return [sys.executable, '-m', 'pixelrl_tf.train', f'--gin_file={TINY}',
          f'--root_dir={root_dir}'] + [
              f'--gin_bindings={b}' for b in COMMON + list(bindings)]


def _run(root_dir, *bindings, env=None):
  result = subprocess.run(_command(root_dir, *bindings), cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS,
                          env=env)
  assert result.returncode == 0, result.stderr
  return result


def _weights(root_dir):
  prefix = tf.train.latest_checkpoint(os.path.join(root_dir, 'train'))
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name.startswith(('network', 'episode'))}


def _assert_same_weights(got_dir, want_dir):
  want, got = _weights(want_dir), _weights(got_dir)
  assert want.keys() == got.keys()
  for name, value in want.items():
    np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=2e-5,
                               err_msg=name)


@pytest.fixture(scope='module')
def one_replica(tmp_path_factory):
  """A one-replica run of the same global batch, shared by the tests."""
  root_dir = tmp_path_factory.mktemp('one')
  _run(root_dir)
  return root_dir


def test_mirrored_over_two_cpu_devices_matches_one_replica(tmp_path,
                                                            one_replica):
  two = ["Scale.strategy = 'mirrored'", 'Scale.virtual_cpu_devices = 2']
  # Stopped after one episode and rerun: the weights of one replica that
  # was never stopped (a wrong split or a wrong resume would differ).
  _run(tmp_path / 'two', *two, 'RunControl.stop_after_episodes = 1')
  result = _run(tmp_path / 'two', *two)
  assert 'resuming from' in result.stderr
  assert 'Using MirroredStrategy' in result.stderr
  _assert_same_weights(tmp_path / 'two', one_replica)


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('localhost', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _run_workers(root_dir, *bindings):
  ports = _free_ports(2)
  cluster = {'worker': [f'localhost:{port}' for port in ports]}
  processes = []
  # The workers' own temporary folder: the other worker's checkpoints go
  # there during the run and must be gone after it.
  scratch = pathlib.Path(f'{root_dir}_tmp')
  scratch.mkdir(exist_ok=True)
  for index in range(2):
    env = dict(os.environ, TMPDIR=str(scratch), TF_CONFIG=json.dumps(
        {'cluster': cluster, 'task': {'type': 'worker', 'index': index}}))
    processes.append(subprocess.Popen(
        _command(root_dir, "Scale.strategy = 'multi_worker'",
                 f'Scale.worker_timeout_seconds = {HANG_TIMEOUT_SECONDS}', *bindings),
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True))
  outputs = [p.communicate(timeout=HANG_TIMEOUT_SECONDS) for p in processes]
  for process, (_, stderr) in zip(processes, outputs):
    assert process.returncode == 0, stderr
  assert not list(scratch.glob('pixelrl_worker_*'))
  return [stderr for _, stderr in outputs]


def test_two_workers_match_one_replica_and_resume(tmp_path, one_replica):
  _run_workers(tmp_path / 'workers', 'RunControl.stop_after_episodes = 2')
  # Only the chief (worker 0) wrote the run directory.
  assert (tmp_path / 'workers' / 'model.json').exists()
  outputs = _run_workers(tmp_path / 'workers')
  assert all('resuming from' in text for text in outputs)
  _assert_same_weights(tmp_path / 'workers', one_replica)

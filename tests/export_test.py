"""Tests of the in-graph restoration module and the TF Serving export."""

import errno
import http.server
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

import in_process_restore
import seeded_models
from conftest import (HANG_TIMEOUT_SECONDS, load_module_from_file,
                      shared_data_path)

from pixelrl_tf.jobs import export_lib
from pixelrl_tf.jobs import import_weights_lib
from pixelrl_tf.models import model_io
from pixelrl_tf.models import restorers
from pixelrl_tf.serving import restoration_module

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T_MAX = 3
SIZES = [(1, 1), (5, 7), (33, 17), (64, 48)]
VARIANTS = {
    'gru': model_io.ModelConfig(filters=8, t_max=T_MAX),
    'fcn': model_io.ModelConfig(filters=8, t_max=T_MAX, use_conv_gru=False),
    'gru_rmc': model_io.ModelConfig(filters=8, t_max=T_MAX,
                                    use_reward_map_conv=True),
    'colour': model_io.ModelConfig(filters=8, t_max=T_MAX, channels=3),
}


@pytest.fixture(scope='module')
def exports(tmp_path_factory):
  """Exports every variant once: {variant: (config, network, ExportResult)}."""
  base = tmp_path_factory.mktemp('export')
  results = {}
  for variant, config in VARIANTS.items():
    run_dir = str(base / 'runs' / variant)
    network = seeded_models.make_run(run_dir, config)
    results[variant] = (config, network, export_lib.export_model(
        run_dir, str(base / 'models'), variant))
  return results


def _images(shape, seed=1):
  return np.random.default_rng(seed).random(shape).astype(np.float32)


@pytest.mark.parametrize('variant', list(VARIANTS))
def test_serving_default_equals_in_process_restore(exports, variant):
  config, network, result = exports[variant]
  assert result.version == 1
  assert result.model_dir.endswith(os.path.join(variant, '1'))
  loaded = tf.saved_model.load(result.model_dir)
  serve = loaded.signatures['serving_default']
  serve_uint8 = loaded.signatures['restore_uint8']
  action_set = config.get_action_set()
  seen_actions = set()
  for height, width in SIZES + [(9, 11)]:
    batch = 2 if (height, width) == (9, 11) else 1
    images = _images((batch, height, width, config.channels))
    outputs = serve(images=tf.constant(images))
    restored, actions = in_process_restore.greedy_restore(
        network, action_set, images, config.t_max)
    assert outputs['restored'].dtype == tf.float32
    assert outputs['actions'].dtype == tf.int32
    assert outputs['actions'].shape == (batch, config.t_max, height, width)
    np.testing.assert_allclose(outputs['restored'].numpy(), restored.numpy(),
                               rtol=0, atol=1e-6)
    np.testing.assert_array_equal(outputs['actions'].numpy(), actions.numpy())
    expected_uint8 = np.floor(np.clip(outputs['restored'].numpy(), 0, 1) *
                              np.float32(255) + np.float32(0.5))
    np.testing.assert_array_equal(outputs['restored_uint8'].numpy(),
                                  expected_uint8.astype(np.uint8))
    seen_actions.update(np.unique(actions.numpy()).tolist())
    # The uint8 signature is the float one on images / 255.
    pixels = (images * 255).astype(np.uint8)
    from_uint8 = serve_uint8(images=tf.constant(pixels))
    from_float = serve(images=tf.constant(pixels.astype(np.float32) / 255))
    for key in ('restored', 'restored_uint8', 'actions'):
      np.testing.assert_array_equal(from_uint8[key].numpy(),
                                    from_float[key].numpy())
  assert len(seen_actions) >= 3  # The comparison covers several actions.


def test_restore_steps_and_metadata(exports):
  config, network, result = exports['gru']
  loaded = tf.saved_model.load(result.model_dir)
  images = _images((1, 12, 10, 1))
  steps = loaded.signatures['restore_steps'](images=tf.constant(images))
  assert steps['images'].shape == (1, T_MAX + 1, 12, 10, 1)
  np.testing.assert_array_equal(steps['images'][:, 0].numpy(), images)
  restored = loaded.signatures['serving_default'](images=tf.constant(images))
  np.testing.assert_array_equal(steps['images'][:, -1].numpy(),
                                restored['restored'].numpy())
  metadata = loaded.signatures['metadata']()
  assert int(metadata['t_max']) == T_MAX
  assert int(metadata['channels']) == 1
  assert int(metadata['dependency_radius']) == 18 * T_MAX
  action_set = config.get_action_set()
  assert [n.decode() for n in metadata['action_names'].numpy()] == list(
      action_set.names)
  np.testing.assert_array_equal(metadata['action_colors'].numpy(),
                                action_set.colors)
  with open(os.path.join(result.model_dir, restorers.MODEL_CONFIG_ASSET)) as f:
    assert model_io.ModelConfig.from_json(f.read()) == config


def test_channel_mismatch_is_an_error(exports):
  config, network, result = exports['colour']
  gray = _images((1, 8, 8, 1))
  with pytest.raises(ValueError, match='3-channel'):
    restoration_module.check_images(network, gray)
  loaded = tf.saved_model.load(result.model_dir)
  with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
    loaded.signatures['serving_default'](images=tf.constant(gray))
  _, gray_network, _ = exports['gru']
  with pytest.raises(ValueError, match='1-channel'):
    restoration_module.check_images(gray_network, _images((1, 8, 8, 3)))


def _run(args, **kwargs):
  return subprocess.run(args, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS,
                        check=False, **kwargs)


def test_saved_model_cli_show_and_run(exports, tmp_path):
  config, network, result = exports['gru']
  shown = _run(['saved_model_cli', 'show', '--dir', result.model_dir, '--all'])
  assert shown.returncode == 0, shown.stderr
  for text in ("signature_def['serving_default']", "inputs['images']",
               "outputs['restored']", "outputs['restored_uint8']",
               "outputs['actions']", "signature_def['restore_uint8']",
               'dtype: DT_UINT8', f'shape: (-1, {T_MAX}, -1, -1)',
               'shape: (-1, -1, -1, 1)'):
    assert text in shown.stdout
  images = _images((1, 9, 11, 1))
  np.save(tmp_path / 'images.npy', images)
  ran = _run(['saved_model_cli', 'run', '--dir', result.model_dir,
              '--tag_set', 'serve', '--signature_def', 'serving_default',
              '--inputs', f'images={tmp_path / "images.npy"}',
              '--outdir', str(tmp_path / 'out')])
  assert ran.returncode == 0, ran.stderr
  assert 'Result for output key restored' in ran.stdout
  assert 'Result for output key actions' in ran.stdout
  restored, actions = in_process_restore.greedy_restore(
      network, config.get_action_set(), images, T_MAX)
  np.testing.assert_allclose(np.load(tmp_path / 'out' / 'restored.npy'),
                             restored.numpy(), rtol=0, atol=1e-6)
  np.testing.assert_array_equal(np.load(tmp_path / 'out' / 'actions.npy'),
                                actions.numpy())
  # Python literals work with --input_exprs too (saved_model_cli evaluates
  # only literals, not numpy calls).
  literal = _run(['saved_model_cli', 'run', '--dir', result.model_dir,
                  '--tag_set', 'serve', '--signature_def', 'restore_uint8',
                  '--input_exprs', 'images=[[[[10], [200]], [[30], [90]]]]'])
  assert literal.returncode == 0, literal.stderr
  assert 'Result for output key restored_uint8' in literal.stdout


_FRESH_PROCESS_SCRIPT = textwrap.dedent("""
    import importlib.util, sys
    import numpy as np
    import tensorflow as tf
    assert importlib.util.find_spec('pixelrl_tf') is None
    model_dir, images_path, out_path = sys.argv[1:]
    loaded = tf.saved_model.load(model_dir)
    outputs = loaded.signatures['serving_default'](
        images=tf.constant(np.load(images_path)))
    np.savez(out_path, **{k: v.numpy() for k, v in outputs.items()})
    assert not any(name.startswith('pixelrl_tf') for name in sys.modules)
    """)


def test_saved_model_runs_without_the_package(exports, tmp_path):
  config, network, result = exports['fcn']
  images = _images((1, 20, 13, 1))
  np.save(tmp_path / 'images.npy', images)
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  ran = _run([sys.executable, '-c', _FRESH_PROCESS_SCRIPT, result.model_dir,
              str(tmp_path / 'images.npy'), str(tmp_path / 'out.npz')],
             cwd=str(tmp_path), env=env)
  assert ran.returncode == 0, ran.stderr[-2000:]
  outputs = np.load(tmp_path / 'out.npz')
  restored, actions = in_process_restore.greedy_restore(
      network, config.get_action_set(), images, T_MAX)
  np.testing.assert_allclose(outputs['restored'], restored.numpy(), rtol=0,
                             atol=1e-6)
  np.testing.assert_array_equal(outputs['actions'], actions.numpy())


@pytest.mark.parametrize('variant', ['gru', 'fcn'])
def test_policy_saver_export_acts_greedily(exports, variant):
  config, network, result = exports[variant]
  assert result.policy_dir.endswith(
      os.path.join(variant + export_lib.POLICY_SUFFIX, '1'))
  policy = tf.saved_model.load(result.policy_dir)
  assert {'action', 'get_initial_state'} <= set(policy.signatures)
  action_fn = policy.signatures['action']
  action_set = config.get_action_set()
  batch, height, width = 2, 9, 11
  images = _images((batch, height, width, 1))
  _, expected = in_process_restore.greedy_restore(network, action_set, images,
                                                  T_MAX)
  state = policy.signatures['get_initial_state'](
      batch_size=tf.constant(batch))
  assert len(state) == (1 if config.use_conv_gru else 0)
  observation = tf.constant(images)
  for step in range(T_MAX):
    step_type = ts.StepType.FIRST if step == 0 else ts.StepType.MID
    inputs = {
        '0/step_type': tf.fill([batch], tf.constant(step_type, tf.int32)),
        '0/reward': tf.zeros([batch, height, width]),
        '0/discount': tf.ones([batch]),
        '0/observation': observation,
    }
    if config.use_conv_gru:
      inputs['1'] = next(iter(state.values()))
    outputs = action_fn(**inputs)
    assert outputs['action'].shape == (batch, height, width)
    np.testing.assert_array_equal(outputs['action'].numpy(),
                                  expected[:, step].numpy())
    observation = action_set.apply(observation, outputs['action'])
    state = {'state': outputs['state']} if config.use_conv_gru else {}


def test_versions_count_up_and_are_never_overwritten(exports, tmp_path):
  _, _, result = exports['gru']
  export_base = os.path.dirname(os.path.dirname(result.model_dir))
  run_dir = os.path.join(os.path.dirname(export_base), 'runs', 'gru')
  exported = _run([sys.executable, '-m', 'pixelrl_tf.export',
                   f'--root_dir={run_dir}', f'--export_base={export_base}',
                   '--model_name=gru'], cwd=PROJECT_ROOT)
  assert exported.returncode == 0, exported.stderr[-2000:]
  assert 'exported version 2' in exported.stdout
  for name in ('gru', 'gru' + export_lib.POLICY_SUFFIX):
    assert sorted(os.listdir(os.path.join(export_base, name))) == ['1', '2']
  # The command's one-line error for this is checked in bad_input_test.
  for version in (1, 2):
    with pytest.raises(FileExistsError, match='already exists'):
      export_lib.export_model(run_dir, export_base, 'gru', version=version)
  with pytest.raises(ValueError):
    export_lib.export_model(run_dir, export_base, '../escape')
  os.makedirs(os.path.join(export_base, 'gru' + export_lib.POLICY_SUFFIX, '7'))
  os.makedirs(os.path.join(export_base, 'gru', 'not_a_version'))
  assert export_lib.next_version(
      os.path.join(export_base, 'gru'),
      os.path.join(export_base, 'gru' + export_lib.POLICY_SUFFIX)) == 8
  assert export_lib.next_version(str(tmp_path / 'absent')) == 1


def _load_client():
  return load_module_from_file(
      os.path.join(PROJECT_ROOT, 'examples', 'serving_client.py'))


class _FakeServing(http.server.BaseHTTPRequestHandler):
  """Answers `:predict` like TF Serving's REST API (row format)."""

  loaded = None

  def do_POST(self):  # pylint: disable=invalid-name
    body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
    signature = self.loaded.signatures[body.get('signature_name',
                                                'serving_default')]
    spec = signature.structured_input_signature[1]['images']
    outputs = signature(images=tf.constant(body['instances'], spec.dtype))
    predictions = [{key: value[i].numpy().tolist()
                    for key, value in outputs.items()}
                   for i in range(len(body['instances']))]
    data = json.dumps({'predictions': predictions}).encode()
    self.send_response(200)
    self.send_header('Content-Type', 'application/json')
    self.send_header('Content-Length', str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def log_message(self, *args):
    del args


def test_serving_client_request_and_response(exports):
  config, network, result = exports['colour']
  client = _load_client()
  images = _images((6, 7, 3))
  loaded = tf.saved_model.load(result.model_dir)
  handler = type('Handler', (_FakeServing,), {'loaded': loaded})
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    url = f'http://127.0.0.1:{server.server_address[1]}'
    body = client.build_request(images, 'serving_default')
    assert body['signature_name'] == 'serving_default'
    json.dumps(body)
    restored_uint8, restored, actions = client.decode_response(
        client.predict(url, 'colour', body, version=1))
    direct = loaded.signatures['serving_default'](
        images=tf.constant(images[None]))
    np.testing.assert_array_equal(restored, direct['restored'].numpy()[0])
    np.testing.assert_array_equal(actions, direct['actions'].numpy()[0])
    np.testing.assert_array_equal(restored_uint8,
                                  direct['restored_uint8'].numpy()[0])
    pixels = (images * 255).astype(np.uint8)
    body = client.build_request(pixels, 'restore_uint8')
    restored_uint8, _, _ = client.decode_response(
        client.predict(url, 'colour', body))
    direct = loaded.signatures['restore_uint8'](
        images=tf.constant(pixels[None]))
    np.testing.assert_array_equal(restored_uint8,
                                  direct['restored_uint8'].numpy()[0])
  finally:
    server.shutdown()
    server.server_close()
  dry_run = _run([sys.executable, os.path.join('examples', 'serving_client.py'),
                  '--random=3x4', '--dry_run'], cwd=PROJECT_ROOT)
  assert dry_run.returncode == 0, dry_run.stderr
  request = json.loads(dry_run.stdout)
  assert request['signature_name'] == 'serving_default'
  assert np.asarray(request['instances']).shape == (1, 3, 4, 1)


def test_a_failed_save_leaves_no_version(exports, tmp_path, monkeypatch):
  _, _, result = exports['fcn']
  run_dir = os.path.join(os.path.dirname(os.path.dirname(
      os.path.dirname(result.model_dir))), 'runs', 'fcn')

  def failing_save(*args):
    del args
    raise OSError('disk full')

  monkeypatch.setattr(export_lib, '_save_policy', failing_save)
  with pytest.raises(OSError, match='disk full'):
    export_lib.export_model(run_dir, str(tmp_path), 'fcn')
  # Nothing was renamed into place and no temporary folder or reservation is
  # left behind.
  assert os.listdir(tmp_path / 'fcn') == []
  assert os.listdir(tmp_path / ('fcn' + export_lib.POLICY_SUFFIX)) == []


def _run_dir(exports, variant):
  _, _, result = exports[variant]
  return os.path.join(os.path.dirname(os.path.dirname(
      os.path.dirname(result.model_dir))), 'runs', variant)


def _write_placeholder(config, network, path):
  """Stands in for a SavedModel writer where only the folders matter."""
  del config, network
  with open(os.path.join(path, 'saved_model.pb'), 'wb'):
    pass


def _use_placeholders(monkeypatch):
  monkeypatch.setattr(export_lib, '_save_policy', _write_placeholder)
  monkeypatch.setattr(export_lib, '_save_restoration_model',
                      _write_placeholder)


def _assert_versions(export_base, name, versions):
  """Exactly `versions` under NAME and NAME_policy, and nothing hidden."""
  for folder in (name, name + export_lib.POLICY_SUFFIX):
    assert sorted(os.listdir(os.path.join(export_base, folder))) == versions


def test_a_failed_model_save_leaves_no_version(exports, tmp_path,
                                               monkeypatch):
  run_dir = _run_dir(exports, 'fcn')

  def failing_save(config, network, path):
    _write_placeholder(config, network, path)
    raise tf.errors.ResourceExhaustedError(None, None, 'disk full')

  monkeypatch.setattr(export_lib, '_save_restoration_model', failing_save)
  with pytest.raises(OSError, match='disk full'):
    export_lib.export_model(run_dir, str(tmp_path), 'fcn')
  # The policy was written first, but neither it nor the restoration model
  # appeared, and no temporary folder or reservation is left behind.
  _assert_versions(tmp_path, 'fcn', [])
  _use_placeholders(monkeypatch)
  assert export_lib.export_model(run_dir, str(tmp_path), 'fcn').version == 1
  _assert_versions(tmp_path, 'fcn', ['1'])


def test_a_failed_model_rename_takes_the_policy_back(exports, tmp_path,
                                                      monkeypatch):
  run_dir = _run_dir(exports, 'fcn')
  _use_placeholders(monkeypatch)
  rename = os.rename
  model_dir = os.path.join(str(tmp_path), 'fcn', '1')

  def failing_rename(src, dst):
    if dst == model_dir:
      raise OSError(errno.EIO, 'cannot rename', dst)
    rename(src, dst)

  monkeypatch.setattr(os, 'rename', failing_rename)
  with pytest.raises(OSError, match='cannot rename'):
    export_lib.export_model(run_dir, str(tmp_path), 'fcn')
  # The policy had been renamed into place; it is gone again.
  _assert_versions(tmp_path, 'fcn', [])
  monkeypatch.setattr(os, 'rename', rename)
  assert export_lib.export_model(run_dir, str(tmp_path), 'fcn').version == 1
  _assert_versions(tmp_path, 'fcn', ['1'])


# Exports version 1 and, while writing its restoration model, version 2;
# kills itself (SIGKILL) between the two renames of version 2.
_KILLED_EXPORT_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pixelrl_tf.jobs import export_lib
    run_dir, export_base = sys.argv[1:]
    save_policy = export_lib._save_policy
    model_saves = []

    def save_first_policy(config, network, path):
      if model_saves:
        open(os.path.join(path, 'saved_model.pb'), 'wb').close()
      else:
        save_policy(config, network, path)

    def save_model(config, network, path):
      open(os.path.join(path, 'saved_model.pb'), 'wb').close()
      model_saves.append(path)
      if len(model_saves) == 1:
        export_lib.export_model(run_dir, export_base, 'fcn')

    rename = os.rename

    def rename_or_die(src, dst):
      if dst == os.path.join(export_base, 'fcn', '2'):
        os.kill(os.getpid(), signal.SIGKILL)
      rename(src, dst)

    export_lib._save_policy = save_first_policy
    export_lib._save_restoration_model = save_model
    os.rename = rename_or_die
    export_lib.export_model(run_dir, export_base, 'fcn')
    """)


def test_exports_after_a_killed_export_sweep_its_leftovers(
    exports, tmp_path, monkeypatch):
  run_dir = _run_dir(exports, 'fcn')
  killed = _run([sys.executable, '-c', _KILLED_EXPORT_SCRIPT, run_dir,
                 str(tmp_path)], cwd=PROJECT_ROOT)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  model_base = tmp_path / 'fcn'
  policy_base = tmp_path / ('fcn' + export_lib.POLICY_SUFFIX)
  left = sorted(os.listdir(model_base))
  assert [name for name in left if not name.endswith('.tmp')] == [
      '.1.reserved', '.2.reserved']
  assert len(left) == 4  # One temporary restoration model per version.
  policy_left = sorted(os.listdir(policy_base))
  assert policy_left[-1] == '2'  # Renamed just before the kill.
  assert len(policy_left) == 2 and policy_left[0].startswith('.1.')
  assert (policy_base / policy_left[0] / 'saved_model.pb').is_file()
  _use_placeholders(monkeypatch)
  # Both versions are free again, and nothing of the killed export is left.
  assert export_lib.export_model(run_dir, str(tmp_path), 'fcn').version == 1
  assert export_lib.export_model(run_dir, str(tmp_path), 'fcn',
                                 version=2).version == 2
  _assert_versions(tmp_path, 'fcn', ['1', '2'])


def test_reservations_of_running_exports_are_left_alone(exports, tmp_path,
                                                        monkeypatch):
  run_dir = _run_dir(exports, 'fcn')
  _use_placeholders(monkeypatch)
  model_base = tmp_path / 'fcn'
  owners = {1: {'host': 'another-host.invalid', 'pid': 4321, 'start': '7'},
            2: {'host': socket.gethostname(), 'pid': os.getpid()}}
  for version, owner in owners.items():
    reservation = model_base / f'.{version}.reserved'
    reservation.mkdir(parents=True)
    (reservation / 'owner.json').write_text(json.dumps(owner))
  assert export_lib.export_model(run_dir, str(tmp_path), 'fcn').version == 3
  with pytest.raises(FileExistsError) as raised:
    export_lib.export_model(run_dir, str(tmp_path), 'fcn', version=2)
  assert f'process {os.getpid()} on this host' in str(raised.value)
  with pytest.raises(FileExistsError) as raised:
    export_lib.export_model(run_dir, str(tmp_path), 'fcn', version=1)
  owner_file = model_base / '.1.reserved' / 'owner.json'
  message = str(raised.value)
  assert 'process 4321 on host another-host.invalid' in message
  assert f'delete {owner_file}' in message
  assert '\n' not in message
  # Deleting the owner file, as the message says, frees the version.
  owner_file.unlink()
  assert export_lib.export_model(run_dir, str(tmp_path), 'fcn',
                                 version=1).version == 1
  assert sorted(os.listdir(model_base)) == ['.2.reserved', '1', '3']


def test_two_export_processes_at_once_take_two_complete_versions(
    exports, tmp_path):
  run_dir = _run_dir(exports, 'fcn')
  export_base = tmp_path / 'models'
  logs = [open(tmp_path / f'export{i}.log', 'w+') for i in range(2)]
  processes = [subprocess.Popen(
      [sys.executable, '-m', 'pixelrl_tf.export', f'--root_dir={run_dir}',
       f'--export_base={export_base}', '--model_name=fcn'],
      cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
               for log in logs]
  try:
    for process in processes:
      process.wait(timeout=HANG_TIMEOUT_SECONDS)
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
  outputs = []
  for log in logs:
    log.seek(0)
    outputs.append(log.read())
    log.close()
  for process, output in zip(processes, outputs):
    assert process.returncode == 0, output[-2000:]
  versions = sorted(re.search(r'exported version (\d+)', output).group(1)
                    for output in outputs)
  assert versions == ['1', '2']
  _assert_versions(export_base, 'fcn', versions)
  for version in versions:
    model_dir = export_base / 'fcn' / version
    policy_dir = export_base / ('fcn' + export_lib.POLICY_SUFFIX) / version
    for path in (model_dir / 'saved_model.pb', model_dir / 'variables',
                 model_dir / restorers.MODEL_CONFIG_ASSET,
                 policy_dir / 'saved_model.pb', policy_dir / 'variables',
                 policy_dir / 'policy_specs.pbtxt'):
      assert path.exists(), path
    # Readable by a server that runs as another user.
    mask = os.umask(0o022)
    os.umask(mask)
    for folder in (model_dir, policy_dir):
      assert stat.S_IMODE(os.stat(folder).st_mode) == 0o777 & ~mask, folder


def test_an_export_started_during_another_takes_the_next_version(
    exports, tmp_path, monkeypatch):
  _, _, result = exports['fcn']
  run_dir = os.path.join(os.path.dirname(os.path.dirname(
      os.path.dirname(result.model_dir))), 'runs', 'fcn')
  save_policy = export_lib._save_policy  # pylint: disable=protected-access
  inner = []

  def save_policy_while_another_export_runs(config, network, path):
    if not inner:
      inner.append(None)
      inner[0] = export_lib.export_model(run_dir, str(tmp_path), 'fcn')
      # Not yet renamed: the outer export's version is not visible.
      assert not os.path.exists(tmp_path / 'fcn' / '1')
    save_policy(config, network, path)

  monkeypatch.setattr(export_lib, '_save_policy',
                      save_policy_while_another_export_runs)
  outer = export_lib.export_model(run_dir, str(tmp_path), 'fcn')
  assert (outer.version, inner[0].version) == (1, 2)
  for name in ('fcn', 'fcn' + export_lib.POLICY_SUFFIX):
    assert sorted(os.listdir(tmp_path / name)) == ['1', '2']
  for version in ('1', '2'):
    loaded = tf.saved_model.load(str(tmp_path / 'fcn' / version))
    assert 'serving_default' in loaded.signatures
    assert os.path.exists(tmp_path / ('fcn' + export_lib.POLICY_SUFFIX) /
                          version / 'saved_model.pb')


def test_export_of_imported_released_weights(tmp_path):
  npz = shared_data_path('official_weights', 'denoise_with_convGRU',
                         'pretrained_25.npz')
  config, _ = import_weights_lib.import_npz(str(npz), str(tmp_path / 'run'))
  result = export_lib.export_model(str(tmp_path / 'run'),
                                   str(tmp_path / 'models'), 'official')
  loaded = tf.saved_model.load(result.model_dir)
  clean = np.tile(np.linspace(0.2, 0.8, 30, dtype=np.float32), (24, 1))
  noisy = clean + np.random.default_rng(0).normal(
      0, 25 / 255, clean.shape).astype(np.float32)
  outputs = loaded.signatures['serving_default'](
      images=tf.constant(noisy[None, ..., None]))
  _, network, _ = model_io.load_model(str(tmp_path / 'run'))
  restored, actions = in_process_restore.greedy_restore(
      network, config.get_action_set(), noisy[None, ..., None], config.t_max)
  np.testing.assert_allclose(outputs['restored'].numpy(), restored.numpy(),
                             rtol=0, atol=1e-6)
  np.testing.assert_array_equal(outputs['actions'].numpy(), actions.numpy())
  # The released denoiser does denoise.
  error_before = np.abs(noisy - clean).mean()
  error_after = np.abs(outputs['restored'].numpy()[0, ..., 0] - clean).mean()
  assert error_after < 0.7 * error_before

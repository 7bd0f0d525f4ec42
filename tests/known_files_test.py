"""Known files: registry, lookup order, checked downloads, the download CLI.

Downloads come from an HTTP server on a loopback port in a thread; small fake
payloads are registered by patching `known_files.REGISTRY`.
"""

import hashlib
import http.server
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import numpy as np
import pytest

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT, SHARED_DATA, shared_data_path
from pixelrl_tf.data import known_files
from pixelrl_tf.jobs import download_lib

COMMIT = '0123456789abcdef0123456789abcdef01234567'
ENV_VARS = (known_files.DATA_ROOT_ENV, known_files.CACHE_DIR_ENV,
            known_files.BASE_URL_ENV, known_files.TIMEOUT_ENV,
            known_files.OFFLINE_ENV)


# ---------------------------------------------------------------------------
# A loopback file server.


class _Handler(http.server.BaseHTTPRequestHandler):

  def do_GET(self):  # pylint: disable=invalid-name
    server = self.server
    path = urllib.parse.unquote(self.path)
    server.requests.append(path)
    if path not in server.files:
      self.send_error(404)
      return
    body, mode = server.files[path]
    if mode == 'stall':
      server.release.wait(10)
      return
    self.send_response(200)
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    if mode == 'truncate':  # announces the whole body, sends half, closes
      self.wfile.write(body[:len(body) // 2])
      self.close_connection = True
    else:
      self.wfile.write(body)

  def log_message(self, *args):  # pylint: disable=arguments-differ
    pass


class _Server(http.server.ThreadingHTTPServer):
  daemon_threads = True
  block_on_close = False

  def __init__(self):
    super().__init__(('127.0.0.1', 0), _Handler)
    self.files = {}
    self.requests = []
    self.release = threading.Event()
    self.base_url = f'http://127.0.0.1:{self.server_address[1]}'

  def serve(self, source, body, mode='ok'):
    self.files[f'/{source.repo}/{source.commit}/{source.path}'] = (body, mode)


@pytest.fixture
def server():
  httpd = _Server()
  thread = threading.Thread(target=httpd.serve_forever, args=(0.05,),
                            daemon=True)
  thread.start()
  yield httpd
  httpd.release.set()
  httpd.shutdown()
  httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch, server):
  """An empty cache, downloads from `server`, no data root."""
  for name in ENV_VARS:
    monkeypatch.delenv(name, raising=False)
  folder = tmp_path / 'cache'
  monkeypatch.setenv(known_files.CACHE_DIR_ENV, str(folder))
  monkeypatch.setenv(known_files.BASE_URL_ENV, server.base_url)
  monkeypatch.setenv(known_files.TIMEOUT_ENV, '5')
  return folder


def closed_port_url():
  with socket.socket() as sock:
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
  return f'http://127.0.0.1:{port}'


def _weights_payload(seed=0):
  stream = io.BytesIO()
  rng = np.random.default_rng(seed)
  np.savez(stream, **{'conv1/W': rng.normal(size=(64, 1, 3, 3)).astype(
      np.float32), 'conv1/b': np.zeros(64, np.float32)})
  return stream.getvalue()


def _register_file(monkeypatch, name, payload, pinned=True, relpath=None):
  entry = known_files.KnownFile(
      name, relpath or f'official_weights/test/{name}.npz',
      known_files.Source('owner/repo', COMMIT, f'model/{name}.npz'),
      len(payload) if pinned else None,
      hashlib.sha256(payload).hexdigest() if pinned else None, 'test file')
  monkeypatch.setitem(known_files.REGISTRY, name, entry)
  return entry


def _register_dataset(monkeypatch, name, payloads):
  source = known_files.Source('owner/repo', COMMIT, 'images')
  files = tuple(
      known_files.KnownFile(
          f'{name}/{file_name}', f'{name}_folder/{file_name}',
          known_files.Source('owner/repo', COMMIT, f'images/{file_name}'),
          len(body), hashlib.sha256(body).hexdigest())
      for file_name, body in payloads.items())
  entry = known_files.KnownDataset(name, f'{name}_folder', source,
                                   files=files)
  monkeypatch.setitem(known_files.REGISTRY, name, entry)
  return entry


def _tiff(seed, shape=(12, 16, 3)):
  """A 16-bit colour TIFF and the 8-bit BGR array it should become."""
  import cv2  # pylint: disable=g-import-not-at-top
  pixels = np.random.default_rng(seed).integers(0, 65536, shape, np.uint16)
  ok, encoded = cv2.imencode('.tif', pixels)
  assert ok
  return encoded.tobytes(), np.round(pixels / 257).astype(np.uint8)


def _png(pixels):
  import cv2  # pylint: disable=g-import-not-at-top
  return cv2.imencode('.png', pixels)[1].tobytes()


def _register_pairs(monkeypatch, name, tiffs, png_sha256=None):
  """A data set of converted pairs `input/<id>.png`, `target/<id>.png`.

  Args:
    monkeypatch: the fixture.
    name: registry name; the folder is `<name>_folder`.
    tiffs: `{(half, id): (tiff bytes, expected pixels)}`.
    png_sha256: pins this PNG sha256 instead of the expected one.
  """
  files = []
  for (half, stem), (tiff, pixels) in tiffs.items():
    png = _png(pixels)
    files.append(known_files.KnownFile(
        f'{name}/{half}/{stem}.png', f'{name}_folder/{half}/{stem}.png',
        known_files.Source('owner/repo', COMMIT, f'pairs/{half}/{stem}.tif'),
        len(png), png_sha256 or hashlib.sha256(png).hexdigest(),
        convert='tiff_to_png', source_size=len(tiff),
        source_sha256=hashlib.sha256(tiff).hexdigest()))
  entry = known_files.KnownDataset(
      name, f'{name}_folder', known_files.Source('owner/repo', COMMIT,
                                                 'pairs'), files=tuple(files))
  monkeypatch.setitem(known_files.REGISTRY, name, entry)
  return entry


def _files_under(folder):
  return sorted(str(p.relative_to(folder)) for p in folder.rglob('*')
                if p.is_file()) if folder.exists() else []


def _one_line(error):
  text = str(error.value)
  assert '\n' not in text, text
  return text


# ---------------------------------------------------------------------------
# The registry.


WEIGHT_NAMES = [
    'fcn_sigma15', 'fcn_sigma25', 'fcn_sigma50', 'gru_sigma15',
    'gru_sigma25', 'gru_sigma50', 'gru_rmc_sigma15', 'gru_rmc_sigma25',
    'gru_rmc_sigma50', 'salt_pepper_init', 'salt_pepper_init_rmc',
    'color_init', 'color_init_rmc', 'ircnn_denoise_15_gray',
    'ircnn_denoise_25_gray', 'ircnn_denoise_50_gray']


FPOP_NAMES = ['fpop_train_ids', 'fpop_train', 'fpop_train_input',
              'fpop_train_target']


def test_registry_holds_the_weights_and_data_sets():
  assert known_files.names() == WEIGHT_NAMES + [
      'bsd432_list', 'bsd432', 'bsd68_list', 'bsd68'] + FPOP_NAMES
  for name in WEIGHT_NAMES + ['bsd432_list']:
    entry = known_files.get_entry(name)
    assert entry.pinned and entry.size > 0
    assert entry.relpath.startswith(
        'official_weights/' if name != 'bsd432_list' else 'BSD432')
    assert entry.source.url().startswith(
        f'https://raw.githubusercontent.com/{entry.source.repo}/'
        f'{entry.source.commit}/')
  bsd432 = known_files.get_entry('bsd432')
  assert len(bsd432.files) == 432 and all(m.pinned for m in bsd432.files)
  assert not known_files.get_entry('bsd68_list').pinned
  assert known_files.get_entry('bsd68').list_name == 'bsd68_list'
  assert (known_files.get_entry('gru_rmc_sigma25').relpath ==
          'official_weights/denoise_with_convGRU_and_RMC/pretrained_25.npz')


def _documented_names(text):
  """Words of `text`, with `a{1,2}b` expanded to `a1b`, `a2b`."""
  words = set(re.findall(r'[a-z0-9_]+', text))
  pattern = r'([a-z0-9_]*)\{([0-9,]+)\}([a-z0-9_]*)'
  for head, options, tail in re.findall(pattern, text):
    words.update(f'{head}{option}{tail}' for option in options.split(','))
  return words


def test_every_name_is_documented():
  missing = set(known_files.names()) - _documented_names(known_files.__doc__)
  assert not missing
  docs = PROJECT_ROOT / 'docs' / 'data.md'
  if not docs.exists():
    pytest.skip('docs/data.md is not in this tree')
  assert not set(known_files.names()) - _documented_names(docs.read_text())


def test_registry_matches_the_shared_data_files():
  shared_data_path('official_weights')  # skips without the shared data
  for name in WEIGHT_NAMES + ['bsd432_list']:
    entry = known_files.get_entry(name)
    data = (SHARED_DATA / entry.relpath).read_bytes()
    assert len(data) == entry.size, name
    assert hashlib.sha256(data).hexdigest() == entry.sha256, name
  bsd432 = known_files.get_entry('bsd432')
  folder = SHARED_DATA / bsd432.relpath
  assert sorted(p.name for p in folder.iterdir()) == sorted(
      m.relpath.rsplit('/', 1)[1] for m in bsd432.files)
  for member in bsd432.files:
    data = (SHARED_DATA / member.relpath).read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (
        member.size, member.sha256), member.name
  listed = (SHARED_DATA / 'BSD432_train_list.txt').read_text().split()
  assert [line.rsplit('/', 1)[1] for line in listed] == [
      m.relpath.rsplit('/', 1)[1] for m in bsd432.files]


def test_the_fpop_entries_are_converted_pairs():
  pairs = known_files.get_entry('fpop_train')
  inputs = known_files.get_entry('fpop_train_input')
  targets = known_files.get_entry('fpop_train_target')
  assert pairs.relpath == 'fpop/train' and len(pairs.files) == 140
  assert pairs.files == inputs.files + targets.files
  for member, folder, source_folder in (
      [(m, 'input', 'data') for m in inputs.files] +
      [(m, 'target', 'label') for m in targets.files]):
    stem = member.relpath.rsplit('/', 1)[1][:-len('.png')]
    assert member.relpath == f'fpop/train/{folder}/{stem}.png'
    assert member.source.path == (
        f'dataset_foregroundpopout/{source_folder}/{stem}.tif')
    assert member.convert == 'tiff_to_png' and member.pinned
    assert member.source_size > member.size > 0
    assert member.download_size == member.source_size
  ids = known_files.get_entry('fpop_train_ids')
  assert ids.relpath == 'fpop/uniform_set_train_id.txt' and ids.pinned
  assert ids.source.commit == pairs.source.commit


def test_registry_matches_the_shared_fpop_files():
  root = known_files.get_data_root()
  if root is None or not (root / 'fpop').is_dir():
    pytest.skip(f'needs {known_files.DATA_ROOT_ENV} set to a data root '
                'holding fpop/ (the shared data folder)')
  ids = known_files.get_entry('fpop_train_ids')
  data = (root / ids.relpath).read_bytes()
  assert (len(data), hashlib.sha256(data).hexdigest()) == (ids.size,
                                                           ids.sha256)
  pairs = known_files.get_entry('fpop_train')
  for member in pairs.files:
    data = (root / member.relpath).read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (
        member.size, member.sha256), member.name
  stems = (root / ids.relpath).read_text().split()
  for half in ('input', 'target'):
    folder = root / 'fpop' / 'train' / half
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f'{stem}.png' for stem in stems)
    members = known_files.get_entry(f'fpop_train_{half}').files
    assert [m.relpath for m in members] == [
        f'fpop/train/{half}/{stem}.png' for stem in stems]
  assert known_files.resolve('fpop_train', data_root=root,
                             check_hash=True) == root / 'fpop' / 'train'


def test_sources_must_be_pinned_commits():
  with pytest.raises(ValueError, match='40 hex'):
    known_files.Source('owner/repo', 'main', 'a.npz')
  with pytest.raises(ValueError, match='relative'):
    known_files.Source('owner/repo', COMMIT, '../a.npz')


def test_a_converted_entry_needs_both_checks():
  source = known_files.Source('owner/repo', COMMIT, 'a.tif')
  with pytest.raises(ValueError, match='unknown conversion'):
    known_files.KnownFile('x', 'x.png', source, 1, '0' * 64,
                          convert='tiff_to_jpeg', source_size=1,
                          source_sha256='0' * 64)
  with pytest.raises(ValueError, match='both the download and the result'):
    known_files.KnownFile('x', 'x.png', source, 1, '0' * 64,
                          convert='tiff_to_png')
  with pytest.raises(ValueError, match='go with convert'):
    known_files.KnownFile('x', 'x.png', source, 1, '0' * 64, source_size=1)


# ---------------------------------------------------------------------------
# Downloads.


def test_a_weight_file_is_downloaded_checked_and_cached(monkeypatch, server,
                                                        cache, capsys):
  payload = _weights_payload()
  entry = _register_file(monkeypatch, 'test_weights', payload)
  server.serve(entry.source, payload)
  path = known_files.resolve('test_weights')
  assert path == cache / entry.relpath
  assert path.read_bytes() == payload
  with np.load(path) as arrays:
    assert arrays['conv1/W'].shape == (64, 1, 3, 3)
  assert 'downloading test_weights' in capsys.readouterr().err
  assert known_files.resolve('test_weights') == path
  assert len(server.requests) == 1
  assert _files_under(cache) == [entry.relpath]


def test_a_hash_mismatch_is_refused_and_keeps_nothing(monkeypatch, server,
                                                      cache):
  payload = _weights_payload()
  entry = _register_file(monkeypatch, 'test_weights', payload)
  server.serve(entry.source, _weights_payload(seed=1))
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.resolve('test_weights')
  text = _one_line(error)
  assert 'test_weights' in text and 'sha256' in text
  assert 'nothing was kept' in text
  assert _files_under(cache) == []
  server.serve(entry.source, payload + b'extra')
  with pytest.raises(known_files.KnownFileError, match='announces'):
    known_files.resolve('test_weights')
  assert _files_under(cache) == []


def test_an_interrupted_download_leaves_nothing_and_a_retry_works(
    monkeypatch, server, cache):
  payload = _weights_payload()
  entry = _register_file(monkeypatch, 'test_weights', payload)
  server.serve(entry.source, payload, mode='truncate')
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.resolve('test_weights')
  text = _one_line(error)
  assert 'broke off' in text and 'test_weights' in text
  assert _files_under(cache) == []
  server.serve(entry.source, payload)
  assert known_files.resolve('test_weights').read_bytes() == payload


def test_an_interrupted_unverified_download_is_not_trusted(monkeypatch,
                                                           server, cache):
  payload = b'line one\nline two\n' * 100
  entry = _register_file(monkeypatch, 'test_list', payload, pinned=False,
                         relpath='test_list.txt')
  server.serve(entry.source, payload, mode='truncate')
  with pytest.raises(known_files.KnownFileError, match='broke off'):
    known_files.resolve('test_list')
  assert _files_under(cache) == []


def test_offline_error_is_one_line_with_the_command(monkeypatch, cache):
  monkeypatch.setenv(known_files.BASE_URL_ENV, closed_port_url())
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.resolve('gru_rmc_sigma25')
  text = _one_line(error)
  assert text.startswith('gru_rmc_sigma25 (official_weights/')
  assert '`python -m pixelrl_tf.download gru_rmc_sigma25`' in text
  assert 'PIXELRL_DATA_ROOT=' in text
  assert 'refused' in text.lower()
  assert _files_under(cache) == []


def test_offline_mode_never_connects(monkeypatch, server, cache):
  payload = _weights_payload()
  entry = _register_file(monkeypatch, 'test_weights', payload)
  server.serve(entry.source, payload)
  monkeypatch.setenv(known_files.OFFLINE_ENV, '1')
  with pytest.raises(known_files.KnownFileError, match='downloads are off'):
    known_files.resolve('test_weights')
  assert server.requests == []


def test_a_stalled_server_times_out(monkeypatch, server, cache):
  payload = _weights_payload()
  entry = _register_file(monkeypatch, 'test_weights', payload)
  server.serve(entry.source, payload, mode='stall')
  start = time.monotonic()
  with pytest.raises(known_files.KnownFileError, match='timed out'):
    known_files.resolve('test_weights', timeout=0.3)
  assert time.monotonic() - start < 5
  assert _files_under(cache) == []


def test_a_missing_file_on_the_server_is_an_error(monkeypatch, server, cache):
  _register_file(monkeypatch, 'test_weights', b'x')
  with pytest.raises(known_files.KnownFileError, match='HTTP 404'):
    known_files.resolve('test_weights')


def test_an_unreachable_server_prints_nothing_but_the_error(monkeypatch,
                                                            cache, capsys):
  monkeypatch.setenv(known_files.BASE_URL_ENV, closed_port_url())
  with pytest.raises(known_files.KnownFileError):
    known_files.resolve('gru_rmc_sigma25')
  with pytest.raises(known_files.KnownFileError):
    known_files.resolve('bsd432')
  assert capsys.readouterr().err == ''


def test_a_command_offline_on_a_fresh_machine_says_one_line(tmp_path):
  """No `downloading` line before the error (PIXELRL_OFFLINE unset)."""
  script = ('from pixelrl_tf import cli\n'
            'from pixelrl_tf.data import known_files\n'
            'try:\n'
            '  known_files.resolve("gru_rmc_sigma25")\n'
            'except known_files.KnownFileError as error:\n'
            '  cli.fail(error)\n')
  env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
  env.update({known_files.CACHE_DIR_ENV: str(tmp_path),
              known_files.BASE_URL_ENV: closed_port_url()})
  result = subprocess.run([sys.executable, '-c', script], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=HANG_TIMEOUT_SECONDS, check=False)
  assert result.returncode == 1
  assert result.stderr.count('\n') == 1, result.stderr
  assert result.stderr.startswith('error: gru_rmc_sigma25 (')
  assert 'downloading' not in result.stderr


@pytest.mark.parametrize('offline', [True, False])
def test_a_data_set_with_a_list_names_its_own_command(monkeypatch, cache,
                                                      offline):
  if offline:
    monkeypatch.setenv(known_files.OFFLINE_ENV, '1')
  else:
    monkeypatch.setenv(known_files.BASE_URL_ENV, closed_port_url())
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.resolve('bsd68')
  text = _one_line(error)
  assert text.startswith('bsd68 (BSD68_gray_test) is not available: its list '
                         'bsd68_list (BSD68_test_list.txt) is missing (')
  assert '`python -m pixelrl_tf.download bsd68`' in text
  assert 'download bsd68_list' not in text
  assert text.endswith('holding BSD68_test_list.txt and BSD68_gray_test')
  assert ('downloads are off' if offline else 'refused') in text
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.resolve_path_or_name('bsd68', what='image folder')
  assert _one_line(error) == text


# ---------------------------------------------------------------------------
# Converted files (16-bit TIFF -> PNG).


def _serve_pairs(server, entry, tiffs):
  for member in entry.files:
    half, stem = member.relpath.split('/')[-2:]
    server.serve(member.source, tiffs[half, stem[:-len('.png')]][0])


def test_a_converted_pair_is_downloaded_converted_and_cached(
    monkeypatch, server, cache, capsys):
  import cv2  # pylint: disable=g-import-not-at-top
  tiffs = {(half, 'a'): _tiff(seed) for seed, half in enumerate(
      ('input', 'target'))}
  entry = _register_pairs(monkeypatch, 'test_pairs', tiffs)
  _serve_pairs(server, entry, tiffs)
  folder = known_files.resolve('test_pairs')
  assert folder == cache / 'test_pairs_folder'
  assert _files_under(cache) == ['test_pairs_folder/input/a.png',
                                 'test_pairs_folder/target/a.png']
  for half in ('input', 'target'):
    pixels = cv2.imread(str(folder / half / 'a.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(pixels, tiffs[half, 'a'][1])
  total = sum(len(tiff) for tiff, _ in tiffs.values())
  assert (f'downloading test_pairs (2 files, {known_files.format_bytes(total)})'
          in capsys.readouterr().err)
  assert known_files.resolve('test_pairs') == folder
  assert len(server.requests) == 2
  rows = {row.name: row for row in known_files.list_known()}
  assert rows['test_pairs'].cached and rows['test_pairs'].files == 2


def test_a_converted_file_is_checked_before_and_after_conversion(
    monkeypatch, server, cache):
  tiffs = {('input', 'a'): _tiff(0)}
  entry = _register_pairs(monkeypatch, 'test_pairs', tiffs)
  tiff = tiffs['input', 'a'][0]
  server.serve(entry.files[0].source, tiff[:-1] + bytes([tiff[-1] ^ 1]))
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.resolve('test_pairs')
  text = _one_line(error)
  assert 'test_pairs/input/a.png' in text and 'sha256' in text
  assert 'nothing was kept' in text
  assert _files_under(cache) == []
  # The download matches, but its conversion is not the pinned PNG.
  _register_pairs(monkeypatch, 'test_pairs', tiffs, png_sha256='0' * 64)
  server.serve(entry.files[0].source, tiff)
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.resolve('test_pairs')
  text = _one_line(error)
  assert 'converting' in text and 'OpenCV' in text
  assert 'nothing was kept' in text
  assert _files_under(cache) == []


def test_a_data_root_holding_the_converted_files_wins(monkeypatch, server,
                                                      cache, tmp_path):
  tiffs = {(half, 'a'): _tiff(seed) for seed, half in enumerate(
      ('input', 'target'))}
  entry = _register_pairs(monkeypatch, 'test_pairs', tiffs)
  _serve_pairs(server, entry, tiffs)
  root = tmp_path / 'root'
  for half in ('input', 'target'):
    (root / 'test_pairs_folder' / half).mkdir(parents=True)
    (root / 'test_pairs_folder' / half / 'a.png').write_bytes(
        _png(tiffs[half, 'a'][1]))
  monkeypatch.setenv(known_files.DATA_ROOT_ENV, str(root))
  assert known_files.resolve('test_pairs', check_hash=True) == (
      root / 'test_pairs_folder')
  assert server.requests == [] and _files_under(cache) == []


# ---------------------------------------------------------------------------
# Lookup order.


def test_the_data_root_wins_over_the_cache_and_the_network(
    monkeypatch, server, cache, tmp_path):
  payload = _weights_payload()
  entry = _register_file(monkeypatch, 'test_weights', payload)
  server.serve(entry.source, payload)
  cached = known_files.resolve('test_weights')
  root = tmp_path / 'root'
  local = root / entry.relpath
  local.parent.mkdir(parents=True)
  local.write_bytes(payload)
  monkeypatch.setenv(known_files.DATA_ROOT_ENV, str(root))
  assert known_files.resolve('test_weights') == local
  assert known_files.resolve('test_weights', data_root=tmp_path) == cached
  assert len(server.requests) == 1


def test_a_wrong_data_root_copy_is_an_error(monkeypatch, cache, tmp_path):
  payload = _weights_payload()
  entry = _register_file(monkeypatch, 'test_weights', payload)
  local = tmp_path / entry.relpath
  local.parent.mkdir(parents=True)
  local.write_bytes(payload[:-1])
  with pytest.raises(known_files.KnownFileError, match='bytes, expected'):
    known_files.resolve('test_weights', data_root=tmp_path)
  local.write_bytes(_weights_payload(seed=1))  # same size, other bytes
  assert known_files.resolve('test_weights', data_root=tmp_path) == local
  with pytest.raises(known_files.KnownFileError, match='sha256'):
    known_files.resolve('test_weights', data_root=tmp_path, check_hash=True)
  with pytest.raises(known_files.KnownFileError, match='not a folder'):
    known_files.resolve('test_weights', data_root=tmp_path / 'absent')


def test_a_corrupted_cached_copy_is_fetched_again(monkeypatch, server, cache):
  payload = _weights_payload()
  entry = _register_file(monkeypatch, 'test_weights', payload)
  server.serve(entry.source, payload)
  path = known_files.resolve('test_weights')
  path.write_bytes(_weights_payload(seed=1))
  assert known_files.resolve('test_weights').read_bytes() == payload
  assert len(server.requests) == 2


def test_the_shared_data_folder_works_as_a_data_root(cache):
  root = shared_data_path('official_weights').parent
  assert known_files.resolve('gru_sigma50', data_root=root,
                             check_hash=True) == (
                                 root / 'official_weights' /
                                 'denoise_with_convGRU' / 'pretrained_50.npz')
  assert known_files.resolve('bsd432', data_root=root) == (
      root / 'BSD432_gray_train')


# ---------------------------------------------------------------------------
# Data sets and unverified entries.


def test_a_data_set_resumes_after_a_failed_file(monkeypatch, server, cache):
  payloads = {f'{i}.jpg': bytes([i]) * (100 + i) for i in range(3)}
  entry = _register_dataset(monkeypatch, 'test_set', payloads)
  for member in entry.files:
    server.serve(member.source, payloads[member.relpath.rsplit('/', 1)[1]])
  server.serve(entry.files[1].source, b'?' * 101)
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.resolve('test_set', workers=1)
  text = _one_line(error)
  assert 'test_set/1.jpg' in text and '2 of 3 files are cached' in text
  server.serve(entry.files[1].source, payloads['1.jpg'])
  server.requests.clear()
  folder = known_files.resolve('test_set')
  assert folder == cache / 'test_set_folder'
  assert {p.name: p.read_bytes() for p in folder.iterdir()} == payloads
  assert server.requests == [f'/owner/repo/{COMMIT}/images/1.jpg']


def test_an_incomplete_data_root_folder_falls_back_to_the_cache(
    monkeypatch, server, cache, tmp_path, capsys):
  payloads = {f'{i}.jpg': bytes([i]) * 10 for i in range(2)}
  entry = _register_dataset(monkeypatch, 'test_set', payloads)
  for member in entry.files:
    server.serve(member.source, payloads[member.relpath.rsplit('/', 1)[1]])
  (tmp_path / 'test_set_folder').mkdir()
  (tmp_path / 'test_set_folder' / '0.jpg').write_bytes(payloads['0.jpg'])
  assert known_files.resolve('test_set', data_root=tmp_path) == (
      cache / 'test_set_folder')
  assert 'lacks 1 of the 2 files' in capsys.readouterr().err
  (tmp_path / 'test_set_folder' / '1.jpg').write_bytes(payloads['1.jpg'])
  assert known_files.resolve('test_set', data_root=tmp_path) == (
      tmp_path / 'test_set_folder')


def test_an_unpinned_file_is_trusted_on_first_use(monkeypatch, server, cache,
                                                  capsys):
  payload = b'BSD68/gray/test/a.jpg\n'
  entry = _register_file(monkeypatch, 'test_list', payload, pinned=False,
                         relpath='test_list.txt')
  server.serve(entry.source, payload)
  path = known_files.resolve('test_list')
  warnings = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith('warning:')]
  assert len(warnings) == 1 and 'unverified' in warnings[0]
  records = json.loads((cache / known_files.TRUSTED_HASHES_FILE).read_text())
  assert records['test_list.txt']['sha256'] == hashlib.sha256(
      payload).hexdigest()
  other = b'BSD68/gray/test/b.jpg\n'
  server.serve(entry.source, other)
  assert known_files.resolve('test_list') == path  # checked, not fetched
  assert len(server.requests) == 1
  path.write_bytes(b'tampered\n')
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.resolve('test_list')  # fetches `other`: same size, other hash
  text = _one_line(error)
  assert 'sha256' in text and 'recorded in' in text
  assert path.read_bytes() == b'tampered\n'  # the mismatch replaced nothing
  server.serve(entry.source, other + b'more')
  with pytest.raises(known_files.KnownFileError, match='recorded in'):
    known_files.resolve('test_list')
  server.serve(entry.source, payload)
  assert known_files.resolve('test_list').read_bytes() == payload
  assert 'warning' not in capsys.readouterr().err


def test_bsd68_images_resolve_from_the_downloaded_list(server, cache, capsys):
  listing = known_files.get_entry('bsd68_list')
  dataset = known_files.get_entry('bsd68')
  server.serve(listing.source, b'BSD68/gray/test/first.jpg\r\nsecond.jpg\r\n')
  images = {'first.jpg': b'\xff\xd8first', 'second.jpg': b'\xff\xd8second'}
  for file_name, body in images.items():
    server.serve(known_files.Source(dataset.source.repo, dataset.source.commit,
                                    f'BSD68/gray/test/{file_name}'), body)
  folder = known_files.resolve('bsd68')
  assert folder == cache / 'BSD68_gray_test'
  assert {p.name: p.read_bytes() for p in folder.iterdir()} == images
  warnings = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith('warning:')]
  assert len(warnings) == 2
  assert 'bsd68_list' in warnings[0] and '2 files of bsd68' in warnings[1]
  rows = {row.name: row for row in known_files.list_known()}
  assert rows['bsd68'].files == 2 and rows['bsd68'].cached
  assert rows['bsd68_list'].cached and rows['bsd68'].size is None
  requests = len(server.requests)
  assert known_files.resolve('bsd68') == folder
  assert len(server.requests) == requests


@pytest.mark.parametrize('line', ['../../secret.jpg', 'BSD68/gray/.hidden',
                                  '/etc/passwd', 'a.jpg\na.jpg'])
def test_an_unsafe_list_line_is_refused(server, cache, line):
  server.serve(known_files.get_entry('bsd68_list').source, line.encode())
  with pytest.raises(known_files.KnownFileError, match='unusable'):
    known_files.resolve('bsd68')
  assert not (cache / 'BSD68_gray_test').exists()


# ---------------------------------------------------------------------------
# Several names at once.


def test_require_reports_every_missing_name_at_once(monkeypatch, server,
                                                    cache):
  payloads = {name: _weights_payload(seed) for seed, name in enumerate(
      ('test_a', 'test_b', 'test_c'))}
  entries = {name: _register_file(monkeypatch, name, payload)
             for name, payload in payloads.items()}
  with pytest.raises(known_files.KnownFileError, match='test_d'):
    known_files.require(['test_a', 'test_d'])
  assert server.requests == []
  # Offline: all three at once, one command for all of them.
  monkeypatch.setenv(known_files.OFFLINE_ENV, '1')
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.require(['test_a', 'test_b', 'test_c'])
  text = _one_line(error)
  assert text.startswith(
      'test_a (official_weights/test/test_a.npz), test_b '
      '(official_weights/test/test_b.npz) and test_c '
      '(official_weights/test/test_c.npz) are not available (test_a: not '
      'cached in ')
  assert '`python -m pixelrl_tf.download test_a test_b test_c`' in text
  assert text.endswith(
      'PIXELRL_DATA_ROOT=<folder> holding official_weights/test/test_a.npz, '
      'official_weights/test/test_b.npz and official_weights/test/test_c.npz')
  assert server.requests == []
  # One missing: the same line as `resolve`.
  monkeypatch.delenv(known_files.OFFLINE_ENV)
  for name in ('test_a', 'test_c'):
    server.serve(entries[name].source, payloads[name])
  known_files.resolve('test_a')
  monkeypatch.setenv(known_files.OFFLINE_ENV, '1')
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.require(['test_a', 'test_b'])
  with pytest.raises(known_files.KnownFileError) as single:
    known_files.resolve('test_b')
  assert _one_line(error) == _one_line(single)
  monkeypatch.delenv(known_files.OFFLINE_ENV)
  assert known_files.require(['test_c', 'test_a', 'test_c']) == {
      'test_c': cache / entries['test_c'].relpath,
      'test_a': cache / entries['test_a'].relpath}


def test_require_stops_downloading_once_a_server_does_not_answer(
    monkeypatch, server, cache):
  payloads = {f'{i}.jpg': bytes([i]) * 10 for i in range(2)}
  dataset = _register_dataset(monkeypatch, 'test_set', payloads)
  entries = [_register_file(monkeypatch, name, _weights_payload(seed))
             for seed, name in enumerate(('test_a', 'test_b'))]
  for source in [e.source for e in entries] + [
      m.source for m in dataset.files]:
    server.serve(source, b'', mode='stall')
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.require(['test_a', 'test_set', 'test_b'], timeout=0.3)
  text = _one_line(error)
  assert text.startswith('test_a (official_weights/test/test_a.npz), '
                         'test_set (test_set_folder) and test_b ')
  assert '(test_a: cannot download ' in text and 'timed out' in text
  assert '`python -m pixelrl_tf.download test_a test_set test_b`' in text
  assert len(server.requests) == 1
  assert _files_under(cache) == []


def test_require_goes_on_after_a_file_the_server_lacks(monkeypatch, server,
                                                       cache):
  payload = _weights_payload()
  _register_file(monkeypatch, 'test_a', b'x')  # not served: HTTP 404
  entry = _register_file(monkeypatch, 'test_b', payload)
  server.serve(entry.source, payload)
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.require(['test_a', 'test_b'])
  text = _one_line(error)
  assert text.startswith('test_a (') and 'HTTP 404' in text
  assert 'test_b' not in text
  assert _files_under(cache) == [entry.relpath]


# ---------------------------------------------------------------------------
# Paths or names.


def test_resolve_path_or_name(monkeypatch, server, cache, tmp_path):
  existing = tmp_path / 'model.npz'
  existing.write_bytes(b'x')
  assert known_files.resolve_path_or_name(str(existing)) == existing
  assert known_files.resolve_path_or_name(existing) == existing
  assert known_files.resolve_path_or_name(str(tmp_path)) == tmp_path
  assert known_files.resolve_path_or_name(None) is None
  with pytest.raises(FileNotFoundError) as error:
    known_files.resolve_path_or_name('missing.npz')
  assert _one_line(error) == "'missing.npz' does not exist"
  with pytest.raises(FileNotFoundError) as error:
    known_files.resolve_path_or_name('missing.npz', what='weights file')
  assert _one_line(error) == "weights file 'missing.npz' does not exist"
  with pytest.raises(FileNotFoundError) as error:
    known_files.resolve_path_or_name(
        str(tmp_path / 'official_weights' / 'denoise' / 'pretrained_25.npz'))
  assert "known file 'fcn_sigma25'" in _one_line(error)
  with pytest.raises(FileNotFoundError, match="data set 'bsd432'"):
    known_files.resolve_path_or_name('../nowhere/BSD432_gray_train/')
  payload = _weights_payload()
  entry = _register_file(monkeypatch, 'test_weights', payload)
  server.serve(entry.source, payload)
  assert known_files.resolve_path_or_name('test_weights') == (
      cache / entry.relpath)
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.resolve_path_or_name('gru_rmc_sigma52')
  text = _one_line(error)
  assert text.startswith("'gru_rmc_sigma52' does not exist and is not a "
                         'known name; did you mean ')
  assert 'gru_rmc_sigma25' in text
  with pytest.raises(known_files.KnownFileError) as error:
    known_files.resolve_path_or_name('no_such_thing', what='image folder')
  assert _one_line(error) == (
      "image folder 'no_such_thing' does not exist and is not a known name "
      '(`python -m pixelrl_tf.download --list` lists them)')
  assert server.requests == [f'/{entry.source.repo}/{entry.source.commit}/'
                             f'{entry.source.path}']


def test_image_folders_of_commands_take_names(monkeypatch, server, cache,
                                              tmp_path):
  """`restore --input` and `make_restoration_set --input_dir`."""
  # pylint: disable=g-import-not-at-top
  import cv2
  from pixelrl_tf.jobs import restoration_set_lib
  from pixelrl_tf.jobs import restore_lib
  rng = np.random.default_rng(0)
  payloads = {name: cv2.imencode('.png', rng.integers(
      0, 256, (24, 32), np.uint8))[1].tobytes() for name in ('a.png', 'b.png')}
  entry = _register_dataset(monkeypatch, 'test_set', payloads)
  for member in entry.files:
    server.serve(member.source, payloads[member.relpath.rsplit('/', 1)[1]])
  folder = cache / entry.relpath
  assert restore_lib.find_images('test_set') == [
      str(folder / 'a.png'), str(folder / 'b.png')]
  manifest = restoration_set_lib.make_restoration_set(
      'test_set', tmp_path / 'set', seed=0)
  assert manifest['image_count'] == 2
  assert sorted(p.name for p in (tmp_path / 'set' / 'input').iterdir()) == [
      'a.png', 'b.png']
  with pytest.raises(restoration_set_lib.RestorationSetError) as error:
    restoration_set_lib.make_restoration_set('test_sett', tmp_path / 'x',
                                             seed=0)
  assert _one_line(error).startswith(
      "image folder 'test_sett' does not exist and is not a known name; did "
      'you mean test_set?')
  with pytest.raises(FileNotFoundError, match="^input 'nowhere/a.png' does "
                     'not exist$'):
    restore_lib.find_images('nowhere/a.png')
  assert not (tmp_path / 'x').exists()


def test_list_known_reports_local_and_cached_copies(monkeypatch, server,
                                                    cache, tmp_path):
  payload = _weights_payload()
  entry = _register_file(monkeypatch, 'test_weights', payload)
  server.serve(entry.source, payload)

  def row():
    rows = {r.name: r for r in known_files.list_known(data_root=tmp_path)}
    return rows['test_weights']

  assert (row().local, row().cached) == (False, False)
  known_files.resolve('test_weights')
  assert (row().local, row().cached) == (False, True)
  local = tmp_path / entry.relpath
  local.parent.mkdir(parents=True)
  local.write_bytes(payload)
  assert row() == ('test_weights', 'file', len(payload), 1,
                   f'owner/repo@{COMMIT[:7]}:model/test_weights.npz', True,
                   True, 'test file')


# ---------------------------------------------------------------------------
# The download job and its command line.


def test_progress_bar_text_and_final_line():
  assert download_lib.ByteProgressBar.text('x', 1_500_000, 3_000_000) == (
      'x  1.5 MB / 3.0 MB   50%')
  assert download_lib.ByteProgressBar.text('x', 999, None) == 'x  999 B'
  stream = io.StringIO()
  bar = download_lib.ByteProgressBar(stream)
  bar('x', 10, 20)
  bar('x', 20, 20)
  assert stream.getvalue() == ''  # not a terminal: only the final line
  bar.close()
  assert stream.getvalue() == 'x  20 B / 20 B  100%\n'

  class Terminal(io.StringIO):

    def isatty(self):
      return True

  stream = Terminal()
  bar = download_lib.ByteProgressBar(stream, min_interval_seconds=0)
  bar('x', 1500, 3000)
  bar('x', 3000, 3000)
  bar.close()
  assert stream.getvalue() == (
      '\rx  1.5 kB / 3.0 kB   50%\rx  3.0 kB / 3.0 kB  100%\n')


def test_download_checks_every_name_first(monkeypatch, server, cache):
  payload = _weights_payload()
  entry = _register_file(monkeypatch, 'test_weights', payload)
  server.serve(entry.source, payload)
  with pytest.raises(known_files.KnownFileError, match='test_weigths'):
    download_lib.download(['test_weights', 'test_weigths'])
  assert server.requests == []
  with pytest.raises(ValueError, match='not both'):
    download_lib.download(['test_weights'], all_names=True)
  with pytest.raises(ValueError, match='name at least one'):
    download_lib.download([])
  stream = io.StringIO()
  assert download_lib.download(['test_weights'], stream=stream) == [
      ('test_weights', cache / entry.relpath)]
  assert stream.getvalue().endswith('100%\n')


def _run_cli(args, env):
  full_env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
  full_env.update(env)
  return subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.download', *args], cwd=PROJECT_ROOT,
      env=full_env, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS, check=False)


def test_cli_lists_and_downloads(server, tmp_path):
  env = {known_files.CACHE_DIR_ENV: str(tmp_path / 'cache'),
         known_files.BASE_URL_ENV: server.base_url}
  listing = _run_cli(['--list'], env)
  assert listing.returncode == 0, listing.stderr
  assert 'gru_rmc_sigma25' in listing.stdout and 'bsd432 ' in listing.stdout
  assert f'cache: {tmp_path / "cache"}' in listing.stdout
  server.serve(known_files.get_entry('bsd68_list').source, b'a.jpg\n')
  fetched = _run_cli(['bsd68_list'], env)
  assert fetched.returncode == 0, fetched.stderr
  expected = tmp_path / 'cache' / 'BSD68_test_list.txt'
  assert fetched.stdout == f'bsd68_list: {expected}\n'
  assert expected.read_bytes() == b'a.jpg\n'
  assert 'warning: bsd68_list has no pinned sha256' in fetched.stderr
  assert 'bsd68_list  6 B' in fetched.stderr
  listing = _run_cli(['--list'], env)
  assert [line.split()[5] for line in listing.stdout.splitlines()
          if line.startswith('bsd68_list ')] == ['yes']


def test_cli_downloads_a_real_weight_file(server, tmp_path):
  entry = known_files.get_entry('ircnn_denoise_15_gray')
  payload = shared_data_path(*entry.relpath.split('/')).read_bytes()
  server.serve(entry.source, payload)
  fetched = _run_cli(['ircnn_denoise_15_gray'], {
      known_files.CACHE_DIR_ENV: str(tmp_path),
      known_files.BASE_URL_ENV: server.base_url})
  assert fetched.returncode == 0, fetched.stderr
  assert (tmp_path / entry.relpath).read_bytes() == payload


def test_cli_errors_are_one_line(tmp_path):
  env = {known_files.CACHE_DIR_ENV: str(tmp_path),
         known_files.BASE_URL_ENV: closed_port_url()}
  for args, expected in ((['gru_sigma25'], 'python -m pixelrl_tf.download '
                          'gru_sigma25'),
                         (['gru_sigma52'], 'did you mean')):
    result = _run_cli(args, env)
    assert result.returncode == 1, result
    assert result.stderr.count('\n') == 1, result.stderr
    assert result.stderr.startswith('error: ') and expected in result.stderr

"""Tests of pixelrl_tf.io.files: atomic writes of files and folders."""

import errno
import os
import stat
import tempfile
import threading

import pytest

from conftest import HANG_TIMEOUT_SECONDS
import disks
from pixelrl_tf.io import files


def _umask():
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def _mode(path):
  return stat.S_IMODE(os.stat(path).st_mode)


def _fail_with(code):
  def fail(*args, **kwargs):
    raise OSError(code, os.strerror(code))
  return fail


def _expect_one_line_os_error(call, path, code):
  with pytest.raises(OSError) as info:
    call()
  message = str(info.value)
  assert '\n' not in message, message
  assert str(path) in message, message
  assert info.value.errno == code, message
  assert os.strerror(code) in message, message
  return info.value


# ---------------------------------------------------------------------------
# Files.


def test_write_text_and_bytes(tmp_path):
  path = tmp_path / 'a' / 'b' / 'model.json'
  files.write_text_atomically(path, '{"x": 1}\n')
  assert path.read_text() == '{"x": 1}\n'
  files.write_text_atomically(str(path), 'é\r\n')
  assert path.read_bytes() == 'é\r\n'.encode('utf-8')
  files.write_bytes_atomically(path, b'\x00\xff')
  assert path.read_bytes() == b'\x00\xff'
  files.write_bytes_atomically(path, bytearray(b'ab'))
  files.write_bytes_atomically(path, memoryview(b'abc'))
  assert path.read_bytes() == b'abc'
  files.write_bytes_atomically(path, b'')
  assert path.read_bytes() == b''
  assert os.listdir(path.parent) == ['model.json']


def test_file_modes(tmp_path):
  path = tmp_path / 'new.txt'
  files.write_text_atomically(path, 'x')
  assert _mode(path) == 0o666 & ~_umask()
  os.chmod(path, 0o600)
  files.write_text_atomically(path, 'y')
  assert _mode(path) == 0o600


def test_long_file_names(tmp_path):
  path = tmp_path / ('n' * 250 + '.txt')
  files.write_text_atomically(path, 'x')
  assert path.read_text() == 'x'
  with files.atomic_directory(tmp_path / ('d' * 255)) as temp:
    assert len(os.path.basename(temp)) <= 255


def test_temporary_file_is_a_hidden_sibling(tmp_path, monkeypatch):
  renames = []
  replace = os.replace

  def spy(source, target):
    renames.append((source, target))
    assert open(source, 'rb').read() == b'data'
    return replace(source, target)

  monkeypatch.setattr(os, 'replace', spy)
  path = tmp_path / 'out.bin'
  files.write_bytes_atomically(path, b'data')
  [(source, target)] = renames
  assert target == str(path)
  assert os.path.dirname(source) == str(tmp_path)
  name = os.path.basename(source)
  assert name.startswith('.out.bin.') and name.endswith('.tmp')


@pytest.mark.parametrize('stage', ['write', 'fsync', 'replace'])
@pytest.mark.parametrize('code', [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_failure_keeps_the_previous_file(tmp_path, monkeypatch, stage, code):
  path = tmp_path / 'state.json'
  files.write_text_atomically(path, 'old')
  if stage == 'write':
    fdopen = os.fdopen

    class FullFile:
      """A file object whose writes fail as on a full disk."""

      def __init__(self, *args, **kwargs):
        self._file = fdopen(*args, **kwargs)

      def __enter__(self):
        return self

      def __exit__(self, *exc_info):
        self._file.close()

      def fileno(self):
        return self._file.fileno()

      def write(self, data):
        self._file.write(data[:1])
        self._file.flush()
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, 'fdopen', FullFile)
  else:
    monkeypatch.setattr(os, stage, _fail_with(code))
  error = _expect_one_line_os_error(
      lambda: files.write_text_atomically(path, 'new' * 1000), path, code)
  assert 'previous file' in str(error)
  if code == errno.EACCES:
    assert isinstance(error, PermissionError)
  monkeypatch.undo()
  assert path.read_text() == 'old'
  assert os.listdir(tmp_path) == ['state.json']


def test_failure_to_create_the_temporary_file(tmp_path, monkeypatch):
  monkeypatch.setattr(tempfile, 'mkstemp', _fail_with(errno.EROFS))
  path = tmp_path / 'x.txt'
  _expect_one_line_os_error(lambda: files.write_text_atomically(path, 'x'),
                            path, errno.EROFS)
  assert not path.exists()


@pytest.mark.skipif(os.name != 'posix' or os.geteuid() == 0,
                    reason='needs POSIX permissions that bind the user')
def test_read_only_folder(tmp_path):
  folder = tmp_path / 'locked'
  folder.mkdir()
  path = folder / 'a.txt'
  files.write_text_atomically(path, 'old')
  os.chmod(folder, 0o555)
  try:
    _expect_one_line_os_error(lambda: files.write_text_atomically(path, 'n'),
                              path, errno.EACCES)
    assert path.read_text() == 'old'
    assert os.listdir(folder) == ['a.txt']
  finally:
    os.chmod(folder, 0o755)


def test_a_folder_in_the_way(tmp_path):
  path = tmp_path / 'taken'
  path.mkdir()
  with pytest.raises(OSError) as info:
    files.write_text_atomically(path, 'x')
  assert '\n' not in str(info.value) and str(path) in str(info.value)
  assert os.listdir(tmp_path) == ['taken']


def _group(tmp_path, text):
  return {tmp_path / name: f'{text} {name}'.encode()
          for name in ('a.png', 'b.png', 'c.json')}


def test_a_group_of_files_is_written_together(tmp_path):
  files.write_files_atomically(_group(tmp_path, 'new'))
  assert sorted(os.listdir(tmp_path)) == ['a.png', 'b.png', 'c.json']
  assert (tmp_path / 'c.json').read_bytes() == b'new c.json'


@pytest.mark.parametrize('failing_call', [1, 3])
def test_a_group_that_fails_leaves_every_file_as_it_was(tmp_path, monkeypatch,
                                                       failing_call):
  files.write_files_atomically(_group(tmp_path, 'old'))
  fsync, calls = os.fsync, []

  def fsync_until_the_disk_is_full(fd):
    calls.append(fd)
    if len(calls) == failing_call:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return fsync(fd)

  monkeypatch.setattr(os, 'fsync', fsync_until_the_disk_is_full)
  with pytest.raises(OSError) as info:
    files.write_files_atomically(_group(tmp_path, 'new'))
  monkeypatch.undo()
  assert info.value.errno == errno.ENOSPC and '\n' not in str(info.value)
  # The file of the failing call is the one named.
  assert ['a.png', 'b.png', 'c.json'][failing_call - 1] in str(info.value)
  assert sorted(os.listdir(tmp_path)) == ['a.png', 'b.png', 'c.json']
  for path, data in _group(tmp_path, 'old').items():
    assert path.read_bytes() == data


def test_a_group_with_a_folder_in_the_way_writes_nothing(tmp_path):
  files.write_files_atomically(_group(tmp_path, 'old'))
  (tmp_path / 'c.json').unlink()
  (tmp_path / 'c.json').mkdir()
  with pytest.raises(IsADirectoryError, match='c.json'):
    files.write_files_atomically(_group(tmp_path, 'new'))
  assert (tmp_path / 'a.png').read_bytes() == b'old a.png'
  assert sorted(os.listdir(tmp_path)) == ['a.png', 'b.png', 'c.json']


@pytest.mark.parametrize('disk', ['full', 'read_only'])
def test_a_real_full_or_read_only_disk(tmp_path, disk):
  mount = tmp_path / 'disk'

  def populate(path):
    files.write_text_atomically(path / 'state.json', 'old')

  if disk == 'full':
    mounted = disks.small_disk(mount, free_bytes=1 << 16)
    if mounted is not None:
      # The old file was there before the disk filled up.
      populate(mount)
      disks.fill(mount)
  else:
    mounted = disks.read_only_disk(mount, populate)
  if mounted is None:
    pytest.skip(disks.MOUNT_UNAVAILABLE)
  with disks.mounted(mounted):
    code = errno.ENOSPC if disk == 'full' else errno.EROFS
    path = mount / 'state.json'
    _expect_one_line_os_error(
        lambda: files.write_text_atomically(path, 'new' * 5000), path, code)
    with pytest.raises(OSError):
      files.write_files_atomically({mount / 'a.png': b'a',
                                    path: b'new'})
    assert path.read_text() == 'old'
    assert sorted(os.listdir(mount)) == sorted(
        ['state.json'] + (['.filler'] if disk == 'full' else []))


def test_concurrent_writers_never_show_a_partial_file(tmp_path):
  path = tmp_path / 'shared.bin'
  payloads = [bytes([index]) * (64 * 1024 + index) for index in range(8)]
  files.write_bytes_atomically(path, payloads[0])
  errors = []
  stop = threading.Event()

  def writer(payload):
    try:
      for _ in range(15):
        files.write_bytes_atomically(path, payload)
    except Exception as error:  # pylint: disable=broad-except
      errors.append(error)

  def reader():
    while not stop.is_set():
      data = path.read_bytes()
      if data not in payloads:
        errors.append(AssertionError(f'partial file of {len(data)} bytes'))
        return

  threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
  watcher = threading.Thread(target=reader)
  watcher.start()
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  stop.set()
  watcher.join()
  assert not errors, errors
  assert path.read_bytes() in payloads
  assert os.listdir(tmp_path) == ['shared.bin']


def test_temporary_names_are_unique_across_threads(tmp_path, monkeypatch):
  seen = []
  replace = os.replace
  barrier = threading.Barrier(6)

  def spy(source, target):
    seen.append(source)
    barrier.wait(timeout=HANG_TIMEOUT_SECONDS)  # Every writer holds its temporary file.
    return replace(source, target)

  monkeypatch.setattr(os, 'replace', spy)
  threads = [
      threading.Thread(target=files.write_text_atomically,
                       args=(tmp_path / 'same.txt', str(index)))
      for index in range(6)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert len(seen) == len(set(seen)) == 6
  assert os.listdir(tmp_path) == ['same.txt']


# ---------------------------------------------------------------------------
# Folders.


def test_atomic_directory_success(tmp_path):
  final = tmp_path / 'export' / '1'
  with files.atomic_directory(final) as temp:
    assert isinstance(temp, str)
    assert os.path.dirname(temp) == str(final.parent)
    name = os.path.basename(temp)
    assert name.startswith('.1.') and name.endswith('.tmp')
    assert not final.exists()
    with open(os.path.join(temp, 'saved_model.pb'), 'wb') as f:
      f.write(b'model')
    os.mkdir(os.path.join(temp, 'variables'))
  assert (final / 'saved_model.pb').read_bytes() == b'model'
  assert (final / 'variables').is_dir()
  assert os.listdir(final.parent) == ['1']
  assert _mode(final) == 0o777 & ~_umask()


def test_atomic_directory_failure_cleans_up(tmp_path):
  final = tmp_path / 'model'
  with pytest.raises(RuntimeError, match='save failed'):
    with files.atomic_directory(final) as temp:
      (tmp_path / 'seen').write_text(temp)
      os.mkdir(os.path.join(temp, 'deep'))
      with open(os.path.join(temp, 'deep', 'x'), 'w') as f:
        f.write('x')
      raise RuntimeError('save failed')
  assert os.listdir(tmp_path) == ['seen']


def test_atomic_directory_refuses_an_existing_folder(tmp_path):
  final = tmp_path / 'model'
  final.mkdir()
  (final / 'keep').write_text('old')
  entered = []
  with pytest.raises(FileExistsError) as info:
    with files.atomic_directory(final):
      entered.append(True)
  assert not entered
  assert '\n' not in str(info.value) and str(final) in str(info.value)
  assert (final / 'keep').read_text() == 'old'
  assert os.listdir(tmp_path) == ['model']


def test_atomic_directory_folder_appearing_meanwhile(tmp_path):
  final = tmp_path / 'model'
  with pytest.raises(FileExistsError, match='appeared while') as info:
    with files.atomic_directory(final) as temp:
      with open(os.path.join(temp, 'new'), 'w') as f:
        f.write('new')
      final.mkdir()
      (final / 'other').write_text('other writer')
  assert '\n' not in str(info.value)
  assert os.listdir(final) == ['other']
  assert os.listdir(tmp_path) == ['model']


def test_atomic_directory_rename_failure(tmp_path, monkeypatch):
  final = tmp_path / 'model'
  monkeypatch.setattr(os, 'rename', _fail_with(errno.EROFS))
  with pytest.raises(OSError) as info:
    with files.atomic_directory(final) as temp:
      with open(os.path.join(temp, 'x'), 'w') as f:
        f.write('x')
  assert info.value.errno == errno.EROFS
  assert '\n' not in str(info.value) and str(final) in str(info.value)
  assert os.listdir(tmp_path) == []


def test_atomic_directory_cannot_create(tmp_path, monkeypatch):
  monkeypatch.setattr(tempfile, 'mkdtemp', _fail_with(errno.ENOSPC))
  final = tmp_path / 'model'
  with pytest.raises(OSError) as info:
    with files.atomic_directory(final):
      pass
  assert info.value.errno == errno.ENOSPC
  assert '\n' not in str(info.value) and str(final) in str(info.value)


def test_remove_stale_temporaries_removes_only_what_killed_writers_left(
    tmp_path):
  kept = ['model.json', '.hidden', 'ckpt-3.index', 'notes.tmp']
  for name in kept:
    (tmp_path / name).write_text('x')
  (tmp_path / 'best').mkdir()
  (tmp_path / '.run.json.abcdefgh.tmp').write_text('half')
  (tmp_path / '.export.abcdefgh.tmp').mkdir()
  (tmp_path / 'ckpt-3_temp').mkdir()
  (tmp_path / 'ckpt-3_temp' / 'part-00000').write_text('half')
  removed = files.remove_stale_temporaries(tmp_path)
  assert sorted(os.path.basename(path) for path in removed) == [
      '.export.abcdefgh.tmp', '.run.json.abcdefgh.tmp', 'ckpt-3_temp']
  assert sorted(os.listdir(tmp_path)) == sorted(kept + ['best'])
  assert files.remove_stale_temporaries(tmp_path / 'absent') == []

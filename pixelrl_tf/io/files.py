"""Atomic writes of files and folders on the local file system.

A reader never sees a half-written file: the data goes to a hidden temporary
file beside the target (`.NAME.XXXXXXXX.tmp`, unique per writer, so two
processes or threads writing the same path never share one), is flushed and
fsynced, and is then renamed over the target in one step. When anything
fails (a full or read-only disk, a missing permission) the temporary file is
removed, the previous file is left as it was, and the error is an `OSError`
(of the subclass its errno selects, e.g. `PermissionError`) with a one-line
message naming the target, e.g.

    [Errno 28] cannot write 'runs/a/model.json': No space left on device
    (the previous file, if any, is unchanged)

`write_files_atomically` writes several files all or none (each to its
temporary file first, then all renamed). `atomic_directory` does the same
for a whole folder (a SavedModel, an export version): the caller fills a
hidden temporary sibling, which is renamed into place only when the block
succeeds.

New files get the usual permissions (0666 less the umask); a replaced file
keeps its mode.
"""

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from typing import Iterator, Mapping, Union

PathLike = Union[str, os.PathLike]

_TEMP_SUFFIX = '.tmp'
# Room for the dot, mkstemp's 8 random characters and the suffix within the
# usual 255-byte limit on a file name.
_MAX_TEMP_STEM = 200
_UNCHANGED = ' (the previous file, if any, is unchanged)'


def _one_line(text: str) -> str:
  return ' '.join(str(text).split())


def _os_error(error: OSError, what: str, suffix: str = '') -> OSError:
  """A one-line `OSError` of the same errno (and subclass) as `error`."""
  message = f'{what}: {_one_line(error.strerror or error)}{suffix}'
  if error.errno is None:
    return OSError(message)
  # OSError(errno, text) picks the subclass, e.g. PermissionError.
  return OSError(error.errno, message)


def umask() -> int:
  """The process umask, read without changing it where Linux allows."""
  try:
    with open('/proc/self/status', encoding='ascii') as status:
      for line in status:
        if line.startswith('Umask:'):
          return int(line.split()[1], 8)
  except (OSError, ValueError, IndexError):
    pass
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def _temp_prefix(path: str) -> str:
  """`.NAME.`: hidden, and named after the file it will become."""
  name = os.path.basename(os.path.abspath(path))
  return f'.{name[:_MAX_TEMP_STEM]}.'


def _fsync_directory(directory: str) -> None:
  """Makes a rename inside `directory` durable; best effort."""
  try:
    fd = os.open(directory, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def _remove_quietly(path: str) -> None:
  try:
    os.unlink(path)
  except OSError:
    pass


def _write_temporary(path: str, data: bytes) -> str:
  """Writes `data` to a fsynced hidden temporary file beside `path`.

  Returns:
    The temporary file's path (with the mode `path` has or will have).

  Raises:
    OSError: (one line, naming `path`) nothing is left behind.
  """
  parent = os.path.dirname(os.path.abspath(path))
  what = f'cannot write {path!r}'
  try:
    os.makedirs(parent, exist_ok=True)
    try:
      mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
      mode = 0o666 & ~umask()
    fd, temp = tempfile.mkstemp(dir=parent, prefix=_temp_prefix(path),
                                suffix=_TEMP_SUFFIX)
  except OSError as error:
    raise _os_error(error, what, _UNCHANGED) from None
  try:
    with os.fdopen(fd, 'wb') as f:
      os.fchmod(f.fileno(), mode)
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
  except OSError as error:
    _remove_quietly(temp)
    raise _os_error(error, what, _UNCHANGED) from None
  except BaseException:
    _remove_quietly(temp)
    raise
  return temp


def write_bytes_atomically(path: PathLike, data: bytes) -> None:
  """Writes `data` to `path` so that readers see the old or the new file.

  Creates the parent folders if needed. The data is written to a unique
  hidden temporary file in the same folder, fsynced, and renamed over
  `path`.

  Args:
    path: the file to write.
    data: its new contents (`bytes`, `bytearray` or `memoryview`).

  Raises:
    OSError: (one line, naming `path`) the folder cannot be created, or the
      file cannot be written or renamed (full or read-only disk, no
      permission, ...). The previous file, if any, is unchanged and no
      temporary file is left behind.
  """
  write_files_atomically({path: data})


def write_files_atomically(contents: Mapping[PathLike, bytes]) -> None:
  """Writes several files so that they are all new or all as they were.

  Every file is first written in full to its hidden temporary file (as
  `write_bytes_atomically`); only when all of them are on disk are they
  renamed into place, one after the other. A full or read-only disk, a
  missing permission or an interrupt while writing therefore leaves every
  target as it was and no temporary file behind.

  Args:
    contents: `{path: bytes}`; parent folders are created.

  Raises:
    OSError: (one line, naming the first file that could not be written or
      renamed).
  """
  temporaries = []
  try:
    for path, data in contents.items():
      path = os.fspath(path)
      if os.path.isdir(path):
        raise _os_error(OSError(errno.EISDIR, os.strerror(errno.EISDIR)),
                        f'cannot write {path!r}', _UNCHANGED)
      temporaries.append((path, _write_temporary(path, data)))
  except BaseException:
    for _, temp in temporaries:
      _remove_quietly(temp)
    raise
  for index, (path, temp) in enumerate(temporaries):
    try:
      os.replace(temp, path)
    except OSError as error:
      for _, left in temporaries[index:]:
        _remove_quietly(left)
      raise _os_error(error, f'cannot write {path!r}',
                      _UNCHANGED if index == 0 else '') from None
  for parent in sorted({os.path.dirname(os.path.abspath(path))
                        for path, _ in temporaries}):
    _fsync_directory(parent)


def write_text_atomically(path: PathLike, text: str,
                          encoding: str = 'utf-8') -> None:
  """Writes `text` to `path` atomically (see `write_bytes_atomically`).

  Args:
    path: the file to write.
    text: its new contents; written as they are (no newline translation).
    encoding: text encoding.

  Raises:
    OSError: (one line, naming `path`) as `write_bytes_atomically`.
  """
  write_bytes_atomically(path, text.encode(encoding))


@contextlib.contextmanager
def atomic_directory(final_dir: PathLike) -> Iterator[str]:
  """Yields a temporary folder that becomes `final_dir` if the block succeeds.

  The temporary folder is a hidden sibling of `final_dir`
  (`.NAME.XXXXXXXX.tmp`, unique per call), so the final rename stays on one
  file system. On success it is renamed to `final_dir`; when the block
  raises, it is deleted with everything in it and the exception propagates
  unchanged. Files written inside are not fsynced one by one.

  `final_dir` must not exist, neither before the block nor when it ends: an
  existing folder is never overwritten or merged into. (Between the last
  check and the rename a concurrent writer could still create an empty
  folder there, which POSIX `rename` would replace.)

  Args:
    final_dir: the folder to create; its parents are created if needed.

  Yields:
    The path of the temporary folder, as a string.

  Raises:
    FileExistsError: (one line) `final_dir` exists already, or appeared
      while the block ran (then the temporary folder is deleted).
    OSError: (one line, naming `final_dir`) the temporary folder cannot be
      created or renamed.
  """
  final_dir = os.fspath(final_dir)
  parent = os.path.dirname(os.path.abspath(final_dir))
  if os.path.lexists(final_dir):
    raise FileExistsError(errno.EEXIST, f'{final_dir!r} already exists; not '
                          'overwriting it')
  try:
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(dir=parent, prefix=_temp_prefix(final_dir),
                            suffix=_TEMP_SUFFIX)
    # mkdtemp makes the folder private (0700); give it the usual mode.
    os.chmod(temp, 0o777 & ~umask())
  except OSError as error:
    raise _os_error(error, f'cannot create {final_dir!r}') from None
  try:
    yield temp
    if os.path.lexists(final_dir):
      raise FileExistsError(errno.EEXIST, f'{final_dir!r} appeared while it '
                            'was being written; not overwriting it')
    try:
      os.rename(temp, final_dir)
    except OSError as error:
      raise _os_error(error, f'cannot create {final_dir!r}') from None
  except BaseException:
    shutil.rmtree(temp, ignore_errors=True)
    raise
  _fsync_directory(parent)


def remove_stale_temporaries(directory: PathLike) -> list:
  """Removes what killed writers left in `directory`; returns the paths.

  Only a process that owns `directory` may call this (e.g. a training run
  when it starts): the hidden `.NAME.*.tmp` files and folders of this module
  and the `*_temp` folders of TensorFlow's checkpoint writer are removed,
  nothing else.

  Args:
    directory: the folder to sweep (not recursively); absent is fine.
  """
  removed = []
  try:
    names = os.listdir(directory)
  except OSError:
    return removed
  for name in sorted(names):
    path = os.path.join(directory, name)
    ours = name.startswith('.') and name.endswith(_TEMP_SUFFIX)
    checkpoint_temp = name.endswith('_temp') and os.path.isdir(path)
    if not (ours or checkpoint_temp):
      continue
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      _remove_quietly(path)
    removed.append(path)
  return removed

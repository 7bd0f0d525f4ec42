"""Small real file systems for tests: a full disk and a read-only disk.

`small_disk` and `read_only_disk` mount a tmpfs (Linux, with the privilege to
mount, as in the project's CI container); where that is not possible they
return None and the caller skips with `MOUNT_UNAVAILABLE`. A full disk is a
tmpfs with room for `free_bytes` more bytes; a read-only one is a tmpfs
remounted read-only after `populate` has filled it.
"""

import contextlib
import errno
import os
import pathlib
import subprocess
from typing import Callable, Iterator, Optional

MOUNT_UNAVAILABLE = ('needs to mount a tmpfs (Linux and the privilege to '
                     'mount) to make a real full or read-only disk')

_PAGE = 4096


def _mount(path: pathlib.Path, options: str) -> bool:
  path.mkdir(parents=True, exist_ok=True)
  result = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs',
                           str(path)], capture_output=True, check=False)
  return result.returncode == 0


def unmount(path: pathlib.Path) -> None:
  subprocess.run(['umount', '-l', str(path)], capture_output=True,
                 check=False)


def fill(path: pathlib.Path, free_bytes: int = 0) -> None:
  """Grows `path/.filler` until about `free_bytes` remain."""
  stats = os.statvfs(path)
  available = stats.f_bavail * stats.f_frsize
  size = max(0, available - free_bytes)
  with open(path / '.filler', 'ab') as f:
    chunk = b'\0' * (1 << 20)
    while size > 0:
      try:
        f.write(chunk[:min(size, len(chunk))])
        f.flush()
      except OSError as error:
        if error.errno != errno.ENOSPC:
          raise
        break
      size -= min(size, len(chunk))


def small_disk(path: pathlib.Path, free_bytes: int = 0,
               size_bytes: int = 1 << 20) -> Optional[pathlib.Path]:
  """Mounts a tmpfs at `path` with `free_bytes` (rounded to pages) free.

  Returns:
    `path`, or None where mounting is not possible. Unmount with
    `unmount(path)`.
  """
  size = max(size_bytes, free_bytes + 4 * _PAGE)
  if not _mount(path, f'size={size // _PAGE * _PAGE}'):
    return None
  fill(path, free_bytes)
  return path


def read_only_disk(
    path: pathlib.Path,
    populate: Callable[[pathlib.Path], None] = lambda path: None
) -> Optional[pathlib.Path]:
  """Mounts a tmpfs at `path`, fills it with `populate`, makes it read-only.

  Returns:
    `path`, or None where mounting is not possible.
  """
  if not _mount(path, 'size=16m'):
    return None
  populate(path)
  if subprocess.run(['mount', '-o', 'remount,ro', str(path)],
                    capture_output=True, check=False).returncode != 0:
    unmount(path)
    return None
  return path


@contextlib.contextmanager
def mounted(path: Optional[pathlib.Path]) -> Iterator[Optional[pathlib.Path]]:
  """Unmounts `path` (if any) when the block ends."""
  try:
    yield path
  finally:
    if path is not None:
      unmount(path)

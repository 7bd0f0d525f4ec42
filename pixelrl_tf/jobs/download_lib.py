"""Fetches known files into the cache and lists what is known.

The logic of `python -m pixelrl_tf.download`; the files, the lookup order and
the checks are those of `pixelrl_tf.data.known_files`.
"""

import pathlib
import sys
import time
from typing import List, Optional, Sequence, TextIO, Tuple

from pixelrl_tf.data import known_files


class ByteProgressBar:
  """Draws `label  12.3 MB / 27.9 MB  44%` on one line of a stream.

  On a terminal the line is redrawn in place (at most every
  `min_interval_seconds`); otherwise (a log, a pipe) only the final line is
  written, by `close`. Use one bar per name: it is a `known_files.ProgressFn`.
  """

  def __init__(self, stream: Optional[TextIO] = None,
               min_interval_seconds: float = 0.1):
    self._stream = stream or sys.stderr
    self._interactive = getattr(self._stream, 'isatty', lambda: False)()
    self._min_interval = min_interval_seconds
    self._last_draw = -float('inf')
    self._last_width = 0
    self._state = None
    self._drawn = None

  @staticmethod
  def text(label: str, done: int, total: Optional[int]) -> str:
    """The bar's text for `done` of `total` bytes."""
    size = known_files.format_bytes
    if total:
      percent = min(100, int(100 * done / total))
      return f'{label}  {size(done)} / {size(total)}  {percent:3d}%'
    return f'{label}  {size(done)}'

  def __call__(self, label: str, done: int, total: Optional[int]) -> None:
    self._state = (label, done, total)
    now = time.monotonic()
    if self._interactive and (now - self._last_draw >= self._min_interval or
                              done == total):
      self._draw('\r')
      self._last_draw = now

  def _draw(self, prefix, end=''):
    line = self.text(*self._state)
    padding = ' ' * max(0, self._last_width - len(line))
    self._stream.write(f'{prefix}{line}{padding}{end}')
    self._stream.flush()
    self._last_width = len(line)
    self._drawn = self._state

  def close(self) -> None:
    """Ends the line (writes the final state); nothing if nothing was sent."""
    if self._state is None:
      return
    if self._interactive and self._drawn == self._state:
      self._stream.write('\n')
      self._stream.flush()
    else:
      self._draw('\r' if self._interactive else '', end='\n')
    self._state = None


def download(names: Sequence[str],
             *,
             all_names: bool = False,
             data_root: Optional[str] = None,
             cache_dir: Optional[str] = None,
             base_url: Optional[str] = None,
             timeout: Optional[float] = None,
             check_hash: bool = False,
             stream: Optional[TextIO] = None
            ) -> List[Tuple[str, pathlib.Path]]:
  """Resolves each name (downloading what is missing), with a progress bar.

  Every name is checked before anything is fetched, so a typo fails at once.

  Args:
    names: registered names.
    all_names: fetch every registered name instead.
    data_root: as for `known_files.resolve`.
    cache_dir: as for `known_files.resolve`.
    base_url: as for `known_files.resolve`.
    timeout: as for `known_files.resolve`.
    check_hash: as for `known_files.resolve`.
    stream: where the progress bars go (default stderr).

  Returns:
    `(name, path)` per name, in order.

  Raises:
    ValueError: no names, or names together with `all_names`.
    known_files.KnownFileError: see `known_files.resolve`.
  """
  if all_names and names:
    raise ValueError('give names or --all, not both')
  if all_names:
    names = known_files.names()
  if not names:
    raise ValueError('name at least one known file or data set (or use '
                     '--all or --list)')
  for name in names:
    known_files.get_entry(name)
  results = []
  for name in dict.fromkeys(names):
    bar = ByteProgressBar(stream)
    try:
      path = known_files.resolve(
          name, data_root=data_root, cache_dir=cache_dir, base_url=base_url,
          timeout=timeout, check_hash=check_hash, progress=bar)
    finally:
      bar.close()
    results.append((name, path))
  return results


def list_text(data_root: Optional[str] = None,
              cache_dir: Optional[str] = None) -> str:
  """The `--list` table: names, sizes, sources, local and cached copies."""
  rows = known_files.list_known(data_root=data_root, cache_dir=cache_dir)
  root = known_files.get_data_root(data_root)
  header = ('name', 'kind', 'size', 'files', 'local', 'cached', 'source')
  table = [header] + [
      (row.name, row.kind, known_files.format_bytes(row.size),
       '?' if row.files is None else str(row.files),
       'yes' if row.local else '-', 'yes' if row.cached else '-', row.source)
      for row in rows]
  widths = [max(len(line[i]) for line in table) for i in range(len(header))]
  root_text = (str(root) if root is not None else
               f'none ({known_files.DATA_ROOT_ENV} is not set)')
  lines = [f'data root: {root_text}',
           f'cache: {known_files.get_cache_dir(cache_dir)}', '']
  for line in table:
    lines.append('  '.join(
        cell.rjust(width) if index in (2, 3) else cell.ljust(width)
        for index, (cell, width) in enumerate(zip(line, widths))).rstrip())
  unverified = [row.name for row in rows
                if _unverified(known_files.REGISTRY[row.name])]
  if unverified:
    lines.append('')
    lines.append(f'unverified (no pinned sha256, trusted on first download): '
                 f'{", ".join(unverified)}')
  return '\n'.join(lines)


def _unverified(entry):
  if isinstance(entry, known_files.KnownFile):
    return not entry.pinned
  return entry.files is None or not all(m.pinned for m in entry.files)

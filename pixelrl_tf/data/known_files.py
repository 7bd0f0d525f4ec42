r"""A registry of known files: named, pinned, checked, cached, downloadable.

Like Keras Applications, a released model or a data set is asked for by name
and fetched once:

  path = known_files.resolve('gru_rmc_sigma25')    # a .npz file
  folder = known_files.resolve('bsd432')           # a folder of 432 JPEGs

Every entry names a file of a public GitHub repository at a pinned commit
(`https://raw.githubusercontent.com/<owner>/<repo>/<commit>/<path>`), its size
and sha256, and the relative path it has under a local data root laid out like
the project's shared data folder (`official_weights/...`,
`BSD432_gray_train/...`). A data set is a named folder of such files.

Names:

  fcn_sigma{15,25,50}: released denoisers, plain FCN
      (`official_weights/denoise/pretrained_N.npz`).
  gru_sigma{15,25,50}: released denoisers, +convGRU
      (`official_weights/denoise_with_convGRU/pretrained_N.npz`).
  gru_rmc_sigma{15,25,50}: released denoisers, +convGRU +RMC
      (`official_weights/denoise_with_convGRU_and_RMC/pretrained_N.npz`).
  salt_pepper_init, salt_pepper_init_rmc: initial weights of restoration
      training, a 50% salt-and-pepper denoiser; the same bytes from two folders
      (`official_weights/inpaint_with_convGRU{,_and_RMC}/
      salt_pepper_noise_50_30000.npz`).
  color_init, color_init_rmc: initial weights of colour-enhancement training;
      the same bytes from two folders
      (`official_weights/fpop_with_convGRU{,_and_RMC}/200model.npz`).
  ircnn_denoise_{15,25,50}_gray: IRCNN Caffe denoisers, initial weights of
      denoising training
      (`official_weights/initial_weight/zhang_cvpr17_denoise_N_gray.caffemodel`)
  bsd432_list: the official training list `training_BSD68.txt`
      (`BSD432_train_list.txt`).
  bsd432: data set, the 432 BSD grayscale training images
      (folder `BSD432_gray_train/`).
  bsd68_list: the official test list `testing.txt`, UNVERIFIED
      (`BSD68_test_list.txt`).
  bsd68: data set, the BSD68 grayscale test images named by `bsd68_list`,
      UNVERIFIED (folder `BSD68_gray_test/`).
  fpop_train_ids: the official colour-enhancement training ids
      `uniform_set_train_id.txt` (`fpop/uniform_set_train_id.txt`).
  fpop_train: data set, the 70 Foreground Pop-Out training pairs, the
      paired source of colour-enhancement training (folder `fpop/train/`,
      `input/<id>.png` and `target/<id>.png`).
  fpop_train_input, fpop_train_target: data sets, its two halves (folders
      `fpop/train/input/`, `fpop/train/target/`), for paired image flags.

Converted entries (fpop). The source files are 16-bit RGB TIFFs
(`dataset_foregroundpopout/{data,label}/<id>.tif`); the data root holds
8-bit PNGs, `cv2.imwrite` of `cv2.imread(tif, cv2.IMREAD_COLOR)`. A download
is checked against the TIFF's pinned size and sha256, converted the same way,
and the PNG is checked against its own pinned size and sha256 before it is
renamed into place. The pinned PNGs were made with OpenCV 4.11.0, the
version of requirements.txt; another OpenCV may round or compress
differently, and its result is refused (nothing is kept) rather than cached
as something else.

`resolve(name)` looks in this order:

  1. the data root (`data_root=` or `PIXELRL_DATA_ROOT`), if one is set: a
     copy there is used as it is. Its size is checked (its sha256 too with
     `check_hash=True`); a copy of the wrong size is an error, never skipped
     silently. A data set is taken from there only when the folder holds all
     of its files.
  2. the cache (`cache_dir=` or `PIXELRL_CACHE_DIR`, default
     `~/.keras/pixelrl_tf`, the folder `tf.keras.utils.get_file` would use
     with `cache_subdir='pixelrl_tf'`), laid out like a data root. A cached
     file counts only if its size and sha256 match.
  3. a download into the cache: each file goes to a hidden temporary name
     (`.<name>.<random>.part`) in its cache folder, is checked (byte count
     against Content-Length, size and sha256) and only then renamed into place
     atomically. A failed, interrupted or mismatching download therefore
     leaves nothing a later call would use. A `downloading NAME (SIZE) from
     URL` line goes to stderr once the server has answered (not when it
     cannot be reached), unless a `progress` callback is given.
  4. otherwise `KnownFileError`, one line naming what is missing, the command
     that fetches it (`python -m pixelrl_tf.download NAME`; for a data set
     with a list, the data set's own name), its URL, and how to point at a
     local copy (`PIXELRL_DATA_ROOT=...`).

`require(names)` resolves several names at once and reports every one that
cannot be had in one line, with one command that fetches them all.

Configuration values and flags go through `resolve_path_or_name`: an existing
path, or anything that looks like one (a path separator or a suffix such as
`.npz`), stays a path; a registered name is resolved; anything else is a
one-line error saying that it does not exist, with the closest names.

Environment variables: `PIXELRL_DATA_ROOT`, `PIXELRL_CACHE_DIR`,
`PIXELRL_DOWNLOAD_BASE_URL` (replaces `https://raw.githubusercontent.com`,
e.g. with a mirror or a test server), `PIXELRL_DOWNLOAD_TIMEOUT` (seconds per
connect or read, default 20) and `PIXELRL_OFFLINE` (`1`: never download).
Explicit arguments win over the environment.

Unverified entries (BSD68). The BSD68 test images are not part of the
project's data and their sizes, hashes and even file names are not known
here. `bsd68_list` is registered by URL only, and `bsd68` is resolved from the
names inside that list once it has been downloaded: each line is a path in
the source repository (`BSD68/gray/test/<file>`) or a bare file name in that
folder, and becomes `BSD68_gray_test/<file>`. Such files are trusted on first
use: the download is accepted with a one-line warning, its sha256 is recorded
in `<cache>/trusted_sha256.json`, and every later use (and any re-download) is
checked against that record. Nothing guarantees that the first download was
the intended file; compare the recorded hashes with a trusted copy when it
matters.

The downloader is the standard library's `urllib` rather than
`tf.keras.utils.get_file`: `get_file` has no network timeout (a stalled server
hangs it), accepts a body shorter than its Content-Length when no hash is
given, leaves a mismatching file in the cache, draws its progress bar on
stdout and would make this module import TensorFlow. The cache location
follows its conventions.
"""

import concurrent.futures
import dataclasses
import difflib
import hashlib
import http.client
import json
import os
import pathlib
import re
import sys
import tempfile
import threading
from typing import (Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple, Union)
import urllib.error
import urllib.parse
import urllib.request

from pixelrl_tf.io import files

BASE_URL = 'https://raw.githubusercontent.com'
DATA_ROOT_ENV = 'PIXELRL_DATA_ROOT'
CACHE_DIR_ENV = 'PIXELRL_CACHE_DIR'
BASE_URL_ENV = 'PIXELRL_DOWNLOAD_BASE_URL'
TIMEOUT_ENV = 'PIXELRL_DOWNLOAD_TIMEOUT'
OFFLINE_ENV = 'PIXELRL_OFFLINE'
DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_WORKERS = 8
TRUSTED_HASHES_FILE = 'trusted_sha256.json'
DOWNLOAD_COMMAND = 'python -m pixelrl_tf.download'

# Anything with a suffix is a path: registered names never contain a dot.
_NAME_PATTERN = re.compile(r'[a-z][a-z0-9_]*')
_SAFE_FILE_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*')
_CHUNK_BYTES = 1 << 16

# `progress(label, bytes_done, bytes_total_or_None)`, called as data arrives.
ProgressFn = Callable[[str, int, Optional[int]], None]


class KnownFileError(ValueError):
  """A known file is unknown, unavailable, or not the expected bytes.

  The message is always one line.
  """


class _NetworkError(KnownFileError):
  """The server could not be reached, refused the file, or broke off.

  Attributes:
    no_answer: nothing answered (refused, timed out, no such host), as
      opposed to an HTTP error or a transfer that broke off.
  """

  def __init__(self, message, no_answer=False):
    super().__init__(message)
    self.no_answer = no_answer


class _Unavailable(KnownFileError):
  """An entry is in neither the data root nor the cache, nor downloadable.

  Attributes:
    name: the entry.
    relpaths: what a data root would have to hold, the entry's own last.
    reason: why, a clause (`not cached in ... and downloads are off`).
    url: where it comes from.
    no_answer: a download was tried and nothing answered.
  """

  def __init__(self, name, relpath, reason, url, no_answer=False,
               other_relpaths=()):
    self.name = name
    self.relpaths = (*other_relpaths, relpath)
    self.reason = reason
    self.url = url
    self.no_answer = no_answer
    super().__init__(
        f'{name} ({relpath}) is not available: {reason}; get it with '
        f'`{DOWNLOAD_COMMAND} {name}` (from {url}), or set '
        f'{DATA_ROOT_ENV}=<folder> holding {_and(self.relpaths)}')


def _and(items):
  """`a`, `a and b`, `a, b and c`."""
  items = list(items)
  return (', '.join(items[:-1]) + ' and ' + items[-1] if len(items) > 1
          else ''.join(items))


def _one_line(text):
  return ' '.join(str(text).split())


# ---------------------------------------------------------------------------
# Entries.


@dataclasses.dataclass(frozen=True)
class Source:
  """A file (or folder) of a public GitHub repository at a pinned commit.

  Attributes:
    repo: `owner/name`.
    commit: the full 40-hex commit id.
    path: path inside the repository, `/`-separated.
  """
  repo: str
  commit: str
  path: str

  def __post_init__(self):
    if not re.fullmatch(r'[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+', self.repo):
      raise ValueError(f'bad repository {self.repo!r}')
    if not re.fullmatch(r'[0-9a-f]{40}', self.commit):
      raise ValueError(f'commit {self.commit!r} is not 40 hex digits')
    _check_relative(self.path, 'source path')

  def url(self, base_url: Optional[str] = None) -> str:
    """The download URL, under `base_url` (default GitHub's raw server)."""
    base = (base_url or BASE_URL).rstrip('/')
    return f'{base}/{self.repo}/{self.commit}/{urllib.parse.quote(self.path)}'

  def __str__(self):
    return f'{self.repo}@{self.commit[:7]}:{self.path}'


@dataclasses.dataclass(frozen=True)
class KnownFile:
  """One file: where it comes from, what it must be, where it goes.

  Attributes:
    name: registry name (`gru_sigma25`); a data set's member is
      `<data set>/<path in the data set's folder>`.
    relpath: `/`-separated path under a data root or the cache.
    source: the pinned origin.
    size: bytes of the file at `relpath`, or None when unknown.
    sha256: lowercase hex digest of the file at `relpath`, or None for an
      unverified entry (trusted on first use).
    description: one line for `--list`.
    convert: None when the file is stored as downloaded; else the name of
      the conversion (`CONVERSIONS`) that turns the downloaded bytes into
      the stored file, and `size` and `sha256` are those of its result.
    source_size: bytes of the download, with `convert`.
    source_sha256: sha256 of the download, with `convert`.
  """
  name: str
  relpath: str
  source: Source
  size: Optional[int] = None
  sha256: Optional[str] = None
  description: str = ''
  convert: Optional[str] = None
  source_size: Optional[int] = None
  source_sha256: Optional[str] = None

  def __post_init__(self):
    _check_relative(self.relpath, 'relpath')
    for digest in (self.sha256, self.source_sha256):
      if digest is not None and not re.fullmatch(r'[0-9a-f]{64}', digest):
        raise ValueError(f'{self.name}: bad sha256 {digest!r}')
    if any(size is not None and size < 0
           for size in (self.size, self.source_size)):
      raise ValueError(f'{self.name}: negative size')
    if self.convert is None:
      if self.source_size is not None or self.source_sha256 is not None:
        raise ValueError(f'{self.name}: source_size and source_sha256 go '
                         'with convert')
    elif self.convert not in CONVERSIONS:
      raise ValueError(f'{self.name}: unknown conversion {self.convert!r}')
    elif None in (self.size, self.sha256, self.source_size,
                  self.source_sha256):
      # An unverified conversion would have nothing to check its result by.
      raise ValueError(f'{self.name}: a converted file needs the size and '
                       'sha256 of both the download and the result')

  @property
  def pinned(self) -> bool:
    return self.sha256 is not None

  @property
  def download_size(self) -> Optional[int]:
    """Bytes to download: `source_size` with `convert`, else `size`."""
    return self.source_size if self.convert is not None else self.size


@dataclasses.dataclass(frozen=True)
class KnownDataset:
  """A named folder of known files.

  Attributes:
    name: registry name (`bsd432`).
    relpath: the folder under a data root or the cache.
    source: the pinned origin folder (its `path` is a repository folder).
    files: the members, or None when a list file names them.
    list_name: registry name of the list file whose lines name the members
      (fetched from `source`); used when `files` is None.
    description: one line for `--list`.
  """
  name: str
  relpath: str
  source: Source
  files: Optional[Tuple[KnownFile, ...]] = None
  list_name: Optional[str] = None
  description: str = ''

  def __post_init__(self):
    _check_relative(self.relpath, 'relpath')
    if (self.files is None) == (self.list_name is None):
      raise ValueError(f'{self.name}: give exactly one of files, list_name')


Entry = Union[KnownFile, KnownDataset]


def _tiff_to_png(path):
  """The PNG bytes of the (16-bit) TIFF at `path`, and what made them.

  As the shared data folder was made: `cv2.imread(tif, cv2.IMREAD_COLOR)`
  (8-bit BGR; OpenCV 4.11.0 maps 16 to 8 bits as `round(v / 257)`), then
  `cv2.imwrite(png, ...)`. `cv2.imdecode` with the same flag gives the same
  array from the file's bytes (and opens any path), `cv2.imencode('.png')`
  the same bytes as `cv2.imwrite`.
  """
  # Only conversions need OpenCV (and NumPy); the registry does not.
  import cv2  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
  if image is None:
    raise KnownFileError('OpenCV cannot read it as an image')
  ok, encoded = cv2.imencode('.png', image)
  if not ok:
    raise KnownFileError('OpenCV cannot encode it as a PNG')
  return encoded.tobytes(), f'OpenCV {cv2.__version__}'


# Conversion name -> `convert(downloaded path) -> (bytes to store, what made
# them)`.
CONVERSIONS: Dict[str, Callable[[pathlib.Path], Tuple[bytes, str]]] = {
    'tiff_to_png': _tiff_to_png,
}


def _check_relative(path, what):
  parts = path.split('/')
  if (not path or path.startswith('/') or '\\' in path or
      any(part in ('', '.', '..') for part in parts)):
    raise ValueError(f'{what} {path!r} is not a plain relative path')


# ---------------------------------------------------------------------------
# The registry.

_PIXELRL = ('rfuruta/pixelRL', 'e0f5d35f4303724d90c1f5c6d9663c07284419e3')
_PIXELRL_PACKAGE = ('Nhat-Thanh/PixelRL',
                    '56da127f8ddbb9c3c184e09dcfeb42ab7dbc7e1d')
_BSD432_TABLE = pathlib.Path(__file__).with_name('known_files_bsd432.json')
_FPOP_TABLE = pathlib.Path(__file__).with_name('known_files_fpop.json')

_VARIANTS = (
    ('fcn', 'denoise', 'plain FCN'),
    ('gru', 'denoise_with_convGRU', '+convGRU'),
    ('gru_rmc', 'denoise_with_convGRU_and_RMC', '+convGRU +RMC'),
)
# (sigma, bytes, sha256) of each released denoiser, in _VARIANTS order.
_DENOISERS = (
    ((15, 993186,
      '0df7479e3597ecefd4234466e4d08ad9d1434524abda3dbaf9f199aa6e00581b'),
     (25, 993676,
      'cd55442e94222f65de0f52a27674d4f19f9138d68d3377bde1b97ceeacff0659'),
     (50, 993344,
      'c8a2a9fbe7c923adb1a520b44c8f232bbb2ee8b5201850284b961e22a5cbfdd8')),
    ((15, 1817886,
      'c79c545e6447a72a45cbd40d687da0ffb6720b7c7e84165734afce49dca9be16'),
     (25, 1817817,
      '17f9e7a3cd24d531eee9b95c187f5d642dcb215dd85e630e96fc48400883010d'),
     (50, 1817838,
      'fcf6c1a949b8e004faaecaf0407b8d31a0d684b6ad0d7c50dbae9ab5d65ee70f')),
    ((15, 1824425,
      '4776500fa82e4bfb0ab272e5ec9075108baab8b252d6b28d768128d83b086973'),
     (25, 1824148,
      'b5ce582d8270bb54c5a9eba2c10e4d981e64c491a7925190e262e16e19af9ca7'),
     (50, 1823633,
      '544fb77f119dcac18cb6f9e765c5b8ea9ae1a25cabc08da125cba80943271cff')),
)
_SALT_PEPPER = (
    1817016, '219775e84ca7ebaa54c7d11276ec6b3f9a44c7446d8edbe3bb3827afaf1f5052')
_COLOR = (704139,
          'cdcbd001e27c214a47c1a83a2497c44fc606d7666aeee291764b8e4930c8e1ed')
_IRCNN = (
    (15, 744306,
     'fbb2c927ad4fef335764770d678d323a8d0e9c885988612d1a196977cdebb28e'),
    (25, 744306,
     'cf993d1e2b093ddcf486dbf12a6a6aeee74b1901578120d108db85d49cb455a7'),
    (50, 744306,
     '755980938229477c36e9cb6d5749c531ca7d2fafa07e9276a447c916706da46f'),
)
_BSD432_LIST = (
    12372, 'a861c349a555142a5713a77b504fdc4c5ace4017b62d605bb4469886f311d7c5')
_FPOP_TRAIN_IDS = (
    1690, 'c7dca0417f2a794503ebc592f88c34819b5c293663170f04eba14448626b7ab3')
# (source folder, local folder) of the inputs and the targets.
_FPOP_HALVES = (('data', 'input'), ('label', 'target'))


def _weights(name, origin, source_path, folder, size_and_hash, description):
  repo, commit = origin
  relpath = f'official_weights/{folder}/{source_path.rsplit("/", 1)[-1]}'
  return KnownFile(name, relpath, Source(repo, commit, source_path),
                   size_and_hash[0], size_and_hash[1], description)


def _weight_entries():
  entries = []
  for (prefix, folder, label), releases in zip(_VARIANTS, _DENOISERS):
    for sigma, size, sha256 in releases:
      entries.append(_weights(
          f'{prefix}_sigma{sigma}', _PIXELRL,
          f'{folder}/model/pretrained_{sigma}.npz', folder, (size, sha256),
          f'released denoiser, {label}, Gaussian sigma {sigma}'))
  for suffix, folder in (('', 'inpaint_with_convGRU'),
                         ('_rmc', 'inpaint_with_convGRU_and_RMC')):
    entries.append(_weights(
        f'salt_pepper_init{suffix}', _PIXELRL_PACKAGE,
        f'{folder}/salt_pepper_noise_50_30000.npz', folder, _SALT_PEPPER,
        'restoration initial weights (50% salt-and-pepper denoiser)'))
  for suffix, folder in (('', 'fpop_with_convGRU'),
                         ('_rmc', 'fpop_with_convGRU_and_RMC')):
    entries.append(_weights(
        f'color_init{suffix}', _PIXELRL_PACKAGE, f'{folder}/200model.npz',
        folder, _COLOR,
        'colour-enhancement initial weights (3-channel regression)'))
  for sigma, size, sha256 in _IRCNN:
    entries.append(_weights(
        f'ircnn_denoise_{sigma}_gray', _PIXELRL,
        f'initial_weight/zhang_cvpr17_denoise_{sigma}_gray.caffemodel',
        'initial_weight', (size, sha256),
        f'IRCNN gray denoiser sigma {sigma} (Caffe), denoising initial '
        'weights'))
  return entries


def _bsd432_members(folder, source):
  table = json.loads(_BSD432_TABLE.read_text())
  if not table['source'].startswith(f'{source.repo}@{source.commit}:'):
    raise ValueError(f'{_BSD432_TABLE} is for another source commit')
  return tuple(
      KnownFile(f'bsd432/{file_name}', f'{folder}/{file_name}',
                Source(source.repo, source.commit,
                       f'{source.path}/{file_name}'), size, sha256)
      for file_name, size, sha256 in table['files'])


def _fpop_members(folder, source):
  """The converted pairs: (inputs, targets), each in the order of the ids."""
  table = json.loads(_FPOP_TABLE.read_text())
  if not table['source'].startswith(f'{source.repo}@{source.commit}:'):
    raise ValueError(f'{_FPOP_TABLE} is for another source commit')
  halves = ([], [])
  for pair_id, *checks in table['pairs']:
    for (source_folder, local_folder), check, members in zip(
        _FPOP_HALVES, checks, halves):
      tif_size, tif_sha256, png_size, png_sha256 = check
      members.append(KnownFile(
          f'fpop_train/{local_folder}/{pair_id}.png',
          f'{folder}/{local_folder}/{pair_id}.png',
          Source(source.repo, source.commit,
                 f'{source.path}/{source_folder}/{pair_id}.tif'),
          png_size, png_sha256, convert='tiff_to_png', source_size=tif_size,
          source_sha256=tif_sha256))
  return tuple(halves[0]), tuple(halves[1])


def _fpop_entries():
  source = Source(*_PIXELRL_PACKAGE, 'dataset_foregroundpopout')
  inputs, targets = _fpop_members('fpop/train', source)
  return [
      KnownFile('fpop_train_ids', 'fpop/uniform_set_train_id.txt',
                Source(*_PIXELRL_PACKAGE,
                       'fpop_with_convGRU/uniform_set_train_id.txt'),
                *_FPOP_TRAIN_IDS,
                'official Foreground Pop-Out training ids '
                '(uniform_set_train_id.txt)'),
      KnownDataset('fpop_train', 'fpop/train', source, files=inputs + targets,
                   description='70 Foreground Pop-Out training pairs, '
                   'input/ and target/ (PNG from 16-bit TIFF)'),
      KnownDataset('fpop_train_input', 'fpop/train/input',
                   Source(*_PIXELRL_PACKAGE, f'{source.path}/data'),
                   files=inputs,
                   description='the inputs of fpop_train'),
      KnownDataset('fpop_train_target', 'fpop/train/target',
                   Source(*_PIXELRL_PACKAGE, f'{source.path}/label'),
                   files=targets,
                   description='the targets of fpop_train'),
  ]


def _data_entries():
  bsd432_source = Source(*_PIXELRL, 'BSD68/gray/train')
  return [
      KnownFile('bsd432_list', 'BSD432_train_list.txt',
                Source(*_PIXELRL, 'training_BSD68.txt'), *_BSD432_LIST,
                'official BSD432 training list (training_BSD68.txt)'),
      KnownDataset('bsd432', 'BSD432_gray_train', bsd432_source,
                   files=_bsd432_members('BSD432_gray_train', bsd432_source),
                   description='432 BSD grayscale training images'),
      KnownFile('bsd68_list', 'BSD68_test_list.txt',
                Source(*_PIXELRL, 'testing.txt'),
                description='official BSD68 test list (testing.txt), '
                'unverified'),
      KnownDataset('bsd68', 'BSD68_gray_test',
                   Source(*_PIXELRL, 'BSD68/gray/test'),
                   list_name='bsd68_list',
                   description='BSD68 grayscale test images, unverified'),
  ]


def _build_registry(entries):
  registry = {}
  for entry in entries:
    if not _NAME_PATTERN.fullmatch(entry.name) or entry.name in registry:
      raise ValueError(f'bad or repeated registry name {entry.name!r}')
    registry[entry.name] = entry
  return registry


# Name -> entry, in listing order. Tests may add entries (e.g. with
# `monkeypatch.setitem`); a data set's `list_name` must be registered too.
REGISTRY: Dict[str, Entry] = _build_registry(_weight_entries() +
                                             _data_entries() +
                                             _fpop_entries())


def names() -> List[str]:
  """All registered names, in listing order."""
  return list(REGISTRY)


def get_entry(name: str) -> Entry:
  """The registry entry called `name`.

  Raises:
    KnownFileError: no such name; the message lists the closest names.
  """
  try:
    return REGISTRY[name]
  except (KeyError, TypeError):
    pass
  raise KnownFileError(
      f'no known file or data set is named {str(name)!r}'
      f'{_close_names_hint(name)}')


def _close_names_hint(name):
  """`; did you mean a, b? (`... --list` lists them)` for an unknown name."""
  close = difflib.get_close_matches(str(name), list(REGISTRY), n=3,
                                    cutoff=0.6)
  hint = f'; did you mean {", ".join(close)}?' if close else ''
  return f'{hint} (`{DOWNLOAD_COMMAND} --list` lists them)'


# ---------------------------------------------------------------------------
# Settings.


def get_data_root(data_root=None) -> Optional[pathlib.Path]:
  """The data root: `data_root`, else `$PIXELRL_DATA_ROOT`, else None.

  Raises:
    KnownFileError: the folder does not exist.
  """
  value = data_root if data_root is not None else os.environ.get(
      DATA_ROOT_ENV)
  if value is None or str(value) == '':
    return None
  root = pathlib.Path(value).expanduser()
  if not root.is_dir():
    origin = 'data_root' if data_root is not None else DATA_ROOT_ENV
    raise KnownFileError(f'{origin}={str(value)!r} is not a folder')
  return root


def get_cache_dir(cache_dir=None) -> pathlib.Path:
  """The cache: `cache_dir`, else `$PIXELRL_CACHE_DIR`, else the default."""
  value = cache_dir if cache_dir is not None else os.environ.get(
      CACHE_DIR_ENV)
  if value:
    return pathlib.Path(value).expanduser()
  return pathlib.Path('~', '.keras', 'pixelrl_tf').expanduser()


def _base_url(base_url):
  return base_url or os.environ.get(BASE_URL_ENV) or BASE_URL


def _timeout(timeout):
  if timeout is None:
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
      return DEFAULT_TIMEOUT_SECONDS
    try:
      timeout = float(text)
    except ValueError:
      raise KnownFileError(
          f'{TIMEOUT_ENV}={text!r} is not a number of seconds') from None
  if not timeout > 0:
    raise KnownFileError(f'download timeout must be positive, not {timeout}')
  return float(timeout)


def _offline():
  return os.environ.get(OFFLINE_ENV, '').strip().lower() in (
      '1', 'true', 'yes', 'on')


@dataclasses.dataclass(frozen=True)
class _Settings:
  data_root: Optional[pathlib.Path]
  cache_dir: pathlib.Path
  base_url: str
  timeout: float
  download: bool
  check_hash: bool
  progress: Optional[ProgressFn]
  workers: int


def _settings(data_root=None, cache_dir=None, base_url=None, timeout=None,
              download=True, check_hash=False, progress=None,
              workers=DEFAULT_WORKERS):
  return _Settings(get_data_root(data_root), get_cache_dir(cache_dir),
                   _base_url(base_url), _timeout(timeout),
                   bool(download) and not _offline(), check_hash, progress,
                   max(1, int(workers)))


# ---------------------------------------------------------------------------
# Checking files.


def _sha256(path):
  digest = hashlib.sha256()
  with open(path, 'rb') as stream:
    for chunk in iter(lambda: stream.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


def _mismatch(path, size, sha256):
  """Why `path` is not `size` bytes with `sha256` (None: it is)."""
  actual = path.stat().st_size
  if size is not None and actual != size:
    return f'has {actual} bytes, expected {size}'
  if sha256 is not None:
    digest = _sha256(path)
    if digest != sha256:
      return f'has sha256 {digest}, expected {sha256}'
  return None


class _TrustedHashes:
  """`<cache>/trusted_sha256.json`: hashes of unverified downloads."""

  _lock = threading.Lock()

  def __init__(self, cache_dir):
    self.path = cache_dir / TRUSTED_HASHES_FILE

  def _load(self):
    try:
      records = json.loads(self.path.read_text())
    except FileNotFoundError:
      return {}
    except (OSError, ValueError) as error:
      raise KnownFileError(
          f'cannot read {self.path} ({_one_line(error)}); delete it to trust '
          'the unverified downloads again') from None
    if not isinstance(records, dict):
      raise KnownFileError(f'{self.path} is not a JSON object; delete it')
    return records

  def get(self, relpath):
    with self._lock:
      return self._load().get(relpath)

  def record(self, relpath, size, sha256, url):
    with self._lock:
      records = self._load()
      records[relpath] = {'size': size, 'sha256': sha256, 'url': url}
      files.write_text_atomically(
          self.path, json.dumps(records, indent=1, sort_keys=True) + '\n')


def _remove(path):
  try:
    os.unlink(path)
  except FileNotFoundError:
    pass


def _expected(entry, trusted):
  """(size, sha256, where the hash comes from) a copy of `entry` must have."""
  if entry.pinned:
    return entry.size, entry.sha256, 'pinned'
  record = trusted.get(entry.relpath)
  if record:
    return record['size'], record['sha256'], f'recorded in {trusted.path}'
  return entry.size, None, None


def _cached(entry, cache_dir, trusted):
  """The verified cached copy of `entry`, or None."""
  path = cache_dir / entry.relpath
  if not path.is_file():
    return None
  size, sha256, _ = _expected(entry, trusted)
  if sha256 is None or _mismatch(path, size, sha256):
    return None
  return path


def _local(entry, data_root, check_hash):
  """The data root's copy of `entry`, None if absent; errors if wrong."""
  path = data_root / entry.relpath
  if not path.exists():
    return None
  if not path.is_file():
    raise KnownFileError(f'{path} (the local copy of {entry.name}) is not a '
                         'file')
  problem = _mismatch(path, entry.size, entry.sha256 if check_hash else None)
  if problem:
    raise KnownFileError(
        f'the local copy {path} of {entry.name} {problem}; replace it, or '
        f'unset {DATA_ROOT_ENV} to use the cache')
  return path


# ---------------------------------------------------------------------------
# Downloading.


class _Progress:
  """Adds up the bytes of one resolve call and reports them.

  Without a callback, `announcement` goes to stderr when a server first
  answers, so a download that cannot start prints only its error.
  """

  def __init__(self, label, total, callback, announcement=None):
    self._label = label
    self._total = total
    self._callback = callback
    self._announcement = announcement if callback is None else None
    self._done = 0
    self._lock = threading.Lock()

  def answered(self):
    """A server answered with the file; its bytes follow."""
    with self._lock:
      if self._announcement is not None:
        _say(self._announcement)
        self._announcement = None

  def __call__(self, count):
    with self._lock:
      self._done += count
      if self._callback is not None:
        self._callback(self._label, self._done, self._total)


def _say(message):
  print(message, file=sys.stderr, flush=True)


def _content_length(response):
  try:
    value = int(response.headers.get('Content-Length', ''))
  except ValueError:
    return None
  return value if value >= 0 else None


def _transfer(url, handle, expected_size, origin, timeout, progress, name):
  """Streams `url` into the open file `handle`; returns (sha256, bytes)."""
  digest = hashlib.sha256()
  count = 0
  with os.fdopen(handle, 'wb') as stream:
    try:
      response = urllib.request.urlopen(url, timeout=timeout)
    except (OSError, http.client.HTTPException, ValueError) as error:
      reason = getattr(error, 'reason', None) or error
      answered = isinstance(error, urllib.error.HTTPError)
      if answered:
        reason = f'HTTP {error.code} {error.reason}'
        error.close()
      raise _NetworkError(f'cannot download {url}: {_one_line(reason)}',
                          no_answer=not answered) from None
    progress.answered()
    with response:
      declared = _content_length(response)
      if (expected_size is not None and declared is not None and
          declared != expected_size):
        raise KnownFileError(
            f'{name}: {url} announces {declared} bytes, expected '
            f'{expected_size} ({origin}); nothing was kept')
      while True:
        try:
          chunk = response.read(_CHUNK_BYTES)
        except (OSError, http.client.HTTPException) as error:
          raise _NetworkError(
              f'the download of {url} broke off after {count} bytes '
              f'({_one_line(error) or type(error).__name__})') from None
        if not chunk:
          break
        stream.write(chunk)
        digest.update(chunk)
        count += len(chunk)
        if expected_size is not None and count > expected_size:
          raise KnownFileError(f'{name}: {url} sends more than the expected '
                               f'{expected_size} bytes ({origin}); nothing '
                               'was kept')
        progress(len(chunk))
    # http.client returns a short body without an error when the server
    # closes early, so the count is checked here.
    if declared is not None and count != declared:
      raise _NetworkError(f'the download of {url} broke off after {count} of '
                          f'{declared} bytes')
    stream.flush()
    os.fsync(stream.fileno())
  return digest.hexdigest(), count


def _download(entry, settings, trusted, progress):
  """Fetches `entry` into the cache; returns (path, newly trusted sha256)."""
  url = entry.source.url(settings.base_url)
  final = settings.cache_dir / entry.relpath
  final.parent.mkdir(parents=True, exist_ok=True)
  if entry.convert is not None:
    return _download_and_convert(entry, settings, url, final, progress), None
  size, sha256, origin = _expected(entry, trusted)
  handle, temporary = tempfile.mkstemp(prefix=f'.{final.name}.',
                                       suffix='.part', dir=final.parent)
  try:
    digest, count = _transfer(url, handle, size, origin or 'registry',
                              settings.timeout, progress, entry.name)
    if size is not None and count != size:
      raise KnownFileError(f'{entry.name}: {url} sent {count} bytes, '
                           f'expected {size} ({origin or "registry"}); '
                           'nothing was kept')
    if sha256 is not None and digest != sha256:
      raise KnownFileError(
          f'{entry.name}: {url} sent a file with sha256 {digest}, expected '
          f'{sha256} ({origin}); nothing was kept')
    os.replace(temporary, final)
  except BaseException:
    _remove(temporary)
    raise
  if sha256 is None:
    trusted.record(entry.relpath, count, digest, url)
    return final, digest
  return final, None


def _download_and_convert(entry, settings, url, final, progress):
  """Fetches, checks and converts `entry`; the result is checked too.

  The download and its conversion share one temporary file, so nothing but
  a checked result is ever renamed into place.
  """
  handle, temporary = tempfile.mkstemp(prefix=f'.{final.name}.',
                                       suffix='.part', dir=final.parent)
  try:
    digest, count = _transfer(url, handle, entry.source_size, 'pinned',
                              settings.timeout, progress, entry.name)
    if count != entry.source_size or digest != entry.source_sha256:
      raise KnownFileError(
          f'{entry.name}: {url} sent {count} bytes with sha256 {digest}, '
          f'expected {entry.source_size} bytes with sha256 '
          f'{entry.source_sha256} (pinned); nothing was kept')
    try:
      data, made_by = CONVERSIONS[entry.convert](pathlib.Path(temporary))
    except KnownFileError as error:
      raise KnownFileError(f'{entry.name}: cannot convert {url} '
                           f'({entry.convert}): {error}; nothing was '
                           'kept') from None
    digest = hashlib.sha256(data).hexdigest()
    if (len(data), digest) != (entry.size, entry.sha256):
      # Another OpenCV may round 16-bit values or compress differently.
      raise KnownFileError(
          f'{entry.name}: converting {url} ({entry.convert}) with {made_by} '
          f'gave {len(data)} bytes with sha256 {digest}, expected '
          f'{entry.size} bytes with sha256 {entry.sha256} (the pinned '
          'conversion, made with the OpenCV of requirements.txt); nothing '
          f'was kept; install that OpenCV, or set {DATA_ROOT_ENV}=<folder> '
          f'holding {entry.relpath}')
    with open(temporary, 'wb') as stream:
      stream.write(data)
      stream.flush()
      os.fsync(stream.fileno())
    os.replace(temporary, final)
  except BaseException:
    _remove(temporary)
    raise
  return final


def format_bytes(count: Optional[int]) -> str:
  """`993.2 kB`, `27.9 MB`, `?` for None (decimal units)."""
  if count is None:
    return '?'
  for unit, scale in (('GB', 1e9), ('MB', 1e6), ('kB', 1e3)):
    if count >= scale:
      return f'{count / scale:.1f} {unit}'
  return f'{count} B'


# ---------------------------------------------------------------------------
# Resolution.


def _resolve_file(entry, settings):
  if settings.data_root is not None:
    local = _local(entry, settings.data_root, settings.check_hash)
    if local is not None:
      return local
  trusted = _TrustedHashes(settings.cache_dir)
  cached = _cached(entry, settings.cache_dir, trusted)
  if cached is not None:
    return cached
  url = entry.source.url(settings.base_url)
  if not settings.download:
    raise _Unavailable(
        entry.name, entry.relpath,
        f'not cached in {settings.cache_dir} and downloads are off', url)
  size = entry.download_size
  progress = _Progress(
      entry.name, size, settings.progress,
      f'downloading {entry.name} ({format_bytes(size)}) from {url}')
  try:
    path, trusted_sha256 = _download(entry, settings, trusted, progress)
  except _NetworkError as error:
    raise _Unavailable(entry.name, entry.relpath, str(error), url,
                       error.no_answer) from None
  if trusted_sha256 is not None:
    _say(f'warning: {entry.name} has no pinned sha256 and was downloaded '
         f'unverified from {url}; its sha256 {trusted_sha256} is recorded in '
         f'{trusted.path} and checked from now on')
  return path


def dataset_members(dataset: KnownDataset,
                    list_path: Optional[pathlib.Path] = None
                   ) -> Tuple[KnownFile, ...]:
  """The files of `dataset`, read from its list file when it has one.

  Args:
    dataset: a registered data set.
    list_path: the downloaded list file of a data set with `list_name`.

  Returns:
    The members; those named by a list have no size or sha256.

  Raises:
    KnownFileError: a list line is not a safe file name, names a file twice,
      or the list is empty.
  """
  if dataset.files is not None:
    return dataset.files
  members = []
  seen = set()
  lines = pathlib.Path(list_path).read_text(errors='replace').splitlines()
  for number, line in enumerate(lines, 1):
    item = line.strip().replace('\\', '/')
    if not item:
      continue
    repo_path = item if '/' in item else f'{dataset.source.path}/{item}'
    file_name = repo_path.rsplit('/', 1)[-1]
    try:
      _check_relative(repo_path, 'path')
      safe = bool(_SAFE_FILE_NAME.fullmatch(file_name))
    except ValueError:
      safe = False
    if not safe or file_name in seen:
      problem = 'repeats a file' if safe else 'is not a safe file name'
      raise KnownFileError(f'line {number} of {list_path} ({item!r}) '
                           f'{problem}; the list of {dataset.name} is '
                           'unusable')
    seen.add(file_name)
    members.append(KnownFile(
        f'{dataset.name}/{file_name}', f'{dataset.relpath}/{file_name}',
        Source(dataset.source.repo, dataset.source.commit, repo_path)))
  if not members:
    raise KnownFileError(f'the list {list_path} of {dataset.name} is empty')
  return tuple(members)


def _local_dataset(dataset, members, settings):
  folder = settings.data_root / dataset.relpath
  if not folder.is_dir():
    return None
  missing = [m for m in members
             if not (settings.data_root / m.relpath).is_file()]
  if missing:
    _say(f'warning: {folder} lacks {len(missing)} of the {len(members)} '
         f'files of {dataset.name} (first: {missing[0].relpath}); using the '
         'cache instead')
    return None
  for member in members:
    _local(member, settings.data_root, settings.check_hash)
  return folder


def _resolve_dataset(dataset, settings):
  url = dataset.source.url(settings.base_url) + '/'
  list_path = None
  list_relpaths = ()
  if dataset.list_name is not None:
    list_entry = get_entry(dataset.list_name)
    if not isinstance(list_entry, KnownFile):
      raise KnownFileError(f'{dataset.list_name} is not a file')
    list_relpaths = (list_entry.relpath,)
    try:
      list_path = _resolve_file(list_entry, settings)
    except _Unavailable as error:
      # Fetching the data set fetches its list too: name the data set.
      raise _Unavailable(
          dataset.name, dataset.relpath,
          f'its list {list_entry.name} ({list_entry.relpath}) is missing '
          f'({error.reason})', url, error.no_answer, list_relpaths) from None
  members = dataset_members(dataset, list_path)
  if settings.data_root is not None:
    local = _local_dataset(dataset, members, settings)
    if local is not None:
      return local
  folder = settings.cache_dir / dataset.relpath
  trusted = _TrustedHashes(settings.cache_dir)
  todo = [m for m in members
          if _cached(m, settings.cache_dir, trusted) is None]
  if not todo:
    return folder
  if not settings.download:
    raise _Unavailable(
        dataset.name, dataset.relpath,
        f'{len(todo)} of its {len(members)} files are not cached in '
        f'{settings.cache_dir} and downloads are off', url,
        other_relpaths=list_relpaths)
  sizes = [m.download_size for m in todo]
  total = None if None in sizes else sum(sizes)
  progress = _Progress(
      dataset.name, total, settings.progress,
      f'downloading {dataset.name} ({len(todo)} files, '
      f'{format_bytes(total)}) from {url}')
  fetched = []
  pool = concurrent.futures.ThreadPoolExecutor(
      max_workers=min(settings.workers, len(todo)))
  try:
    futures = [pool.submit(_download, m, settings, trusted, progress)
               for m in todo]
    for future in concurrent.futures.as_completed(futures):
      fetched.append(future.result()[1])
  except KnownFileError as error:
    # Files fetched before the failure stay: each was checked on its own.
    pool.shutdown(wait=True, cancel_futures=True)
    done = len(members) - len(todo) + sum(
        f.done() and not f.cancelled() and f.exception() is None
        for f in futures)
    reason = f'{error} ({done} of {len(members)} files are cached)'
    if isinstance(error, _NetworkError):
      raise _Unavailable(dataset.name, dataset.relpath, reason, url,
                         error.no_answer, list_relpaths) from None
    raise KnownFileError(reason) from None
  finally:
    pool.shutdown(wait=True, cancel_futures=True)
  newly_trusted = sum(sha256 is not None for sha256 in fetched)
  if newly_trusted:
    _say(f'warning: {newly_trusted} files of {dataset.name} have no pinned '
         f'sha256 and were downloaded unverified from {url}; their sha256 '
         f'are recorded in {trusted.path} and checked from now on')
  return folder


def resolve(name: str,
            *,
            data_root: Union[str, os.PathLike, None] = None,
            cache_dir: Union[str, os.PathLike, None] = None,
            base_url: Optional[str] = None,
            timeout: Optional[float] = None,
            download: bool = True,
            check_hash: bool = False,
            progress: Optional[ProgressFn] = None,
            workers: int = DEFAULT_WORKERS) -> pathlib.Path:
  """The local path of a known file, or the folder of a known data set.

  Looks in the data root, then the cache, then downloads into the cache (see
  the module docstring).

  Args:
    name: a registered name (`names()`).
    data_root: folder laid out like the shared data folder; default
      `$PIXELRL_DATA_ROOT` (none if unset).
    cache_dir: the cache; default `$PIXELRL_CACHE_DIR` or
      `~/.keras/pixelrl_tf`.
    base_url: replaces `https://raw.githubusercontent.com`; default
      `$PIXELRL_DOWNLOAD_BASE_URL`.
    timeout: seconds per connect or read; default
      `$PIXELRL_DOWNLOAD_TIMEOUT` or 20.
    download: False (or `PIXELRL_OFFLINE=1`) never downloads.
    check_hash: also check the sha256 of data-root copies (cached copies are
      always checked).
    progress: `progress(label, bytes_done, bytes_total_or_None)` called as a
      download proceeds; None prints one line per download to stderr.
    workers: parallel downloads within a data set.

  Returns:
    Path of the file, or of the data set's folder.

  Raises:
    KnownFileError: unknown name, a wrong local copy, a download that fails
      or does not match its hash, or nothing available offline.
  """
  entry = get_entry(name)
  settings = _settings(data_root, cache_dir, base_url, timeout, download,
                       check_hash, progress, workers)
  if isinstance(entry, KnownDataset):
    return _resolve_dataset(entry, settings)
  return _resolve_file(entry, settings)


def require(names: Sequence[str],
            **resolve_kwargs) -> Dict[str, pathlib.Path]:
  """Resolves several names; whatever cannot be had is reported at once.

  For a command that needs several known files: instead of stopping at the
  first that is missing, it names every missing one in one error, with one
  command that fetches them all.

  Args:
    names: registered names (repeats are resolved once).
    **resolve_kwargs: passed to `resolve`. Once a server does not answer
      (refused, timed out), the remaining names are only looked up locally.

  Returns:
    `{name: path}` in the order of `names`.

  Raises:
    KnownFileError: an unknown name (before anything is resolved); a problem
      other than availability (a wrong local copy, a download that does not
      match its hash) as `resolve` raises it; or, when some names cannot be
      had, one line naming each with its local path, the first reason, the
      command `python -m pixelrl_tf.download NAME...` for all of them and
      the `PIXELRL_DATA_ROOT` layout that would hold them.
  """
  names = list(dict.fromkeys(names))
  for name in names:
    get_entry(name)
  download = resolve_kwargs.pop('download', True)
  paths = {}
  missing = []
  for name in names:
    try:
      paths[name] = resolve(name, download=download, **resolve_kwargs)
    except _Unavailable as error:
      missing.append(error)
      # One timeout or refusal is enough: do not wait once per name.
      download = download and not error.no_answer
  if not missing:
    return paths
  if len(missing) == 1:
    raise KnownFileError(str(missing[0]))
  first = missing[0]
  listed = _and(f'{error.name} ({error.relpaths[-1]})' for error in missing)
  relpaths = dict.fromkeys(path for error in missing
                           for path in error.relpaths)
  raise KnownFileError(
      f'{listed} are not available ({first.name}: {first.reason}); get them '
      f'with `{DOWNLOAD_COMMAND} {" ".join(e.name for e in missing)}`, or '
      f'set {DATA_ROOT_ENV}=<folder> holding {_and(relpaths)}')


def _looks_like_path(text):
  return ('/' in text or os.sep in text or
          (os.altsep is not None and os.altsep in text) or
          text.startswith('~') or text in ('.', '..') or
          bool(pathlib.PurePath(text).suffix))


def _matching_entry(text):
  """The registered entry whose relpath `text` ends with, if any."""
  normalised = text.replace('\\', '/').rstrip('/')
  for entry in REGISTRY.values():
    if normalised == entry.relpath or normalised.endswith('/' +
                                                           entry.relpath):
      return entry
  return None


def resolve_path_or_name(value: Union[str, os.PathLike, None],
                         *,
                         what: str = '',
                         **resolve_kwargs) -> Optional[pathlib.Path]:
  """A configuration value or flag as a path: a path, or a known name.

  Every setting and command-line flag that takes a weights file or a data
  folder goes through this function.

  Args:
    value: an existing path; something that looks like a path (it has a
      path separator or a file suffix such as `.npz`); a registered name; or
      None (returned as is, for optional settings).
    what: what the value is, for messages (`'image folder'` gives
      `image folder 'x' does not exist`); empty: just the value.
    **resolve_kwargs: passed to `resolve` for a name.

  Returns:
    The path, or None for None.

  Raises:
    FileNotFoundError: a path that does not exist (one line; it names the
      registered entry the path belongs to, if any).
    KnownFileError: neither an existing path nor a registered name (one
      line: it does not exist, and the closest names), or the name cannot be
      resolved (one line: what is missing and how to get it).
  """
  if value is None:
    return None
  text = os.fspath(value)
  path = pathlib.Path(text).expanduser()
  if path.exists():
    return path
  label = f'{what} {text!r}' if what else repr(text)
  if isinstance(value, os.PathLike) or _looks_like_path(text):
    entry = _matching_entry(text)
    hint = ''
    if entry is not None:
      kind = 'data set' if isinstance(entry, KnownDataset) else 'file'
      hint = (f' (it is the known {kind} {entry.name!r}: use that name to '
              f'fetch it, or set {DATA_ROOT_ENV} to the folder holding '
              f'{entry.relpath})')
    raise FileNotFoundError(f'{label} does not exist{hint}')
  if text not in REGISTRY:
    raise KnownFileError(f'{label} does not exist and is not a known name'
                         f'{_close_names_hint(text)}')
  return resolve(text, **resolve_kwargs)


# ---------------------------------------------------------------------------
# Listing.


class KnownRow(NamedTuple):
  """One line of `list_known`.

  Attributes:
    name: registry name.
    kind: 'file' or 'dataset'.
    size: bytes (all files of a data set), None when unknown.
    files: number of files, None when unknown (a data set whose list is not
      here yet).
    source: `owner/repo@commit:path`.
    local: the data root holds it.
    cached: the cache holds it (sizes checked, not hashes).
    description: one line.
  """
  name: str
  kind: str
  size: Optional[int]
  files: Optional[int]
  source: str
  local: bool
  cached: bool
  description: str


def _present(entry, base, trusted=None):
  """Cheap check: `base/relpath` exists with the expected size."""
  path = base / entry.relpath
  if not path.is_file():
    return False
  size = entry.size
  if trusted is not None and not entry.pinned:
    record = trusted.get(entry.relpath)
    if record is None:
      return False
    size = record['size']
  return size is None or path.stat().st_size == size


def list_known(*,
               data_root: Union[str, os.PathLike, None] = None,
               cache_dir: Union[str, os.PathLike, None] = None
              ) -> List[KnownRow]:
  """What is registered, and whether the data root or the cache has it.

  Args:
    data_root: as for `resolve`.
    cache_dir: as for `resolve`.

  Returns:
    One `KnownRow` per registered name, in listing order.
  """
  root = get_data_root(data_root)
  cache = get_cache_dir(cache_dir)
  trusted = _TrustedHashes(cache)
  rows = []
  for entry in REGISTRY.values():
    if isinstance(entry, KnownFile):
      rows.append(KnownRow(
          entry.name, 'file', entry.size, 1, str(entry.source),
          root is not None and _present(entry, root),
          _present(entry, cache, trusted), entry.description))
      continue
    members = entry.files
    if members is None:
      list_entry = REGISTRY.get(entry.list_name)
      for base, check in ((root, None), (cache, trusted)):
        if (base is not None and isinstance(list_entry, KnownFile) and
            _present(list_entry, base, check)):
          try:
            members = dataset_members(entry, base / list_entry.relpath)
          except (KnownFileError, OSError):
            continue
          break
    if members is None:
      rows.append(KnownRow(entry.name, 'dataset', None, None,
                           str(entry.source) + '/', False, False,
                           entry.description))
      continue
    sizes = [m.size for m in members]
    rows.append(KnownRow(
        entry.name, 'dataset', None if None in sizes else sum(sizes),
        len(members), str(entry.source) + '/',
        root is not None and all(_present(m, root) for m in members),
        all(_present(m, cache, trusted) for m in members),
        entry.description))
  return rows

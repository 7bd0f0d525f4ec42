"""Pytest configuration shared by every test module."""

import importlib.util
import os
import pathlib
import sys

import pytest

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / 'shared' / 'data'

# Every limit on how long something a test waits for may take (a command,
# a training worker's peers, a line of output) guards against hangs, never
# against slowness: one generous limit, far above what the slowest machine
# or the busiest CI run needs, so that no verdict depends on the machine's
# speed.
HANG_TIMEOUT_SECONDS = 1800

# The tests assume the environment the commands are documented with: the
# package's own quiet TensorFlow log (a caller's TF_CPP_MIN_LOG_LEVEL=2
# lets TensorFlow's C++ start-up lines precede the one-line errors the tests
# read) and no traceback mode. Every command a test starts inherits this.
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'
os.environ.pop('PIXELRL_DEBUG', None)

sys.path.insert(0, str(PROJECT_ROOT))
# The project's own CI resolves known files (weights, BSD images) from the
# shared data folder beside the project, as .ci/run configures it.
if SHARED_DATA.is_dir():
  os.environ.setdefault('PIXELRL_DATA_ROOT', str(SHARED_DATA))
import pixelrl_tf  # noqa: E402,F401  (quiets third-party start-up noise first)

import gin  # noqa: E402
from absl import flags  # noqa: E402

if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()


def load_module_from_file(path, name=None):
  """Imports a script that is not in a package (a benchmark, an example)."""
  path = pathlib.Path(path)
  spec = importlib.util.spec_from_file_location(name or path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def shared_data_path(*parts):
  """Returns `../shared/data/<parts>` or skips the calling test if absent."""
  path = SHARED_DATA.joinpath(*parts)
  if not path.exists():
    pytest.skip(f'needs {path} (the shared data folder); it is absent here')
  return path


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()

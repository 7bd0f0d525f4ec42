"""Pytest configuration shared by every test module."""

import os
import pathlib
import sys

import pytest

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / 'shared' / 'data'

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

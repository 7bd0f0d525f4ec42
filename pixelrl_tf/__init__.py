"""pixelrl_tf: PixelRL (Furuta et al., IEEE TMM 2020) on TensorFlow and TF-Agents.

Importing the package quiets the start-up noise of the pinned stack (CUDA
plugin registration lines when no GPU is present and gym's maintenance
notice) so that the command-line tools print only their own output. Set
`TF_CPP_MIN_LOG_LEVEL` yourself before importing to see TensorFlow's C++ log
again.
"""

import contextlib
import io
import os
import warnings

__version__ = '0.1.0'

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('PYGAME_HIDE_SUPPORT_PROMPT', 'hide')
# AutoGraph recompiles TF-Agents code that compares with `is not ()`.
warnings.filterwarnings('ignore', message='"is not" with a literal',
                        category=SyntaxWarning)


def _import_quietly():
  """Imports the third-party modules that print notices on first import."""
  with contextlib.redirect_stderr(io.StringIO()):
    try:
      import gym  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      pass


_import_quietly()

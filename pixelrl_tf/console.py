"""Console entry points (`pixelrl-train`, `pixelrl-eval`, ...) of the installed package.

Each is `python -m pixelrl_tf.<command>`: the command's module is imported
when the entry point runs (its absl flags are defined on import), and its
`main` runs through `cli.run` like the module's own `__main__` block.
"""

import importlib
from typing import NoReturn

from pixelrl_tf import cli


def _run(command: str) -> NoReturn:
  module = importlib.import_module(f'pixelrl_tf.{command}')
  cli.run(module.main)


def train() -> NoReturn:
  """`pixelrl-train`: `python -m pixelrl_tf.train`."""
  _run('train')


def eval() -> NoReturn:  # pylint: disable=redefined-builtin
  """`pixelrl-eval`: `python -m pixelrl_tf.eval`."""
  _run('eval')


def restore() -> NoReturn:
  """`pixelrl-restore`: `python -m pixelrl_tf.restore`."""
  _run('restore')


def export() -> NoReturn:
  """`pixelrl-export`: `python -m pixelrl_tf.export`."""
  _run('export')


def import_weights() -> NoReturn:
  """`pixelrl-import-weights`: `python -m pixelrl_tf.import_weights`."""
  _run('import_weights')


def download() -> NoReturn:
  """`pixelrl-download`: `python -m pixelrl_tf.download`."""
  _run('download')


def make_restoration_set() -> NoReturn:
  """`pixelrl-make-restoration-set`: `python -m pixelrl_tf.make_restoration_set`."""
  _run('make_restoration_set')


def saliency_edit() -> NoReturn:
  """`pixelrl-saliency-edit`: `python -m pixelrl_tf.saliency_edit`."""
  _run('saliency_edit')


def view() -> NoReturn:
  """`pixelrl-view`: `python -m pixelrl_tf.view`."""
  _run('view')

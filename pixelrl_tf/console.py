"""Console entry points (`pixelrl-train`, `pixelrl-eval`, ...) of the installed package.

Each is `python -m pixelrl_tf.<command>`: the command's module is imported
when the entry point runs (its absl flags are defined on import), and its
`main` runs through `cli.run` like the module's own `__main__` block.
pyproject.toml's `[project.scripts]` names these attributes.
"""

import functools
import importlib
from typing import NoReturn

from pixelrl_tf import cli


def _run(command: str) -> NoReturn:
  module = importlib.import_module(f'pixelrl_tf.{command}')
  cli.run(module.main)


train = functools.partial(_run, 'train')
eval = functools.partial(_run, 'eval')  # pylint: disable=redefined-builtin
restore = functools.partial(_run, 'restore')
export = functools.partial(_run, 'export')
import_weights = functools.partial(_run, 'import_weights')
download = functools.partial(_run, 'download')
make_restoration_set = functools.partial(_run, 'make_restoration_set')
saliency_edit = functools.partial(_run, 'saliency_edit')
view = functools.partial(_run, 'view')

r"""Exports a PixelRL model for TF Serving (see docs/serving.md).

  python -m pixelrl_tf.export --root_dir=runs/denoise25 \
      --export_base=/models --model_name=pixelrl_denoise [--version=N]

Writes the restoration SavedModel to EXPORT_BASE/NAME/VERSION (signatures
serving_default, restore_uint8, restore_steps, metadata) and the greedy
TF-Agents policy to EXPORT_BASE/NAME_policy/VERSION. The version defaults to
the next free integer; an existing version is never overwritten.
"""

from absl import app
from absl import flags
from absl import logging

from pixelrl_tf import cli
from pixelrl_tf.jobs import export_lib

_ROOT_DIR = flags.DEFINE_string(
    'root_dir', None, 'Run directory (trained or imported) or checkpoint.')
_EXPORT_BASE = flags.DEFINE_string('export_base', None,
                                   'Folder of the served models.')
_MODEL_NAME = flags.DEFINE_string('model_name', 'pixelrl',
                                  'Name of the served model.')
_VERSION = flags.DEFINE_integer('version', None,
                                'Version to write (default: the next one).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not _ROOT_DIR.value or not _EXPORT_BASE.value:
    raise app.UsageError('--root_dir and --export_base are required')
  logging.set_verbosity(logging.ERROR)  # SavedModel writing is chatty.
  try:
    result = export_lib.export_model(
        _ROOT_DIR.value, _EXPORT_BASE.value, _MODEL_NAME.value,
        version=_VERSION.value)
  except (ValueError, OSError) as error:
    cli.fail(error)
  print(f'exported version {result.version}:\n'
        f'  restoration model: {result.model_dir}\n'
        f'  greedy policy:     {result.policy_dir}')


if __name__ == '__main__':
  cli.run(main)

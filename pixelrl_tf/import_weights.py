r"""Imports a released PixelRL Chainer model as a pixelrl_tf run directory.

  python -m pixelrl_tf.import_weights --npz=gru_rmc_sigma25 \
      --output_dir=runs/official_gru_rmc_25 [--variant=gru_rmc] [--t_max=5]

--npz is a path or the name of a released model (`fcn_sigma15` ...
`gru_rmc_sigma50`, see `python -m pixelrl_tf.download --list`), which
resolves to `PIXELRL_DATA_ROOT`, the cache or a checked download. The
variant is detected from the file's keys; --variant, when given, must match
it. The directory then loads with `model_io.load_model` and works with
`eval`, `export` and `restore` like a trained run.
"""

from absl import app
from absl import flags

from pixelrl_tf import cli
from pixelrl_tf.jobs import import_weights_lib

_NPZ = flags.DEFINE_string(
    'npz', None, 'Released Chainer .npz model: a path or a known name '
    '(e.g. gru_rmc_sigma25).')
_VARIANT = flags.DEFINE_enum(
    'variant', None, ['fcn', 'gru', 'gru_rmc'],
    'Expected variant (default: detected from the file).')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None,
                                  'Run directory to create.')
_T_MAX = flags.DEFINE_integer('t_max', 5, 'Episode length of the model.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not _NPZ.value or not _OUTPUT_DIR.value:
    raise app.UsageError('--npz and --output_dir are required')
  try:
    config, checkpoint_path = import_weights_lib.import_npz(
        _NPZ.value, _OUTPUT_DIR.value, variant=_VARIANT.value,
        t_max=_T_MAX.value)
  except (ValueError, OSError) as error:
    cli.fail(error)
  print(f'imported a {config.variant!r} model ({config.channels} channel(s), '
        f'{config.filters} filters) to {checkpoint_path}')


if __name__ == '__main__':
  cli.run(main)

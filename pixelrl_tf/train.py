r"""Trains a PixelRL agent.

  python -m pixelrl_tf.train --gin_file=configs/denoise.gin \
      --root_dir=runs/denoise25 [--gin_bindings='Optimization.num_episodes=100']

Rerunning the same command resumes from the latest checkpoint. SIGINT or
SIGTERM stop after the current episode with a checkpoint.
"""

from absl import app
from absl import flags

from pixelrl_tf import cli
from pixelrl_tf.jobs import train_lib

_ROOT_DIR = flags.DEFINE_string('root_dir', None, 'Run directory.',
                                required=True)
_GIN_FILE = flags.DEFINE_multi_string('gin_file', [], 'Gin config files.')
_GIN_BINDINGS = flags.DEFINE_multi_string('gin_bindings', [],
                                          'Gin bindings, e.g. RunControl.seed=1.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  cli.parse_gin_or_exit(_GIN_FILE.value, _GIN_BINDINGS.value,
                        hint_fn=train_lib.moved_binding_hint)
  try:
    result = train_lib.train(_ROOT_DIR.value)
  except (train_lib.TrainingError, ValueError, OSError) as error:
    cli.fail(error)
  if result['interrupted'] == 'SIGINT':
    raise SystemExit(130)
  if result['interrupted'] == 'SIGTERM':
    raise SystemExit(143)


if __name__ == '__main__':
  cli.run(main)

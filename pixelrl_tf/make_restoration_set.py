r"""Writes a fixed text-removal test set from a folder of clean images.

  python -m pixelrl_tf.make_restoration_set --input_dir=DIR --output_dir=OUT \
      --seed=N [--channels=1] [--overwrite]

Writes OUT/input/<name>.png (text overlaid), OUT/target/<name>.png (clean),
OUT/mask/<name>.png and OUT/manifest.json. The same folder and seed always
give the same files. --input_dir is a folder or the name of a known data set
(`bsd68`; see `python -m pixelrl_tf.download --list`).
"""

import sys

from absl import app
from absl import flags

from pixelrl_tf import cli
from pixelrl_tf.jobs import restoration_set_lib

_INPUT_DIR = flags.DEFINE_string(
    'input_dir', None, 'Folder of clean images, or a known data set (e.g. '
    'bsd68).', required=True)
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Folder to write.',
                                  required=True)
_SEED = flags.DEFINE_integer('seed', None, 'Seed of the corruption (>= 0).',
                             lower_bound=0, required=True)
_CHANNELS = flags.DEFINE_enum('channels', '1', ['1', '3'],
                              '1 (gray) or 3 (colour).')
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Replace the set in a non-empty output folder.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  try:
    manifest = restoration_set_lib.make_restoration_set(
        _INPUT_DIR.value, _OUTPUT_DIR.value, _SEED.value,
        channels=int(_CHANNELS.value), overwrite=_OVERWRITE.value,
        progress_fn=lambda i, name: print(f'[{i + 1}] {name}',
                                          file=sys.stderr),
        note_fn=lambda line: print(f'note: {line}', file=sys.stderr))
  except (restoration_set_lib.RestorationSetError, ValueError,
          OSError) as error:
    cli.fail(error)
  print(f'wrote {manifest["image_count"]} images to {_OUTPUT_DIR.value} '
        f'(mean text coverage {100 * manifest["mean_coverage"]:.1f}%)')


if __name__ == '__main__':
  cli.run(main)

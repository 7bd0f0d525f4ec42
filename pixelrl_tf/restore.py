r"""Restores user images with a PixelRL model.

  python -m pixelrl_tf.restore --model=/models/pixelrl_denoise/1 \
      --input=photos/ --output=restored/ [--save_actions] [--tile_size=512]

--model is an exported SavedModel (EXPORT_BASE/NAME/VERSION, or
EXPORT_BASE/NAME for the latest version) or a run directory. --input is an
image file, a folder of images or the name of a known data set (`bsd68`; see
`python -m pixelrl_tf.download --list`); each x.ext gives OUTPUT/x.png and,
with --save_actions, x_actions.png (per-step images and action maps with a
legend) and x_actions.gif. Images larger than --tile_size run in
overlapping tiles with the same result as in one piece.
"""

from absl import app
from absl import flags
from absl import logging

from pixelrl_tf import cli
from pixelrl_tf.jobs import restore_lib

_MODEL = flags.DEFINE_string('model', None,
                             'SavedModel dir, served model dir or run dir.')
_INPUT = flags.DEFINE_string(
    'input', None, 'Image file, folder of images, or a known data set (e.g. '
    'bsd68).')
_OUTPUT = flags.DEFINE_string('output', None, 'Folder for the results.')
_SAVE_ACTIONS = flags.DEFINE_bool(
    'save_actions', False, 'Also write the action strip PNG and GIF.')
_TILE_SIZE = flags.DEFINE_integer(
    'tile_size', restore_lib.DEFAULT_TILE_SIZE,
    'Side of the tiles of large images; 0 never tiles.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not _MODEL.value or not _INPUT.value or not _OUTPUT.value:
    raise app.UsageError('--model, --input and --output are required')
  logging.set_verbosity(logging.ERROR)  # SavedModel loading is chatty.
  try:
    restore_lib.restore_files(
        _MODEL.value, _INPUT.value, _OUTPUT.value,
        save_actions=_SAVE_ACTIONS.value, tile_size=_TILE_SIZE.value)
  except (restore_lib.RestoreError, ValueError, OSError) as error:
    cli.fail(error)


if __name__ == '__main__':
  cli.run(main)

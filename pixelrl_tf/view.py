r"""A local web viewer of restorations and action maps.

  python -m pixelrl_tf.view --model=runs/denoise25 [--model=gru_rmc_sigma25] \
      [--port=8080] [--host=127.0.0.1]

--model is a run directory (`RUN` or `RUN/best`), an exported SavedModel
(`EXPORT_BASE/NAME/VERSION`, or `EXPORT_BASE/NAME` for its latest version)
or a released model by name (`gru_rmc_sigma25`, ...; see `python -m
pixelrl_tf.download --list`), imported on the fly. Give it twice to compare
two models on the same input. The command prints the page's URL and serves
it until Ctrl-C: choose or drop an image (or one of the offline default
photographs), optionally add the model's noise, restore it, and step
through the images and per-pixel action maps; hover a pixel for its actions
and values at every step. Large images run in overlapping tiles, as in
`restore`. The server listens on 127.0.0.1 only, unless --host says
otherwise (it has no login).
"""

from absl import app
from absl import flags
from absl import logging

from pixelrl_tf import cli
from pixelrl_tf.jobs import restore_lib
from pixelrl_tf.jobs import view_lib
from pixelrl_tf.jobs import view_server

_MODEL = flags.DEFINE_multi_string(
    'model', None, 'Run dir, RUN/best, SavedModel dir or released model name; '
    'twice to compare two models.')
_HOST = flags.DEFINE_string(
    'host', view_server.DEFAULT_HOST,
    'Address to listen on; anything but a loopback address is reachable '
    'from other machines (a warning is printed).')
_PORT = flags.DEFINE_integer('port', view_server.DEFAULT_PORT,
                             'Port to listen on; 0 picks a free one.')
_TILE_SIZE = flags.DEFINE_integer(
    'tile_size', restore_lib.DEFAULT_TILE_SIZE,
    'Side of the tiles of large images; 0 never tiles.')
_MAX_UPLOAD_MB = flags.DEFINE_float(
    'max_upload_mb', view_lib.DEFAULT_MAX_UPLOAD_MB,
    'Largest image file accepted, in MiB.')
_MAX_MEGAPIXELS = flags.DEFINE_float(
    'max_megapixels', view_lib.DEFAULT_MAX_MEGAPIXELS,
    'Largest image accepted, in millions of pixels.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not _MODEL.value:
    raise app.UsageError('--model is required')
  logging.set_verbosity(logging.ERROR)  # SavedModel loading is chatty.
  try:
    view_server.serve(
        _MODEL.value, host=_HOST.value, port=_PORT.value,
        tile_size=_TILE_SIZE.value, max_upload_mb=_MAX_UPLOAD_MB.value,
        max_megapixels=_MAX_MEGAPIXELS.value,
        log_fn=lambda line: print(line, flush=True))
  except (restore_lib.RestoreError, ValueError, OSError) as error:
    cli.fail(error)


if __name__ == '__main__':
  cli.run(main)

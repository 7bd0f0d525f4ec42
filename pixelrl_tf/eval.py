r"""Evaluates a trained PixelRL agent with the official PSNR/SSIM protocol.

  python -m pixelrl_tf.eval --checkpoint=runs/denoise25 --data_dir=bsd68 \
      --noise=gaussian:25 --seed=0 --output_json=eval.json [--augment_x8]
  python -m pixelrl_tf.eval --checkpoint=RUN --input_dir=IN --target_dir=GT
  python -m pixelrl_tf.eval --table --data_dir=DIR --augment_x8 \
      --model=FCN@gaussian:25=runs/fcn25 --model=+convGRU@gaussian:25=runs/g25

Folders are paths or names of known data sets (`bsd68`; see
`python -m pixelrl_tf.download --list`), which resolve to
`PIXELRL_DATA_ROOT`, the cache or a download.

With --table, prints the paper's Table II layout (rows: original, random
agents, each model label, +aug; columns: noise levels).

Reports the mean PSNR and SSIM of the corrupted input, random agents and the
greedy model (per step), as JSON and a markdown table.
"""

import sys

from absl import app
from absl import flags

from pixelrl_tf import cli
from pixelrl_tf.jobs import eval_lib

_CHECKPOINT = flags.DEFINE_string('checkpoint', None,
                                  'Run directory or checkpoint prefix.')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'Folder of clean test images, or a known data set '
    '(e.g. bsd68).')
_NOISE = flags.DEFINE_string('noise', 'gaussian:25',
                             'Noise for --data_dir, e.g. poisson:30.')
_SEED = flags.DEFINE_integer('seed', 0, 'Noise and random-agent seed.')
_INPUT_DIR = flags.DEFINE_string(
    'input_dir', None, 'Folder of corrupted inputs (paired); a path or a '
    'known name.')
_TARGET_DIR = flags.DEFINE_string(
    'target_dir', None, 'Folder of clean targets (paired); a path or a known '
    'name.')
_T_MAX = flags.DEFINE_integer('t_max', None, 'Steps (default: the model).')
_AUGMENT_X8 = flags.DEFINE_bool('augment_x8', False,
                                'Add the x8 flip/rotation augmentation row.')
_MAX_IMAGES = flags.DEFINE_integer('max_images', None, 'Use the first N.')
_CURVE_PNG = flags.DEFINE_string(
    'curve_png', None, 'Write the PSNR-per-step curves (Fig. 8) here.')
_TABLE = flags.DEFINE_bool('table', False, 'Table mode (see --model).')
_FIXED_SEQUENCE = flags.DEFINE_bool(
    'fixed_sequence', False,
    'Also search the best fixed sequence (one action per step for the whole '
    'image, changing from step to step) and report the gain over it; '
    'filters the images up to 128 x actions times per step.')
_MODEL = flags.DEFINE_multi_string(
    'model', [], 'Table entry LABEL@NOISE=CHECKPOINT (repeat).')
_OUTPUT_JSON = flags.DEFINE_string('output_json', None, 'JSON report path.')
_OUTPUT_MARKDOWN = flags.DEFINE_string('output_markdown', None,
                                       'Markdown report path.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if _TABLE.value:
    _table()
    return
  if not _CHECKPOINT.value:
    raise app.UsageError('--checkpoint is required (or --table)')
  try:
    report = eval_lib.evaluate(
        _CHECKPOINT.value, data_dir=_DATA_DIR.value, noise=_NOISE.value,
        seed=_SEED.value, input_dir=_INPUT_DIR.value,
        target_dir=_TARGET_DIR.value, t_max=_T_MAX.value,
        augment_x8=_AUGMENT_X8.value, max_images=_MAX_IMAGES.value,
        include_best_fixed_sequence=_FIXED_SEQUENCE.value,
        progress_fn=lambda i, name: print(f'[{i + 1}] {name}',
                                          file=sys.stderr),
        note_fn=lambda line: print(f'note: {line}', file=sys.stderr))
    eval_lib.write_report(report, _OUTPUT_JSON.value, _OUTPUT_MARKDOWN.value)
    if _CURVE_PNG.value:
      eval_lib.write_curve_png(report, _CURVE_PNG.value)
  except (ValueError, OSError) as error:
    cli.fail(error)
  print(eval_lib.report_markdown(report))


def _table():
  try:
    entries = [eval_lib.parse_table_entry(text) for text in _MODEL.value]
    if not _DATA_DIR.value:
      raise ValueError('--table needs --data_dir')
    table = eval_lib.evaluate_table(
        entries, _DATA_DIR.value, seed=_SEED.value,
        augment_x8=_AUGMENT_X8.value, max_images=_MAX_IMAGES.value,
        progress_fn=lambda text: print(text, file=sys.stderr))
    text = eval_lib.table_markdown(table) + '\n' + eval_lib.table_markdown(
        table, 'ssim')
    eval_lib.write_report(table, _OUTPUT_JSON.value)
    if _OUTPUT_MARKDOWN.value:
      eval_lib.write_report_text(_OUTPUT_MARKDOWN.value, text)
  except (ValueError, OSError) as error:
    cli.fail(error)
  print(text)


if __name__ == '__main__':
  cli.run(main)

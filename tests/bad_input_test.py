"""Every command answers bad input with one line and overwrites nothing.

For each command (`python -m pixelrl_tf.<command>`) and each kind of bad
input (missing, empty, truncated, corrupt images; NaN, infinite or
out-of-range float images; an empty folder; corrupt or foreign `.npz`,
`.caffemodel` and checkpoint files; NaN weights; images smaller than the
training crop; a gray model given colour pairs; an output that cannot be
written: a path under a regular file, a real full disk and a real read-only
disk, tmpfs mounts made by `disks`) the command must exit with status 1 and
print exactly one line,
`error: ...`, and no traceback; what was where it would write must be
unchanged. `--debug` (or `PIXELRL_DEBUG=1`) adds the traceback. Valid but
unusual files (16-bit, alpha, gray + alpha, palette, 4-channel, float) are
read, with a note where something is converted.

Starting TensorFlow takes seconds, so each command runs once for real as
`python -m pixelrl_tf.<command>` (the first case of its list) and once in a
driver process that runs the rest of its cases one after the other through
the same `cli.parse_flags` and `cli.guard` that `cli.run` uses, the outputs
of each case captured on their own. The processes run two at a time.
"""

import concurrent.futures
import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
from typing import Dict, List, Sequence, Tuple

from absl import app
import cv2
import numpy as np
from PIL import Image
import pytest

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT
import cli_driver
import disks
from pixelrl_tf import cli
from pixelrl_tf.data import known_files
from pixelrl_tf.models import model_io

COMMANDS = ('restore', 'eval', 'export', 'import_weights', 'saliency_edit',
            'make_restoration_set', 'train', 'download')
_PARALLEL_PROCESSES = 2
_TIMEOUT_SECONDS = HANG_TIMEOUT_SECONDS
_TRACEBACK = 'Traceback (most recent call last)'
_PROGRESS = re.compile(r'^(\[\d+\] |episode \d+/\d+ )')
_SENTINEL = b'sentinel: must not be modified\n'
_DEBUG_ENV = {cli.DEBUG_ENV: '1'}
Outcome = cli_driver.Outcome


@dataclasses.dataclass
class Case:
  """One invocation and what it must do.

  Attributes:
    name: a label for messages.
    args: the command line after the command.
    expect: text the error line must contain.
    watch: paths that must be exactly as before (folders: every file in
      them, hidden ones included; a missing path may become an empty
      folder).
    env: extra environment variables.
    debug: the traceback must be printed before the error line.
    success: the command must succeed (status 0); `notes` must appear.
    notes: texts that must appear in stdout + stderr of a success.
    progress_first: the command may print progress lines (`[N] name`,
      `episode N/M ...`,
      `note: ...`) before it fails (it failed writing its results).
  """
  name: str
  args: List[str]
  expect: str = ''
  watch: Sequence[pathlib.Path] = ()
  env: Dict[str, str] = dataclasses.field(default_factory=dict)
  debug: bool = False
  success: bool = False
  notes: Sequence[str] = ()
  progress_first: bool = False




# ---------------------------------------------------------------------------
# Files.


def _write(path, data):
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(data)
  return path


def _gradient(height, width, channels=1, scale=1):
  rows, columns = np.mgrid[0:height, 0:width]
  planes = [(rows * 7 + columns * (3 + c)) % 256 for c in range(channels)]
  return (np.stack(planes, axis=2) * scale).astype(
      np.uint16 if scale > 1 else np.uint8)


def _png(image):
  return cv2.imencode('.png', image)[1].tobytes()


def _float_tiff(path, values):
  path.parent.mkdir(parents=True, exist_ok=True)
  assert cv2.imwrite(str(path), np.asarray(values, np.float32))
  return path


def _image_files(base):
  """Bad image files, valid but unusual ones, and folders of them."""
  files = {}
  good_gray = _gradient(24, 20)
  good_colour = _gradient(24, 20, 3)
  files['good_gray'] = _write(base / 'good' / 'a_gray.png', _png(good_gray))
  files['good_colour'] = _write(base / 'good_colour' / 'a_colour.png',
                                _png(good_colour))
  files['missing'] = base / 'bad' / 'missing.png'
  files['empty'] = _write(base / 'bad' / 'empty.png', b'')
  whole = _png(good_gray)
  files['truncated'] = _write(base / 'bad' / 'truncated.png',
                              whole[:len(whole) // 2])
  files['corrupt'] = _write(base / 'bad' / 'corrupt.jpg',
                            b'this is not an image at all ' * 8)
  nan = np.full((24, 20), 0.5, np.float32)
  nan[3, 4] = np.nan
  files['nan'] = _float_tiff(base / 'bad' / 'nan.tiff', nan)
  inf = np.full((24, 20), 0.5, np.float32)
  inf[5, 6] = np.inf
  files['inf'] = _float_tiff(base / 'bad' / 'inf.tiff', inf)
  files['range'] = _float_tiff(base / 'bad' / 'range.tiff',
                               np.linspace(-0.5, 2.0, 24 * 20).reshape(24, 20))
  files['small'] = _write(base / 'small' / 'b_small.png',
                          _png(_gradient(10, 12)))
  _write(base / 'small' / 'a_big.png', _png(good_gray))
  files['mixed'] = base / 'mixed'
  _write(base / 'mixed' / 'a_good.png', _png(good_gray))
  shutil.copy(files['corrupt'], _write(base / 'mixed' / 'b_corrupt.png', b''))
  files['nan_folder'] = base / 'nan_folder'
  shutil.copy(files['nan'], _write(base / 'nan_folder' / 'a_nan.tiff', b''))
  files['empty_folder'] = base / 'empty_folder'
  files['empty_folder'].mkdir()
  (files['empty_folder'] / 'notes.txt').write_text('not an image')

  odd = base / 'odd'
  _write(odd / 'deep.png', _png(_gradient(24, 20, 1, scale=257)))
  _write(odd / 'alpha.png', _png(np.concatenate(
      [good_colour, np.full((24, 20, 1), 200, np.uint8)], axis=2)))
  Image.fromarray(np.stack([good_gray[..., 0], np.full((24, 20), 90, np.uint8)],
                           axis=2), 'LA').save(odd / 'gray_alpha.png')
  Image.fromarray(good_colour[..., ::-1]).convert(
      'P', palette=Image.ADAPTIVE, colors=16).save(odd / 'palette.png')
  assert cv2.imwrite(str(odd / 'four.tiff'), np.concatenate(
      [good_colour, np.full((24, 20, 1), 255, np.uint8)], axis=2))
  _float_tiff(odd / 'float.tiff', good_gray[..., 0] / 255.0)
  _write(odd / 'colour.png', _png(good_colour))
  files['odd'] = odd
  return files


def _save_run(path, channels=1, filters=4, nan_weights=False):
  config = model_io.ModelConfig(filters=filters, t_max=1, channels=channels)
  network = model_io.build_network(config)
  if nan_weights:
    kernel = network.layer_by_name('conv1').kernel
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
  model_io.save_model(str(path), config, network)
  return path


def _truncate(path):
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])


def _model_files(base):
  """Tiny runs, damaged copies, a foreign folder, weight files."""
  models = {}
  models['gray'] = _save_run(base / 'run_gray')
  models['colour'] = _save_run(base / 'run_colour', channels=3)
  models['nan'] = _save_run(base / 'run_nan', nan_weights=True)
  for kind in ('index', 'data'):
    copy = base / f'run_truncated_{kind}'
    shutil.copytree(models['gray'], copy)
    _truncate(next((copy / 'train').glob(f'ckpt-0.{kind}*')))
    models[f'truncated_{kind}'] = copy
  models['foreign'] = base / 'run_foreign'
  shutil.copytree(models['gray'], models['foreign'])
  model_io.write_model_config(str(models['foreign']),
                              model_io.ModelConfig(filters=8, t_max=1))
  models['not_a_run'] = base / 'not_a_run'
  _write(models['not_a_run'] / 'notes.txt', b'a folder, not a run')
  models['bad_saved_model'] = base / 'bad_saved_model'
  _write(models['bad_saved_model'] / 'saved_model.pb', b'garbage' * 10)

  from weights_test import fake_arrays  # pylint: disable=g-import-not-at-top
  arrays = fake_arrays('fcn', filters=4)
  models['npz'] = base / 'weights' / 'fcn.npz'
  models['npz'].parent.mkdir()
  np.savez(models['npz'], **arrays)
  models['truncated_npz'] = _write(base / 'weights' / 'truncated.npz',
                                   models['npz'].read_bytes()[:300])
  models['corrupt_npz'] = _write(base / 'weights' / 'corrupt.npz',
                                 b'PK\x03\x04 not really a zip file' * 4)
  models['foreign_npz'] = base / 'weights' / 'foreign.npz'
  np.savez(models['foreign_npz'], weights=np.ones((3, 3), np.float32))
  nan_arrays = dict(arrays)
  nan_arrays['conv1/W'] = np.full_like(arrays['conv1/W'], np.nan)
  models['nan_npz'] = base / 'weights' / 'nan.npz'
  np.savez(models['nan_npz'], **nan_arrays)
  models['corrupt_caffemodel'] = _write(
      base / 'weights' / 'corrupt.caffemodel', b'\x0a\xff\xff\xff\x0f caffe')
  return models


def _sentinel_folder(path, *names):
  for name in names:
    _write(path / name, _SENTINEL)
  return path


def _unwritable(base):
  """A path whose parent is a regular file: no one can write there."""
  blocker = _write(base / 'blocker', _SENTINEL)
  return blocker / 'out'


# ---------------------------------------------------------------------------
# Cases.


def _image_error_cases(option, images, extra, watch, prefix=''):
  """The bad image files, given as `option`, with their messages."""
  return [
      Case(prefix + 'missing image', [f'{option}={images["missing"]}'] + extra,
           'does not exist', watch),
      Case(prefix + 'empty image', [f'{option}={images["empty"]}'] + extra,
           'is empty', watch),
      Case(prefix + 'truncated image',
           [f'{option}={images["truncated"]}'] + extra,
           'truncated or corrupt PNG', watch),
      Case(prefix + 'corrupt image', [f'{option}={images["corrupt"]}'] + extra,
           'cannot decode', watch),
      Case(prefix + 'NaN float image', [f'{option}={images["nan"]}'] + extra,
           'NaN or infinite', watch),
      Case(prefix + 'infinite float image',
           [f'{option}={images["inf"]}'] + extra, 'NaN or infinite', watch),
      Case(prefix + 'float image outside 0..1',
           [f'{option}={images["range"]}'] + extra, 'outside 0..1', watch),
  ]


def _checkpoint_cases(option, models, extra, watch):
  """Damaged, foreign and NaN checkpoints given as `option`."""
  return [
      Case('not a run', [f'{option}={models["not_a_run"]}'] + extra,
           'not a pixelrl_tf run directory', watch),
      Case('truncated .index', [f'{option}={models["truncated_index"]}']
           + extra, 'cannot read checkpoint', watch),
      Case('truncated .data', [f'{option}={models["truncated_data"]}']
           + extra, 'cannot read checkpoint', watch),
      Case('foreign checkpoint', [f'{option}={models["foreign"]}'] + extra,
           'does not fit the model', watch),
      Case('NaN weights', [f'{option}={models["nan"]}'] + extra,
           'NaN or infinite values in FcnActorCritic/conv1/kernel', watch),
  ]


def _restore_cases(base, images, models):
  output = _sentinel_folder(base / 'restore_out', 'a_good.png',
                            'missing.png', 'corrupt.png')
  model = [f'--model={models["gray"]}', f'--output={output}']
  watch = [output]
  cases = [Case('corrupt file among good ones',
                [f'--model={models["gray"]}', f'--input={images["mixed"]}',
                 f'--output={output}'], 'b_corrupt.png', watch)]
  cases += _image_error_cases('--input', images, model, watch)
  cases += [
      Case('empty folder', [f'--input={images["empty_folder"]}'] + model,
           'no image files', watch),
      Case('folder, not a SavedModel or run',
           [f'--model={models["not_a_run"]}',
            f'--input={images["good_gray"]}',
            f'--output={output}'], 'holds no SavedModel', watch),
      Case('corrupt SavedModel',
           [f'--model={models["bad_saved_model"]}',
            f'--input={images["good_gray"]}', f'--output={output}'],
           'cannot load the SavedModel', watch),
  ]
  for case in _checkpoint_cases('--model', models, [
      f'--input={images["good_gray"]}', f'--output={output}'], watch)[1:]:
    cases.append(case)
  cases += [
      Case('unwritable output',
           [f'--model={models["gray"]}', f'--input={images["good_gray"]}',
            f'--output={_unwritable(base / "restore_blocked")}'],
           'cannot write', [base / 'restore_blocked']),
      Case('bad flag value', ['--tile_size=big'] + model
           + [f'--input={images["good_gray"]}'], '--tile_size', watch),
      Case('missing flag', [f'--input={images["good_gray"]}',
                            f'--model={models["gray"]}'],
           '--output are required', watch),
      Case('--debug', ['--debug', f'--input={images["corrupt"]}'] + model,
           'cannot decode', watch, debug=True),
      Case('PIXELRL_DEBUG=1', [f'--input={images["empty"]}'] + model,
           'is empty', watch, env=_DEBUG_ENV, debug=True),
      Case('unusual files, gray model',
           [f'--model={models["gray"]}', f'--input={images["odd"]}',
            f'--output={base / "restore_odd"}'], success=True,
           notes=['deep.png (20x24) -> ', 'four.tiff (20x24) -> ',
                  'float.tiff (20x24) -> ', 'palette.png (20x24) ->',
                  'note: alpha.png: dropped the alpha channel',
                  'note: gray_alpha.png: dropped the alpha channel',
                  'note: colour.png: colour image converted to gray for a '
                  'gray model']),
      Case('gray image, colour model',
           [f'--model={models["colour"]}', f'--input={images["good_gray"]}',
            f'--output={base / "restore_colour"}'], success=True,
           notes=['note: a_gray.png: gray image converted to colour for a '
                  'colour model']),
  ]
  return cases


def _eval_cases(base, images, models):
  report = _write(base / 'eval_out' / 'report.json', _SENTINEL)
  watch = [report.parent]
  outputs = [f'--output_json={report}',
             f'--output_markdown={report.parent / "report.md"}']
  paired = base / 'paired'
  _write(paired / 'input' / 'a.png', _png(_gradient(24, 20, 3)))
  _write(paired / 'target' / 'a.png', _png(_gradient(24, 20)))
  gray_run = [f'--checkpoint={models["gray"]}']
  cases = [
      Case('colour pairs, gray model',
           gray_run + [f'--input_dir={paired / "input"}',
                       f'--target_dir={paired / "target"}'] + outputs,
           'is colour but the model takes gray images', watch),
      Case('corrupt file among good ones',
           gray_run + [f'--data_dir={images["mixed"]}'] + outputs,
           'b_corrupt.png', watch),
      Case('NaN image', gray_run + [f'--data_dir={images["nan_folder"]}']
           + outputs, 'NaN or infinite', watch),
      Case('empty folder', gray_run + [f'--data_dir={images["empty_folder"]}']
           + outputs, 'no image files', watch),
  ]
  cases += _checkpoint_cases('--checkpoint', models, [
      f'--data_dir={images["good_gray"].parent}'] + outputs, watch)
  cases += [
      Case('unwritable report',
           gray_run + [f'--data_dir={images["good_gray"].parent}',
                       f'--output_json={_unwritable(base / "eval_blocked")}'],
           'cannot write', [base / 'eval_blocked'], progress_first=True),
      Case('--debug', ['--debug'] + gray_run + [
          f'--data_dir={images["mixed"]}'] + outputs, 'b_corrupt.png', watch,
           debug=True),
      Case('unusual files', gray_run + [
          f'--data_dir={images["odd"]}',
          f'--output_json={base / "eval_odd.json"}'], success=True,
           notes=['note: dropped the alpha channel in 3 of 7 images',
                  'note: colour image converted to gray in']),
  ]
  return cases


def _export_cases(base, models):
  export_base = _sentinel_folder(base / 'exports', 'm/1/saved_model.pb',
                                 'm_policy/1/saved_model.pb')
  watch = [export_base]
  common = [f'--export_base={export_base}', '--model_name=m']
  cases = _checkpoint_cases('--root_dir', models, common, watch)
  cases += [
      Case('existing version', [f'--root_dir={models["gray"]}', '--version=1']
           + common, 'already exists', watch),
      Case('unwritable export base',
           [f'--root_dir={models["gray"]}',
            f'--export_base={_unwritable(base / "export_blocked")}'],
           'Not a directory', [base / 'export_blocked']),
      Case('--debug', ['--debug', f'--root_dir={models["truncated_index"]}']
           + common, 'cannot read checkpoint', watch, debug=True),
  ]
  return cases


def _import_weights_cases(base, models):
  output = base / 'imported'
  watch = [output]
  target = [f'--output_dir={output}']
  return [
      Case('corrupt .npz', [f'--npz={models["corrupt_npz"]}'] + target,
           'corrupt.npz', watch),
      Case('truncated .npz', [f'--npz={models["truncated_npz"]}'] + target,
           'truncated.npz', watch),
      Case('foreign .npz', [f'--npz={models["foreign_npz"]}'] + target,
           'foreign.npz', watch),
      Case('NaN .npz', [f'--npz={models["nan_npz"]}'] + target,
           "array 'conv1/W' holds NaN or infinite values", watch),
      Case('missing .npz', [f'--npz={base / "nope.npz"}'] + target,
           "nope.npz' does not exist", watch),
      Case('neither a path nor a name', ['--npz=gru_rmc_sigma52'] + target,
           "weights file 'gru_rmc_sigma52' does not exist and is not a known "
           'name; did you mean', watch),
      Case('output holds a model',
           [f'--npz={models["npz"]}', f'--output_dir={models["gray"]}'],
           'already holds a model', [models['gray']]),
      Case('unwritable output',
           [f'--npz={models["npz"]}',
            f'--output_dir={_unwritable(base / "import_blocked")}'],
           'cannot create', [base / 'import_blocked']),
      Case('--debug', ['--debug', f'--npz={models["corrupt_npz"]}'] + target,
           'corrupt.npz', watch, debug=True),
  ]


def _saliency_cases(base, images, models):
  output = _sentinel_folder(base / 'saliency_out', 'a_colour_edited.png',
                            'a_colour_metrics.json')
  watch = [output]
  mask = _write(base / 'saliency' / 'mask.png', _png(np.where(
      _gradient(24, 20) > 100, 255, 0).astype(np.uint8)))
  small_mask = _write(base / 'saliency' / 'small_mask.png',
                      _png(np.full((10, 12), 255, np.uint8)))
  rest = [f'--mask={mask}', f'--output={output}', '--episodes=1',
          '--t_max=1', '--gin_bindings=edit_image.filters=4']
  # A colour image: nothing to convert, so no note comes before an error.
  good = [f'--image={images["good_colour"]}']
  cases = [Case('corrupt image', [f'--image={images["corrupt"]}'] + rest,
                'cannot decode', watch)]
  cases += _image_error_cases('--image', images, rest, watch)[:1]
  cases += _image_error_cases('--mask', images, good + rest[1:], watch,
                              prefix='mask: ')[4:]
  cases += [
      Case('mask of another size',
           good + [f'--mask={small_mask}'] + rest[1:], 'same size', watch),
      Case('corrupt --init .npz', good + rest
           + [f'--init={models["corrupt_npz"]}'], 'corrupt.npz', watch),
      Case('truncated --init checkpoint', good + rest
           + [f'--init={models["truncated_index"]}'],
           'cannot read checkpoint', watch),
      Case('--debug', ['--debug', f'--image={images["truncated"]}'] + rest,
           'truncated or corrupt PNG', watch, debug=True),
  ]
  # The four outputs are written together: one that cannot be written (a
  # folder in its place) leaves the other three as they were.
  blocked = _sentinel_folder(base / 'saliency_group', 'a_colour_edited.png',
                             'a_colour_actions.png', 'a_colour_saliency.png')
  (blocked / 'a_colour_metrics.json').mkdir()
  cases.append(Case('one output cannot be written',
                    good + [f'--mask={mask}', f'--output={blocked}'] +
                    rest[2:], 'Is a directory', [blocked],
                    progress_first=True))
  return cases


def _restoration_set_cases(base, images):
  existing = _sentinel_folder(base / 'set', 'manifest.json', 'input/a.png',
                              'target/a.png', 'mask/a.png')
  watch = [existing]
  rest = [f'--output_dir={existing}', '--seed=0', '--overwrite']
  return [
      Case('corrupt file, existing set',
           [f'--input_dir={images["mixed"]}'] + rest, 'b_corrupt.png', watch),
      Case('empty folder', [f'--input_dir={images["empty_folder"]}'] + rest,
           'no image files', watch),
      Case('NaN image', [f'--input_dir={images["nan_folder"]}'] + rest,
           'NaN or infinite', watch),
      Case('unwritable output',
           [f'--input_dir={images["good_gray"].parent}', '--seed=0',
            f'--output_dir={_unwritable(base / "set_blocked")}'],
           'cannot write', [base / 'set_blocked'], progress_first=True),
      Case('--debug', ['--debug', f'--input_dir={images["mixed"]}'] + rest,
           'b_corrupt.png', watch, debug=True),
      Case('unusual files', [f'--input_dir={images["odd"]}', '--seed=0',
                             f'--output_dir={base / "set_odd"}'],
           success=True,
           notes=['note: dropped the alpha channel in 3 of 7 images',
                  'note: colour image converted to gray in',
                  'wrote 7 images']),
  ]


def _train_cases(base, images, models):
  tiny = PROJECT_ROOT / 'configs' / 'tiny.gin'

  def run(name, data, *bindings):
    root = base / 'train_runs' / name
    return [f'--gin_file={tiny}', f'--root_dir={root}',
            f"--gin_bindings=TrainingData.data_source = '{data}'",
            '--gin_bindings=TrainingData.validation_source = None',
            *[f'--gin_bindings={binding}' for binding in bindings]], [root]

  small_args, small_watch = run('small', images['small'].parent)
  cases = [Case('image smaller than the crop', small_args,
                f"image file '{images['small']}' is 10x12, smaller than the "
                '16x16 crop', small_watch)]
  for name, folder, expect in (('corrupt', images['mixed'], 'b_corrupt.png'),
                               ('nan', images['nan_folder'],
                                'NaN or infinite'),
                               ('empty', images['empty_folder'],
                                'no image files')):
    args, watch = run(name, folder)
    cases.append(Case(f'{name} data', args, expect, watch))
  args, watch = run('caffemodel', images['good_gray'].parent,
                    'initialise_network.init_caffemodel = '
                    f"'{models['corrupt_caffemodel']}'")
  cases.append(Case('corrupt .caffemodel', args, 'corrupt.caffemodel', watch))
  args, watch = run('debug', images['small'].parent)
  cases.append(Case('--debug', ['--debug'] + args, 'smaller than the', watch,
                    debug=True))
  return cases


# Every command that writes, on a real full and a real read-only disk: the
# folder (on the disk) each one writes into.
_DISK_FOLDERS = ('restore', 'eval', 'export', 'import', 'saliency', 'set',
                 'train')
_DISK_ERRORS = {'full disk': 'No space left on device',
                'read-only disk': 'Read-only file system'}


def _mask_file(images):
  """A saliency mask the size of `images['good_colour']`."""
  return _write(images['good_colour'].parent.parent / 'mask_24x20.png',
                _png(np.where(_gradient(24, 20) > 100, 255, 0).astype(
                    np.uint8)))


def _mount_disks(base):
  """`{kind: mounted folder or None}`, each holding `kept.txt` sentinels."""
  def populate(root):
    for name in _DISK_FOLDERS:
      _sentinel_folder(root / name, 'kept.txt')

  full = disks.small_disk(base / 'full_disk', free_bytes=1 << 16)
  if full is not None:
    populate(full)
    disks.fill(full)
  return {'full disk': full,
          'read-only disk': disks.read_only_disk(base / 'ro_disk', populate)}


def _disk_cases(mounts, images, models):
  """`{command: cases}` writing into the mounted disks."""
  tiny = PROJECT_ROOT / 'configs' / 'tiny.gin'
  mask = _mask_file(images)
  cases = {}
  for kind, root in mounts.items():
    if root is None:
      continue
    expect = _DISK_ERRORS[kind]

    def case(command, folder, args, progress_first=False):
      cases.setdefault(command, []).append(Case(
          f'{kind}: {folder}', args, expect, [root / folder],  # pylint: disable=cell-var-from-loop
          progress_first=progress_first))  # pylint: disable=cell-var-from-loop

    case('restore', 'restore', [
        f'--model={models["gray"]}', f'--input={images["good_gray"]}',
        f'--output={root / "restore" / "out"}'])
    case('eval', 'eval', [
        f'--checkpoint={models["gray"]}',
        f'--data_dir={images["good_gray"].parent}',
        f'--output_json={root / "eval" / "report.json"}'],
         progress_first=True)
    case('export', 'export', [f'--root_dir={models["gray"]}',
                              f'--export_base={root / "export"}',
                              '--model_name=m'])
    case('import_weights', 'import', [
        f'--npz={models["npz"]}', f'--output_dir={root / "import" / "run"}'])
    case('saliency_edit', 'saliency', [
        f'--image={images["good_colour"]}', f'--mask={mask}',
        f'--output={root / "saliency"}', '--episodes=1', '--t_max=1',
        '--gin_bindings=edit_image.filters=4'], progress_first=True)
    case('make_restoration_set', 'set', [
        f'--input_dir={images["good_gray"].parent}', '--seed=0',
        f'--output_dir={root / "set" / "out"}'], progress_first=True)
    case('train', 'train', [
        f'--gin_file={tiny}', f'--root_dir={root / "train" / "run"}',
        f"--gin_bindings=TrainingData.data_source = '{images['good_gray'].parent}'",
        '--gin_bindings=TrainingData.validation_source = None'])
  return cases


def _offline_name_cases(base, images, models):
  """`{command: cases}`: a known name on a fresh machine (no data root, an
  empty cache, offline) is one line naming it and the command that gets it."""
  env = {known_files.CACHE_DIR_ENV: str(base / 'fresh_cache'),
         known_files.OFFLINE_ENV: '1'}
  watch = [base / 'fresh_cache', base / 'fresh_out']

  def case(name, args):
    return Case(f'offline, fresh machine: {name}', args,
                f'`python -m pixelrl_tf.download {name}`', watch, env=env)

  mask = _mask_file(images)
  return {
      'restore': [case('bsd68', [
          f'--model={models["gray"]}', '--input=bsd68',
          f'--output={base / "fresh_out" / "restore"}'])],
      'eval': [case('bsd68', [f'--checkpoint={models["gray"]}',
                              '--data_dir=bsd68'])],
      'import_weights': [case('gru_rmc_sigma25', [
          '--npz=gru_rmc_sigma25',
          f'--output_dir={base / "fresh_out" / "import"}'])],
      'saliency_edit': [case('color_init', [
          f'--image={images["good_colour"]}', f'--mask={mask}',
          f'--output={base / "fresh_out" / "saliency"}', '--episodes=1',
          '--t_max=1', '--init=color_init'])],
      'make_restoration_set': [case('bsd68', [
          '--input_dir=bsd68', '--seed=0',
          f'--output_dir={base / "fresh_out" / "set"}'])],
      'download': [case('gru_sigma25', ['gru_sigma25'])],
  }


def _download_cases(base):
  entry = known_files.get_entry('ircnn_denoise_15_gray')
  data_root = base / 'data_root'
  _write(data_root / entry.relpath, b'far too short')
  cache = base / 'cache'
  env = {known_files.CACHE_DIR_ENV: str(cache), known_files.OFFLINE_ENV: '1'}
  watch = [cache, data_root]
  return [
      Case('unknown name', ['gru_sigma52'], 'did you mean', watch, env=env),
      Case('wrong local copy',
           [f'--data_root={data_root}', 'ircnn_denoise_15_gray'],
           'has 13 bytes, expected', watch, env=env),
      Case('--list with names', ['--list', 'bsd68_list'],
           '--list takes no names', watch, env=env),
      Case('--debug', ['--debug', 'gru_sigma52'], 'did you mean', watch,
           env=env, debug=True),
      Case('PIXELRL_DEBUG=1', ['gru_sigma52'], 'did you mean', watch,
           env=dict(env, **_DEBUG_ENV), debug=True),
  ]


# ---------------------------------------------------------------------------
# Running.


def _snapshot(path):
  path = pathlib.Path(path)
  if path.is_dir():
    return {str(p.relative_to(path)): p.read_bytes()
            for p in sorted(path.rglob('*')) if p.is_file()}
  if path.is_file():
    return path.read_bytes()
  return {}


def _environment(extra):
  env = {k: v for k, v in os.environ.items()
         if k != cli.DEBUG_ENV and not k.startswith('PIXELRL_')}
  env['PYTHONPATH'] = os.pathsep.join(
      [str(PROJECT_ROOT)] + [p for p in [env.get('PYTHONPATH')] if p])
  env.update(extra)
  return env


def _run_real(command, case) -> Outcome:
  completed = subprocess.run(
      [sys.executable, '-m', f'pixelrl_tf.{command}', *case.args],
      cwd=PROJECT_ROOT, env=_environment(case.env), capture_output=True,
      text=True, timeout=_TIMEOUT_SECONDS, check=False)
  return Outcome(completed.returncode, completed.stdout, completed.stderr)


def _run_driver(command, cases, folder) -> Tuple[List[Outcome], str]:
  return cli_driver.run_cases(
      command, [cli_driver.Case(case.args, _environment(case.env))
                for case in cases], folder, env=_environment({}))


@pytest.fixture(scope='module')
def mounts(tmp_path_factory):
  """The real full and read-only disks (None each where none can be made)."""
  base = tmp_path_factory.mktemp('disks')
  mounted = _mount_disks(base)
  yield mounted
  for root in mounted.values():
    if root is not None:
      disks.unmount(root)


@pytest.fixture(scope='module')
def runs(tmp_path_factory, mounts):
  """`{command: [(case, outcome, snapshots before)]}` and driver stderr."""
  base = tmp_path_factory.mktemp('bad_input')
  images = _image_files(base / 'images')
  models = _model_files(base / 'models')
  cases = {
      'restore': _restore_cases(base, images, models),
      'eval': _eval_cases(base, images, models),
      'export': _export_cases(base, models),
      'import_weights': _import_weights_cases(base, models),
      'saliency_edit': _saliency_cases(base, images, models),
      'make_restoration_set': _restoration_set_cases(base, images),
      'train': _train_cases(base, images, models),
      'download': _download_cases(base),
  }
  assert set(cases) == set(COMMANDS)
  for command, disk_cases in _disk_cases(mounts, images, models).items():
    cases[command] += disk_cases
  for command, name_cases in _offline_name_cases(base, images,
                                                 models).items():
    cases[command] += name_cases
  before = {command: [{str(path): _snapshot(path) for path in case.watch}
                      for case in command_cases]
            for command, command_cases in cases.items()}
  with concurrent.futures.ThreadPoolExecutor(_PARALLEL_PROCESSES) as pool:
    real = {command: pool.submit(_run_real, command, command_cases[0])
            for command, command_cases in cases.items()}
    driven = {command: pool.submit(_run_driver, command, command_cases[1:],
                                   base)
              for command, command_cases in cases.items()}
    results = {}
    for command in COMMANDS:
      outcomes, driver_stderr = driven[command].result()
      results[command] = (
          list(zip(cases[command], [real[command].result()] + outcomes,
                   before[command])), driver_stderr)
  return results


def _problems(case: Case, outcome: Outcome, before) -> List[str]:
  """What `case` did wrong (empty if nothing)."""
  problems = []
  lines = outcome.stderr.strip().splitlines()
  if case.success:
    if outcome.status != 0:
      problems.append(f'status {outcome.status}, stderr {outcome.stderr!r}')
    output = outcome.stdout + outcome.stderr
    problems += [f'no {note!r} in {output!r}' for note in case.notes
                 if note not in output]
    return problems
  if outcome.status != 1:
    problems.append(f'status {outcome.status}, not 1')
  if case.debug:
    if _TRACEBACK not in outcome.stderr:
      problems.append(f'no traceback with --debug: {outcome.stderr!r}')
  else:
    earlier = lines[:-1]
    if case.progress_first:
      earlier = [line for line in earlier
                 if not _PROGRESS.match(line) and not line.startswith('note: ')]
    if earlier or not lines:
      problems.append(f'{len(lines)} lines on stderr: {outcome.stderr!r}')
    if _TRACEBACK in outcome.stderr:
      problems.append('a traceback')
  last = lines[-1] if lines else ''
  if not last.startswith('error: ') or case.expect not in last:
    problems.append(f'last line {last!r} is not "error: ...{case.expect}..."')
  if 'run with --debug' in last:
    problems.append('an unexpected exception, not a documented error')
  for path, snapshot in before.items():
    if _snapshot(path) != snapshot:
      problems.append(f'{path} was modified')
  return problems


@pytest.mark.parametrize('command', COMMANDS)
def test_bad_input_is_one_line_and_overwrites_nothing(runs, command):
  results, driver_stderr = runs[command]
  problems = []
  for case, outcome, before in results:
    problems += [f'{case.name}: {problem}'
                 for problem in _problems(case, outcome, before)]
  assert not problems, '\n'.join(problems)
  assert _TRACEBACK not in driver_stderr, driver_stderr[-3000:]
  assert any(case.debug for case, _, _ in results)


def test_every_writing_command_met_a_full_and_a_read_only_disk(runs, mounts):
  if any(root is None for root in mounts.values()):
    pytest.skip(disks.MOUNT_UNAVAILABLE)
  for command in set(COMMANDS) - {'download'}:
    names = [case.name for case, _, _ in runs[command][0]]
    for kind in _DISK_ERRORS:
      assert any(name.startswith(kind) for name in names), (command, kind)


# ---------------------------------------------------------------------------
# The shared error handling, in process.


def _exit_of(function, *args) -> int:
  with pytest.raises(SystemExit) as exit_info:
    function(*args)
  return exit_info.value.code


def test_unexpected_exception_is_one_line(capsys, monkeypatch):
  monkeypatch.delenv(cli.DEBUG_ENV, raising=False)

  def main(argv):
    del argv
    return {}['no such key']

  assert _exit_of(cli.guard(main), ['prog']) == 1
  captured = capsys.readouterr()
  assert captured.err == ('error: KeyError: no such key (run with --debug for '
                          'the traceback)\n')
  monkeypatch.setenv(cli.DEBUG_ENV, '1')
  assert _exit_of(cli.guard(main), ['prog']) == 1
  err = capsys.readouterr().err
  assert err.startswith(_TRACEBACK) and "{}['no such key']" in err
  assert err.splitlines()[-1] == 'error: KeyError: no such key'


def test_fail_usage_and_interrupt(capsys, monkeypatch):
  monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
  assert _exit_of(cli.fail, ValueError('first line\nsecond line')) == 1
  assert capsys.readouterr().err == 'error: first line\n'

  def usage(argv):
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')

  assert _exit_of(cli.guard(usage), ['prog', 'extra']) == 1
  assert capsys.readouterr().err == (
      "error: unexpected arguments: ['extra'] (see --help)\n")

  def interrupted(argv):
    raise KeyboardInterrupt()

  assert _exit_of(cli.guard(interrupted), ['prog']) == 130
  assert capsys.readouterr().err == 'error: interrupted\n'


def test_debug_flag_is_read_after_parsing(monkeypatch):
  monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
  assert not cli.debug_enabled()
  for value in ('1', 'true', 'YES'):
    monkeypatch.setenv(cli.DEBUG_ENV, value)
    assert cli.debug_enabled()
  monkeypatch.setenv(cli.DEBUG_ENV, '0')
  assert not cli.debug_enabled()

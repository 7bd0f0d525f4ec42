"""Evaluation of PixelRL agents with the official protocol.

Shapes: `T` steps, `H, W` height and width, `C` channels.

For every test image: corrupt it with a seeded noise model (or take the
corrupted input of a paired folder), restore it greedily for `t_max` steps
(full size, batch 1, as the reference `test.py`), and measure PSNR and SSIM
after every step with the official protocol (clip to [0,1], round to uint8).
Rows of the report: `original` (the corrupted input), `random_agents`
(uniformly random actions, seeded), `model` (greedy) and, on request,
`model_x8` (test-time augmentation over the 8 flips/rotations, outputs
mapped back and averaged in float before measuring).

Colour models (`'color'` / `'color_reference'` action sets) read their images
in BGR order and add the `lab` metric of Table VIII: the mean per-pixel CIE
Lab distance to the target (`metrics.mean_lab_distance`: output clipped to
[0, 1], OpenCV's float BGR->Lab), per step as well.

Folders are paths or names of known data sets (`bsd68`, see
`data.known_files`), resolved to a local data root, the cache or a download.
Images are read with `pixelrl_tf.io.images`, all of them before the first is
evaluated, so a bad file is a one-line error naming it before any work.
Channels:

  * clean images (`data_dir`) are converted to the model's channels as for
    training (colour -> gray with OpenCV's luminance formula on the stored
    values, gray -> colour by repetition), with one note per kind;
  * paired folders (`input_dir`, `target_dir`) are compared as stored: an
    image whose channels differ from the model's is refused with one line
    naming it (a colour set scored with a gray model, or the reverse, would
    not measure what the set was made for). An alpha channel is dropped,
    with a note.
"""

import json
import math
import os
from typing import Callable, List, Optional, Tuple, Union

import numpy as np

from pixelrl_tf.data import datasets
from pixelrl_tf.data import known_files
from pixelrl_tf.data import noise as noise_lib
from pixelrl_tf.evaluation import protocol
from pixelrl_tf.io import files
from pixelrl_tf.io import images as image_io
from pixelrl_tf.models import restorers
from pixelrl_tf.visualization import action_maps
from pixelrl_tf.visualization import plots

PathLike = Union[str, os.PathLike]

_CHANNEL_NAMES = {1: 'gray', 3: 'colour'}


def _read_paired_image(path, channels, bgr, note_fn):
  image, notes = image_io.read_image_with_notes(path, bgr=bgr)
  if image.shape[2] != channels:
    raise ValueError(
        f'paired image {str(path)!r} is {_CHANNEL_NAMES[image.shape[2]]} but '
        f'the model takes {_CHANNEL_NAMES[channels]} images; paired folders '
        'are evaluated as stored (convert them, or use --data_dir, which '
        'converts)')
  if note_fn is not None:
    for note in notes:
      note_fn(f'{os.path.basename(path)}: {note}')
  return image


def folder_pairs(
    input_dir: PathLike, target_dir: PathLike, channels: int,
    bgr: bool = False, note_fn: Optional[Callable[[str], None]] = None
) -> List[Tuple[str, np.ndarray, np.ndarray]]:
  """Reads `(name, corrupted, clean)` from paired folders (same stems).

  Every image is read before this returns. Colour images are RGB, or BGR
  with `bgr` (colour models).

  Args:
    input_dir: folder of corrupted inputs.
    target_dir: folder of their clean targets (any image suffix).
    channels: the model's channels; every image must have them.
    bgr: colour images in BGR order.
    note_fn: optional callable given a line per dropped alpha channel.

  Returns:
    List of `(input file name, corrupted [H,W,C], clean [H,W,C])`.

  Raises:
    FileNotFoundError: a folder or an input's target is missing.
    ValueError: (one line, naming the file) a folder holds no image, an
      image is not readable, has other channels than the model, or differs
      in size from its pair.
  """
  triples = []
  for input_path, target_path in datasets.list_image_pairs(input_dir,
                                                           target_dir):
    corrupted = _read_paired_image(input_path, channels, bgr, note_fn)
    clean = _read_paired_image(target_path, channels, bgr, note_fn)
    if corrupted.shape != clean.shape:
      raise ValueError(
          f'{str(input_path)!r} is {corrupted.shape[0]}x{corrupted.shape[1]} '
          f'but its target {str(target_path)!r} is {clean.shape[0]}x'
          f'{clean.shape[1]}')
    triples.append((os.path.basename(input_path), corrupted, clean))
  return triples


def _image_folder(value):
  """A folder argument as a path: a path or a known data set's name."""
  return str(known_files.resolve_path_or_name(value, what='image folder'))


def is_color_model(config):
  """Whether `config` takes colour images in OpenCV's BGR order."""
  task = config.get_task()
  return task.bgr and task.channels == 3


def evaluate(checkpoint, data_dir=None, noise='gaussian:25', seed=0,
             input_dir=None, target_dir=None, t_max=None, augment_x8=False,
             max_images=None, include_random=True, progress_fn=None,
             note_fn=None, include_best_fixed=True,
             include_best_fixed_sequence=False):
  """Evaluates a model on a folder (noise added) or on paired folders.

  Args:
    checkpoint: run directory or checkpoint prefix.
    data_dir: folder of clean images (a path or a known data set such as
      `'bsd68'`), corrupted with `noise` seeded by `(seed, image index)`; or
      None with `input_dir`/`target_dir`.
    noise: noise spec for `data_dir`.
    seed: noise and random-agent seed.
    input_dir: folder of corrupted inputs (restoration sets); a path or a
      known name, as `data_dir`.
    target_dir: folder of the clean targets of `input_dir`; likewise.
    t_max: restoration steps (None: the model's).
    augment_x8: add the x8 test-time augmentation row.
    max_images: evaluate only the first images (sorted by name).
    include_random: add the random agents row.
    progress_fn: optional per-image callback `(index, name)`.
    note_fn: optional callable given one line per conversion of the image
      files read (see the module docstring).
    include_best_fixed: add the best fixed schedule row (every action
      repeated 1..t_max times over the whole image; the best by the mean
      PSNR, or Lab distance for colour) and the model's `learned_gain` over
      it.
    include_best_fixed_sequence: also search the best fixed sequence (one
      action per step for the whole image, changing from step to step;
      `protocol.best_fixed_sequence`) and the model's gain over it. It
      filters the images up to 128 x A times per step, so it is off by
      default.

  Returns:
    The `evaluate_images` report plus `checkpoint`, `noise`, `seed`,
    `t_max`, `variant`, `data` and, with `include_best_fixed`,
    `best_fixed_schedule` (its label) and `learned_gain` (dB, or Lab units
    for colour models, which also get the `lab` metric); with
    `include_best_fixed_sequence`, `best_fixed_sequence` (`{'score',
    'actions', 'exhaustive'}`) and `learned_gain_over_sequence`.

  Raises:
    FileNotFoundError: a folder, file or checkpoint is missing.
    known_files.KnownFileError: (a ValueError, one line) a folder is neither
      a path nor a known name, or the named data set cannot be had.
    ValueError: (one line) bad arguments, a `model.json` or checkpoint that
      cannot be loaded (`model_io.CheckpointError`), or an image file that
      cannot be read or (paired folders) does not fit the model or its pair;
      the message names the file.
  """
  config, restorer = restorers.restorer_from_run(checkpoint, t_max=t_max)
  color = is_color_model(config)
  lab = config.get_task().lab_metric
  if input_dir is not None or target_dir is not None:
    if input_dir is None or target_dir is None:
      raise ValueError('paired evaluation needs both input_dir and '
                       'target_dir')
    pairs = folder_pairs(_image_folder(input_dir), _image_folder(target_dir),
                         config.channels, bgr=color, note_fn=note_fn)
    data, noise_text = f'{input_dir} -> {target_dir}', None
  else:
    if data_dir is None:
      raise ValueError('give data_dir (with noise) or input_dir/target_dir')
    noise_model = noise_lib.parse_noise(noise)
    images = datasets.load_images(
        image_io.list_image_files(_image_folder(data_dir)), config.channels,
        bgr=color, note_fn=note_fn)
    pairs = noise_lib.noisy_pairs(images, noise_model, seed)
    data, noise_text = data_dir, str(noise_model)
  if max_images is not None:
    pairs = (p for i, p in enumerate(pairs) if i < max_images)
  if include_best_fixed_sequence:
    pairs = list(pairs)
  schedules = (protocol.FixedSchedules(config.get_action_set(),
                                       restorer.t_max)
               if include_best_fixed else None)
  report = protocol.evaluate_images(restorer, pairs, random_seed=seed,
                                    augment_x8=augment_x8,
                                    include_random=include_random,
                                    progress_fn=progress_fn, lab_metric=lab,
                                    fixed_schedules=schedules)
  report.update(checkpoint=checkpoint, noise=noise_text, seed=seed,
                t_max=restorer.t_max, variant=config.variant, data=data)
  key = protocol.LAB if lab else 'psnr'
  higher_is_better = config.get_task().metric.higher_is_better
  if include_best_fixed:
    rows = report['rows']
    report[protocol.LEARNED_GAIN] = protocol.learned_gain(
        rows[protocol.MODEL][key], rows[protocol.BEST_FIXED][key],
        higher_is_better)
  if include_best_fixed_sequence:
    sequence = protocol.best_fixed_sequence(
        config.get_action_set(), pairs, restorer.t_max, lab_metric=lab)
    report[protocol.BEST_FIXED_SEQUENCE] = sequence
    report[protocol.LEARNED_GAIN_OVER_SEQUENCE] = protocol.learned_gain(
        report['rows'][protocol.MODEL][key], sequence['score'],
        higher_is_better)
  return report


_ROW_TITLES = {protocol.ORIGINAL: 'Original',
               protocol.RANDOM_AGENTS: 'Random agents',
               protocol.BEST_FIXED: 'Best fixed schedule',
               protocol.MODEL: 'Model (greedy)',
               protocol.MODEL_X8: 'Model + x8 aug'}


def _row_title(report, row):
  title = _ROW_TITLES.get(row, row)
  if row == protocol.BEST_FIXED and report.get(protocol.BEST_FIXED):
    title += f' ({report[protocol.BEST_FIXED]})'
  return title


def _cell(value, digits):
  return '-' if value is None or (isinstance(value, float) and
                                  math.isnan(value)) else f'{value:.{digits}f}'


def report_markdown(report):
  """A markdown summary: rows x (PSNR, SSIM), then PSNR per step."""
  lines = [f'Evaluation of `{report["checkpoint"]}` ({report["variant"]}) on '
           f'{report["num_images"]} images of `{report["data"]}`'
           + (f', noise {report["noise"]}, seed {report["seed"]}'
              if report['noise'] else '') + '.', '',
           '| | PSNR (dB) | SSIM |', '|---|---:|---:|']
  with_lab = all(protocol.LAB in v for v in report['rows'].values())
  if with_lab:
    lines[-2:] = ['| | PSNR (dB) | SSIM | mean Lab L2 |',
                  '|---|---:|---:|---:|']
  for row, values in report['rows'].items():
    lines.append(f'| {_row_title(report, row)} | {_cell(values["psnr"], 2)}'
                 f' | {_cell(values["ssim"], 4)} |'
                 + (f' {_cell(values[protocol.LAB], 2)} |' if with_lab else ''))
  if report.get(protocol.LEARNED_GAIN) is not None:
    unit = ' (mean Lab distance)' if with_lab else ' dB'
    lines += ['', f'Learned gain of the model over the best fixed schedule: '
              f'{report[protocol.LEARNED_GAIN]:+.2f}{unit}.']
  sequence = report.get(protocol.BEST_FIXED_SEQUENCE)
  if sequence is not None:
    metric = 'mean Lab distance' if with_lab else 'PSNR'
    value = (f'{sequence["score"]:.2f}' if with_lab
             else f'{sequence["score"]:.2f} dB')
    unit = ' (mean Lab distance)' if with_lab else ' dB'
    searched = '' if sequence['exhaustive'] else ' (beam search)'
    lines += ['', f'Best fixed sequence{searched}: '
              f'{", ".join(sequence["actions"])}, {metric} {value}; learned '
              f'gain of the model over it: '
              f'{report[protocol.LEARNED_GAIN_OVER_SEQUENCE]:+.2f}{unit}.']
  stepped = [r for r, v in report['rows'].items() if 'per_step' in v]
  if stepped:
    steps = len(report['rows'][stepped[0]]['per_step'])
    lines += ['', 'PSNR (dB) after each step:', '',
              '| | ' + ' | '.join(f't={t + 1}' for t in range(steps)) + ' |',
              '|---|' + '---:|' * steps]
    for row in stepped:
      values = report['rows'][row]['per_step']
      lines.append(f'| {_ROW_TITLES.get(row, row)} | ' + ' | '.join(
          _cell(v['psnr'], 2) for v in values) + ' |')
    if with_lab:
      lines += ['', 'Mean Lab L2 error after each step:', '',
                '| | ' + ' | '.join(f't={t + 1}' for t in range(steps))
                + ' |', '|---|' + '---:|' * steps]
      for row in stepped:
        values = report['rows'][row]['per_step']
        lines.append(f'| {_ROW_TITLES.get(row, row)} | ' + ' | '.join(
            _cell(v[protocol.LAB], 2) for v in values) + ' |')
  return '\n'.join(lines) + '\n'


def write_curve_png(report, path):
  """Writes the PSNR-after-each-step curves of a report (paper's Fig. 8).

  Raises:
    OSError: (one line) the file cannot be written; a previous file is
      unchanged.
  """
  rows = {_ROW_TITLES.get(r, r): [s['psnr'] for s in v['per_step']]
          for r, v in report['rows'].items() if 'per_step' in v}
  steps = len(next(iter(rows.values())))
  rows[_ROW_TITLES[protocol.ORIGINAL]] = [
      report['rows'][protocol.ORIGINAL]['psnr']] * steps
  image = plots.line_chart(rows, x_label='step t', y_label='PSNR (dB)',
                           title=f'{report["variant"]} on {report["data"]}')
  action_maps.save_png(image, path)


def write_report_text(path, text):
  """Writes a markdown report atomically."""
  files.write_text_atomically(path, text)


def write_report(report, output_json=None, output_markdown=None):
  """Writes a report as JSON and / or markdown, each file atomically.

  Raises:
    OSError: (one line) a file cannot be written; a previous file is
      unchanged.
  """
  if output_json:
    files.write_text_atomically(output_json, json.dumps(report, indent=2))
  if output_markdown:
    files.write_text_atomically(output_markdown, report_markdown(report))


def parse_table_entry(text):
  """Parses `LABEL@NOISE=CHECKPOINT` (e.g. `+convGRU@gaussian:25=runs/g25`)."""
  label_noise, separator, checkpoint = text.partition('=')
  label, at, noise = label_noise.rpartition('@')
  if not separator or not at or not label or not checkpoint:
    raise ValueError(f'bad table model {text!r}; expected '
                     'LABEL@NOISE=CHECKPOINT, e.g. FCN@gaussian:25=runs/fcn25')
  return label, str(noise_lib.parse_noise(noise)), checkpoint


def evaluate_table(entries, data_dir, seed=0, augment_x8=False,
                   max_images=None, progress_fn=None):
  """The paper's Table II layout: rows of methods, columns of noise levels.

  Rows: `Original`, `Random agents`, one row per model label (in the order
  first given) and, with `augment_x8`, `<last label>+aug`. Columns: the noise
  specs in the order first given. Noise is seeded by `(seed, image index)`,
  the same for every row of a column.

  Args:
    entries: `(label, noise spec, checkpoint)` triples.
    data_dir: folder of clean test images, or a known data set (`'bsd68'`).
    seed: noise and random-agent seed.
    augment_x8: add the x8 augmentation row for the last label.
    max_images: evaluate only the first images.
    progress_fn: optional callable `(text)` for progress lines.

  Returns:
    `{'columns', 'rows', 'cells': {row: {column: {'psnr', 'ssim'}}},
      'num_images', 'data', 'seed'}`.
  """
  if not entries:
    raise ValueError('the table needs at least one LABEL@NOISE=CHECKPOINT')
  folder = _image_folder(data_dir)
  columns = list(dict.fromkeys(noise for _, noise, _ in entries))
  labels = list(dict.fromkeys(label for label, _, _ in entries))
  aug_label = f'{labels[-1]}+aug' if augment_x8 else None
  rows = ['Original', 'Random agents'] + labels + (
      [aug_label] if aug_label else [])
  cells = {row: {} for row in rows}
  loaded = {}
  images_by_channels = {}
  note_fn = None
  if progress_fn is not None:
    note_fn = lambda line: progress_fn(f'note: {line}')
  for column in columns:
    column_entries = [(l, c) for l, n, c in entries if n == column]
    for label, checkpoint in column_entries:
      if checkpoint not in loaded:
        loaded[checkpoint] = restorers.restorer_from_run(checkpoint)
      config, restorer = loaded[checkpoint]
      if config.channels not in images_by_channels:
        images_by_channels[config.channels] = datasets.load_images(
            image_io.list_image_files(folder), config.channels,
            note_fn=note_fn)[:max_images]
      images = images_by_channels[config.channels]
      pairs = list(noise_lib.noisy_pairs(
          images, noise_lib.parse_noise(column), seed))
      first = label == column_entries[0][0]
      with_aug = augment_x8 and label == labels[-1]
      if progress_fn is not None:
        progress_fn(f'{label} @ {column}: {len(pairs)} images')
      report = protocol.evaluate_images(
          restorer, pairs, random_seed=seed, augment_x8=with_aug,
          include_random=first)
      take = lambda row: {k: report['rows'][row][k] for k in ('psnr', 'ssim')}
      if first:
        cells['Original'][column] = take(protocol.ORIGINAL)
        cells['Random agents'][column] = take(protocol.RANDOM_AGENTS)
      cells[label][column] = take(protocol.MODEL)
      if with_aug:
        cells[aug_label][column] = take(protocol.MODEL_X8)
  return {'columns': columns, 'rows': rows, 'cells': cells,
          'num_images': report['num_images'], 'data': data_dir, 'seed': seed}


def table_markdown(table, metric='psnr'):
  """Markdown of `evaluate_table`'s result, one metric per cell."""
  digits = 2 if metric == 'psnr' else 4
  lines = [f'{metric.upper()} on {table["num_images"]} images of '
           f'`{table["data"]}` (noise seed {table["seed"]}).', '',
           '| | ' + ' | '.join(table['columns']) + ' |',
           '|---|' + '---:|' * len(table['columns'])]
  for row in table['rows']:
    values = [table['cells'][row].get(column, {}).get(metric)
              for column in table['columns']]
    lines.append(f'| {row} | ' + ' | '.join(_cell(v, digits) for v in values)
                 + ' |')
  return '\n'.join(lines) + '\n'

r"""Trains a config for a budget and compares it with the baselines to beat.

  python bench/bench_training.py --gin_file=configs/denoise_quick.gin \
      --root_dir=runs/bench_quick [--gin_bindings=...] \
      [--num_episodes=N] [--max_minutes=M] [--first_chunk_episodes=10] \
      --test_dir=DIR [--test_list=FILE] [--max_test_images=K] \
      [--test_crop=S] [--noise=KIND:LEVEL] [--seed=0] \
      [--output_json=bench/results/training.json] [--output_markdown=FILE]
  python bench/bench_training.py --gin_file=configs/color_enhance_quick.gin \
      --root_dir=runs/bench_color --test_input_dir=IN --test_target_dir=GT \
      [--test_ids=FILE] ...
  python bench/bench_training.py --root_dir=RUN --skip_training --test_dir=DIR

Run from the project root (the configs' data paths are relative to it).

Training: the gin files and bindings are parsed as `pixelrl_tf.train` does
and `train_lib.train` runs in `--root_dir`; an existing run resumes, so a
second invocation with a larger budget extends it.
  * `--num_episodes=N` sets `Optimization.num_episodes` (the budget and the horizon
    of the learning-rate schedule) and lets an existing run change it
    (`RunControl.allow_changes` gains `'num_episodes'`).
  * `--max_minutes=M` trains until the wall-clock time is up: training runs
    in chunks of `RunControl.stop_after_episodes` episodes (the first of
    `--first_chunk_episodes`), each later one sized from the times measured
    so far so that it ends before the deadline (see `next_chunk`: each chunk
    pays the set-up and tracing again, and the guess is cautious until two
    chunks of different lengths tell set-up and episode time apart). The
    run's `Optimization.num_episodes` still sets the schedule and a last stop. Both
    flags may be given.
  * `--skip_training` evaluates the run as it is.

Test set, by the task of the trained model (`model.json`):
  * noise tasks (denoise, poisson, salt_pepper): the clean images of
    `--test_dir` (only those of `--test_list`, the first `--max_test_images`,
    centre-cropped to `--test_crop` pixels), corrupted with the run's noise
    (the `make_task.noise` it was trained with, from `run.json`; `--noise`
    overrides it) seeded by `(seed, image index)`;
  * text removal: the same images covered by `corrupt_with_text` seeded by
    `(seed, image index)`;
  * paired sets (colour enhancement, or a fixed restoration set of any
    task): `--test_input_dir` and `--test_target_dir` (same stems),
    optionally only the stems of `--test_ids`, cropped alike.
Colour models read BGR images and are ranked by the mean Lab distance (lower
is better); the others by PSNR (official protocol, `metrics`).

Rows, all measured by `protocol.evaluate_images`: the corrupted input,
random agents (seeded), the best fixed single-action schedule (each action
repeated 1..t_max times over the whole image, the best action and count by
the test metric), the greedy policy of the latest checkpoint and that of the
best validated checkpoint (`best.json`, when the run has one). Prints a
markdown table of the rows and of the metric after each step, and writes
everything as JSON:

  gin_files, gin_bindings (the user's and the budget's), root_dir,
  machine {node, processor, cpu_count}, date, tensorflow,
  model {task, variant, t_max, channels, filters, actions},
  run_settings (run.json), training {skipped, episodes_start, episodes_end,
    episodes_done, num_episodes, seconds, chunks [{episodes, seconds}],
    budget {num_episodes, max_minutes}, interrupted, val_metric,
    input_metric, metric, final_report},
  test_set {kind: noise|text|paired, test_dir, test_list | input_dir,
    target_dir, ids, noise, seed, crop, max_images, bgr, num_images, names,
    sizes}, metric (psnr | lab), higher_is_better, evaluation_seconds,
  rows {original, random_agents, best_fixed_schedule, model,
    best_checkpoint?: {psnr, ssim, lab?, per_step? [{psnr, ssim, lab?}],
    margin_over_best_fixed}},
  best_fixed_schedule ('<action> x<count>'),
  fixed_schedules {action: [mean metric after 1..T applications]},
  per_step {random_agents, model, best_checkpoint?, best_fixed_action:
    [metric after each step]},
  checkpoints {model: {checkpoint, episode}, best_checkpoint?: {checkpoint,
    episode, validation, same_as_latest}},
  per_image {name: {row: {psnr, ssim, lab?}}}.

Shapes: `N` test images, `A` actions, `T` steps (t_max), `H, W` height and
width, `C` channels.
"""

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import pixelrl_tf  # pylint: disable=g-import-not-at-top,unused-import
import gin
import numpy as np
import tensorflow as tf

from pixelrl_tf import cli
from pixelrl_tf import metrics
from pixelrl_tf.data import datasets
from pixelrl_tf.data import known_files
from pixelrl_tf.data import noise as noise_lib
from pixelrl_tf.data import text_overlay
from pixelrl_tf.evaluation import protocol
from pixelrl_tf.io import files
from pixelrl_tf.io import images as image_io
from pixelrl_tf.jobs import eval_lib
from pixelrl_tf.jobs import train_lib
from pixelrl_tf.models import model_io
from pixelrl_tf.models import restorers
from pixelrl_tf.tasks import tasks as tasks_lib
from pixelrl_tf.training import run_settings
from pixelrl_tf.training import settings
from pixelrl_tf.training import triggers

BEST_CHECKPOINT = 'best_checkpoint'
ROW_ORDER = (protocol.ORIGINAL, protocol.RANDOM_AGENTS, protocol.BEST_FIXED,
             protocol.MODEL, BEST_CHECKPOINT)

# Chunk lengths must spread by this factor before set-up and per-episode
# time are fitted separately (see `next_chunk`).
_FIT_SPREAD = 1.5

Triple = Tuple[str, np.ndarray, np.ndarray]


# ---------------------------------------------------------------------------
# Training.


def latest_episode(root_dir: str) -> int:
  """Episodes done by the run in `root_dir` (0 for a new run)."""
  prefix = tf.train.latest_checkpoint(
      os.path.join(root_dir, model_io.TRAIN_DIR))
  return model_io.read_episode(prefix) or 0


def _bound(name: str, default: Any) -> Any:
  try:
    return gin.query_parameter(name)
  except ValueError:
    return default


def next_chunk(chunks: Sequence[Dict[str, float]], remaining: float,
               first_chunk: int) -> int:
  """Episodes of the next training chunk that fit in `remaining` seconds.

  Each chunk costs a set-up (data, network, tracing the episode) plus its
  episodes. When the chunks so far differ enough in length (the longest at
  least `_FIT_SPREAD` times the shortest), both are fitted (least squares of
  `seconds = setup + episodes * per_episode`, kept when both come out
  plausible). Otherwise the guess errs on the safe side: a set-up as long as
  the shortest chunk and the pooled seconds per episode, set-up included, so
  that the chunk ends before the deadline rather than after it.

  Args:
    chunks: the chunks run so far, `{'episodes', 'seconds'}` each.
    remaining: seconds left before the deadline.
    first_chunk: episodes of the first chunk.

  Returns:
    The episodes of the next chunk; 0 when none fits.
  """
  measured = [c for c in chunks if c['episodes'] > 0]
  if not measured:
    return first_chunk if not chunks else 0
  episodes = np.array([c['episodes'] for c in measured], np.float64)
  seconds = np.array([c['seconds'] for c in measured], np.float64)
  setup = float(np.min(seconds))
  per_episode = float(np.sum(seconds) / np.sum(episodes))
  if np.max(episodes) >= _FIT_SPREAD * np.min(episodes):
    slope, intercept = np.polyfit(episodes, seconds, 1)
    if slope > 0 and 0 <= intercept <= np.min(seconds):
      setup, per_episode = float(intercept), float(slope)
  return max(int((remaining - setup) // per_episode), 0)


def budget_bindings(num_episodes: Optional[int]) -> List[str]:
  """The gin bindings an episode budget adds to the user's."""
  return [] if num_episodes is None else [
      f'Optimization.num_episodes = {int(num_episodes)}']


def train_for_budget(root_dir: str, num_episodes: Optional[int] = None,
                     max_minutes: Optional[float] = None,
                     first_chunk: int = 10) -> Dict[str, Any]:
  """Trains (or resumes) the run of the parsed gin config within a budget.

  Args:
    root_dir: run directory.
    num_episodes: the episode budget bound to `Optimization.num_episodes` (see
      `budget_bindings`), allowed to differ from that of an existing run;
      None: the config's, which an existing run must match.
    max_minutes: wall-clock budget; None trains to the episode budget.
    first_chunk: episodes of the first chunk under a wall-clock budget.

  Returns:
    `{'episodes_start', 'episodes_end', 'episodes_done', 'seconds',
      'chunks': [{'episodes', 'seconds'}], 'interrupted', 'val_metric',
      'input_metric', 'metric', 'final_report'}`.
  """
  allow_changes = tuple(_bound('RunControl.allow_changes', ()))
  if num_episodes is not None:
    allow_changes += ('num_episodes',)
  start_episode = latest_episode(root_dir)
  deadline = None if max_minutes is None else time.monotonic() + (
      60.0 * max_minutes)
  started = time.monotonic()
  chunks, result = [], None
  while True:
    chunk = None
    if deadline is not None:
      chunk = next_chunk(chunks, deadline - time.monotonic(), first_chunk)
      if chunk < 1:
        break
    before = latest_episode(root_dir)
    chunk_started = time.monotonic()
    result = train_lib.train(root_dir, run_control=dataclasses.replace(
        settings.RunControl(), allow_changes=allow_changes,
        stop_after_episodes=chunk))
    done = result['episode'] - before
    chunks.append({'episodes': done,
                   'seconds': time.monotonic() - chunk_started})
    if (chunk is None or result['interrupted'] or done < chunk):
      break
  seconds = time.monotonic() - started
  end_episode = latest_episode(root_dir)
  summary = {'episodes_start': start_episode, 'episodes_end': end_episode,
             'episodes_done': end_episode - start_episode,
             'seconds': seconds, 'chunks': chunks,
             'interrupted': None, 'val_metric': None, 'input_metric': None,
             'metric': None, 'final_report': None}
  if result is not None:
    summary.update({key: result[key] for key in (
        'interrupted', 'val_metric', 'input_metric', 'metric',
        'final_report')})
  return summary


# ---------------------------------------------------------------------------
# Test set.


def centre_crop(image: np.ndarray, size: Optional[int]) -> np.ndarray:
  """The centre `size x size` window of `[H,W,C]` (each side at most H, W)."""
  if not size:
    return image
  height, width = image.shape[:2]
  crop_h, crop_w = min(size, height), min(size, width)
  top, left = (height - crop_h) // 2, (width - crop_w) // 2
  return np.ascontiguousarray(image[top:top + crop_h, left:left + crop_w])


def run_task(root_dir: str) -> tasks_lib.Task:
  """The task of a run, with the noise it was trained with.

  `model.json` names the task; the fields `make_task` changed (the noise of
  `configs/denoise_sigma50.gin`, ...) are in `run.json`.
  """
  task = model_io.read_model_config(root_dir).get_task()
  path = os.path.join(root_dir, run_settings.RUN_SETTINGS_FILE)
  if task.episode_source == tasks_lib.NOISE and os.path.exists(path):
    with open(path) as f:
      stored = json.load(f).get('task') or {}
    if stored.get('noise'):
      task = dataclasses.replace(task, noise=stored['noise'])
  return task


def load_test_set(task: tasks_lib.Task, channels: int, bgr: bool,
                 args: argparse.Namespace) -> Tuple[List[Triple],
                                                    Dict[str, Any]]:
  """The `(name, corrupted [H,W,C], clean [H,W,C])` test triples.

  Returns:
    `(triples, description)`: the description is the JSON `test_set`.
  """
  description = {'seed': args.seed, 'crop': args.test_crop,
                 'max_images': args.max_test_images, 'bgr': bgr}
  limit = args.max_test_images
  if args.test_input_dir or args.test_target_dir:
    if not (args.test_input_dir and args.test_target_dir):
      raise ValueError('paired test sets need both --test_input_dir and '
                       '--test_target_dir')
    triples = list(eval_lib.folder_pairs(args.test_input_dir,
                                         args.test_target_dir, channels,
                                         bgr=bgr))
    if args.test_ids:
      chosen = {path.name for path in datasets.resolve_list_file(
          args.test_ids, args.test_input_dir)}
      triples = [triple for triple in triples if triple[0] in chosen]
    triples = [(name, centre_crop(corrupted, args.test_crop),
                centre_crop(clean, args.test_crop))
               for name, corrupted, clean in triples[:limit]]
    description.update(kind='paired', input_dir=args.test_input_dir,
                       target_dir=args.test_target_dir, ids=args.test_ids)
  else:
    if not args.test_dir:
      raise ValueError('give --test_dir (clean images) or --test_input_dir '
                       'and --test_target_dir')
    if task.episode_source not in (tasks_lib.NOISE, tasks_lib.TEXT):
      raise ValueError(f'task {task.name!r} needs a paired test set '
                       '(--test_input_dir and --test_target_dir)')
    paths = (datasets.resolve_list_file(args.test_list, args.test_dir)
             if args.test_list else image_io.list_image_files(args.test_dir))
    images = [(name, centre_crop(image, args.test_crop)) for name, image in
              datasets.load_images(paths[:limit], channels, bgr=bgr)]
    description.update(test_dir=args.test_dir, test_list=args.test_list)
    if task.episode_source == tasks_lib.NOISE:
      noise = noise_lib.parse_noise(args.noise or task.noise)
      triples = list(noise_lib.noisy_pairs(images, noise, args.seed))
      description.update(kind='noise', noise=str(noise))
    else:
      triples = [(name, text_overlay.corrupt_with_text(image,
                                                       (args.seed, index))[0],
                  image) for index, (name, image) in enumerate(images)]
      description.update(kind='text')
  if not triples:
    raise ValueError('the test set is empty')
  description.update(num_images=len(triples),
                     names=[name for name, _, _ in triples],
                     sizes=[list(clean.shape[:2]) for _, _, clean in triples])
  return triples, description


# ---------------------------------------------------------------------------
# Evaluation.


class ScoredSchedules(protocol.FixedSchedules):
  """`FixedSchedules` that also keeps the score of every schedule.

  `scores[n][a][k]` is the test metric of image `n` after `k + 1`
  applications of action `a`, the numbers `evaluate_images` picks the best
  schedule from (it reports only the best).
  """

  def __init__(self, action_set, t_max: int, triples: Sequence[Triple],
               lab_metric: bool):
    super().__init__(action_set, t_max)
    self._clean = {id(corrupted): clean for _, corrupted, clean in triples}
    self._score = metrics.mean_lab_distance if lab_metric else metrics.psnr
    self.scores = []

  def outputs(self, image: np.ndarray) -> np.ndarray:
    """`[A,T,H,W,C]` outputs of every schedule; their scores are kept."""
    outputs = super().outputs(image)
    clean = self._clean[id(image)]
    self.scores.append([[self._score(clean, step) for step in action]
                        for action in outputs])
    return outputs

  def mean_scores(self) -> Dict[str, List[float]]:
    """`{action name: [mean score after 1..T applications]}`."""
    means = np.mean(np.asarray(self.scores, np.float64), axis=0)
    return {name: [float(v) for v in means[a]]
            for a, name in enumerate(self.action_set.names)}


def _progress(count: int):
  return lambda index, name: print(f'[{index + 1}/{count}] {name}',
                                   file=sys.stderr, flush=True)


def evaluate_run(root_dir: str, triples: Sequence[Triple], seed: int,
                 lab_metric: bool) -> Dict[str, Any]:
  """All rows on the test triples, through `protocol.evaluate_images`.

  Args:
    root_dir: run directory (its latest checkpoint, and `best.json`).
    triples: `(name, corrupted [H,W,C], clean [H,W,C])` test triples.
    seed: seed of the random agents (image `n` uses `(seed, n)`).
    lab_metric: colour models: add and rank by the mean Lab distance.

  Returns:
    `{'rows', 'per_image', 'best_fixed_schedule', 'fixed_schedules',
      'checkpoints', 'seconds'}`.
  """
  started = time.monotonic()
  latest = model_io.resolve_checkpoint(root_dir)[1]
  # The whole t_max curve; a step count chosen on validation picks from it.
  t_max = model_io.read_model_config(root_dir).t_max

  def steps_of(prefix):
    """The step count a checkpoint restores for (t_max when none stored)."""
    return model_io.read_inference_steps(prefix) or t_max

  config, restorer = restorers.restorer_from_run(latest, t_max=t_max)
  schedules = ScoredSchedules(config.get_action_set(), restorer.t_max,
                              triples, lab_metric)
  report = protocol.evaluate_images(
      restorer, triples, random_seed=seed, lab_metric=lab_metric,
      fixed_schedules=schedules, progress_fn=_progress(len(triples)))
  rows, per_image = report['rows'], report['per_image']
  checkpoints = {protocol.MODEL: {
      'checkpoint': latest, 'episode': model_io.read_episode(latest),
      'inference_steps': steps_of(latest)}}
  _use_inference_steps(rows, per_image, protocol.MODEL,
                       checkpoints[protocol.MODEL]['inference_steps'])
  best_path = os.path.join(root_dir, triggers.BEST_FILE)
  if os.path.exists(best_path):
    with open(best_path) as f:
      best = json.load(f)
    prefix = os.path.join(root_dir, best['checkpoint'])
    best_steps = steps_of(prefix)
    same = os.path.realpath(prefix) == os.path.realpath(latest) or (
        best.get('episode') is not None and
        best['episode'] == model_io.read_episode(latest))
    if same:
      # The same weights: the latest checkpoint is the best validated one.
      rows[BEST_CHECKPOINT] = dict(rows[protocol.MODEL])
      for values in per_image.values():
        values[BEST_CHECKPOINT] = dict(values[protocol.MODEL])
    else:
      _, best_restorer = restorers.restorer_from_run(prefix, t_max=t_max)
      best_report = protocol.evaluate_images(
          best_restorer, triples, include_random=False,
          lab_metric=lab_metric)
      rows[BEST_CHECKPOINT] = best_report['rows'][protocol.MODEL]
      for name, values in best_report['per_image'].items():
        per_image[name][BEST_CHECKPOINT] = values[protocol.MODEL]
      _use_inference_steps(rows, per_image, BEST_CHECKPOINT, best_steps)
    checkpoints[BEST_CHECKPOINT] = {
        'checkpoint': prefix, 'episode': best.get('episode'),
        'inference_steps': best_steps,
        'validation': {'metric': best.get('metric'),
                       'value': best.get('value')},
        'same_as_latest': same}
  rows = {row: rows[row] for row in ROW_ORDER if row in rows}
  _, _, label = protocol.best_fixed_schedule(
      schedules.scores, schedules.action_set.names, not lab_metric)
  if label != report[protocol.BEST_FIXED]:
    print(f'warning: the fixed schedule scores kept here rank {label} first '
          f'but evaluate_images chose {report[protocol.BEST_FIXED]}',
          file=sys.stderr)
  return {'rows': rows, 'per_image': per_image,
          'best_fixed_schedule': report[protocol.BEST_FIXED],
          'fixed_schedules': schedules.mean_scores(),
          'checkpoints': checkpoints,
          'seconds': time.monotonic() - started}


def _use_inference_steps(rows: Dict[str, Any], per_image: Dict[str, Any],
                         row: str, steps: int) -> None:
  """Makes `row`'s metrics those after `steps` steps (in place).

  A model trained with `choose_inference_steps` restores for the step count
  stored with its checkpoint; its `per_step` curve keeps every step.
  """
  for values in [rows] + list(per_image.values()):
    curve = values[row]['per_step']
    values[row] = dict(curve[steps - 1], per_step=curve)


def add_summary(results: Dict[str, Any]) -> None:
  """Adds `per_step` and each row's `margin_over_best_fixed` (in place).

  The margin is in the ranking metric, positive when the row beats the best
  fixed schedule (dB for PSNR; Lab units, the decrease, for colour).
  """
  key, higher = results['metric'], results['higher_is_better']
  rows = results['rows']
  best = rows[protocol.BEST_FIXED][key]
  for values in rows.values():
    margin = values[key] - best
    values['margin_over_best_fixed'] = margin if higher else -margin
  action, _ = results['best_fixed_schedule'].rsplit(' x', 1)
  per_step = {row: [step[key] for step in values['per_step']]
              for row, values in rows.items() if 'per_step' in values}
  per_step['best_fixed_action'] = results['fixed_schedules'][action]
  results['per_step'] = per_step


# ---------------------------------------------------------------------------
# Report.


def _cell(value: Optional[float], digits: int) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '-'
  return f'{value:.{digits}f}'


def _checkpoint_text(info: Dict[str, Any], t_max: int) -> str:
  text = (f'episode {info["episode"]}' if info.get('episode') is not None
          else os.path.basename(info['checkpoint']))
  steps = info.get('inference_steps')
  if steps is not None and steps != t_max:
    text += f', {steps} of {t_max} steps, chosen on validation'
  return text


def _row_titles(results: Dict[str, Any]) -> Dict[str, str]:
  checkpoints = results['checkpoints']
  t_max = results['model']['t_max']
  latest = _checkpoint_text(checkpoints[protocol.MODEL], t_max)
  titles = {protocol.ORIGINAL: 'Corrupted input',
            protocol.RANDOM_AGENTS: 'Random agents',
            protocol.BEST_FIXED: ('Best fixed schedule '
                                  f'({results["best_fixed_schedule"]})'),
            protocol.MODEL: f'Model, latest ({latest})'}
  if BEST_CHECKPOINT in checkpoints:
    best = _checkpoint_text(checkpoints[BEST_CHECKPOINT], t_max)
    titles[BEST_CHECKPOINT] = f'Model, best validated ({best})'
  return titles


def report_markdown(results: Dict[str, Any]) -> str:
  """The rows x metrics table, the per-step curves and a verdict line."""
  training, test = results['training'], results['test_set']
  lab = results['metric'] == protocol.LAB
  unit = '' if lab else ' dB'
  titles = _row_titles(results)
  model = results['model']
  what = f'({model["task"]}, {model["variant"]}, t_max {model["t_max"]})'
  if training['skipped']:
    lines = [f'Run `{results["root_dir"]}` {what}, not trained here '
             f'(episode {training["episodes_end"]}).']
  else:
    per_episode = (training['seconds'] / training['episodes_done']
                   if training['episodes_done'] else float('nan'))
    config = ', '.join(f'`{path}`' for path in results['gin_files'])
    lines = [f'Training {config or "the run"} {what} in '
             f'`{results["root_dir"]}`: {training["episodes_done"]} episodes '
             f'({training["episodes_start"]} -> {training["episodes_end"]} '
             f'of {training["num_episodes"]}) in {training["seconds"]:.1f} s '
             f'({_cell(per_episode, 2)} s per episode, set-up included) on '
             f'{results["machine"]["node"]} ({results["machine"]["processor"]}'
             f', {results["machine"]["cpu_count"]} CPUs).']
  crop = f', centre {test["crop"]}x{test["crop"]} crops' if test['crop'] else ''
  if test['kind'] == 'paired':
    source = f'`{test["input_dir"]}` -> `{test["target_dir"]}`'
    corruption = ''
  else:
    source = f'`{test["test_dir"]}`'
    corruption = (f', noise {test["noise"]}' if test['kind'] == 'noise'
                  else ', text overlays') + f' (seed {test["seed"]})'
  lines += [f'Test set: {test["num_images"]} images of {source}{crop}'
            f'{corruption}.', '']
  margin_title = 'vs best fixed' + (' (Lab decrease)' if lab else ' (dB)')
  header = '| | PSNR (dB) | SSIM |' + (' mean Lab L2 |' if lab else '')
  lines += [header + f' {margin_title} |',
            '|---|---:|---:|' + ('---:|' if lab else '') + '---:|']
  for row, values in results['rows'].items():
    cells = [_cell(values['psnr'], 2), _cell(values['ssim'], 4)]
    if lab:
      cells.append(_cell(values[protocol.LAB], 2))
    cells.append(_cell(values['margin_over_best_fixed'], 2)
                 if row != protocol.BEST_FIXED else '-')
    lines.append(f'| {titles[row]} | ' + ' | '.join(cells) + ' |')
  per_step = results['per_step']
  steps = len(per_step[protocol.MODEL])
  action = results['best_fixed_schedule'].rsplit(' x', 1)[0]
  metric_title = 'Mean Lab L2 error' if lab else 'PSNR (dB)'
  lines += ['', f'{metric_title} after each step (the best fixed action: '
            'after t applications):', '',
            '| | ' + ' | '.join(f't={t + 1}' for t in range(steps)) + ' |',
            '|---|' + '---:|' * steps]
  curve_titles = dict(titles, best_fixed_action=f'{action} x t')
  for row in (protocol.RANDOM_AGENTS, 'best_fixed_action', protocol.MODEL,
              BEST_CHECKPOINT):
    if row in per_step:
      lines.append(f'| {curve_titles[row]} | ' + ' | '.join(
          _cell(v, 2) for v in per_step[row]) + ' |')
  margin = results['rows'][protocol.MODEL]['margin_over_best_fixed']
  if round(margin, 2) == 0:
    verdict = 'level with'
  else:
    verdict = f'{abs(margin):.2f}{unit} ' + (
        'better than' if margin > 0 else 'WORSE than')
  lines += ['', f'The latest model is {verdict} the best fixed schedule '
            f'({results["best_fixed_schedule"]}).']
  return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------
# Main.


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--gin_file', action='append', default=[],
                      help='Gin config file (repeatable).')
  parser.add_argument('--gin_bindings', action='append', default=[],
                      help="Gin binding, e.g. RunControl.seed=1 (repeatable).")
  parser.add_argument('--root_dir', required=True, help='Run directory.')
  parser.add_argument('--num_episodes', type=int, default=None,
                      help='Episode budget (Optimization.num_episodes).')
  parser.add_argument('--max_minutes', type=float, default=None,
                      help='Wall-clock budget of this invocation.')
  parser.add_argument('--first_chunk_episodes', type=int, default=10,
                      help='Episodes of the first chunk with --max_minutes.')
  parser.add_argument('--skip_training', action='store_true',
                      help='Evaluate the run as it is.')
  parser.add_argument('--test_dir', help='Folder of clean test images, or '
                      'a known data set (bsd432).')
  parser.add_argument('--test_list', help='List of the files of --test_dir.')
  parser.add_argument('--test_input_dir', help='Corrupted inputs (paired): '
                      'a folder or a known data set (fpop_train_input).')
  parser.add_argument('--test_target_dir', help='Targets (paired): a folder '
                      'or a known data set (fpop_train_target).')
  parser.add_argument('--test_ids', help='List of the stems of a paired set.')
  parser.add_argument('--max_test_images', type=int, default=None,
                      help='Use the first K test images.')
  parser.add_argument('--test_crop', type=int, default=None,
                      help='Centre-crop test images to S x S pixels.')
  parser.add_argument('--noise', default=None,
                      help="Test noise (default: the run's, from run.json).")
  parser.add_argument('--seed', type=int, default=0,
                      help='Corruption and random-agent seed.')
  parser.add_argument('--output_json', default='bench/results/training.json')
  parser.add_argument('--output_markdown', default=None)
  args = parser.parse_args(argv)
  if args.num_episodes is not None and args.num_episodes < 1:
    parser.error('--num_episodes must be positive')
  if args.max_minutes is not None and args.max_minutes <= 0:
    parser.error('--max_minutes must be positive')
  if args.first_chunk_episodes < 1:
    parser.error('--first_chunk_episodes must be positive')
  if args.skip_training and (args.num_episodes or args.max_minutes):
    parser.error('--skip_training takes no training budget')
  for flag in ('test_dir', 'test_input_dir', 'test_target_dir'):
    value = getattr(args, flag)
    if value is None or os.path.exists(value):
      continue  # A path is kept as given (the report records it).
    try:
      setattr(args, flag, str(known_files.resolve_path_or_name(
          value, what=f'--{flag}')))
    except (known_files.KnownFileError, FileNotFoundError) as error:
      parser.error(str(error))
  return args


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
  args = parse_args(argv)
  bindings = list(args.gin_bindings) + budget_bindings(args.num_episodes)
  try:
    if args.gin_file or bindings:
      cli.parse_gin(args.gin_file, bindings)
  except Exception as error:  # pylint: disable=broad-except
    cli.fail(error, 'bad gin configuration')
  try:
    if args.skip_training:
      episode = latest_episode(args.root_dir)
      training = {'skipped': True, 'episodes_start': episode,
                  'episodes_end': episode, 'episodes_done': 0, 'seconds': 0.0,
                  'chunks': []}
    else:
      training = dict(skipped=False, **train_for_budget(
          args.root_dir, args.num_episodes, args.max_minutes,
          args.first_chunk_episodes))
      if training['interrupted']:
        print(f'stopped by {training["interrupted"]}; not evaluated',
              file=sys.stderr)
        sys.exit(130 if training['interrupted'] == 'SIGINT' else 143)
    settings_path = os.path.join(args.root_dir, run_settings.RUN_SETTINGS_FILE)
    settings = {}
    if os.path.exists(settings_path):
      with open(settings_path) as f:
        settings = json.load(f)
    training.update(budget={'num_episodes': args.num_episodes,
                            'max_minutes': args.max_minutes},
                    num_episodes=settings.get('num_episodes'))
    config = model_io.read_model_config(args.root_dir)
    task = run_task(args.root_dir)
    lab_metric = config.get_task().lab_metric
    triples, test_set = load_test_set(task, config.channels, lab_metric, args)
    evaluation = evaluate_run(args.root_dir, triples, args.seed, lab_metric)
  except (train_lib.TrainingError, ValueError, KeyError, FileNotFoundError,
          NotADirectoryError, OSError) as error:
    cli.fail(error)
  results = {
      'gin_files': args.gin_file,
      'gin_bindings': bindings,
      'root_dir': args.root_dir,
      'machine': {'node': platform.node(),
                  'processor': platform.processor() or platform.machine(),
                  'cpu_count': os.cpu_count()},
      'date': datetime.datetime.now().isoformat(timespec='seconds'),
      'tensorflow': tf.__version__,
      'model': {'task': task.name, 'variant': config.variant,
                't_max': config.t_max, 'channels': config.channels,
                'filters': config.filters,
                'actions': list(config.get_action_set().names)},
      'run_settings': settings,
      'training': training,
      'test_set': test_set,
      'metric': protocol.LAB if lab_metric else 'psnr',
      'higher_is_better': not lab_metric,
      'evaluation_seconds': evaluation.pop('seconds'),
      **evaluation,
  }
  add_summary(results)
  text = report_markdown(results)
  print(text)
  if args.output_json:
    os.makedirs(os.path.dirname(os.path.abspath(args.output_json)),
                exist_ok=True)
    files.write_text_atomically(args.output_json,
                                json.dumps(results, indent=2))
  if args.output_markdown:
    os.makedirs(os.path.dirname(os.path.abspath(args.output_markdown)),
                exist_ok=True)
    files.write_text_atomically(args.output_markdown, text)
  return results


if __name__ == '__main__':
  main()

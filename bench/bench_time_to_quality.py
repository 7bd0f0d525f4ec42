r"""Time to quality: what a config learns per minute of training, per seed.

  python bench/bench_time_to_quality.py --gin_file=configs/denoise_quick.gin \
      --label=denoise_quick [--gin_bindings=...] [--minutes=20] \
      [--eval_every_minutes=2] [--seeds=1,2,3] [--test_images=16] \
      [--test_crop=96] [--split_seed=0] \
      [--peer_python=/tmp/peer_venv/bin/python \
       --peer_dir=/tmp/peer/PixelRL-Pytorch] \
      [--output_json=bench/results/time_to_quality_<label>.json]
  python bench/bench_time_to_quality.py --plot \
      bench/results/time_to_quality_a.json ... --output_png=FILE.png

Run from the project root. For every seed the config trains from scratch
(a fresh run directory, `RunControl.seed` set) with the real `train`; after every
episode a hook notes the training time (wall-clock seconds since `train`
began: set-up, tracing, its own validations and checkpoints included) and,
at every multiple of `--eval_every_minutes` and at the end, keeps a copy of
the network's weights and of the restoration step count the run would store.
The run stops at `--minutes` or at the config's episode budget, whichever
comes first. Only then are the copies evaluated, so evaluation time is not
training time. The first point (minute 0, episode 0; `--no-initial_point`
leaves it out) is the configured initial weights before any update: what
training adds is the distance from it, which matters where a config starts
from a released model of a related task.

The test split is made from BSD432 (never the standard test images):
`--test_images` images chosen by a permutation seeded with `--split_seed`,
centre-cropped to `--test_crop`, corrupted as the task corrupts (its noise,
or text) seeded by `(0, image index)`. A config that trains on BSD432
itself is refused (the split would not be held out). A colour config gets
its split from the colour training pairs instead: the benchmark's
`--test_images` pairs are left out of training through `TrainingData.list_file`.

At every evaluation point: the greedy policy's metric after each step, at
the count the run would restore for, and the **learned gain**: that metric
minus the best fixed schedule's (the best single action at its best repeat
count, chosen on the test split itself), positive when the agents beat it
(for the Lab distance, the best fixed schedule's minus the model's). The
input and random agents are measured once, and so is a second bar: the
best fixed *sequence* (`protocol.best_fixed_sequence`: one action per step
for the whole image, allowed to change from step to step), with each
point's gain over it (`gain_over_sequence`): agents above the schedule but
not above the sequence have learnt when to filter, not where.

`--peer_python` and `--peer_dir` also run the PyTorch port
(`bench/peer_time_to_quality.py` under that interpreter; see its docstring
for the set-up) for the same minutes on the same training photographs and
the same split, per seed: the peer's curve beside ours (Gaussian denoising
only).

Writes one JSON (everything, with the machine and its CPU flags; paths
relative to the project root, the temporary folder as `<work>`) and a
markdown table (printed); `--plot` draws the median gain curves of one or
more result files into a PNG.
"""

import argparse
import copy
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

import pixelrl_tf  # pylint: disable=g-import-not-at-top,unused-import
import bench_training  # pylint: disable=g-import-not-at-top
import cv2  # pylint: disable=g-import-not-at-top
import gin  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from pixelrl_tf import cli  # pylint: disable=g-import-not-at-top
from pixelrl_tf import hardware  # pylint: disable=g-import-not-at-top
from pixelrl_tf.data import datasets  # pylint: disable=g-import-not-at-top
from pixelrl_tf.data import known_files  # pylint: disable=g-import-not-at-top
from pixelrl_tf.evaluation import protocol  # pylint: disable=g-import-not-at-top
from pixelrl_tf.io import files  # pylint: disable=g-import-not-at-top
from pixelrl_tf.jobs import train_lib  # pylint: disable=g-import-not-at-top
from pixelrl_tf.models import initialise  # pylint: disable=g-import-not-at-top
from pixelrl_tf.models import model_io  # pylint: disable=g-import-not-at-top
from pixelrl_tf.serving import restoration_module  # pylint: disable=g-import-not-at-top
from pixelrl_tf.tasks import tasks as tasks_lib  # pylint: disable=g-import-not-at-top
from pixelrl_tf.visualization import action_maps  # pylint: disable=g-import-not-at-top
from pixelrl_tf.visualization import plots  # pylint: disable=g-import-not-at-top

PEER_SCRIPT = ROOT / 'bench' / 'peer_time_to_quality.py'
COLOR_PAIRS = 'fpop_train'


class Snapshots:
  """The episode hook: copies of the weights at the evaluation points."""

  def __init__(self, every_seconds: float, budget_seconds: float):
    self._every = every_seconds
    self._budget = budget_seconds
    self._next = every_seconds
    self.points: List[Dict[str, Any]] = []
    self.episodes_per_second = None

  def _keep(self, end: train_lib.EpisodeEnd):
    self.points.append({'train_seconds': end.seconds,
                        'episode': end.episode,
                        'inference_steps': end.inference_steps,
                        'weights': copy.deepcopy(end.network.get_weights())})

  def __call__(self, end: train_lib.EpisodeEnd) -> bool:
    done = end.seconds >= self._budget or end.episode >= end.num_episodes
    if end.seconds >= self._next or done:
      self._keep(end)
      while self._next <= end.seconds:
        self._next += self._every
    return done


def _test_split(task: tasks_lib.Task, channels: int, bgr: bool,
                args: argparse.Namespace, work: pathlib.Path):
  """`(triples, description, training bindings)` of the held-out split."""
  if task.episode_source == tasks_lib.PAIRED:
    root = known_files.resolve_path_or_name(COLOR_PAIRS)
    names = sorted(p.name for p in (root / 'input').iterdir())
    order = np.random.default_rng(args.split_seed).permutation(len(names))
    test = sorted(names[i] for i in order[:args.test_images])
    train = sorted(names[i] for i in order[args.test_images:])
    (work / 'train_list.txt').write_text('\n'.join(train) + '\n')
    (work / 'test_list.txt').write_text('\n'.join(test) + '\n')
    split_args = argparse.Namespace(
        test_input_dir=str(root / 'input'), test_target_dir=str(root /
                                                             'target'),
        test_ids=str(work / 'test_list.txt'), test_dir=None, test_list=None,
        max_test_images=None, test_crop=args.test_crop, noise=None, seed=0)
    bindings = [f"TrainingData.data_source = '{root}'",
                f"TrainingData.list_file = '{work / 'train_list.txt'}'"]
  else:
    folder = known_files.resolve_path_or_name('bsd432')
    names = sorted(p.name for p in folder.iterdir())
    order = np.random.default_rng(args.split_seed).permutation(len(names))
    test = sorted(names[i] for i in order[:args.test_images])
    (work / 'test_list.txt').write_text('\n'.join(test) + '\n')
    split_args = argparse.Namespace(
        test_dir=str(folder), test_list=str(work / 'test_list.txt'),
        test_input_dir=None, test_target_dir=None, test_ids=None,
        max_test_images=None, test_crop=args.test_crop, noise=None, seed=0)
    bindings = []
  triples, description = bench_training.load_test_set(task, channels, bgr,
                                                      split_args)
  description.update(split_seed=args.split_seed, source=(
      COLOR_PAIRS if task.episode_source == tasks_lib.PAIRED else 'bsd432'))
  return triples, description, bindings


def _parse(args: argparse.Namespace, extra: Sequence[str] = ()):
  gin.clear_config()
  cli.parse_gin(args.gin_file, list(args.gin_bindings) + list(extra))


def _check_held_out(data_source: Any) -> None:
  if isinstance(data_source, str) and (
      data_source == 'bsd432' or 'BSD432' in data_source):
    raise SystemExit('error: this config trains on BSD432, so a split of '
                     'it is not held out; use a config that trains on '
                     'other images')


class Evaluator:
  """Greedy restorations of the split by one network whose weights change."""

  def __init__(self, config: model_io.ModelConfig, triples, lab: bool):
    self.config = config
    self._network = model_io.build_network(config)
    self._network.create_variables()
    module = restoration_module.RestorationModule(
        self._network, config.get_action_set(), config.t_max)
    self._restorer = restoration_module.restorer_from_module(module)
    self._triples = triples
    self._lab = lab
    self.t_max = config.t_max

  @property
  def restorer(self):
    return self._restorer

  def per_step(self, weights) -> List[float]:
    """The mean metric after each of the `T` steps."""
    self._network.set_weights(weights)
    report = protocol.evaluate_images(self._restorer, self._triples,
                                      include_random=False,
                                      lab_metric=self._lab)
    key = protocol.LAB if self._lab else 'psnr'
    return [step[key] for step in report['rows'][protocol.MODEL]['per_step']]

  def actions(self, weights) -> Dict[str, Any]:
    """Where the greedy agents act differently, per step.

    Returns:
      `{'action_shares': [T][A] share of the split's pixels taking each
        action, 'top_action_share': [T] mean over the images of the share
        of an image's pixels that take its most frequent action}`: 1.0 at
        a step where every image is filtered by one action throughout.
    """
    self._network.set_weights(weights)
    num_actions = self._network.num_actions
    counts = np.zeros((self.t_max, num_actions))
    top = np.zeros(self.t_max)
    for _, corrupted, _ in self._triples:
      _, actions = protocol.greedy(self._restorer, corrupted)
      for step, action_map in enumerate(actions):
        image_counts = np.bincount(np.ravel(action_map),
                                   minlength=num_actions)
        counts[step] += image_counts
        top[step] += image_counts.max() / image_counts.sum()
    return {'action_shares': (counts / counts.sum(axis=1, keepdims=True)
                              ).tolist(),
            'top_action_share': (top / len(self._triples)).tolist()}


def initial_point(evaluator: 'Evaluator', seed: int) -> Dict[str, Any]:
  """The point before any update: the configured initial weights.

  The network is initialised as `train` initialises a new run (the
  configured files, e.g. IRCNN or a released model, under the gin
  bindings in force), with the layers no file sets drawn afresh under
  `seed`: the same distribution as the run's own start, not its exact draw.
  It restores for `t_max` steps, as a run does before its first validation.
  """
  tf.keras.utils.set_random_seed(seed)
  network = model_io.build_network(evaluator.config)
  network.create_variables()
  initialise.initialise_network(network)
  return {'train_seconds': 0.0, 'episode': 0,
          'inference_steps': evaluator.t_max,
          'weights': network.get_weights()}


def _train_seed(args, seed, extra_bindings, work, evaluator_factory):
  """Trains one seed; returns its points (evaluated) and run facts."""
  root_dir = work / f'run_seed{seed}'
  _parse(args, list(extra_bindings) + [f'RunControl.seed = {seed}'])
  snapshots = Snapshots(60.0 * args.eval_every_minutes, 60.0 * args.minutes)
  started = time.monotonic()
  with open(os.devnull, 'w') as devnull:
    result = train_lib.train(str(root_dir), progress_stream=(
        sys.stderr if args.verbose else devnull),
                             episode_hooks=[snapshots])
  seconds = time.monotonic() - started
  evaluator = evaluator_factory(root_dir)
  points = snapshots.points
  if args.initial_point:
    points = [initial_point(evaluator, seed)] + points
  for point in points:
    weights = point.pop('weights')
    curve = evaluator.per_step(weights)
    point.update(per_step=curve, at_inference_steps=curve[
        point['inference_steps'] - 1], **evaluator.actions(weights))
    print(f'  seed {seed}: {point["train_seconds"] / 60:5.1f} min, '
          f'episode {point["episode"]:4d}: {curve[-1]:.3f} at t_max, '
          f'{point["at_inference_steps"]:.3f} at '
          f'{point["inference_steps"]} steps', flush=True)
  return points, {'episodes': result['episode'], 'seconds': seconds,
                  'mixed_precision': result['mixed_precision'],
                  'agent_hyperparameters': result['agent_hyperparameters'],
                  'model_config': result['model_config'].__dict__}, root_dir


def _run_peer(args, seed, work: pathlib.Path, triples) -> Dict[str, Any]:
  """The port's curve for one seed (its own interpreter and checkout)."""
  train_dir = work / 'peer_train'
  if not train_dir.exists():
    train_dir.mkdir()
    for name, image in datasets.image_source('default', datasets.TRAIN):
      cv2.imwrite(str(train_dir / f'{name}.png'),
                  np.round(np.clip(image[..., 0], 0, 1) * 255).astype(
                      np.uint8))
    np.savez(work / 'split.npz',
             noisy=np.stack([c[..., 0] for _, c, _ in triples]),
             clean=np.stack([t[..., 0] for _, _, t in triples]))
  output = work / f'peer_seed{seed}.json'
  command = [args.peer_python, str(PEER_SCRIPT), f'--peer_dir={args.peer_dir}',
             f'--train_dir={train_dir}', f'--split_npz={work / "split.npz"}',
             f'--minutes={args.minutes}',
             f'--eval_every_minutes={args.eval_every_minutes}',
             f'--seed={seed}', f'--output_json={output}']
  subprocess.run(command, check=True, cwd=ROOT)
  return json.loads(output.read_text())


WORK_FOLDER = '<work>'


def portable_paths(value: Any, work: pathlib.Path) -> Any:
  """`value` (JSON data) with no absolute path of this machine in it.

  A path inside the benchmark's temporary folder `work` becomes
  `<work>/...`; any other absolute path becomes relative to the project
  root (the shared data folder, `../shared/data/...`).
  """
  if isinstance(value, dict):
    return {key: portable_paths(item, work) for key, item in value.items()}
  if isinstance(value, list):
    return [portable_paths(item, work) for item in value]
  if isinstance(value, str) and os.path.isabs(value):
    path = pathlib.Path(value)
    if path == work or work in path.parents:
      return str(pathlib.Path(WORK_FOLDER) / path.relative_to(work))
    return os.path.relpath(path, ROOT)
  return value


def run(args: argparse.Namespace) -> Dict[str, Any]:
  """The whole benchmark; returns the JSON result."""
  work = pathlib.Path(tempfile.mkdtemp(prefix='time_to_quality_'))
  try:
    _parse(args)
    task = train_lib.resolve_task(None)
    bound = gin.get_bindings('pixelrl_tf.training.TrainingData')
    _check_held_out(bound.get('data_source', datasets.DEFAULT_SOURCE))
    lab = task.lab_metric
    triples, description, split_bindings = _test_split(
        task, task.channels, task.bgr, args, work)

    def evaluator_factory(root_dir):
      return Evaluator(model_io.read_model_config(str(root_dir)), triples,
                       lab)

    seeds = [int(s) for s in args.seeds.split(',')]
    runs, baselines, evaluator = [], None, None
    for seed in seeds:
      print(f'{args.label}: seed {seed}, {args.minutes} minutes', flush=True)
      points, facts, root_dir = _train_seed(args, seed, split_bindings, work,
                                            evaluator_factory)
      if baselines is None:
        evaluator = evaluator_factory(root_dir)
        baselines = _baselines(evaluator, triples, task, lab, args)
      for point in points:
        point['gain'] = protocol.learned_gain(
            point['at_inference_steps'], baselines['best_fixed_schedule'],
            task.metric.higher_is_better)
        point['gain_over_sequence'] = protocol.learned_gain(
            point['at_inference_steps'], baselines['best_fixed_sequence'],
            task.metric.higher_is_better)
      entry = {'seed': seed, 'points': points, **facts}
      if args.peer_python:
        peer = _run_peer(args, seed, work, triples)
        for point in peer['points']:
          # The port restores for all of its t_max steps.
          curve = point['psnr_per_step']
          point['gain'] = protocol.learned_gain(
              curve[-1], baselines['best_fixed_schedule'], True)
          point['gain_best_count'] = protocol.learned_gain(
              max(curve), baselines['best_fixed_schedule'], True)
        entry['peer'] = peer
      runs.append(entry)
      shutil.rmtree(root_dir, ignore_errors=True)
    return portable_paths({
        'label': args.label, 'gin_files': args.gin_file,
        'gin_bindings': args.gin_bindings,
        'machine': hardware.describe(),
        'date': datetime.datetime.now().isoformat(timespec='seconds'),
        'tensorflow': tf.__version__,
        'settings': {'minutes': args.minutes,
                     'eval_every_minutes': args.eval_every_minutes,
                     'seeds': seeds, 'test_images': args.test_images,
                     'test_crop': args.test_crop,
                     'split_seed': args.split_seed},
        'task': task.name, 'metric': 'lab_distance' if lab else 'psnr',
        'higher_is_better': task.metric.higher_is_better,
        'test_set': description,
        'baselines': baselines, 'runs': runs, 'summary': summarize(runs)},
                          work)
  finally:
    shutil.rmtree(work, ignore_errors=True)


def _baselines(evaluator, triples, task, lab, args) -> Dict[str, Any]:
  """Input, random agents, the best fixed schedule and sequence."""
  schedules = protocol.FixedSchedules(task.get_action_set(), evaluator.t_max)
  report = protocol.evaluate_images(evaluator.restorer, triples,
                                    random_seed=args.split_seed,
                                    lab_metric=lab,
                                    fixed_schedules=schedules)
  key = protocol.LAB if lab else 'psnr'
  rows = report['rows']
  sequence = protocol.best_fixed_sequence(task.get_action_set(), triples,
                                          evaluator.t_max, lab_metric=lab)
  return {'input': rows[protocol.ORIGINAL][key],
          'random_agents': rows[protocol.RANDOM_AGENTS][key],
          'random_agents_per_step': [
              s[key] for s in rows[protocol.RANDOM_AGENTS]['per_step']],
          'best_fixed_schedule': rows[protocol.BEST_FIXED][key],
          'best_fixed_schedule_label': report[protocol.BEST_FIXED],
          'best_fixed_sequence': sequence['score'],
          'best_fixed_sequence_actions': sequence['actions'],
          'best_fixed_sequence_exhaustive': sequence['exhaustive']}


def summarize(runs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """Median and spread over seeds of the gain at every evaluation point.

  Points are matched by their index (the k-th evaluation of every seed,
  at about the same training time). The port has no initial point, so its
  k-th point sits beside ours after the initial one.
  """
  rows = []
  initial = all(r['points'] and r['points'][0]['episode'] == 0 for r in runs)
  for index in range(min(len(r['points']) for r in runs)):
    points = [r['points'][index] for r in runs]
    gains = [p['gain'] for p in points]
    sequence_gains = [p['gain_over_sequence'] for p in points]
    row = {'minutes': float(np.median([p['train_seconds'] for p in points]))
                      / 60.0,
           'episodes': float(np.median([p['episode'] for p in points])),
           'gain_median': float(np.median(gains)),
           'gain_min': float(np.min(gains)), 'gain_max': float(np.max(gains)),
           'metric_median': float(np.median(
               [p['at_inference_steps'] for p in points])),
           'sequence_gain_median': float(np.median(sequence_gains)),
           'sequence_gain_min': float(np.min(sequence_gains)),
           'sequence_gain_max': float(np.max(sequence_gains))}
    peers = [r['peer']['points'] for r in runs if 'peer' in r]
    peer_index = index - 1 if initial else index
    if peers and peer_index >= 0 and all(len(p) > peer_index for p in peers):
      peer_gains = [p[peer_index]['gain'] for p in peers]
      row.update(peer_gain_median=float(np.median(peer_gains)),
                 peer_gain_min=float(np.min(peer_gains)),
                 peer_gain_max=float(np.max(peer_gains)),
                 peer_episodes=float(np.median(
                     [p[peer_index]['episodes'] for p in peers])))
    rows.append(row)
  return rows


def markdown(result: Dict[str, Any]) -> str:
  """The summary table of one result."""
  baselines = result['baselines']
  unit = ' dB' if result['higher_is_better'] else ''
  lines = [f'{result["label"]}: learned gain over the best fixed schedule '
           f'({baselines["best_fixed_schedule_label"]}, '
           f'{baselines["best_fixed_schedule"]:.2f}{unit}; input '
           f'{baselines["input"]:.2f}{unit}, random agents '
           f'{baselines["random_agents"]:.2f}{unit}), median of seeds '
           f'{result["settings"]["seeds"]} (min..max)', '']
  peer = any('peer_gain_median' in row for row in result['summary'])
  sequence = 'best_fixed_sequence' in baselines
  if sequence:
    lines[0] += (f'; best fixed sequence '
                 f'{", ".join(baselines["best_fixed_sequence_actions"])} '
                 f'{baselines["best_fixed_sequence"]:.2f}{unit}')
  header = '| minutes | episodes | gain | metric |'
  rule = '|---:|---:|---:|---:|'
  if sequence:
    header += ' gain over the sequence |'
    rule += '---:|'
  if peer:
    header += ' PyTorch port gain | port episodes |'
    rule += '---:|---:|'
  lines += [header, rule]
  for row in result['summary']:
    line = (f'| {row["minutes"]:.1f} | {row["episodes"]:.0f} | '
            f'{row["gain_median"]:+.2f} ({row["gain_min"]:+.2f}..'
            f'{row["gain_max"]:+.2f}) | {row["metric_median"]:.2f} |')
    if sequence:
      line += (f' {row["sequence_gain_median"]:+.2f} '
               f'({row["sequence_gain_min"]:+.2f}..'
               f'{row["sequence_gain_max"]:+.2f}) |')
    if peer:
      line += (f' {row["peer_gain_median"]:+.2f} ({row["peer_gain_min"]:+.2f}'
               f'..{row["peer_gain_max"]:+.2f}) | '
               f'{row["peer_episodes"]:.0f} |' if 'peer_gain_median' in row
               else ' | |')
    lines.append(line)
  return '\n'.join(lines) + '\n'


def trained_rows(summary: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """The summary rows after at least one update (no initial point)."""
  return [row for row in summary if row['episodes'] > 0]


def plot(paths: Sequence[str], output_png: str) -> None:
  """The median gain curves of result files against training minutes.

  The files must have been evaluated at the same training minutes (their
  `--eval_every_minutes` grid); a longer run is drawn up to the shortest
  file's last point. The x axis is that grid, in nominal minutes; the
  initial point (episode 0), which older files lack, is not drawn.

  Raises:
    ValueError: the files' grids differ, or their metrics do.
  """
  results = [json.loads(pathlib.Path(p).read_text()) for p in paths]
  for result in results:
    result['summary'] = trained_rows(result['summary'])

  def grid(result):
    # The nominal minutes of the points (the measured ones vary by seconds).
    every = result['settings']['eval_every_minutes']
    budget = result['settings']['minutes']
    return [round(min(every * (k + 1), budget), 1)
            for k in range(len(result['summary']))]

  points = min(len(result['summary']) for result in results)
  minutes = grid(results[0])[:points]
  for path, result in zip(paths, results):
    if grid(result)[:points] != minutes:
      raise ValueError(
          f'{path} was evaluated at {grid(result)} minutes, {paths[0]} at '
          f'{grid(results[0])}: plot files of the same grid together')
    if result['higher_is_better'] != results[0]['higher_is_better']:
      raise ValueError(f'{path} measures another metric than {paths[0]}')
  series = {}
  for result in results:
    rows = result['summary'][:points]
    series[result['label']] = [r['gain_median'] for r in rows]
    if 'peer_gain_median' in rows[0]:
      series[f'{result["label"]}: PyTorch port'] = [
          r['peer_gain_median'] for r in rows]
  unit = 'dB' if results[0]['higher_is_better'] else 'Lab'
  image = plots.line_chart(
      series, x_values=minutes, x_label='training minutes',
      y_label=f'learned gain ({unit})',
      title='median over seeds: gain over the best fixed schedule',
      width=720, height=440)
  action_maps.save_png(image, output_png)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--gin_file', action='append', default=[])
  parser.add_argument('--gin_bindings', action='append', default=[])
  parser.add_argument('--label', default=None)
  parser.add_argument('--minutes', type=float, default=20.0)
  parser.add_argument('--eval_every_minutes', type=float, default=2.0)
  parser.add_argument('--seeds', default='1,2,3')
  parser.add_argument('--test_images', type=int, default=16)
  parser.add_argument('--test_crop', type=int, default=96)
  parser.add_argument('--split_seed', type=int, default=0)
  parser.add_argument('--peer_python', default=None)
  parser.add_argument('--peer_dir', default=None)
  parser.add_argument('--output_json', default=None)
  parser.add_argument('--output_markdown', default=None)
  parser.add_argument('--plot', nargs='+', default=None,
                      help='result files to draw (no training)')
  parser.add_argument('--output_png', default=None)
  parser.add_argument('--initial_point', action=argparse.BooleanOptionalAction,
                      default=True,
                      help='also evaluate the initial weights (minute 0)')
  parser.add_argument('--verbose', action='store_true',
                      help='show the training progress bar')
  args = parser.parse_args(argv)
  if args.plot is None:
    if not args.gin_file or not args.label:
      parser.error('give --gin_file and --label (or --plot FILES)')
    if bool(args.peer_python) != bool(args.peer_dir):
      parser.error('--peer_python and --peer_dir go together')
    args.output_json = args.output_json or (
        f'bench/results/time_to_quality_{args.label}.json')
  elif not args.output_png:
    parser.error('--plot needs --output_png')
  return args


def main(argv: Optional[Sequence[str]] = None) -> None:
  args = parse_args(argv)
  if args.plot is not None:
    try:
      plot(args.plot, args.output_png)
    except (ValueError, OSError) as error:
      cli.fail(error)
    return
  result = run(args)
  files.write_text_atomically(args.output_json, json.dumps(result, indent=2))
  text = markdown(result)
  print(text)
  if args.output_markdown:
    files.write_text_atomically(args.output_markdown, text)
  if args.output_png:
    plot([args.output_json], args.output_png)


if __name__ == '__main__':
  main()

r"""SIGKILLs a tiny training run at random moments; nothing may be lost.

  python bench/kill_campaign.py [--kills=30] [--seed=0] [--num_episodes=80] \
      [--launcher=fork|command] [--output_json=bench/results/kill_campaign.json]

Trains `configs/tiny.gin` once without interruption (`python -m
pixelrl_tf.train`), then trains the same run in a second folder, SIGKILLing
it `--kills` times at seeded random moments and starting it again with the
same arguments after each kill, and lets the last start finish. Prints a
table of the kills (when, what the start had done, the checkpoint it left,
the episode the next start resumed from, stray files, and with the fork
launcher what the start was doing when the signal came: `kill_test`'s phase
tracker keeps it in a file) and compares the two
runs: every variable of the final checkpoint (network, optimizer slots and
learning rate, `episode`, `train_step`), `model.json`, `run.json`,
`best.json` with `best/`, the `checkpoint` files and `final_report.json`.
Writes everything as JSON to `--output_json`.

A kill's moment is drawn from one of two windows, with equal chance:
`from_start`, uniform over the time the uninterrupted command took to its
first progress line (imports, data, restore, tracing, the first episode),
or `after_first_episode`, uniform over `--training_window` episodes' time
after this start printed its first progress line (episodes, summaries,
validation and checkpoint writes). A start that ends before its moment is
not killed; the run then has fewer kills than `--kills` if it completes
early (the summary counts them).

`--launcher=fork` (the default) forks each interrupted start from one
process that has imported TensorFlow and the package (the launcher of
`tests/kill_test.py`: the child runs `pixelrl_tf.train` as `__main__`, as
`python -m` does), so that a start costs tracing but not the imports; the
comparison with the uninterrupted command checks the forked starts too.
`--launcher=command` runs `python -m pixelrl_tf.train` for every start.
"""

import argparse
import json
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests'))
sys.path.insert(0, str(ROOT))

import kill_test  # pylint: disable=g-import-not-at-top

PROGRESS = re.compile(r'^episode (\d+)/(\d+) ', re.MULTILINE)
FROM_START, AFTER_FIRST_EPISODE = 'from_start', 'after_first_episode'
RESUMED = re.compile(r'resuming from \S+ at episode (\d+)')
# Files a start may leave that an uninterrupted run does not have.
STRAY = re.compile(r'(^|/)\.[^/]*\.tmp$|_temp(/|$)|\.tempstate\d+$')


def _bindings(args) -> List[str]:
  return [f'Optimization.num_episodes={args.num_episodes}',
          'Cadence.checkpoint_interval=1', 'Cadence.eval_interval=5',
          'Cadence.summary_interval=1', 'Cadence.image_summary_interval=5',
          'Cadence.final_report=True']


def _argv(root_dir: pathlib.Path, args) -> List[str]:
  return [f'--gin_file={kill_test.TINY}', f'--root_dir={root_dir}'] + [
      f'--gin_bindings={binding}' for binding in _bindings(args)]


class _CommandLauncher:
  """`kill_test.Launcher`'s interface over `python -m pixelrl_tf.train`."""

  def __init__(self):
    self._process = None
    self._log = None
    self._started = None

  def start(self, argv, kill_at, log, phase_file=None):
    del kill_at, phase_file  # A plain command reports no phase.
    self._log = open(log, 'w')
    self._started = time.monotonic()
    self._process = subprocess.Popen(
        [sys.executable, '-m', 'pixelrl_tf.train'] + list(argv), cwd=ROOT,
        stdout=self._log, stderr=subprocess.STDOUT)
    return self._process.pid

  def finished(self):
    return self._process.poll() is not None

  def wait(self, timeout=kill_test.RUN_TIMEOUT):
    returncode = self._process.wait(timeout=timeout)
    self._log.close()
    return {'returncode': returncode,
            'seconds': time.monotonic() - self._started}

  def close(self):
    if self._process is not None and self._process.poll() is None:
      self._process.kill()
      self._process.wait()


def _has_progress_line(log: pathlib.Path) -> bool:
  return log.exists() and bool(PROGRESS.search(log.read_text(errors='replace')))


def _kill_when_due(launcher, pid: int, log: pathlib.Path, started: float,
                   window: Optional[str], offset: Optional[float]):
  """Watches a start and SIGKILLs it at its drawn moment.

  Args:
    launcher: what started it.
    pid: its process id.
    log: its output.
    started: the monotonic time it started.
    window: `FROM_START`, `AFTER_FIRST_EPISODE`, or None not to kill it.
    offset: seconds after the window's beginning.

  Returns:
    `(seconds from the start to the kill or None, seconds from the start to
    its first progress line or None)`.
  """
  first_progress = None
  while not launcher.finished():
    now = time.monotonic()
    if first_progress is None and _has_progress_line(log):
      first_progress = now - started
    moment = None
    if window == FROM_START:
      moment = started + offset
    elif window == AFTER_FIRST_EPISODE and first_progress is not None:
      moment = started + first_progress + offset
    if moment is not None and now >= moment:
      os.kill(pid, signal.SIGKILL)
      return now - started, first_progress
    if window is None and now - started > kill_test.RUN_TIMEOUT:
      break
    time.sleep(0.02)
  return None, first_progress


def _episode_period(run_dir: pathlib.Path) -> float:
  """Mean seconds between the loss summaries of consecutive episodes."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  times = {}
  for path in (run_dir / 'train').glob('events.out.tfevents.*'):
    for record in tf.data.TFRecordDataset(str(path)):
      event = tf.compat.v1.Event.FromString(record.numpy())
      if any(value.tag == 'Losses/total' for value in event.summary.value):
        times[event.step] = event.wall_time
  first, last = min(times), max(times)
  return (times[last] - times[first]) / (last - first)


def _stray_files(run_dir: pathlib.Path) -> List[str]:
  return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob('*')
                if STRAY.search(str(p.relative_to(run_dir))))


def _max_differences(got_prefix: str, want_prefix: str) -> Dict[str, float]:
  """The largest absolute difference per variable group (`network`, ...)."""
  got = kill_test.checkpoint_variables(got_prefix)
  want = kill_test.checkpoint_variables(want_prefix)
  groups = {}
  for name, value in want.items():
    group = name.split('/')[0]
    difference = float('inf')
    if name in got:
      difference = float(np.max(np.abs(
          got[name].astype(np.float64) - value.astype(np.float64))))
    groups[group] = max(groups.get(group, 0.0), difference)
  if sorted(got) != sorted(want):
    groups['variable names'] = float('inf')
  return groups


def _checkpoint_paths(folder: pathlib.Path) -> Optional[List[str]]:
  index = folder / 'checkpoint'
  if not index.exists():
    return None
  return re.findall(r'^\w*model_checkpoint_paths?: "(.*)"', index.read_text(),
                    re.MULTILINE)


def _compare(run: pathlib.Path, reference: pathlib.Path,
             num_episodes: int) -> Dict[str, object]:
  """How the interrupted run differs from the uninterrupted one."""
  result = {}
  final = f'train/ckpt-{num_episodes}'
  if (run / f'{final}.index').exists():
    result['final_checkpoint_max_abs_difference'] = _max_differences(
        str(run / final), str(reference / final))
  else:
    result['final_checkpoint_max_abs_difference'] = f'{final} is missing'
  for name in ('model.json', 'run.json', 'best.json', 'final_report.json'):
    if not (run / name).exists():
      result[f'{name} equal'] = 'missing in the interrupted run'
    else:
      result[f'{name} equal'] = (json.loads((run / name).read_text()) ==
                                 json.loads((reference / name).read_text()))
  for folder in ('train', 'best'):
    result[f'{folder}/checkpoint names the same checkpoints'] = (
        _checkpoint_paths(run / folder) == _checkpoint_paths(
            reference / folder))
  best = json.loads((reference / 'best.json').read_text())['checkpoint']
  if (run / f'{best}.index').exists():
    result['best_checkpoint_max_abs_difference'] = max(
        _max_differences(str(run / best), str(reference / best)).values())
  else:
    result['best_checkpoint_max_abs_difference'] = f'{best} is missing'
  result['stray_files'] = _stray_files(run)
  return result


def _draw_moment(rng: random.Random, from_start_seconds: float,
                 window_seconds: float):
  """`(window, offset in seconds)` of the next kill."""
  window = rng.choice((FROM_START, AFTER_FIRST_EPISODE))
  if window == FROM_START:
    return window, rng.uniform(0.0, from_start_seconds)
  return window, rng.uniform(0.0, window_seconds)


def _run_interrupted(launcher, run: pathlib.Path, logs: pathlib.Path, args,
                     from_start_seconds: float,
                     window_seconds: float) -> List[Dict[str, object]]:
  """Starts the run again and again, killing the first `--kills` starts.

  The `FROM_START` window ends where the last start that got so far printed
  its first progress line (at first, where the uninterrupted command did).
  """
  rng = random.Random(args.seed)
  starts = []
  while True:
    index = len(starts)
    log = logs / f'start-{index:02d}.log'
    window, offset = (_draw_moment(rng, from_start_seconds, window_seconds)
                      if index < args.kills else (None, None))
    phase_file = logs / f'start-{index:02d}.phase'
    pid = launcher.start(_argv(run, args), None, str(log),
                         phase_file=str(phase_file))
    started = time.monotonic()
    killed_after, first_progress = _kill_when_due(launcher, pid, log,
                                                  started, window, offset)
    result = launcher.wait()
    text = log.read_text(errors='replace')
    resumed = RESUMED.search(text)
    resumed_from = int(resumed.group(1)) if resumed else None
    latest = kill_test.latest_episode(run)
    record = {
        'start': index, 'window': window,
        'window_s': (None if window is None else round(
            from_start_seconds if window == FROM_START else window_seconds,
            3)),
        'offset_s': None if offset is None else round(offset, 3),
        'killed_after_s': (None if killed_after is None
                           else round(killed_after, 3)),
        'first_progress_line_s': (None if first_progress is None
                                  else round(first_progress, 3)),
        'phase_at_kill': (kill_test.read_phase(str(phase_file))
                          if killed_after is not None else None),
        'returncode': result['returncode'],
        'seconds': round(result['seconds'], 3),
        'resumed_from': resumed_from,
        'trained_an_episode': bool(PROGRESS.search(text)),
        'latest_checkpoint_after': latest,
        'episodes_kept': (latest or 0) - (resumed_from or 0),
        'stray_files_after': _stray_files(run),
        'error_lines': [line for line in text.splitlines()
                        if re.search(r'error|Traceback', line, re.I)],
    }
    starts.append(record)
    print(_row(record), flush=True)
    if first_progress is not None and resumed_from != args.num_episodes:
      from_start_seconds = first_progress
    if result['returncode'] != -signal.SIGKILL:
      return starts


_HEADER = (f'{"start":>5} {"window":19} {"kill at s":>9} '
           f'{"what the start was doing":34} {"rc":>3} '
           f'{"resumed":>7} {"ckpt":>4} {"kept":>4}  stray files')


def _row(record: Dict[str, object]) -> str:
  killed = ('-' if record['killed_after_s'] is None
            else f'{record["killed_after_s"]:.2f}')
  return (f'{record["start"]:5d} {record["window"] or "(to the end)":19} '
          f'{killed:>9} {(record["phase_at_kill"] or "-")[:34]:34} '
          f'{record["returncode"]:3d} '
          f'{str(record["resumed_from"]):>7} '
          f'{str(record["latest_checkpoint_after"]):>4} '
          f'{record["episodes_kept"]:4d}  '
          f'{" ".join(record["stray_files_after"])}')


def _count_phases(kills: List[Dict[str, object]]) -> Dict[str, int]:
  """Kills per phase, episodes folded together (`episode N` -> `episode`)."""
  counts = {}
  for kill in kills:
    phase = re.sub(r' \d+$', '', kill['phase_at_kill'] or 'unknown')
    counts[phase] = counts.get(phase, 0) + 1
  return dict(sorted(counts.items(), key=lambda item: -item[1]))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--kills', type=int, default=30)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--num_episodes', type=int, default=80)
  parser.add_argument('--training_window', type=float, default=2.0,
                      help='episodes after the first progress line of a start '
                      'over which an after_first_episode kill is drawn')
  parser.add_argument('--launcher', choices=('fork', 'command'),
                      default='fork')
  parser.add_argument('--work_dir', default=None,
                      help='folder of both runs and the logs (default: a new '
                      'temporary folder)')
  parser.add_argument('--output_json',
                      default=str(ROOT / 'bench' / 'results' /
                                  'kill_campaign.json'))
  args = parser.parse_args()
  work = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix='kill_'))
  logs = work / 'logs'
  logs.mkdir(parents=True, exist_ok=True)
  reference, run = work / 'reference', work / 'interrupted'
  began = time.monotonic()

  # The uninterrupted command; its timing sets the kill windows.
  command = _CommandLauncher()
  pid = command.start(_argv(reference, args), None, logs / 'reference.log')
  _, from_start_seconds = _kill_when_due(
      command, pid, logs / 'reference.log', time.monotonic(), None, None)
  outcome = command.wait()
  if outcome['returncode'] != 0 or from_start_seconds is None:
    raise SystemExit('the uninterrupted run failed; see '
                     f'{logs / "reference.log"}')
  episode_seconds = _episode_period(reference)
  print(f'uninterrupted command: {outcome["seconds"]:.1f} s, first progress '
        f'line after {from_start_seconds:.1f} s, then an episode every '
        f'{episode_seconds:.2f} s (with summaries, validations and '
        'checkpoints)', flush=True)
  print(_HEADER, flush=True)

  launcher = (kill_test.Launcher() if args.launcher == 'fork'
              else _CommandLauncher())
  try:
    starts = _run_interrupted(launcher, run, logs, args, from_start_seconds,
                              args.training_window * episode_seconds)
  finally:
    launcher.close()

  comparison = _compare(run, reference, args.num_episodes)
  differences = comparison['final_checkpoint_max_abs_difference']
  kills = [s for s in starts if s['killed_after_s'] is not None]
  summary = {
      'kills': len(kills),
      'kills_before_the_first_episode_of_their_start': sum(
          not s['trained_an_episode'] for s in kills),
      'kills_after_it': sum(s['trained_an_episode'] for s in kills),
      'kills_that_kept_episodes': sum(s['episodes_kept'] > 0 for s in kills),
      'kills_by_phase': _count_phases(kills),
      'starts': len(starts),
      'completed': starts[-1]['returncode'] == 0,
      'every_start_resumed_from_the_latest_checkpoint': all(
          later['resumed_from'] == earlier['latest_checkpoint_after']
          for earlier, later in zip(starts, starts[1:])),
      'final_checkpoint_equal': (isinstance(differences, dict) and
                                 max(differences.values()) <= 1e-6),
      'files_equal': all(value is True for key, value in comparison.items()
                         if key.endswith((' equal', ' same checkpoints'))),
      'seconds': round(time.monotonic() - began, 1),
  }
  print('\ncomparison with the uninterrupted run:')
  for key, value in comparison.items():
    print(f'  {key}: {value}')
  print('summary:')
  for key, value in summary.items():
    print(f'  {key}: {value}')

  report = {
      'settings': {'kills': args.kills, 'seed': args.seed,
                   'num_episodes': args.num_episodes,
                   'training_window_episodes': args.training_window,
                   'launcher': args.launcher, 'gin_file': kill_test.TINY,
                   'bindings': _bindings(args)},
      'uninterrupted_command': {
          'seconds': round(outcome['seconds'], 2),
          'first_progress_line_s': round(from_start_seconds, 2),
          'episode_period_s': round(episode_seconds, 3)},
      'starts': starts, 'comparison': comparison, 'summary': summary,
  }
  output = pathlib.Path(args.output_json)
  output.parent.mkdir(parents=True, exist_ok=True)
  output.write_text(json.dumps(report, indent=2) + '\n')
  print(f'wrote {output}; runs and logs in {work}')


if __name__ == '__main__':
  main()

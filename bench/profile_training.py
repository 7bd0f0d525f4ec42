r"""Where a training run's time goes: set-up, episodes, data and each trigger.

  python bench/profile_training.py --gin_file=configs/denoise_quick.gin \
      --label=denoise_quick [--gin_bindings=...] \
      [--output_json=bench/results/profile_<label>.json]

Run from the project root. Trains the config once with the real `train` in a
temporary run directory and reads the run's own account of its time
(`train_lib.train`'s `seconds_by_part`): the set-up before the first
episode (building, initial weights, run files), the first episode (it
traces the episode function), every other episode, the wait for the next
batch inside the episodes (`data`), each trigger after the episodes
(checkpoints, summaries, validation, progress, ...) and the final report.
Bind `Optimization.num_episodes` to profile a shorter run: the parts that
run every N episodes run as often as that budget makes them.

Writes one JSON (the parts, the wall time, the episodes, the config and its
bindings, the machine and its CPU flags, the date) and prints a markdown
table (`docs_tables.profile_table`, the one docs/benchmarks.md shows).
"""

import argparse
import datetime
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, Optional, Sequence

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

import docs_tables  # pylint: disable=g-import-not-at-top
import gin  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from pixelrl_tf import cli  # pylint: disable=g-import-not-at-top
from pixelrl_tf import hardware  # pylint: disable=g-import-not-at-top
from pixelrl_tf.io import files  # pylint: disable=g-import-not-at-top
from pixelrl_tf.jobs import train_lib  # pylint: disable=g-import-not-at-top


def run(args: argparse.Namespace) -> Dict[str, Any]:
  """Trains once; returns the JSON result."""
  work = pathlib.Path(tempfile.mkdtemp(prefix='profile_training_'))
  try:
    gin.clear_config()
    cli.parse_gin(args.gin_file, args.gin_bindings)
    started = time.monotonic()
    with open(os.devnull, 'w') as devnull:
      result = train_lib.train(str(work / 'run'), progress_stream=devnull)
    wall_seconds = time.monotonic() - started
  finally:
    shutil.rmtree(work, ignore_errors=True)
  return {
      'label': args.label, 'gin_files': args.gin_file,
      'gin_bindings': args.gin_bindings,
      'machine': hardware.describe(),
      'date': datetime.datetime.now().isoformat(timespec='seconds'),
      'tensorflow': tf.__version__,
      'episodes': result['episode'],
      'mixed_precision': result['mixed_precision'],
      'wall_seconds': wall_seconds,
      'seconds_by_part': result['seconds_by_part'],
  }


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--gin_file', action='append', default=[])
  parser.add_argument('--gin_bindings', action='append', default=[])
  parser.add_argument('--label', required=True)
  parser.add_argument('--output_json', default=None)
  args = parser.parse_args(argv)
  if not args.gin_file:
    parser.error('give --gin_file')
  args.output_json = args.output_json or (
      f'bench/results/profile_{args.label}.json')
  return args


def main(argv: Optional[Sequence[str]] = None) -> None:
  args = parse_args(argv)
  try:
    result = run(args)
  except train_lib.TrainingError as error:
    cli.fail(error)
  files.write_text_atomically(args.output_json, json.dumps(result, indent=2))
  print(docs_tables.profile_table(result))


if __name__ == '__main__':
  main()

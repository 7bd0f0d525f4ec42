r"""Shows where the learning tests put the correct code and each broken one.

  python bench/learning_breakage.py [--seeds=1,2,3] [--only=none,...]
      [--output_json=bench/results/learning_breakage.json]

Runs the two known-optimal tasks of `tests/learning_test.py` (the shift
task and the entropy-regularised bandit, random initialisation, the real
`train`) on every seed, once as the code is and once with each of these
pieces deliberately broken (patched in this process only):
  * `advantage_sign`: the policy loss uses `-(R - V)` as the advantage;
  * `entropy_sign`: the entropy bonus is subtracted (entropy minimised);
  * `entropy_removed`: no entropy bonus;
  * `returns_shift`: each step's return is that of the next step (the
    rewards are credited to the wrong action);
  * `returns_zero`: every return is 0;
  * `schedule_zero`: the poly learning-rate schedule gives 0;
  * `schedule_constant`: the rate never decays;
  * `schedule_inverted`: the schedule grows from 0 instead of decaying.
For each it records, per seed, the shift task's share of optimal greedy
actions and validation PSNR, whether the logged rates follow the schedule,
the bandit's mean action probabilities and their total variation distance
to the regularised optimum; then the medians over the seeds, the
thresholds of `tests/learning_test.py` and each test's verdict. Prints a
table and writes the whole result file (docs/benchmarks.md's table is
generated from it by `bench/docs_tables.py`).
"""

import argparse
import datetime
import json
import pathlib
import platform
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests'))
sys.path.insert(0, str(ROOT))

import conftest  # pylint: disable=g-import-not-at-top,unused-import
import learning_test  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from pixelrl_tf import hardware  # pylint: disable=g-import-not-at-top
from pixelrl_tf.agents import pixel_a2c_agent  # pylint: disable=g-import-not-at-top
from pixelrl_tf.agents import returns as returns_lib  # pylint: disable=g-import-not-at-top
from pixelrl_tf.io import files  # pylint: disable=g-import-not-at-top


def _patch(module, name, replacement):
  original = getattr(module, name)
  setattr(module, name, replacement(original))
  return lambda: setattr(module, name, original)


def _step_loss(transform):
  def replacement(original):
    def patched(*args, **kwargs):
      return transform(original, *args, **kwargs)
    return patched
  return lambda: _patch(pixel_a2c_agent, 'step_loss_terms', replacement)


def _flip_advantage(original, *args, **kwargs):
  terms = original(*args, **kwargs)
  return terms._replace(policy=-terms.policy)


def _scale_entropy(scale):
  def transform(original, logits, values, actions, returns, entropy_coef,
                *args, **kwargs):
    return original(logits, values, actions, returns, entropy_coef * scale,
                    *args, **kwargs)
  return transform


def _returns(transform):
  def replacement(original):
    def patched(*args, **kwargs):
      return transform(original(*args, **kwargs))
    return patched
  return lambda: _patch(returns_lib, 'n_step_returns', replacement)


def _schedule(fn):
  return lambda: _patch(pixel_a2c_agent, 'poly_learning_rate',
                        lambda original: fn)


BREAKAGES = {
    'none': lambda: (lambda: None),
    'advantage_sign': _step_loss(_flip_advantage),
    'entropy_sign': _step_loss(_scale_entropy(-1.0)),
    'entropy_removed': _step_loss(_scale_entropy(0.0)),
    'returns_shift': _returns(
        lambda r: tf.concat([r[1:], tf.zeros_like(r[:1])], axis=0)),
    'returns_zero': _returns(tf.zeros_like),
    'schedule_zero': _schedule(
        lambda rate, episode, episodes, power=0.9: tf.constant(0.0)),
    'schedule_constant': _schedule(
        lambda rate, episode, episodes, power=0.9: tf.constant(rate)),
    'schedule_inverted': _schedule(
        lambda rate, episode, episodes, power=0.9: rate * tf.pow(
            tf.cast(episode, tf.float32) / float(episodes), power)),
}


def thresholds():
  """The thresholds of `tests/learning_test.py`."""
  return {'min_optimal_share': learning_test.MIN_OPTIMAL_SHARE,
          'min_psnr': learning_test.MIN_PSNR,
          'max_bandit_distance': learning_test.MAX_BANDIT_DISTANCE}


def measure(work, data, seed):
  """One seed's measurements of both tasks under the current patches."""
  shift_dir, bandit_dir = work / 'shift', work / 'bandit'
  learning_test.train_shift_task(shift_dir, data, seed)
  share, psnr = learning_test.greedy_quality(shift_dir, data)
  schedule = learning_test.schedule_is_poly(
      shift_dir, learning_test.SHIFT_LEARNING_RATE,
      learning_test.SHIFT_EPISODES)
  learning_test.train_bandit(bandit_dir, data, seed)
  probabilities = learning_test.mean_policy(bandit_dir, data)
  return {'seed': seed, 'optimal_share': share, 'psnr': psnr,
          'schedule_is_poly': bool(schedule),
          'bandit_probabilities': [float(p) for p in probabilities],
          'bandit_distance': learning_test.bandit_distance(probabilities)}


def verdicts(per_seed):
  """Medians over the seeds and each test's verdict on them."""
  limits = thresholds()
  median = {key: float(np.median([s[key] for s in per_seed]))
            for key in ('optimal_share', 'psnr', 'bandit_distance')}
  return {
      'median': median,
      'shift_test_passes': bool(
          median['optimal_share'] >= limits['min_optimal_share'] and
          median['psnr'] >= limits['min_psnr']),
      'schedule_test_passes': all(s['schedule_is_poly'] for s in per_seed),
      'bandit_test_passes': bool(
          median['bandit_distance'] <= limits['max_bandit_distance']),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output_json',
                      default='bench/results/learning_breakage.json')
  parser.add_argument('--only', default=None,
                      help='comma-separated breakages to run')
  parser.add_argument('--seeds', default=','.join(
      str(s) for s in learning_test.SEEDS))
  args = parser.parse_args()
  names = args.only.split(',') if args.only else list(BREAKAGES)
  seeds = [int(s) for s in args.seeds.split(',')]
  work = pathlib.Path(tempfile.mkdtemp(prefix='learning_breakage_'))
  data = learning_test.write_data(work / 'data')
  results = {}
  try:
    for name in names:
      per_seed = []
      for seed in seeds:
        undo = BREAKAGES[name]()
        try:
          per_seed.append(measure(work / name / str(seed), data, seed))
        finally:
          undo()
        row = per_seed[-1]
        print(f'{name:<18} seed {seed}  optimal share '
              f'{row["optimal_share"]:.3f}  PSNR {row["psnr"]:6.2f} dB  '
              f'schedule {"ok" if row["schedule_is_poly"] else "WRONG"}  '
              f'bandit {np.round(row["bandit_probabilities"], 3)} distance '
              f'{row["bandit_distance"]:.3f}', flush=True)
      results[name] = {'per_seed': per_seed, **verdicts(per_seed)}
  finally:
    shutil.rmtree(work, ignore_errors=True)
  verdict = lambda ok: 'passes' if ok else 'FAILS'  # pylint: disable=g-long-lambda
  print(f'\n{"broken":<18} {"share":>6} {"PSNR":>6} {"bandit":>7}  '
        'shift / schedule / bandit test')
  for name, result in results.items():
    m = result['median']
    print(f'{name:<18} {m["optimal_share"]:6.3f} {m["psnr"]:6.2f} '
          f'{m["bandit_distance"]:7.3f}  '
          f'{verdict(result["shift_test_passes"])} / '
          f'{verdict(result["schedule_test_passes"])} / '
          f'{verdict(result["bandit_test_passes"])}')
  output = {
      'machine': hardware.describe(),
      'date': datetime.date.today().isoformat(),
      'tensorflow': tf.__version__,
      'python': platform.python_version(),
      'seeds': seeds,
      'settings': {
          'shift_episodes': learning_test.SHIFT_EPISODES,
          'shift_learning_rate': learning_test.SHIFT_LEARNING_RATE,
          'bandit_episodes': learning_test.BANDIT_EPISODES,
          'bandit_learning_rate': learning_test.BANDIT_LEARNING_RATE,
          'bandit_beta': learning_test.BANDIT_BETA,
          'bandit_reward': learning_test.BANDIT_REWARD,
          'bandit_optimum': learning_test.bandit_optimum().tolist()},
      'thresholds': thresholds(),
      'breakages': results,
  }
  files.write_text_atomically(args.output_json, json.dumps(output, indent=2))


if __name__ == '__main__':
  main()

r"""Shows that the learning test fails when a piece of the algorithm is broken.

  python bench/learning_breakage.py [--output_json=bench/results/learning_breakage.json]

Runs the known-optimal shift task of `tests/learning_test.py` (random
initialisation, 400 episodes, the real `train`) once as it is and once with
each of these deliberately broken (patched in this process only):
  * `advantage_sign`: the policy loss uses `-(R - V)` as the advantage;
  * `entropy_sign`: the entropy bonus is subtracted (entropy minimised);
  * `returns_shift`: each step's return is that of the next step (the
    rewards are credited to the wrong action);
  * `returns_zero`: every return is 0;
  * `entropy_removed`: no entropy bonus;
  * `schedule_zero`: the poly learning-rate schedule gives 0;
  * `schedule_constant`: the rate never decays;
  * `schedule_inverted`: the schedule grows from 0 instead of decaying.
Prints, for each, the share of optimal greedy actions, the validation PSNR,
whether the logged learning rates follow the schedule, the entropy of the
entropy-only run, and whether each of the two tests of
`tests/learning_test.py` would pass.
"""

import argparse
import json
import pathlib
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests'))
sys.path.insert(0, str(ROOT))

import conftest  # pylint: disable=g-import-not-at-top,unused-import
import learning_test  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from pixelrl_tf.agents import pixel_a2c_agent  # pylint: disable=g-import-not-at-top
from pixelrl_tf.agents import returns as returns_lib  # pylint: disable=g-import-not-at-top
from pixelrl_tf.io import files  # pylint: disable=g-import-not-at-top


def _patch_step_loss(transform):
  original = pixel_a2c_agent.step_loss_terms

  def patched(logits, values, actions, returns, entropy_coef,
              value_loss_coef, advantage_returns=None):
    return transform(original, logits, values, actions, returns,
                     entropy_coef, value_loss_coef, advantage_returns)

  pixel_a2c_agent.step_loss_terms = patched
  return lambda: setattr(pixel_a2c_agent, 'step_loss_terms', original)


def _flip_advantage(original, logits, values, actions, returns, beta,
                    value_coef, advantage_returns):
  terms = original(logits, values, actions, returns, beta, value_coef,
                   advantage_returns)
  return terms._replace(policy=-terms.policy)


def _entropy(sign_or_scale):
  def transform(original, logits, values, actions, returns, beta, value_coef,
                advantage_returns):
    return original(logits, values, actions, returns, beta * sign_or_scale,
                    value_coef, advantage_returns)
  return transform


def _patch_returns(transform):
  original = returns_lib.n_step_returns

  def patched(rewards, bootstrap_values, gamma, reward_map_fn=None):
    return transform(original(rewards, bootstrap_values, gamma,
                              reward_map_fn))

  returns_lib.n_step_returns = patched
  return lambda: setattr(returns_lib, 'n_step_returns', original)


def _patch_schedule(fn):
  original = pixel_a2c_agent.poly_learning_rate
  pixel_a2c_agent.poly_learning_rate = fn
  return lambda: setattr(pixel_a2c_agent, 'poly_learning_rate', original)


BREAKAGES = {
    'none': lambda: (lambda: None),
    'advantage_sign': lambda: _patch_step_loss(_flip_advantage),
    'entropy_sign': lambda: _patch_step_loss(_entropy(-1.0)),
    'entropy_removed': lambda: _patch_step_loss(_entropy(0.0)),
    'returns_shift': lambda: _patch_returns(
        lambda r: tf.concat([r[1:], tf.zeros_like(r[:1])], axis=0)),
    'returns_zero': lambda: _patch_returns(tf.zeros_like),
    'schedule_zero': lambda: _patch_schedule(
        lambda rate, episode, episodes, power=0.9: tf.constant(0.0)),
    'schedule_constant': lambda: _patch_schedule(
        lambda rate, episode, episodes, power=0.9: tf.constant(rate)),
    'schedule_inverted': lambda: _patch_schedule(
        lambda rate, episode, episodes, power=0.9: rate * tf.pow(
            tf.cast(episode, tf.float32) / float(episodes), power)),
}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output_json',
                      default='bench/results/learning_breakage.json')
  parser.add_argument('--only', default=None,
                      help='comma-separated breakages to run')
  args = parser.parse_args()
  names = args.only.split(',') if args.only else list(BREAKAGES)
  work = pathlib.Path(tempfile.mkdtemp(prefix='learning_breakage_'))
  data = work / 'data'
  learning_test._write_pairs(data / 'train', 24, 64, seed=0)  # pylint: disable=protected-access
  learning_test._write_pairs(data / 'validation', 4, 48, seed=1)  # pylint: disable=protected-access
  results = {}
  try:
    for name in names:
      undo = BREAKAGES[name]()
      try:
        learning_test.train_shift_task(work / name, data)
        share, psnr = learning_test.greedy_quality(work / name, data)
        schedule = learning_test.schedule_is_poly(work / name)
        learning_test.train_entropy_only(work / (name + '_entropy'), data)
        first, last, entropy_ok = learning_test.entropy_rises_to_uniform(
            work / (name + '_entropy'))
      finally:
        undo()
      learns = (share >= learning_test.MIN_OPTIMAL_SHARE and
                psnr >= learning_test.MIN_PSNR and schedule)
      results[name] = {'optimal_share': share, 'psnr': psnr,
                       'schedule_is_poly': bool(schedule),
                       'entropy_first': first, 'entropy_last': last,
                       'learning_test_passes': bool(learns),
                       'entropy_test_passes': bool(entropy_ok)}
      verdict = lambda ok: 'passes' if ok else 'FAILS'  # pylint: disable=g-long-lambda
      print(f'{name:<18} optimal share {share:.3f}  PSNR {psnr:6.2f} dB  '
            f'schedule {"ok" if schedule else "WRONG"}  entropy '
            f'{first:.3f}->{last:.3f}  learning test {verdict(learns)}, '
            f'entropy test {verdict(entropy_ok)}', flush=True)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  files.write_text_atomically(args.output_json, json.dumps(results, indent=2))


if __name__ == '__main__':
  main()

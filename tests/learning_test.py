"""Training learns: two tasks whose optimal policies are known in advance.

Both run the real `train` (data pipeline, schedule, agent, updates) from
random weights, on several seeds; each check takes the median over the
seeds, and its threshold lies far from where the correct code and every
deliberately broken variant land (`bench/learning_breakage.py` measures all
of them on the same seeds and writes the table of docs/benchmarks.md).

**The shift task** (multi-step credit). The clean images are flat gray
(128/255). Each input is the clean image with 8x8 blocks shifted up by
`m * 51/255`, `m` in {0, 1, 2}; the pixels choose from three actions: shift
down by 51/255, do nothing, shift up by 51/255. With `t_max = 3` the
optimal policy is known: a pixel above the gray level moves down, a pixel at
it does nothing (the reward, the decrease of the squared error, is positive
or zero exactly for those actions), which restores every pixel exactly in
`m` steps. The greedy policy must pick the optimal action for most pixels
and restore the validation images far better than the input and any fixed
action schedule. It fails when the advantage's sign is flipped or the
returns are broken (zero, or credited to the wrong step).

**The entropy-regularised bandit** (the entropy bonus, quantitatively). One
step per episode; the same three actions; the reward is `-c`, `0` or `+c`
for shifting down, doing nothing or shifting up, whatever the pixel. The
A2C loss with entropy weight `beta` has one stationary policy, the same at
every pixel: `pi*(a) = exp(r(a) / beta) / Z`, so with `c = beta` the
trained policy must put `e / (e + 1 + 1/e) = 0.665` on shifting up, not 1
(no bonus, or a reversed one, drives it to a deterministic policy), not 1/3
(returns that carry no reward leave only the bonus) and not on shifting
down (a flipped advantage). The check is the total variation distance
between the trained policy's mean action probabilities and `pi*`.

Each gradient option of the agent passes both checks too
(`learning_options_test.py`).

**The schedule**: the rates the optimizer used, as logged, must equal the
reference's poly schedule (a schedule that gives 0, never decays or grows
fails this exactly).
"""

import functools
import os

import cv2
import gin
import numpy as np
import pytest
import tensorflow as tf

from conftest import PROJECT_ROOT
from pixelrl_tf import cli
from pixelrl_tf import metrics
from pixelrl_tf.environments import rewards as rewards_lib
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.filters import image_ops
from pixelrl_tf.jobs import eval_lib
from pixelrl_tf.jobs import train_lib
from pixelrl_tf.models import model_io
from pixelrl_tf.models import restorers
from pixelrl_tf.tasks import tasks as tasks_lib

GRAY = 128
SHIFT = 51
BLOCK = 8
ACTIONS = ('shift_down', 'do_nothing', 'shift_up')
DOWN, NOTHING, UP = range(3)
SEEDS = (1, 2, 3)

# The shift task: 8 crops of 16x16 per episode, a 16-filter plain FCN.
SHIFT_EPISODES = 400
SHIFT_LEARNING_RATE = 3e-3
# Thresholds on the medians over SEEDS, set from the distributions that
# `bench/learning_breakage.py` measures (docs/benchmarks.md): far below
# what the correct code reaches and far above every broken variant that
# this task is meant to catch.
MIN_OPTIMAL_SHARE = 0.65
MIN_PSNR = 17.5

# The bandit: entropy weight beta and reward c = beta.
BANDIT_BETA = 0.01
BANDIT_REWARD = 0.01
BANDIT_EPISODES = 300
BANDIT_LEARNING_RATE = 1e-2
# Largest median total variation distance to pi* that passes.
MAX_BANDIT_DISTANCE = 0.1


def bandit_optimum():
  """`pi*` of the bandit: softmax of `(-c, 0, c) / beta`."""
  logits = np.array([-BANDIT_REWARD, 0.0, BANDIT_REWARD]) / BANDIT_BETA
  weights = np.exp(logits - logits.max())
  return weights / weights.sum()


def _bandit_reward(targets, images, next_images):
  """`-c`, `0` or `+c` for a pixel shifted down, kept or shifted up."""
  del targets
  moved = (next_images - images)[..., 0] * (255.0 / SHIFT)
  return BANDIT_REWARD * tf.round(moved)


def _register():
  """Registers the test actions, tasks and reward (once per process)."""
  for name, delta in (('shift_down', -SHIFT), ('shift_up', SHIFT)):
    try:
      action_set_lib.register_action(action_set_lib.Action(
          name, functools.partial(image_ops.shift, delta=delta / 255),
          (200, 100, 0) if delta < 0 else (0, 100, 200)))
    except ValueError:
      pass  # Already registered by an earlier test in this process.
  if 'shift_test' not in tasks_lib.task_names():
    tasks_lib.register_task(tasks_lib.Task(
        'shift_test', action_set=ACTIONS, episode_source=tasks_lib.PAIRED,
        noise=None, channels=1, t_max=3, max_rotation_degrees=0.0))
    tasks_lib.register_task(tasks_lib.Task(
        'bandit_test', action_set=ACTIONS, reward='bandit_test',
        episode_source=tasks_lib.PAIRED, noise=None, channels=1, t_max=1,
        max_rotation_degrees=0.0))
    # Per pixel: a pixel's reward depends on its own move only, so every
    # action's reward is known (the gradient options use them).
    rewards_lib.register_reward('bandit_test', _bandit_reward,
                                overwrite=True, per_pixel=True)


def write_pairs(folder, count, size, seed):
  """Writes `count` shifted-block inputs and their flat gray targets."""
  rng = np.random.default_rng(seed)
  for kind in ('input', 'target'):
    (folder / kind).mkdir(parents=True)
  for index in range(count):
    blocks = rng.integers(0, 3, size=(size // BLOCK, size // BLOCK))
    shifts = np.kron(blocks, np.ones((BLOCK, BLOCK), np.int64))
    cv2.imwrite(str(folder / 'input' / f'{index}.png'),
                (GRAY + SHIFT * shifts).astype(np.uint8))
    cv2.imwrite(str(folder / 'target' / f'{index}.png'),
                np.full((size, size), GRAY, np.uint8))


def write_data(folder):
  """The training and validation pairs of both tasks."""
  write_pairs(folder / 'train', 24, 64, seed=0)
  write_pairs(folder / 'validation', 4, 48, seed=1)
  return folder


def optimal_actions(images):
  """The optimal action of every pixel of `[..., H, W, 1]` states."""
  level = np.round(images[..., 0] * 255.0)
  return np.where(level > GRAY, DOWN, np.where(level < GRAY, UP, NOTHING))


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  return write_data(tmp_path_factory.mktemp('shift_data'))


def _train(root_dir, data_dir, task, episodes, learning_rate, seed,
           bindings=()):
  _register()
  gin.clear_config()
  cli.parse_gin([str(PROJECT_ROOT / 'configs' / 'tiny.gin')], [
      f"make_task.name = '{task}'",
      f"TrainingData.data_source = '{data_dir / 'train'}'",
      f"TrainingData.validation_source = '{data_dir / 'validation'}'",
      'TrainingData.max_validation_images = None',
      'TrainingData.batch_size = 8', 'TrainingData.crop_size = 16', 'Architecture.filters = 16',
      'Architecture.use_conv_gru = False', f'Optimization.num_episodes = {episodes}',
      f'Optimization.learning_rate = {learning_rate}',
      f'Cadence.eval_interval = {episodes}',
      f'Cadence.checkpoint_interval = {episodes}',
      'Cadence.summary_interval = 1', 'Cadence.choose_inference_steps = False',
      'Cadence.image_summary_interval = 100000', f'RunControl.seed = {seed}',
      *bindings])
  with open(os.devnull, 'w') as stream:
    return train_lib.train(str(root_dir), progress_stream=stream)


def train_shift_task(root_dir, data_dir, seed, bindings=()):
  """Trains the shift task from random weights; returns `train`'s result."""
  return _train(root_dir, data_dir, 'shift_test', SHIFT_EPISODES,
                SHIFT_LEARNING_RATE, seed, bindings)


def train_bandit(root_dir, data_dir, seed, bindings=()):
  """Trains the bandit from random weights; returns `train`'s result."""
  return _train(root_dir, data_dir, 'bandit_test', BANDIT_EPISODES,
                BANDIT_LEARNING_RATE, seed, [
                    f'PixelA2CAgent.entropy_coef = {BANDIT_BETA}',
                    'Cadence.final_report = False', *bindings])


def train_scalars(root_dir, tag):
  """The values of a scalar summary of `root_dir/train`, by step."""
  values = {}
  for path in sorted((root_dir / 'train').glob('events.out*')):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        if value.tag == tag:
          values[event.step] = float(tf.make_ndarray(value.tensor))
  return [values[step] for step in sorted(values)]


def schedule_is_poly(root_dir, learning_rate, episodes):
  """Whether the rates the optimizer used follow the reference schedule."""
  rates = np.array(train_scalars(root_dir, 'Metrics/learning_rate'))
  expected = learning_rate * (1.0 - np.arange(episodes) / episodes) ** 0.9
  return len(rates) == episodes and np.allclose(rates, expected, rtol=1e-4,
                                                atol=1e-9)


def _validation_inputs(data_dir):
  pairs = eval_lib.folder_pairs(data_dir / 'validation' / 'input',
                                data_dir / 'validation' / 'target', 1)
  return [corrupted for _, corrupted, _ in pairs], [
      clean for _, _, clean in pairs]


def greedy_quality(root_dir, data_dir):
  """`(share of optimal actions, mean PSNR)` of the greedy policy."""
  _, restorer = restorers.restorer_from_run(str(root_dir))
  inputs, targets = _validation_inputs(data_dir)
  optimal, total, psnrs = 0, 0, []
  for corrupted, clean in zip(inputs, targets):
    steps = restorer.restore_steps_fn(corrupted[None])
    images, actions = steps['images'][0], steps['actions'][0]
    optimal += int(np.sum(actions == optimal_actions(images[:-1])))
    total += actions.size
    psnrs.append(metrics.psnr(clean, images[-1]))
  return optimal / total, float(np.mean(psnrs))


def mean_policy(root_dir, data_dir):
  """`[A]` mean action probabilities of the trained policy on validation."""
  _, network, _ = model_io.load_model(str(root_dir))
  inputs, _ = _validation_inputs(data_dir)
  probabilities = []
  for image in inputs:
    (logits, _), _ = network(image[None], step_type=None,
                             network_state=network.get_initial_state(1))
    probabilities.append(tf.nn.softmax(tf.cast(logits, tf.float32))
                         .numpy().reshape(-1, logits.shape[-1]))
  return np.concatenate(probabilities).mean(axis=0)


def bandit_distance(probabilities):
  """Total variation distance between `[A]` probabilities and `pi*`."""
  return 0.5 * float(np.abs(np.asarray(probabilities) -
                            bandit_optimum()).sum())


@pytest.fixture(scope='module')
def shift_runs(data, tmp_path_factory):
  """`(seed, run dir, train result)` of the shift task for every seed."""
  root = tmp_path_factory.mktemp('shift_runs')
  return [(seed, root / str(seed),
           train_shift_task(root / str(seed), data, seed)) for seed in SEEDS]


def assert_shift_task_learnt(data, runs):
  """The medians over `runs` (`(seed, dir, result)`) pass the checks."""
  qualities = [greedy_quality(run_dir, data) for _, run_dir, _ in runs]
  shares, psnrs = zip(*qualities)
  assert np.median(shares) >= MIN_OPTIMAL_SHARE, qualities
  assert np.median(psnrs) >= MIN_PSNR, qualities
  for (_, _, result), (_, psnr) in zip(runs, qualities):
    report = result['final_report']
    # The input and the best fixed action schedule are far below.
    assert report['input'] < 12.0 and report['best_fixed_schedule'] < 16.5
    assert report['model'] == pytest.approx(psnr)


def test_shift_task_learns_the_known_optimal_policy(data, shift_runs):
  assert_shift_task_learnt(data, shift_runs)


def test_the_learning_rate_follows_the_poly_schedule(shift_runs):
  for _, run_dir, _ in shift_runs:
    assert schedule_is_poly(run_dir, SHIFT_LEARNING_RATE, SHIFT_EPISODES)


def test_bandit_optimum_is_the_softmax_of_rewards_over_beta():
  # Hand-computed: weights e^-1, 1, e over their sum.
  e = np.e
  np.testing.assert_allclose(bandit_optimum(),
                             [1 / e / (e + 1 + 1 / e), 1 / (e + 1 + 1 / e),
                              e / (e + 1 + 1 / e)])
  np.testing.assert_allclose(bandit_optimum(), [0.0900, 0.2447, 0.6652],
                             atol=1e-4)


def assert_bandit_at_the_regularised_optimum(data, root, bindings=()):
  """Trains the bandit on every seed; the median distance to `pi*` passes."""
  distances = []
  for seed in SEEDS:
    run_dir = root / str(seed)
    train_bandit(run_dir, data, seed, bindings)
    probabilities = mean_policy(run_dir, data)
    distances.append((bandit_distance(probabilities),
                      probabilities.round(3).tolist()))
  assert np.median([d for d, _ in distances]) <= MAX_BANDIT_DISTANCE, (
      distances)


def test_the_entropy_bonus_holds_the_policy_at_the_regularised_optimum(
    data, tmp_path):
  assert_bandit_at_the_regularised_optimum(data, tmp_path)

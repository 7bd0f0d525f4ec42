r"""A TF-Agents driver over the Python `PixelEnvironment`.

`pixelrl_tf.environments.pixel_env.PixelEnvironment` is PixelRL as a
TF-Agents `PyEnvironment`: a batch of images whose every pixel takes one
action per step and gets its own reward (the decrease of its squared error).
Training, evaluation and export run the same step in-graph
(`PixelTFEnvironment`); this Python form is for policies written in Python
and for inspecting an episode step by step. Here TF-Agents' own `PyDriver`
runs two Python policies over it on a noisy crop of one of the offline
default photographs:

* TF-Agents' `RandomPyPolicy` (every pixel picks a random action);
* `FixedActionPolicy` below (every pixel takes one named action every step).

An observer sums each pixel's rewards; since a reward is 255 times the
decrease of the pixel's squared error on the 0..1 scale, their mean is 255
times the drop of the mean squared error over the episode, which the example
prints beside it, computed from the images themselves.

  python examples/pixel_environment_driver.py [--action=bilateral_0.1] \
      [--sigma=25] [--steps=3] [--crop=64]

Shapes: `B` batch, `H, W` height and width, `C` channels.
"""

import argparse
import pathlib
import sys
from typing import Dict, Optional, Sequence

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

# pylint: disable=g-import-not-at-top,wrong-import-position
import pixelrl_tf  # noqa: E402,F401  (quiets the stack's start-up notices)
import numpy as np  # noqa: E402
from skimage import data as skimage_data  # noqa: E402
from tf_agents.drivers import py_driver  # noqa: E402
from tf_agents.policies import py_policy  # noqa: E402
from tf_agents.policies import random_py_policy  # noqa: E402
from tf_agents.trajectories import policy_step  # noqa: E402

from pixelrl_tf import metrics  # noqa: E402
from pixelrl_tf.environments import pixel_env  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position


class FixedActionPolicy(py_policy.PyPolicy):
  """Every pixel takes the same action at every step (a fixed schedule)."""

  def __init__(self, time_step_spec, action_spec, action: int):
    super().__init__(time_step_spec, action_spec)
    self._fixed = int(action)

  def _action(self, time_step, policy_state):
    batch_shape = np.shape(time_step.step_type)
    actions = np.full(batch_shape + self.action_spec.shape, self._fixed,
                      np.int32)
    return policy_step.PolicyStep(actions, policy_state, ())


class RewardSum:
  """A driver observer: every pixel's rewards summed over the episode."""

  def __init__(self):
    self.total: Optional[np.ndarray] = None

  def __call__(self, trajectory):
    # The last trajectory of an episode (boundary, from its final step to
    # the restart) carries the reset's zero reward; counting it is harmless.
    rewards = np.asarray(trajectory.reward, np.float64)
    self.total = rewards if self.total is None else self.total + rewards


def noisy_episode_source(crop: int, sigma: float, seed: int = 0):
  """A zero-argument callable giving `(noisy, clean)`, each `[1,H,W,1]`."""
  clean = skimage_data.camera()[:crop, :crop].astype(np.float32) / 255.0
  clean = clean[None, :, :, None]
  noise = np.random.default_rng(seed).normal(0.0, sigma / 255.0, clean.shape)
  noisy = (clean + noise).astype(np.float32)
  return lambda: (noisy, clean)


def run_policies(action: str = 'bilateral_0.1', sigma: float = 25.0,
                 steps: int = 3, crop: int = 64,
                 seed: int = 0) -> Dict[str, Dict[str, object]]:
  """Runs one episode of each policy through `PyDriver`.

  Returns:
    `{policy: {'psnr_before', 'psnr_after', 'mean_reward_sum',
    'scaled_mse_decrease'}}`: PSNRs in dB (8-bit protocol), the mean over
    pixels of the summed rewards, and 255 times the drop of the mean
    squared error from the noisy to the final image; also `'final'`, the
    final image `[H,W]`, and `'noisy'`.
  """
  source = noisy_episode_source(crop, sigma, seed)
  noisy, clean = source()
  environment = pixel_env.PixelEnvironment(
      source, image_shape=(crop, crop, 1), batch_size=1, t_max=steps)
  policies = {
      'random agents': random_py_policy.RandomPyPolicy(
          environment.time_step_spec(), environment.action_spec(),
          outer_dims=(environment.batch_size,), seed=seed),
      f'fixed {action}': FixedActionPolicy(
          environment.time_step_spec(), environment.action_spec(),
          environment.action_set.index(action)),
  }
  results = {}
  for name, policy in policies.items():
    rewards = RewardSum()
    driver = py_driver.PyDriver(environment, policy, observers=[rewards],
                                max_steps=steps)
    final, _ = driver.run(environment.reset())
    restored = np.asarray(final.observation)
    before = float(np.mean((noisy - clean) ** 2))
    after = float(np.mean((restored - clean) ** 2))
    results[name] = {
        'psnr_before': metrics.psnr(clean[0], noisy[0]),
        'psnr_after': metrics.psnr(clean[0], restored[0]),
        'mean_reward_sum': float(np.mean(rewards.total)),
        'scaled_mse_decrease': 255.0 * (before - after),
        'final': restored[0, ..., 0],
        'noisy': noisy[0, ..., 0],
    }
  return results


def main(argv: Sequence[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--action', default='bilateral_0.1')
  parser.add_argument('--sigma', type=float, default=25.0)
  parser.add_argument('--steps', type=int, default=3)
  parser.add_argument('--crop', type=int, default=64)
  args = parser.parse_args(argv)
  results = run_policies(args.action, args.sigma, args.steps, args.crop)
  for name, result in results.items():
    print(f'{name}: PSNR {result["psnr_before"]:.2f} -> '
          f'{result["psnr_after"]:.2f} dB after {args.steps} steps; mean '
          f'reward sum {result["mean_reward_sum"]:.5f} = 255 x MSE decrease '
          f'{result["scaled_mse_decrease"]:.5f}')


if __name__ == '__main__':
  main(sys.argv[1:])

"""The example that runs TF-Agents' `PyDriver` over `PixelEnvironment`."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT, load_module_from_file

EXAMPLE = PROJECT_ROOT / 'examples' / 'pixel_environment_driver.py'


def _load_example():
  return load_module_from_file(EXAMPLE)


@pytest.fixture(scope='module')
def results():
  return _load_example().run_policies(
      action='bilateral_0.1', sigma=25.0, steps=2, crop=24, seed=1)


def test_the_fixed_policy_applies_the_filter_at_every_pixel_and_step(results):
  fixed = results['fixed bilateral_0.1']
  # OpenCV's bilateral filter (d=5, sigma colour 0.1, sigma space 5) twice.
  want = fixed['noisy'].astype(np.float32)
  for _ in range(2):
    want = cv2.bilateralFilter(want, 5, 0.1, 5)
  np.testing.assert_allclose(fixed['final'], want, atol=2e-6)


@pytest.mark.parametrize('policy', ['random agents', 'fixed bilateral_0.1'])
def test_summed_rewards_are_the_drop_of_the_squared_error(results, policy):
  result = results[policy]
  assert result['mean_reward_sum'] == pytest.approx(
      result['scaled_mse_decrease'], rel=1e-4, abs=1e-6)
  # Denoising a noisy crop: the filter beats the noisy input.
  assert results['fixed bilateral_0.1']['psnr_after'] > result['psnr_before']


def test_random_agents_take_more_than_one_action(results):
  random = results['random agents']
  assert not np.allclose(random['final'], results['fixed bilateral_0.1'][
      'final'])


def test_the_script_prints_one_line_per_policy():
  ran = subprocess.run(
      [sys.executable, str(EXAMPLE),
       '--crop=16', '--steps=1'], cwd=PROJECT_ROOT, capture_output=True,
      text=True, timeout=HANG_TIMEOUT_SECONDS)
  assert ran.returncode == 0, ran.stderr
  lines = ran.stdout.strip().splitlines()
  assert [line.split(':')[0] for line in lines] == [
      'random agents', 'fixed bilateral_0.1']
  assert all('= 255 x MSE decrease' in line for line in lines)

"""The suite's verdicts do not depend on the caller's environment.

A caller may export `TF_CPP_MIN_LOG_LEVEL=2` (TensorFlow then prints its
CUDA-factory registration lines on CPU-only machines before any output of a
command) or `PIXELRL_DEBUG=1` (every error then carries its traceback); the
tests that read a command's output set the environment they assume
(`conftest.py`), so they pass either way.
"""

import os
import subprocess
import sys

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT


def test_output_checks_pass_with_a_noisy_caller_environment():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PIXELRL_DEBUG='1')
  result = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-n', '0',
       'tests/train_test.py::test_bad_gin_is_one_line'],
      cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
      timeout=HANG_TIMEOUT_SECONDS)
  assert result.returncode == 0, result.stdout[-3000:]
  assert '1 passed' in result.stdout

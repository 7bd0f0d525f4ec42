"""A user's action from outside the package: the guided-filter example."""

import os
import subprocess
import sys

import cv2
import numpy as np
import tensorflow as tf

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT
from examples import guided_filter_action
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.models import model_io


def test_matches_opencv_guided_filter():
  rng = np.random.default_rng(0)
  image = np.clip(cv2.resize(rng.uniform(0, 1, (12, 9)), (31, 23))
                  + rng.normal(0, 0.05, (23, 31)), 0, 1).astype(np.float32)
  want = cv2.ximgproc.guidedFilter(image, image, 2, 0.01)
  got = guided_filter_action.guided_filter(
      tf.constant(image[None, ..., None])).numpy()[0, ..., 0]
  np.testing.assert_allclose(got, want, atol=5e-5)


def test_registered_table_extends_the_denoising_actions():
  table = action_set_lib.get_action_set('denoise_guided')
  assert table.num_actions == 10
  assert table.names[:9] == action_set_lib.DENOISE_ACTIONS.names
  assert action_set_lib.action_modules('denoise_guided') == (
      'examples.guided_filter_action',)


def test_train_with_it_from_the_command_line_then_restore(tmp_path):
  run_dir = tmp_path / 'run'
  result = subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.train',
       f'--gin_file={PROJECT_ROOT / "configs" / "tiny.gin"}',
       f'--root_dir={run_dir}',
       '--gin_bindings=import examples.guided_filter_action',
       "--gin_bindings=make_task.action_set = 'denoise_guided'",
       '--gin_bindings=Optimization.num_episodes = 2',
       '--gin_bindings=Cadence.final_report = False'],
      cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS)
  assert result.returncode == 0, result.stderr
  config = model_io.read_model_config(str(run_dir))
  assert config.imports == ('examples.guided_filter_action',)
  assert config.action_set == 'denoise_guided'
  # Another process rebuilds the model: the recorded module is imported.
  image = tmp_path / 'noisy.png'
  cv2.imwrite(str(image), np.random.default_rng(1).integers(
      0, 255, (20, 24), dtype=np.uint8))
  restored = subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.restore', f'--model={run_dir}',
       f'--input={image}', f'--output={tmp_path / "out"}'],
      cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS)
  assert restored.returncode == 0, restored.stderr
  assert os.path.isfile(tmp_path / 'out' / 'noisy.png')

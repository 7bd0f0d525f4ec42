"""Colour enhancement: the Lab reward, the Lab input, training and eval."""

import glob
import io
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT
from pixelrl_tf import metrics
from pixelrl_tf.environments import rewards as rewards_lib
from pixelrl_tf.filters import color_ops
from pixelrl_tf.jobs import eval_lib
from pixelrl_tf.jobs import train_lib
from pixelrl_tf.models import model_io
from pixelrl_tf.tasks import tasks as tasks_lib
from pixelrl_tf.training import settings
from pixelrl_tf.visualization import summaries

_WHITE = [1.0, 1.0, 1.0]
_BLACK = [0.0, 0.0, 0.0]


def _lab(bgr):
  return cv2.cvtColor(np.asarray(bgr, np.float32), cv2.COLOR_BGR2Lab)


# ---------------------------------------------------------------------------
# Reward (eq. 21).


def test_lab_distance_reward_by_hand_on_a_2x2_image():
  # Black and white have exact Lab values: (0, 0, 0) and (100, 0, 0).
  targets = np.array([[[_WHITE, _WHITE], [_BLACK, _BLACK]]], np.float32)
  images = np.array([[[_BLACK, _WHITE], [_BLACK, _WHITE]]], np.float32)
  next_images = np.array([[[_WHITE, _BLACK], [_BLACK, [1.2, 1.3, 1.1]]]],
                         np.float32)
  rewards = rewards_lib.get_reward_fn('lab_distance')(
      targets, images, next_images).numpy()
  # (0,0): 100 -> 0; (0,1): 0 -> 100; (1,0): 0 -> 0; (1,1): 100 -> 100
  # (OpenCV clips 1.2 to 1 before converting, so it is still white).
  np.testing.assert_allclose(rewards, [[[100.0, -100.0], [0.0, 0.0]]],
                             atol=1e-3)


def test_lab_distance_reward_matches_opencv_formula():
  rng = np.random.default_rng(0)
  targets, images, next_images = rng.uniform(-0.1, 1.1, (3, 2, 9, 11, 3))
  rewards = rewards_lib.lab_distance_decrease(
      targets.astype(np.float32), images.astype(np.float32),
      next_images.astype(np.float32)).numpy()
  for b in range(2):
    target = _lab(targets[b])
    before = np.linalg.norm(target - _lab(images[b]), axis=-1)
    after = np.linalg.norm(target - _lab(next_images[b]), axis=-1)
    np.testing.assert_allclose(rewards[b], before - after, atol=1e-3)


# ---------------------------------------------------------------------------
# Model config and the network's Lab input.


def test_model_config_input_transform():
  config = model_io.ModelConfig(channels=3, action_set='color',
                                input_transform='lab')
  assert model_io.ModelConfig.from_json(config.to_json()) == config
  old = json.loads(config.to_json())
  del old['input_transform']
  assert model_io.ModelConfig.from_json(
      json.dumps(old)).input_transform == 'none'
  with pytest.raises(ValueError, match='input_transform'):
    model_io.ModelConfig(input_transform='hsv')


def test_lab_network_sees_scaled_lab():
  config = model_io.ModelConfig(channels=3, action_set='color', filters=8,
                                input_transform='lab')
  lab_network = model_io.build_network(config)
  plain_network = model_io.build_network(
      model_io.ModelConfig(channels=3, action_set='color', filters=8))
  plain_network.set_weights(lab_network.get_weights())
  images = np.random.default_rng(1).uniform(
      0, 1, (1, 6, 7, 3)).astype(np.float32)
  (logits, values), _ = lab_network(images)
  (expected_logits, expected_values), _ = plain_network(
      color_ops.bgr_to_scaled_lab(images))
  np.testing.assert_allclose(logits, expected_logits, atol=1e-5)
  np.testing.assert_allclose(values, expected_values, atol=1e-5)
  assert lab_network.num_actions == 13


# ---------------------------------------------------------------------------
# End to end: train, TensorBoard images, eval (library and command line).


def _write_pairs(folder, count=3, size=(24, 28)):
  """Synthetic BGR pairs: blue-dominant inputs, targets brighter."""
  rng = np.random.default_rng(2)
  for sub in ('input', 'target'):
    os.makedirs(os.path.join(folder, sub), exist_ok=True)
  for index in range(count):
    image = np.zeros(size + (3,), np.float32)
    image[..., 0] = rng.uniform(0.6, 0.9, size)  # B
    image[..., 1] = rng.uniform(0.1, 0.3, size)  # G
    image[..., 2] = rng.uniform(0.0, 0.2, size)  # R
    target = np.clip(image * 1.1 + 0.03, 0, 1)
    for sub, array in (('input', image), ('target', target)):
      cv2.imwrite(os.path.join(folder, sub, f'pair{index}.png'),
                  np.round(array * 255).astype(np.uint8))


def _first_summary_image(event_dir, tag):
  for path in sorted(glob.glob(os.path.join(event_dir, 'events.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          encoded = tf.make_ndarray(value.tensor)[2]
          return tf.io.decode_png(encoded).numpy()
  raise AssertionError(f'no summary {tag} in {event_dir}')


def test_colour_training_then_eval(tmp_path):
  data = str(tmp_path / 'pairs')
  _write_pairs(data)
  run = str(tmp_path / 'run')
  stream = io.StringIO()
  result = train_lib.train(
      run, task=tasks_lib.make_task('color_enhance', t_max=4,
                                    update_interval=2),
      data=settings.TrainingData(data_source=data, validation_fraction=0.34,
                                 batch_size=2, crop_size=16),
      architecture=settings.Architecture(filters=8),
      optimization=settings.Optimization(num_episodes=4),
      cadence=settings.Cadence(checkpoint_interval=2, summary_interval=1,
                               image_summary_interval=4, eval_interval=2),
      progress_stream=stream)
  assert result['episode'] == 4
  assert result['metric'] == 'lab_distance'
  assert result['val_metric'] is not None and result['val_metric'] > 0
  assert 'final validation mean Lab distance' in stream.getvalue()
  assert result['best']['metric'] == 'lab_distance'
  assert result['best']['value'] == min(
      result['best']['value'], result['val_metric'])
  config = model_io.read_model_config(run)
  assert (config.action_set, config.input_transform, config.channels,
          config.task) == ('color', 'lab', 3, 'color_enhance')

  # TensorBoard shows the BGR crops as RGB: blue stays blue.
  picture = _first_summary_image(os.path.join(run, 'train'),
                                 'Images/train/input').astype(float)
  lit = picture[..., :3].sum(axis=-1) > 60
  assert (picture[..., 2][lit] > picture[..., 0][lit]).mean() > 0.9

  # Eval in process: colour images are read BGR and the Lab metric is there.
  input_dir, target_dir = os.path.join(data, 'input'), os.path.join(
      data, 'target')
  report = eval_lib.evaluate(run, input_dir=input_dir, target_dir=target_dir)
  rows = report['rows']
  assert list(rows) == ['original', 'random_agents', 'best_fixed_schedule',
                        'model']
  # The colour model's gain over the best fixed schedule is in Lab units,
  # lower distance being better.
  assert report['learned_gain'] == pytest.approx(
      rows['best_fixed_schedule']['lab'] - rows['model']['lab'])
  assert rows['best_fixed_schedule']['lab'] <= rows['original']['lab']
  for row in ('random_agents', 'model'):
    assert len(rows[row]['per_step']) == 4
    assert all('lab' in step for step in rows[row]['per_step'])
  bgr_inputs = [cv2.imread(os.path.join(input_dir, f'pair{i}.png'))
                for i in range(3)]
  bgr_targets = [cv2.imread(os.path.join(target_dir, f'pair{i}.png'))
                 for i in range(3)]
  expected = np.mean([metrics.mean_lab_distance(t / 255.0, i / 255.0)
                      for i, t in zip(bgr_inputs, bgr_targets)])
  assert rows['original']['lab'] == pytest.approx(expected, rel=1e-6)
  assert 'mean Lab L2' in eval_lib.report_markdown(report)

  # The same through the command line.
  output_json = str(tmp_path / 'eval.json')
  completed = subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.eval', f'--checkpoint={run}',
       f'--input_dir={input_dir}', f'--target_dir={target_dir}',
       f'--output_json={output_json}'],
      cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS)
  assert completed.returncode == 0, completed.stderr[-2000:]
  assert 'mean Lab L2' in completed.stdout
  with open(output_json) as f:
    from_cli = json.load(f)
  assert from_cli['rows']['original']['lab'] == pytest.approx(expected,
                                                              rel=1e-6)


def test_colour_action_maps_draw_with_colour_names():
  action_set = model_io.ModelConfig(action_set='color').get_action_set()
  images = np.random.default_rng(3).uniform(
      0, 1, (3, 2, 8, 8, 3)).astype(np.float32)
  action_maps = np.random.default_rng(4).integers(0, 13, (2, 2, 8, 8))
  fractions = summaries.action_fractions(action_maps, 13)
  assert fractions.shape == (2, 13)
  writer = tf.summary.create_noop_writer()
  with writer.as_default():
    summaries.write_episode_images('train', images, action_maps, action_set,
                                   1, bgr=True)

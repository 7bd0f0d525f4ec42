"""Training settings that once were accepted and did nothing now take effect.

* `PixelA2CAgent.summarize_grads_and_vars` and `debug_summaries` write their
  histograms to the run's TensorBoard files, at the scalar-summary episodes;
* a list file selects the training pairs of a paired (colour) task;
* `validation_source` and `validation_fraction` together are an error.
"""

import io
import json
import os

import cv2
import gin
import numpy as np
import pytest
import tensorflow as tf

from conftest import PROJECT_ROOT
from pixelrl_tf import cli
from pixelrl_tf import hardware
from pixelrl_tf.jobs import train_lib
from pixelrl_tf.tasks import episode_sources
from pixelrl_tf.tasks import tasks as tasks_lib

TINY = str(PROJECT_ROOT / 'configs' / 'tiny.gin')


def _train(root_dir, *bindings, stream=None):
  gin.clear_config()
  cli.parse_gin([TINY], ['Cadence.eval_interval = 100',
                         'Cadence.final_report = False', *bindings])
  with open(os.devnull, 'w') as devnull:
    return train_lib.train(str(root_dir), progress_stream=stream or devnull)



def test_native_bfloat16_is_read_from_the_cpu_flags_and_gpus(monkeypatch):
  monkeypatch.setattr(hardware, 'gpus', lambda: [])
  for flags, native in ((['avx2', 'fma'], ''), (['avx2', 'amx_bf16'], 'cpu'),
                        (['avx512f', 'avx512_bf16'], 'cpu')):
    monkeypatch.setattr(hardware, 'cpu_flags', lambda f=flags: frozenset(f))
    assert hardware.native_bfloat16() == native, flags
  monkeypatch.setattr(hardware, 'cpu_flags', lambda: frozenset(['amx_bf16']))
  # With a GPU, the GPU decides (TensorFlow runs the network there).
  monkeypatch.setattr(hardware, 'gpus', lambda: [
      {'name': 'old', 'compute_capability': (7, 0)}])
  assert hardware.native_bfloat16() == ''
  monkeypatch.setattr(hardware, 'gpus', lambda: [
      {'name': 'new', 'compute_capability': (9, 0)}])
  assert hardware.native_bfloat16() == 'gpu'


def test_auto_precision_is_chosen_printed_and_recorded(monkeypatch, tmp_path):
  for native, policy in (('', None), ('cpu', 'mixed_bfloat16')):
    monkeypatch.setattr(hardware, 'native_bfloat16', lambda n=native: n)
    lines = io.StringIO()
    result = _train(tmp_path / (native or 'none'),
                    "Scale.mixed_precision = 'auto'", 'Optimization.num_episodes = 1',
                    stream=lines)
    assert result['mixed_precision'] == policy
    stored = json.loads((tmp_path / (native or 'none') / 'run.json')
                        .read_text())
    assert stored['mixed_precision'] == policy
    assert (f'mixed precision: {policy or "float32"} (bfloat16 is '
            f'{"" if native else "not "}native') in lines.getvalue()


def _tags_by_step(directory):
  """`{step: set of tags}` of every summary under `directory`."""
  tags = {}
  for path in sorted(directory.glob('events.out*')):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        tags.setdefault(event.step, set()).add(value.tag)
  return tags


def _histogram(directory, tag, step):
  """`(count, min, max)` of the histogram `tag` written at `step`."""
  for path in sorted(directory.glob('events.out*')):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        if value.tag == tag and event.step == step:
          buckets = tf.make_ndarray(value.tensor)  # [k, 3]: left, right, n
          return (float(buckets[:, 2].sum()), float(buckets[:, 0].min()),
                  float(buckets[:, 1].max()))
  raise AssertionError(f'no {tag} at step {step}')


def test_gradient_and_debug_histograms_reach_tensorboard(tmp_path):
  # Without the options: no histogram.
  _train(tmp_path, 'Optimization.num_episodes = 4', 'RunControl.stop_after_episodes = 1')
  assert not any(tag.startswith(('gradients/', 'variables/', 'debug/'))
                 for tags in _tags_by_step(tmp_path / 'train').values()
                 for tag in tags)
  # Turned on for the resume (they change nothing that is guarded):
  # written at the scalar-summary episodes (every 2nd and the last) only.
  _train(tmp_path, 'Optimization.num_episodes = 5', "RunControl.allow_changes = "
         "['num_episodes']", 'Cadence.summary_interval = 2',
         'PixelA2CAgent.summarize_grads_and_vars = True',
         'PixelA2CAgent.debug_summaries = True')
  tags = _tags_by_step(tmp_path / 'train')
  kernel = 'FcnActorCritic/conv1/kernel_0'
  for step in (2, 4, 5):
    assert f'gradients/{kernel}' in tags[step], sorted(tags[step])
    assert f'variables/{kernel}' in tags[step]
    for name in ('rewards', 'returns', 'values', 'advantages'):
      assert f'debug/{name}' in tags[step]
    assert {f'debug/action_share/{i}' for i in range(9)} <= tags[step]
  for step in (1, 3):
    assert not any(t.startswith(('gradients/', 'debug/'))
                   for t in tags.get(step, ()))
  # The values are the run's: conv1's kernel histogram of episode 5 counts
  # its 3*3*1*8 weights and spans their values before that episode's
  # update, the checkpoint of episode 4.
  reader = tf.train.load_checkpoint(str(tmp_path / 'train' / 'ckpt-4'))
  weights = reader.get_tensor(
      'network/_trunk/0/kernel/.ATTRIBUTES/VARIABLE_VALUE')
  count, low, high = _histogram(tmp_path / 'train', f'variables/{kernel}', 5)
  assert count == weights.size == 72
  assert low == pytest.approx(weights.min(), abs=1e-6)
  assert high == pytest.approx(weights.max(), abs=1e-6)
  # Every pixel of every step of the batch (2 crops of 16x16, 2 steps).
  count, _, _ = _histogram(tmp_path / 'train', 'debug/returns', 5)
  assert count == 2 * 2 * 16 * 16


def _write_pairs(folder, levels):
  """One pair per level: a flat input at `level`, a flat target at 255."""
  for kind in ('input', 'target'):
    (folder / kind).mkdir(parents=True, exist_ok=True)
  for index, level in enumerate(levels):
    cv2.imwrite(str(folder / 'input' / f'pair{index}.png'),
                np.full((24, 24, 3), level, np.uint8))
    cv2.imwrite(str(folder / 'target' / f'pair{index}.png'),
                np.full((24, 24, 3), 255, np.uint8))


def _input_levels(source, batches=6):
  """The distinct input levels (0..255) of the first training batches."""
  levels = set()
  for start, _ in source.dataset.take(batches):
    # Centre pixels: the rotation's black corners never reach them.
    levels |= set(np.round(start.numpy()[:, 8, 8, 0] * 255).astype(int))
  return levels


def test_a_list_file_selects_the_training_pairs(tmp_path):
  _write_pairs(tmp_path / 'pairs', (10, 60, 110, 160))
  listed = tmp_path / 'list.txt'
  listed.write_text('pair1.png\npair3\n')
  task = tasks_lib.get_task('color_enhance')
  unlisted = episode_sources.make_episode_source(
      task, str(tmp_path / 'pairs'), 4, 16, seed=0,
      validation_source=str(tmp_path / 'pairs'))
  assert _input_levels(unlisted) == {10, 60, 110, 160}
  source = episode_sources.make_episode_source(
      task, str(tmp_path / 'pairs'), 4, 16, seed=0, list_file=str(listed),
      validation_source=str(tmp_path / 'pairs'))
  assert _input_levels(source) == {60, 160}
  # The validation folder is not restricted by the training list.
  assert len(source.validation) == 4
  # With a held-out fraction, the listed pairs are the ones split.
  split = episode_sources.make_episode_source(
      task, str(tmp_path / 'pairs'), 4, 16, seed=0, list_file=str(listed),
      validation_fraction=0.5)
  validation_levels = {int(round(v[1][8, 8, 0] * 255))
                       for v in split.validation}
  assert len(split.validation) == 1 and validation_levels < {60, 160}
  assert _input_levels(split) == {60, 160} - validation_levels


def test_validation_source_and_fraction_together_are_one_line(tmp_path):
  with pytest.raises(ValueError) as error:
    _train(tmp_path / 'run', "TrainingData.validation_source = 'default'",
           'TrainingData.validation_fraction = 0.2')
  message = cli.first_line(error.value)
  assert 'validation_source or validation_fraction, not both' in message
  assert not (tmp_path / 'run' / 'model.json').exists()
  assert not (tmp_path / 'run' / 'run.json').exists()

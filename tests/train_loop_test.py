"""The training loop and its triggers, each on its own, and a whole run.

`test_a_tiny_run_matches_its_fingerprint` trains the tiny config with a
resume and compares everything it left with `tests/golden/tiny_run.json`,
which `tests/tiny_run_fingerprint.py` wrote.
"""

import contextlib
import dataclasses
import io
import json
import math
import os
import re

import gin
import numpy as np
import pytest
import tensorflow as tf

import tiny_run_fingerprint as tiny_run
from pixelrl_tf.drivers import learner as learner_lib
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.tasks import tasks as tasks_lib
from pixelrl_tf.training import loop
from pixelrl_tf.training import progress
from pixelrl_tf.training import settings
from pixelrl_tf.training import triggers
from pixelrl_tf.training import validation

# Floats may differ in the last bits between CPUs (another oneDNN kernel).
RTOL = 1e-4
ATOL = 1e-5


def _differences(expected, actual, where=''):
  if isinstance(expected, dict) and isinstance(actual, dict):
    found = [f'{where}: keys {sorted(set(expected) ^ set(actual))}'] if set(
        expected) != set(actual) else []
    for key in sorted(set(expected) & set(actual)):
      found += _differences(expected[key], actual[key], f'{where}/{key}')
    return found
  if isinstance(expected, list) and isinstance(actual, list):
    if len(expected) != len(actual):
      return [f'{where}: {len(expected)} items, now {len(actual)}']
    found = []
    for index, (e, a) in enumerate(zip(expected, actual)):
      found += _differences(e, a, f'{where}[{index}]')
    return found
  if (isinstance(expected, float) and isinstance(actual, (int, float)) and
      not isinstance(actual, bool)):
    if math.isclose(expected, actual, rel_tol=RTOL, abs_tol=ATOL):
      return []
    return [f'{where}: {expected!r}, now {actual!r}']
  return [] if expected == actual else [f'{where}: {expected!r}, now '
                                        f'{actual!r}']


def test_a_tiny_run_matches_its_fingerprint(tmp_path):
  expected = json.loads(tiny_run.GOLDEN_FILE.read_text())
  actual = json.loads(json.dumps(tiny_run.train_tiny_run(tmp_path / 'run')))
  differences = _differences(expected, actual)
  assert not differences, '\n'.join(differences[:20])


def test_the_fingerprint_comparison_sees_a_change():
  expected = json.loads(tiny_run.GOLDEN_FILE.read_text())
  changed = json.loads(json.dumps(expected))
  changed['final_report']['model'] += 0.01
  changed['summaries']['train'].pop()
  key = sorted(changed['checkpoints'])[0]
  tensor = sorted(changed['checkpoints'][key])[0]
  changed['checkpoints'][key][tensor]['sum'] = np.nextafter(
      changed['checkpoints'][key][tensor]['sum'], np.inf) * 1.001 + 1.0
  assert len(_differences(expected, changed)) == 3
  assert not _differences(expected, expected)


# -- The loop and each trigger on its own ------------------------------------


PSNR = tasks_lib.METRICS[tasks_lib.PSNR]
LAB = tasks_lib.METRICS[tasks_lib.LAB_DISTANCE]


def _scalars(**changes):
  values = {key: 1.0 for key in learner_lib.SCALARS + (
      learner_lib.GRADIENT_NORM, learner_lib.APPLIED)}
  values['imitation_loss'] = 0.0
  values.update(changes)
  return values


def _episode(episode, num_episodes=10, **scalars):
  images = {'start': tf.zeros([1, 4, 4, 1]),
            'outputs': tf.zeros([1, 2, 4, 4, 1]),
            'actions': tf.zeros([1, 2, 4, 4], tf.int32)}
  return triggers.Episode(episode, num_episodes, _scalars(**scalars), images,
                          1e-3, 0.5)


def _fired(every, num_episodes, episodes):
  return [e for e in episodes if every(e, num_episodes)]


def test_every_fires_at_multiples_and_at_the_end():
  assert _fired(triggers.Every(3), 7, range(1, 8)) == [3, 6, 7]
  # A resumed run fires where an unbroken one does.
  assert _fired(triggers.Every(3, first_episode=4), 7, range(5, 8)) == [6, 7]
  assert _fired(triggers.Every(3, first_episode=6), 7, range(7, 8)) == [7]
  assert _fired(triggers.Every(3, at_end=False, at_first=True), 7,
                range(1, 8)) == [1, 3, 6]
  # The last episode, a multiple, fires once.
  assert _fired(triggers.Every(2), 6, range(1, 7)) == [2, 4, 6]


def test_finite_check_names_the_value_and_the_kept_checkpoint():
  checkpoints = triggers.Checkpoints(None, triggers.Every(5), 5)
  check = triggers.FiniteCheck(checkpoints)
  check(_episode(8))
  with pytest.raises(triggers.TrainingError,
                     match='non-finite value_loss nan at episode 7.*episode 5'):
    check(_episode(8, value_loss=float('nan')))
  with pytest.raises(triggers.TrainingError, match='non-finite gradients'):
    check(_episode(8, applied=0.0))
  with pytest.raises(triggers.TrainingError, match='gradient_norm inf'):
    check(_episode(8, gradient_norm=float('inf')))


def test_loss_watchdog_warns_once_past_the_factor():
  stream = io.StringIO()
  watchdog = triggers.LossWatchdog(stream, 10.0, baseline_episodes=2)
  for episode, loss in enumerate([1.0, 1.0, 5.0], start=1):
    watchdog(_episode(episode, loss=loss))
  assert watchdog.loss_growth == 5.0 and not stream.getvalue()
  watchdog(_episode(4, loss=200.0))  # 0.9 * 5 + 0.1 * 200 = 24.5
  assert watchdog.loss_growth == pytest.approx(24.5)
  assert 'grown 24.5x over its first 2 episodes' in stream.getvalue()
  watchdog(_episode(5, loss=500.0))
  assert stream.getvalue().count('warning') == 1
  quiet = triggers.LossWatchdog(io.StringIO(), None, baseline_episodes=1)
  quiet(_episode(1, loss=-1.0))
  quiet(_episode(2, loss=-50.0))
  assert quiet.loss_growth == 50.0


def _events(folder):
  found = []
  for name in sorted(os.listdir(folder)):
    for record in tf.data.TFRecordDataset(os.path.join(folder, name)):
      event = tf.compat.v1.Event.FromString(record.numpy())
      found += [(event.step, value.tag) for value in event.summary.value]
  return found


def test_scalar_summaries_write_at_their_interval(tmp_path):
  writer = tf.summary.create_file_writer(str(tmp_path))
  watchdog = triggers.LossWatchdog(io.StringIO(), None)
  scalars = triggers.ScalarSummaries(writer, triggers.Every(2), watchdog)
  for episode in range(1, 6):
    scalars(_episode(episode, num_episodes=5, imitation_loss=0.0 if
                     episode < 4 else 0.5))
  writer.flush()
  events = _events(tmp_path)
  assert sorted({step for step, _ in events}) == [2, 4, 5]
  assert (2, 'Losses/total') in events and (4, 'Metrics/loss_growth') in events
  assert (2, 'Losses/imitation') not in events
  assert (4, 'Losses/imitation') in events


def test_image_summaries_write_first_and_at_their_interval(tmp_path):
  writer = tf.summary.create_file_writer(str(tmp_path))
  images = triggers.ImageSummaries(
      writer, triggers.Every(3, at_end=False, at_first=True),
      action_set_lib.get_action_set('denoise'), bgr=False)
  for episode in range(1, 8):
    images(_episode(episode, num_episodes=7))
  writer.flush()
  assert sorted({step for step, _ in _events(tmp_path)}) == [1, 3, 6]


def _manager(folder, **variables):
  return tf.train.CheckpointManager(
      tf.train.Checkpoint(**{k: tf.Variable(v) for k, v in variables.items()}),
      str(folder), max_to_keep=None)


def test_checkpoints_at_interval_and_when_the_run_stops(tmp_path):
  manager = _manager(tmp_path / 'train', v=1.0)
  checkpoints = triggers.Checkpoints(manager, triggers.Every(2, 0), 0)
  for episode in range(1, 6):
    checkpoints(_episode(episode, num_episodes=10))
  assert checkpoints.last_saved == 4
  checkpoints.finish(5)
  checkpoints.finish(5)
  names = sorted(n for n in os.listdir(tmp_path / 'train')
                 if n.endswith('.index'))
  assert names == ['ckpt-2.index', 'ckpt-4.index', 'ckpt-5.index']


def test_an_unwritable_checkpoint_is_one_line(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('not a directory')
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(v=tf.Variable(1.0)), str(blocker / 'train'), 1)
  with pytest.raises(triggers.TrainingError,
                     match='could not write a checkpoint at episode 5'):
    triggers.save_checkpoint(manager, 5)


@pytest.mark.parametrize('metric, values, kept', [
    (PSNR, [20.0, 21.0, 20.5, 22.0], [1, 2, 4]),
    (LAB, [9.0, 8.0, 8.5, 7.0], [1, 2, 4])])
def test_best_checkpoint_keeps_the_best_in_the_metric_s_direction(
    tmp_path, metric, values, kept):
  best = triggers.BestCheckpoint(_manager(tmp_path / 'best', v=1.0),
                                 str(tmp_path), metric, write_files=True)
  saved = []
  for episode, value in enumerate(values, start=1):
    before = best.best
    best.offer(episode, value, inference_steps=3)
    if best.best is not before:
      saved.append(episode)
  assert saved == kept
  stored = json.loads((tmp_path / triggers.BEST_FILE).read_text())
  assert stored == {'episode': 4, 'metric': metric.name,
                    'value': values[3], 'inference_steps': 3,
                    'checkpoint': os.path.join('best', 'ckpt-4')}
  # A later start begins from what the file says.
  again = triggers.BestCheckpoint(_manager(tmp_path / 'best', v=1.0),
                                  str(tmp_path), metric, write_files=True)
  assert again.best == stored


class _FakeValidator:
  """Per-step metrics from a list, one validation after another."""

  metric = PSNR
  metric_name = 'psnr'

  def __init__(self, per_step_values, input_value=20.0):
    self._values = list(per_step_values)
    self._input = input_value
    self.every_step = []

  def __len__(self):
    return 1

  def input_score(self):
    return self._input

  def evaluate(self, every_step=False):
    self.every_step.append(every_step)
    per_step = self._values.pop(0)
    images = np.zeros([len(per_step) + 1, 1, 4, 4, 1], np.float32)
    actions = np.zeros([len(per_step), 1, 4, 4], np.int32)
    return per_step, (images, actions)

  def best_step(self, per_step):
    return self.metric.best_index(per_step) + 1


def test_validation_chooses_the_steps_keeps_the_best_and_warns(tmp_path):
  validator = _FakeValidator([[21.0, 23.0, 22.0], [19.0, 18.0, 17.0]])
  steps = tf.Variable(3, dtype=tf.int64)
  best = triggers.BestCheckpoint(_manager(tmp_path / 'best', v=1.0),
                                 str(tmp_path), PSNR, write_files=True)
  writer = tf.summary.create_file_writer(str(tmp_path / 'eval'))
  stream = io.StringIO()
  validation = triggers.Validation(
      validator, triggers.Every(2), best, steps, True, writer,
      action_set_lib.get_action_set('denoise'), False, stream, 0)
  validation(_episode(1, num_episodes=4))
  assert validator.every_step == [] and validation.value is None
  validation(_episode(2, num_episodes=4))
  assert int(steps) == 2 and validation.value == 23.0
  assert validation.best['episode'] == 2 and not stream.getvalue()
  validation(_episode(4, num_episodes=4))
  assert int(steps) == 1 and validation.value == 19.0
  assert validation.best['episode'] == 2
  assert 'at episode 4 validation psnr 19 is worse than the untouched input' \
      in stream.getvalue()
  writer.flush()
  tags = _events(tmp_path / 'eval')
  assert (0, 'Metrics/val_psnr_input') in tags
  assert (4, 'Metrics/val_inference_steps') in tags
  assert (4, 'Metrics/val_psnr_at_t_max') in tags


def test_progress_report_shows_the_last_validation():
  stream = io.StringIO()
  bar = progress.ProgressBar(4, stream=stream, log_every_seconds=0)

  class _Validated:
    value = 24.5
  report = triggers.ProgressReport(bar, _Validated(), 'psnr')
  report(_episode(2, num_episodes=4, episode_reward=3.0))
  assert re.search(r'episode 2/4 .* reward 3 loss 1 val_psnr 24\.5',
                   stream.getvalue())


def test_episode_hooks_see_the_current_step_count_and_may_stop():
  seen = []
  steps = tf.Variable(4, dtype=tf.int64)
  hooks = triggers.EpisodeHooks(
      [lambda end: seen.append(end) or False,
       lambda end: end.episode >= 3], network='net', inference_steps=steps,
      started=10.0, clock=lambda: 12.5)
  assert not hooks(_episode(2))
  steps.assign(2)
  assert hooks(_episode(3))
  assert [end.episode for end in seen] == [2, 3]
  assert seen[-1].inference_steps == 2 and seen[-1].seconds == 2.5
  assert seen[-1].network == 'net'


class _Recorder:
  """A trigger that records what it saw and may stop or finish."""

  def __init__(self, log, name, stop_at=None):
    self._log, self._name, self._stop_at = log, name, stop_at

  def __call__(self, episode):
    self._log.append((self._name, episode.episode, episode.learning_rate))
    return episode.episode == self._stop_at

  def finish(self, episode):
    self._log.append((self._name, 'finish', episode))


def _fake_episode_fn(calls):
  def episode_fn(current):
    calls.append(current)
    result = {key: tf.constant(0.0) for key in learner_lib.SCALARS + (
        learner_lib.GRADIENT_NORM, learner_lib.APPLIED)}
    result.update(start=None, outputs=None, actions=None)
    return result
  return episode_fn


def test_the_loop_runs_the_budget_in_order_and_finishes():
  calls, log, contexts = [], [], []
  episode = tf.Variable(2, dtype=tf.int64)

  def context(done, budget):
    contexts.append((done, budget))
    return contextlib.nullcontext()
  ended = loop.run_episodes(
      _fake_episode_fn(calls), episode, 5, lambda current: current / 10,
      [_Recorder(log, 'a'), _Recorder(log, 'b')], contexts=[context])
  assert calls == [2, 3, 4] and int(episode) == 5
  assert (ended.episodes_run, ended.signal_name) == (3, None)
  assert contexts == [(3, 5), (4, 5), (5, 5)]
  assert log == [('a', 3, 0.2), ('b', 3, 0.2), ('a', 4, 0.3), ('b', 4, 0.3),
                 ('a', 5, 0.4), ('b', 5, 0.4), ('a', 'finish', 5),
                 ('b', 'finish', 5)]


def test_the_loop_stops_on_a_trigger_or_a_count():
  log = []
  episode = tf.Variable(0, dtype=tf.int64)
  ended = loop.run_episodes(_fake_episode_fn([]), episode, 10, lambda c: 0.0,
                            [_Recorder(log, 'a', stop_at=2),
                             _Recorder(log, 'b')])
  assert ended.episodes_run == 2 and int(episode) == 2
  assert log[-3:] == [('b', 2, 0.0), ('a', 'finish', 2), ('b', 'finish', 2)]
  ended = loop.run_episodes(_fake_episode_fn([]), episode, 10, lambda c: 0.0,
                            [], stop_after_episodes=3)
  assert ended.episodes_run == 3 and int(episode) == 5


class _Clock:
  """A clock that moves only when told to."""

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


class _SlowTrigger:
  """Takes `seconds` of the clock per call and `finish_seconds` at the end."""

  def __init__(self, clock, seconds, finish_seconds=0.0):
    self._clock, self._seconds = clock, seconds
    self._finish_seconds = finish_seconds

  def __call__(self, episode):
    self._clock.now += self._seconds

  def finish(self, episode):
    self._clock.now += self._finish_seconds


class _OtherSlowTrigger(_SlowTrigger):
  pass


def test_the_loop_says_where_its_time_went():
  clock = _Clock()
  calls = []
  fake = _fake_episode_fn(calls)

  def episode_fn(current):
    # The first call (tracing) takes 7 s, every other 2 s.
    clock.now += 7.0 if not calls else 2.0
    return fake(current)

  ended = loop.run_episodes(
      episode_fn, tf.Variable(0, dtype=tf.int64), 4, lambda c: 0.0,
      [_SlowTrigger(clock, 0.5, finish_seconds=3.0),
       _OtherSlowTrigger(clock, 0.25)], clock=clock)
  assert ended.seconds_by_part == {
      loop.FIRST_EPISODE: 7.0, loop.EPISODES: 3 * 2.0,
      '_SlowTrigger': 4 * 0.5 + 3.0, '_OtherSlowTrigger': 4 * 0.25}
  assert sum(ended.seconds_by_part.values()) == clock.now - 100.0


def test_the_poly_schedule_sets_the_optimizer():
  optimizer = tf.keras.optimizers.Adam(1.0)
  schedule = loop.poly_schedule(optimizer, 1e-3, 10, 0.9)
  assert schedule(0) == pytest.approx(1e-3)
  rate = schedule(5)
  assert rate == pytest.approx(1e-3 * 0.5 ** 0.9, rel=1e-6)
  assert float(optimizer.learning_rate.numpy()) == rate


def test_every_setting_has_one_part_and_one_binding():
  fields = [field.name for part in settings.PARTS
            for field in dataclasses.fields(part)]
  assert len(fields) == len(set(fields)) == len(settings.PART_OF)
  assert settings.binding('batch_size', 8) == 'TrainingData.batch_size = 8'
  assert settings.binding('num_episodes', 5) == (
      'Optimization.num_episodes = 5')
  gin.clear_config()
  try:
    gin.parse_config([settings.binding('eval_interval', 7),
                      settings.binding('allow_changes', ['seed'])])
    assert settings.Cadence().eval_interval == 7
    assert settings.Cadence().summary_interval == 50
    assert tuple(settings.RunControl().allow_changes) == ('seed',)
  finally:
    gin.clear_config()
  assert settings.moved_binding_hint(
      "Configurable 'train' doesn't have a parameter named 'crop_size'."
  ).startswith('train.crop_size is now TrainingData.crop_size')
  assert settings.moved_binding_hint(
      "Configurable 'train' doesn't have a parameter named 'nope'.") is None


def test_metrics_are_a_registry_with_directions():
  assert PSNR.better(21.0, 20.0) and not PSNR.better(20.0, 20.0)
  assert LAB.better(4.0, 5.0) and not LAB.better(5.0, 4.0)
  assert PSNR.better(1.0, None) and LAB.better(9.0, None)
  assert PSNR.best_index([1.0, 3.0, 3.0, 2.0]) == 1
  assert LAB.best_index([3.0, 1.0, 2.0, 1.0]) == 1
  with pytest.raises(ValueError, match='already registered'):
    tasks_lib.register_metric(tasks_lib.Metric('psnr', False))
  sharpness = tasks_lib.register_metric(tasks_lib.Metric('sharpness', True))
  try:
    task = tasks_lib.Task('sharpen', validation_metric='sharpness')
    assert task.metric is sharpness and not task.lab_metric
    # Validation cannot measure it: refused, not scored as PSNR.
    pair = ('a', np.zeros((4, 4, 1), np.float32),
            np.zeros((4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="validates with 'sharpness'"):
      validation.Validator(None, None, [pair], task)
  finally:
    del tasks_lib.METRICS['sharpness']

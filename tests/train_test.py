"""Tests of the training loop: CLI, resume, interrupts and errors."""

import json
import os
import signal
import subprocess
import sys
import time

import gin
import numpy as np
import pytest
import tensorflow as tf

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT
import cli_driver
from known_files_test import closed_port_url
from pixelrl_tf import cli
from pixelrl_tf.jobs import train_lib
from pixelrl_tf.models import model_io
from pixelrl_tf.models import restorers
from pixelrl_tf.training import loop
from pixelrl_tf.training import progress
from pixelrl_tf.training import run_settings
from pixelrl_tf.training import settings

TINY = str(PROJECT_ROOT / 'configs' / 'tiny.gin')


def _run_cli(module, *args, timeout=HANG_TIMEOUT_SECONDS):
  return subprocess.run(
      [sys.executable, '-m', module, *args], cwd=PROJECT_ROOT,
      capture_output=True, text=True, timeout=timeout)


def _train_tiny(root_dir, stream, **bindings):
  gin.clear_config()
  cli.parse_gin([TINY], [settings.binding(k, v) for k, v in bindings.items()])
  return train_lib.train(str(root_dir), progress_stream=stream)


class _Lines:
  """A progress stream that keeps what was written (`text`)."""

  def __init__(self):
    self.text = ''

  def write(self, text):
    self.text += text

  def flush(self):
    pass


def _checkpoint_values(root_dir):
  prefix = tf.train.latest_checkpoint(os.path.join(root_dir, 'train'))
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if 'network' in name or 'episode' in name or 'optimizer' in name}


def test_cli_smoke_run_writes_a_loadable_run(tmp_path):
  result = _run_cli('pixelrl_tf.train', f'--gin_file={TINY}',
                    f'--root_dir={tmp_path}')
  assert result.returncode == 0, result.stderr
  assert 'episode 6/6' in result.stderr
  assert 'Traceback' not in result.stderr
  assert 'final validation PSNR' in result.stderr
  assert (tmp_path / 'model.json').exists()
  assert (tmp_path / 'operative_config-0.gin').exists()
  config, network, _ = model_io.load_model(str(tmp_path))
  assert config.filters == 8 and config.t_max == 2
  assert config.task == 'denoise'
  assert network.trainable_variables
  # The best validated checkpoint is kept and loads as `RUN/best`.
  best = json.loads((tmp_path / 'best.json').read_text())
  assert best['metric'] == 'psnr' and best['episode'] in (3, 6)
  model_io.load_model(str(tmp_path / 'best'))
  report = json.loads((tmp_path / 'final_report.json').read_text())
  assert len(report['model_per_step']) == 2
  # Without choose_inference_steps the model restores for t_max steps.
  assert report['inference_steps'] == 2
  assert model_io.read_inference_steps(
      model_io.resolve_checkpoint(str(tmp_path))[1]) == 2
  tags = set()
  for directory in ('train', 'eval'):
    for name in os.listdir(tmp_path / directory):
      if name.startswith('events.out'):
        for event in tf.compat.v1.train.summary_iterator(
            str(tmp_path / directory / name)):
          tags.update(v.tag for v in event.summary.value)
  for tag in ('Losses/policy', 'Losses/value', 'Losses/entropy',
              'Metrics/reward', 'Metrics/val_psnr', 'Metrics/gradient_norm',
              'Metrics/mean_abs_advantage', 'Metrics/mean_abs_reward',
              'Metrics/loss_growth', 'Metrics/val_worse_than_input',
              'Images/train/action_counts', 'Images/train/action_strip',
              'Images/validation/action_strip'):
    assert tag in tags, tag


def _scalars(directory, tag):
  values = {}
  for name in os.listdir(directory):
    if name.startswith('events.out'):
      for event in tf.compat.v1.train.summary_iterator(
          os.path.join(directory, name)):
        for value in event.summary.value:
          if value.tag == tag:
            values[event.step] = float(tf.make_ndarray(value.tensor))
  return values


def _expected_rate(episode, budget, rate=1e-3):
  return rate * (1.0 - episode / budget) ** 0.9


def test_resume_continues_exactly_with_the_schedule(tmp_path, capsys):
  del capsys
  straight = tmp_path / 'straight'
  resumed = tmp_path / 'resumed'
  stream = open(os.devnull, 'w')
  _train_tiny(straight, stream, num_episodes=4, eval_interval=100,
              learning_rate=1e-3)
  first = _train_tiny(resumed, stream, num_episodes=4, eval_interval=100,
                      stop_after_episodes=3, learning_rate=1e-3)
  assert first['episode'] == 3
  second = _train_tiny(resumed, stream, num_episodes=4, eval_interval=100,
                       learning_rate=1e-3)
  assert second['episode'] == 4
  want = _checkpoint_values(straight)
  got = _checkpoint_values(resumed)
  assert want.keys() == got.keys()
  for name, value in want.items():
    np.testing.assert_allclose(got[name], value, atol=1e-6, err_msg=name)
  # The learning rate decays per episode across the resume: the rate the
  # optimizer really used in each episode, as logged after it (episode
  # index = step - 1), and the optimizer's own restored variable.
  logged = _scalars(resumed / 'train', 'Metrics/learning_rate')
  assert sorted(logged) == [1, 2, 3, 4]
  for step, value in logged.items():
    np.testing.assert_allclose(value, _expected_rate(step - 1, 4), rtol=1e-5)
  reader = tf.train.load_checkpoint(
      tf.train.latest_checkpoint(os.path.join(resumed, 'train')))
  np.testing.assert_allclose(
      reader.get_tensor('optimizer/_learning_rate/.ATTRIBUTES/'
                        'VARIABLE_VALUE'), _expected_rate(3, 4), rtol=1e-5)


def test_every_training_binding_reaches_its_object(tmp_path):
  bindings = [
      'PixelA2CAgent.gamma = 0.5', 'PixelA2CAgent.entropy_coef = 0.02',
      'PixelA2CAgent.value_loss_coef = 0.25',
      'PixelA2CAgent.reward_map_policy_gradient = True',
      'PixelA2CAgent.max_update_batch = 1',
      'PixelA2CAgent.reward_scale = 2.0',
      'PixelA2CAgent.gradient_clip_norm = 10.0',
      'PixelA2CAgent.all_actions_policy_gradient = True',
      'PixelA2CAgent.imitation_coef = 0.5',
      'PixelA2CAgent.imitation_temperature = 0.1',
      'PixelA2CAgent.imitation_updates = 7',
      'make_task.name = "poisson"', 'make_task.noise = "poisson:10"',
      'make_task.t_max = 4', 'make_task.update_interval = 2',
      'make_task.action_set = "denoise_basic"',
      'make_task.max_rotation_degrees = 5.0',
      'Architecture.filters = 4', 'Architecture.use_conv_gru = False',
      'Architecture.use_reward_map_conv = True', 'Architecture.reward_map_size = 5',
      'Scale.update_recompute = False', 'Optimization.num_episodes = 1',
      'Cadence.eval_interval = 100', 'Cadence.final_report = False',
  ]
  gin.clear_config()
  cli.parse_gin([TINY], bindings)
  result = train_lib.train(str(tmp_path), progress_stream=open(os.devnull,
                                                               'w'))
  assert result['agent_hyperparameters'] == dict(
      gamma=0.5, entropy_coef=0.02, value_loss_coef=0.25,
      reward_map_policy_gradient=True, max_update_batch=1, reward_scale=2.0,
      gradient_clip_norm=10.0, all_actions_policy_gradient=True,
      imitation_coef=0.5, imitation_temperature=0.1, imitation_updates=7)
  # The imitation term was in the loss (its summary is written only when
  # there is one).
  assert _scalars(os.path.join(tmp_path, 'train'), 'Losses/imitation')
  task = result['task']
  assert (task.name, task.noise, task.t_max, task.window, task.action_set,
          task.max_rotation_degrees) == ('poisson', 'poisson:10', 4, 2,
                                         'denoise_basic', 5.0)
  config = result['model_config']
  assert (config.filters, config.use_conv_gru, config.use_reward_map_conv,
          config.reward_map_size) == (4, False, True, 5)
  assert result['record_gradients']
  _, network, reward_map = model_io.load_model(str(tmp_path))
  assert network.num_actions == 4 and reward_map.kernel.shape[0] == 5
  # The reward map's kernel is logged as it moves from the identity.
  kernel = reward_map.kernel.numpy()[:, :, 0, 0]
  train_dir = os.path.join(tmp_path, 'train')
  assert _scalars(train_dir, 'Metrics/reward_map_centre') == pytest.approx(
      {1: kernel[2, 2]})
  assert _scalars(train_dir, 'Metrics/reward_map_sum') == pytest.approx(
      {1: kernel.sum()})
  assert kernel[2, 2] != 1.0


def test_the_step_count_chosen_on_validation_is_stored_and_used(tmp_path):
  gin.clear_config()
  cli.parse_gin([TINY], ['make_task.t_max = 4', 'Optimization.num_episodes = 3',
                         'Cadence.eval_interval = 3',
                         'Cadence.choose_inference_steps = True'])
  result = train_lib.train(str(tmp_path),
                           progress_stream=open(os.devnull, 'w'))
  report = json.loads((tmp_path / 'final_report.json').read_text())
  # The final report measures every step through `evaluate_images`, apart
  # from the validation that chose the count.
  per_step = report['model_per_step']
  assert len(per_step) == 4 and report['t_max'] == 4
  chosen = int(np.argmax(per_step)) + 1
  assert report['inference_steps'] == chosen == result['inference_steps']
  assert report['model'] == per_step[chosen - 1]
  best = json.loads((tmp_path / 'best.json').read_text())
  assert best['inference_steps'] == chosen
  assert best['value'] == pytest.approx(per_step[chosen - 1], abs=1e-3)
  eval_dir = tmp_path / 'eval'
  assert _scalars(eval_dir, 'Metrics/val_inference_steps') == {3: chosen}
  assert _scalars(eval_dir, 'Metrics/val_psnr_at_t_max') == pytest.approx(
      {3: per_step[-1]}, abs=1e-3)
  # Both checkpoints store the count; loading restores for that many steps
  # unless the caller names another count.
  for path in (str(tmp_path), str(tmp_path / 'best')):
    prefix = model_io.resolve_checkpoint(path)[1]
    assert model_io.read_inference_steps(prefix) == chosen
    assert model_io.load_model(path)[0].t_max == chosen
  assert model_io.read_model_config(str(tmp_path)).t_max == 4
  assert restorers.restorer_from_run(str(tmp_path))[1].t_max == chosen
  assert restorers.restorer_from_run(str(tmp_path), t_max=4)[1].t_max == 4
  # Where the time went: every part of the run, each measured.
  parts = result['seconds_by_part']
  assert {train_lib.SET_UP, loop.FIRST_EPISODE, loop.EPISODES,
          train_lib.DATA, train_lib.FINAL_REPORT, 'Validation',
          'Checkpoints', 'ScalarSummaries'} <= set(parts)
  assert all(seconds >= 0 for seconds in parts.values())
  assert parts[train_lib.FINAL_REPORT] > 0 and parts['Validation'] > 0


def test_a_stored_step_count_outside_the_model_is_refused(tmp_path):
  config = model_io.ModelConfig(filters=4, t_max=3)
  network = model_io.build_network(config)
  model_io.write_model_config(str(tmp_path), config)
  checkpoint = model_io.model_checkpoint(
      network, **{model_io.INFERENCE_STEPS: tf.Variable(7, dtype=tf.int64)})
  checkpoint.save(str(tmp_path / 'train' / 'ckpt'))
  with pytest.raises(model_io.CheckpointError, match='stores 7 restoration '
                     r'steps, outside 1\.\.3'):
    model_io.load_model(str(tmp_path))


def test_sigint_saves_and_the_rerun_resumes(tmp_path):
  args = [sys.executable, '-m', 'pixelrl_tf.train', f'--gin_file={TINY}',
          f'--root_dir={tmp_path}', '--gin_bindings=Optimization.num_episodes=1000',
          '--gin_bindings=Cadence.checkpoint_interval=1000']
  process = subprocess.Popen(args, cwd=PROJECT_ROOT, stderr=subprocess.PIPE,
                             text=True)
  deadline = time.time() + HANG_TIMEOUT_SECONDS
  line = ''
  while time.time() < deadline:
    line = process.stderr.readline()
    if line.startswith('episode 1/1000'):
      break
  assert line.startswith('episode 1/1000'), line
  process.send_signal(signal.SIGINT)
  _, rest = process.communicate(timeout=HANG_TIMEOUT_SECONDS)
  assert process.returncode == 130, rest
  assert 'stopped by SIGINT' in rest
  saved = int(tf.train.latest_checkpoint(
      os.path.join(tmp_path, 'train')).rsplit('-', 1)[1])
  assert saved >= 1
  lines = _Lines()
  _parse_tiny('Optimization.num_episodes = 1000', 'Cadence.checkpoint_interval = 1000',
              'RunControl.stop_after_episodes = 1')
  rerun = train_lib.train(str(tmp_path), progress_stream=lines)
  assert f'at episode {saved}' in lines.text
  assert rerun['episode'] == saved + 1


@pytest.fixture(scope='module')
def command_lines(tmp_path_factory):
  """What `train` says and does for command lines of the tests below.

  Run through `cli_driver` (one process for all of them); the smoke test
  below starts the real `python -m pixelrl_tf.train`.
  """
  base = tmp_path_factory.mktemp('command_lines')
  root = str(base / 'run')
  paper = [f'--gin_file={PROJECT_ROOT / "configs" / "denoise.gin"}',
           f'--root_dir={base / "paper_run"}']
  named_init = [f'--gin_file={TINY}', '--gin_bindings=Optimization.num_episodes = 1',
                '--gin_bindings=Cadence.eval_interval = 100',
                '--gin_bindings=Cadence.final_report = False',
                "--gin_bindings=initialise_network.init_caffemodel = "
                "'ircnn_denoise_15_gray'"]
  fresh = _fresh_machine_env(base / 'named init')
  cases = {
      'named init refused': cli_driver.Case(
          named_init + [f'--root_dir={base / "a"}'], fresh),
      # A config may choose random weights explicitly; the run says so.
      'named init missing_ok': cli_driver.Case(
          named_init + ['--gin_bindings=initialise_network.missing_ok = True',
                        f'--root_dir={base / "b"}'], fresh),
      'bad binding': cli_driver.Case(
          [f'--gin_file={TINY}', f'--root_dir={root}',
           '--gin_bindings=train.no_such_parameter = 1']),
      'moved binding': cli_driver.Case(
          [f'--gin_file={TINY}', f'--root_dir={root}',
           '--gin_bindings=train.batch_size = 4']),
      'missing gin file': cli_driver.Case(
          ['--gin_file=configs/nope.gin', f'--root_dir={root}']),
      'missing data folder': cli_driver.Case(
          [f'--gin_file={TINY}', f'--root_dir={root}',
           f'--gin_bindings=TrainingData.data_source = "{base}/nope"']),
      'paper config offline': cli_driver.Case(
          paper, _fresh_machine_env(base / 'offline')),
      'paper config server down': cli_driver.Case(
          paper, _fresh_machine_env(base / 'server down', closed_port_url())),
  }
  outcomes, _ = cli_driver.run_cases('train', list(cases.values()),
                                     base / 'driver')
  return {'base': base, **dict(zip(cases, outcomes))}


def test_bad_gin_is_one_line(command_lines):
  result = command_lines['bad binding']
  assert result.status == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('bad gin configuration')
  missing = command_lines['missing gin file']
  assert missing.status == 1
  assert 'nope.gin does not exist' in missing.stderr
  # A setting of an earlier layout says where it lives now.
  moved = command_lines['moved binding']
  assert moved.status == 1
  lines = moved.stderr.strip().splitlines()
  assert len(lines) == 1, moved.stderr
  assert lines[0].endswith('train.batch_size is now TrainingData.batch_size '
                           '(the run settings are in parts: TrainingData, '
                           'Architecture, Optimization, Scale, Cadence, '
                           'RunControl)'), lines[0]


def test_missing_data_folder_is_one_line(command_lines):
  result = command_lines['missing data folder']
  assert result.status == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error:'), result.stderr


def test_a_different_model_in_root_dir_is_refused(tmp_path):
  stream = open(os.devnull, 'w')
  model_io.write_model_config(str(tmp_path), model_io.ModelConfig(filters=4))
  with pytest.raises(train_lib.TrainingError, match='different model'):
    _train_tiny(tmp_path, stream)


def test_progress_bar_reports_rate_and_eta():
  stream = _Lines()
  bar = progress.ProgressBar(10, stream=stream, log_every_seconds=0)
  bar.update(5, {'reward': 1.5})
  assert 'episode 5/10' in stream.text and 'ETA' in stream.text
  assert 'reward 1.5' in stream.text
  assert progress.format_duration(3725) == '1:02:05'


def _parse_tiny(*bindings):
  gin.clear_config()
  cli.parse_gin([TINY], list(bindings))


# A rerun that changes guarded settings, what the refusal must name, and the
# override it offers.
_GUARDED_CHANGES = [
    (('RunControl.seed = 1', 'TrainingData.batch_size = 4'),
     ('seed 0 -> 1', 'batch_size 2 -> 4'), ['seed', 'batch_size']),
    (('TrainingData.crop_size = 24',), ('crop_size 16 -> 24',), ['crop_size']),
    (("make_task.noise = 'gaussian:15'",),
     ("task.noise 'gaussian:25' -> 'gaussian:15'",), ['task']),
    # The task's name is part of the model too: no override for that.
    (("make_task.name = 'poisson'",),
     ("model.task 'denoise' -> 'poisson'", "task.name 'denoise' -> "
      "'poisson'", 'a different model'), None),
    (("TrainingData.data_source = 'bsd432'",), ("data_source 'default' -> ",),
     ['data_source']),
    (('Optimization.num_episodes = 5',), ('num_episodes 3 -> 5',),
     ['num_episodes']),
    (('Optimization.learning_rate = 0.002', 'Optimization.learning_rate_power = 1.0'),
     ('learning_rate 0.001 -> 0.002', 'learning_rate_power 0.9 -> 1.0'),
     ['learning_rate', 'learning_rate_power']),
    (('Optimization.adam_epsilon = 1e-06',), ('adam_epsilon 1e-08 -> 1e-06',),
     ['adam_epsilon']),
    (('PixelA2CAgent.gamma = 0.9', 'PixelA2CAgent.entropy_coef = 0.02'),
     ('agent.gamma 0.95 -> 0.9', 'agent.entropy_coef 0.01 -> 0.02'),
     ['agent']),
    (('PixelA2CAgent.value_loss_coef = 1.0', 'PixelA2CAgent.reward_scale = 2.0',
      'PixelA2CAgent.gradient_clip_norm = 1.0',
      'PixelA2CAgent.reward_map_policy_gradient = True'),
     ('agent.value_loss_coef 0.5 -> 1.0', 'agent.reward_scale 1.0 -> 2.0',
      'agent.gradient_clip_norm None -> 1.0',
      'agent.reward_map_policy_gradient False -> True'), ['agent']),
    (("Scale.mixed_precision = 'mixed_bfloat16'",),
     ("mixed_precision None -> 'mixed_bfloat16'",), ['mixed_precision']),
    # A changed validation split would move training images into it.
    (('TrainingData.validation_fraction = 0.3',),
     ('validation_fraction None -> 0.3',), ['validation_fraction']),
    (("TrainingData.validation_source = '/elsewhere'", 'TrainingData.max_validation_images'
      ' = 2'), ("validation_source None -> '/elsewhere'",
                'max_validation_images 1 -> 2'),
     ['validation_source', 'max_validation_images']),
    (('Cadence.choose_inference_steps = True',),
     ('choose_inference_steps False -> True',), ['choose_inference_steps']),
]
# What a resume may change: the settings that alter neither the trajectory
# nor the validation split (only how the same update is computed, or what
# is logged and when).
_FREE_CHANGES = ("Scale.update_recompute = True",
                 'PixelA2CAgent.max_update_batch = 1',
                 'Cadence.summary_interval = 2', 'Cadence.checkpoint_interval = 1',
                 'Cadence.keep_checkpoints = 5')


def test_resume_guards_name_every_difference(tmp_path):
  stream = open(os.devnull, 'w')
  _train_tiny(tmp_path, stream, num_episodes=3, stop_after_episodes=1,
              eval_interval=100, final_report=False)
  base = ('Optimization.num_episodes = 3', 'Cadence.eval_interval = 100',
          'Cadence.final_report = False')
  files_before = sorted(os.listdir(tmp_path))
  for bindings, named, keys in _GUARDED_CHANGES:
    _parse_tiny(*base, *bindings)
    with pytest.raises(train_lib.TrainingError) as error:
      train_lib.train(str(tmp_path), progress_stream=stream)
    # gin appends the configurable's name on a second line; the commands
    # print the first (cli.first_line).
    message = cli.first_line(error.value)
    for text in named:
      assert text in message, (bindings, message)
    assert 'new --root_dir' in message, message
    if keys:
      assert f'RunControl.allow_changes = {keys!r}' in message, message
    else:
      assert 'allow_changes' not in message, message
    # Refused before anything was written.
    assert sorted(os.listdir(tmp_path)) == files_before, bindings
  # A run directory written before a setting was guarded resumes (the
  # settings it does not record are not compared) and records them now.
  run_json = tmp_path / 'run.json'
  stored = json.loads(run_json.read_text())
  assert stored['agent']['gamma'] == 0.95 and stored['learning_rate'] == 1e-3
  older = {key: stored[key] for key in ('task', 'data_source', 'list_file',
                                        'seed', 'batch_size', 'crop_size',
                                        'num_episodes')}
  run_json.write_text(json.dumps(older))
  # Extending the budget is deliberate: allowed by name; the free settings
  # need nothing.
  _parse_tiny(*base, 'Optimization.num_episodes = 4',
              "RunControl.allow_changes = ['num_episodes']", *_FREE_CHANGES)
  result = train_lib.train(str(tmp_path), progress_stream=stream)
  assert result['episode'] == 4
  assert json.loads(run_json.read_text())['agent'] == stored['agent']
  # Every start keeps its operative configuration.
  assert (tmp_path / 'operative_config-0.gin').exists()
  assert 'Optimization.num_episodes = 4' in (
      tmp_path / 'operative_config-1.gin').read_text()
  assert json.loads((tmp_path / 'run.json').read_text())['num_episodes'] == 4


def test_operative_configs_of_starts_at_one_episode_are_all_kept(tmp_path):
  # Runs that stop before their first checkpoint start again at episode 0;
  # each configuration that differs is kept, a repeated one is not copied.
  written = []
  for text in ('Cadence.eval_interval = 100\n', 'Cadence.eval_interval = 100\n',
               'Cadence.eval_interval = 50\n', 'Cadence.eval_interval = 100\n'):
    path = run_settings.write_operative_config(str(tmp_path), 0, text)
    written.append(os.path.basename(path))
  assert written == ['operative_config-0.gin', 'operative_config-0.gin',
                     'operative_config-0-2.gin', 'operative_config-0.gin']
  assert sorted(os.listdir(tmp_path)) == ['operative_config-0-2.gin',
                                          'operative_config-0.gin']
  assert (tmp_path / 'operative_config-0-2.gin').read_text() == (
      'Cadence.eval_interval = 50\n')


def test_damaged_or_missing_checkpoints_are_one_line_and_never_trained_over(
    tmp_path):
  stream = open(os.devnull, 'w')
  _train_tiny(tmp_path, stream, num_episodes=2, checkpoint_interval=1,
              eval_interval=100, final_report=False)
  train_dir = tmp_path / 'train'
  data = next(train_dir.glob('ckpt-2.data-*'))
  data.write_bytes(data.read_bytes()[:len(data.read_bytes()) // 2])
  before = sorted(os.listdir(train_dir))
  _parse_tiny('Optimization.num_episodes = 2', 'Cadence.checkpoint_interval = 1',
              'Cadence.eval_interval = 100', 'Cadence.final_report = False')
  with pytest.raises(train_lib.TrainingError) as error:
    train_lib.train(str(tmp_path), progress_stream=stream)
  # gin appends the configurable's name on a second line; the commands
  # print the first (cli.first_line).
  message = cli.first_line(error.value)
  assert 'cannot read checkpoint' in message and 'ckpt-2' in message
  assert f'move {train_dir}/ckpt-2.* out of {train_dir}' in message
  assert 'resume from' in message and message.endswith('ckpt-1')
  assert sorted(os.listdir(train_dir)) == before
  # Doing what it says resumes from the checkpoint before.
  aside = tmp_path / 'aside'
  aside.mkdir()
  for path in train_dir.glob('ckpt-2.*'):
    path.rename(aside / path.name)
  lines = _Lines()
  result = train_lib.train(str(tmp_path), progress_stream=lines)
  assert result['episode'] == 2
  assert 'at episode 1' in lines.text
  # A run whose checkpoints are all gone is refused: training again from
  # scratch would quietly throw the run away.
  for path in train_dir.glob('ckpt-*'):
    path.unlink()
  with pytest.raises(train_lib.TrainingError,
                     match='no checkpoint that can be resumed from'):
    train_lib.train(str(tmp_path), progress_stream=stream)


def test_a_foreign_checkpoint_to_start_from_is_one_line(tmp_path):
  stream = open(os.devnull, 'w')
  other = tmp_path / 'other'
  config = model_io.ModelConfig(filters=4, t_max=2)
  model_io.save_model(str(other), config, model_io.build_network(config))
  _parse_tiny('Optimization.num_episodes = 1', 'Cadence.eval_interval = 100',
              f'initialise_network.init_checkpoint = {str(other)!r}')
  with pytest.raises(model_io.CheckpointError) as error:
    train_lib.train(str(tmp_path / 'run'), progress_stream=stream)
  message = cli.first_line(error.value)
  assert 'does not fit the network of this run' in message, message
  assert not (tmp_path / 'run' / 'model.json').exists()


def test_an_unwritable_run_directory_is_one_line(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('not a directory')
  _parse_tiny('Optimization.num_episodes = 1')
  with pytest.raises(train_lib.TrainingError,
                     match='cannot create the run directory'):
    train_lib.train(str(blocker / 'run'), progress_stream=open(os.devnull,
                                                               'w'))
  assert blocker.read_text() == 'not a directory'


def test_a_failed_first_start_writes_no_model(tmp_path):
  stream = open(os.devnull, 'w')
  with pytest.raises((FileNotFoundError, ValueError)):
    _train_tiny(tmp_path, stream, data_source=str(tmp_path / 'nope'))
  assert not (tmp_path / 'model.json').exists()
  assert not (tmp_path / 'run.json').exists()
  # The same directory then starts normally with another configuration.
  result = _train_tiny(tmp_path, stream, num_episodes=1, filters=4,
                       eval_interval=100, final_report=False)
  assert result['episode'] == 1


def test_a_non_finite_update_is_not_applied_and_nothing_is_saved(tmp_path):
  stream = open(os.devnull, 'w')
  _train_tiny(tmp_path, stream, num_episodes=2, eval_interval=100,
              final_report=False)
  saved = _checkpoint_values(tmp_path)
  gin.clear_config()
  cli.parse_gin([TINY], ['Optimization.num_episodes = 4', 'Cadence.eval_interval = 100',
                         'Cadence.final_report = False',
                         "RunControl.allow_changes = ['num_episodes', 'agent']",
                         # Infinite rewards: non-finite returns and gradients.
                         'PixelA2CAgent.reward_scale = 1e400'])
  with pytest.raises(train_lib.TrainingError,
                     match='non-finite .* at episode 2.*episode 2'):
    train_lib.train(str(tmp_path), progress_stream=stream)
  assert tf.train.latest_checkpoint(str(tmp_path / 'train')).endswith(
      'ckpt-2')
  after = _checkpoint_values(tmp_path)
  for name, value in saved.items():
    np.testing.assert_array_equal(after[name], value, err_msg=name)


def _fresh_machine_env(tmp_path, base_url=None):
  """No data root, an empty cache, and either offline or `base_url`."""
  from pixelrl_tf.data import known_files  # pylint: disable=g-import-not-at-top
  env = {k: v for k, v in os.environ.items() if not k.startswith('PIXELRL_')}
  env[known_files.CACHE_DIR_ENV] = str(tmp_path / 'cache')
  if base_url is None:
    env[known_files.OFFLINE_ENV] = '1'
  else:
    env[known_files.BASE_URL_ENV] = base_url
  return env


@pytest.mark.parametrize('network', ['offline', 'server down'])
def test_paper_config_on_a_fresh_machine_names_every_missing_file(
    command_lines, network):
  result = command_lines[f'paper config {network}']
  assert result.status == 1, result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  for name in ('bsd432', 'bsd432_list', 'ircnn_denoise_15_gray'):
    assert f'{name} (' in lines[0], lines[0]
  assert ('`python -m pixelrl_tf.download bsd432 bsd432_list '
          'ircnn_denoise_15_gray`') in lines[0], lines[0]
  assert 'PIXELRL_DATA_ROOT' in lines[0]
  # Nothing was claimed or cached.
  base = command_lines['base']
  assert not (base / 'paper_run' / 'model.json').exists()
  assert not any((base / network).rglob('*.npz'))


def test_a_named_initialisation_is_never_skipped_silently(command_lines):
  refused = command_lines['named init refused']
  assert refused.status == 1
  lines = refused.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(
      'error: ircnn_denoise_15_gray ('), refused.stderr
  assert 'python -m pixelrl_tf.download ircnn_denoise_15_gray' in lines[0]
  chosen = command_lines['named init missing_ok']
  assert chosen.status == 0, chosen.stderr
  assert ('starting from random weights (initialise_network.missing_ok)'
          in chosen.stderr), chosen.stderr
  assert 'note: ircnn_denoise_15_gray (' in chosen.stderr
  assert 'model_checkpoint_path' in (
      command_lines['base'] / 'b' / 'train' / 'checkpoint').read_text()


def test_a_named_initialisation_is_resolved_from_the_data_root(tmp_path):
  from pixelrl_tf.data import known_files  # pylint: disable=g-import-not-at-top
  source = known_files.resolve('ircnn_denoise_15_gray') if os.environ.get(
      known_files.DATA_ROOT_ENV) else None
  if source is None:
    pytest.skip('needs the IRCNN weights under PIXELRL_DATA_ROOT')
  lines = _Lines()
  _parse_tiny('Optimization.num_episodes = 1', 'Cadence.eval_interval = 100',
              'Cadence.final_report = False', 'Architecture.filters = 64',
              "initialise_network.init_caffemodel = 'ircnn_denoise_15_gray'")
  train_lib.train(str(tmp_path), progress_stream=lines)
  assert (f'trunk and branches initialised from ircnn_denoise_15_gray '
          f'({source})') in lines.text

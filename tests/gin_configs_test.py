"""Every shipped gin file parses, and its bindings take effect."""

import gin
import pytest

from conftest import PROJECT_ROOT
from pixelrl_tf import cli
from pixelrl_tf.jobs import train_lib  # pylint: disable=unused-import
from pixelrl_tf.tasks import tasks as tasks_lib

GIN_FILES = sorted((PROJECT_ROOT / 'configs').glob('*.gin'))


def _parse(name, bindings=()):
  cli.parse_gin([str(PROJECT_ROOT / 'configs' / name)], list(bindings))


def test_there_are_configs():
  names = {p.name for p in GIN_FILES}
  assert {'denoise.gin', 'denoise_quick.gin', 'tiny.gin', 'denoise_fcn.gin',
          'denoise_rmc.gin', 'denoise_sigma15.gin', 'denoise_sigma50.gin',
          'ablation_basic.gin', 'color_enhance.gin', 'restore.gin'} <= names


@pytest.mark.parametrize('path', GIN_FILES, ids=lambda p: p.name)
def test_gin_file_parses_and_names_a_valid_task(path):
  cli.parse_gin([str(path)], [])
  task = tasks_lib.make_task()
  assert task.t_max >= 1 and task.t_max % task.window == 0
  task.get_action_set()
  task.get_reward_fn()
  assert gin.query_parameter('TrainingData.batch_size') >= 1


@pytest.mark.parametrize('name,field,value', [
    ('denoise.gin', 'noise', 'gaussian:25'),
    ('denoise_sigma15.gin', 'noise', 'gaussian:15'),
    ('denoise_sigma50.gin', 'noise', 'gaussian:50'),
    ('poisson_10.gin', 'noise', 'poisson:10'),
    ('salt_pepper_09.gin', 'noise', 'salt_pepper:0.9'),
    ('restore.gin', 't_max', 15),
    ('restore.gin', 'update_interval', 5),
    ('restore.gin', 'episode_source', 'text'),
    ('color_enhance.gin', 'action_set', 'color'),
    ('color_enhance.gin', 'reward', 'lab_distance'),
    ('color_enhance.gin', 'update_interval', 5),
    ('ablation_basic.gin', 'action_set', 'denoise_basic'),
    ('tiny.gin', 't_max', 2),
])
def test_task_fields(name, field, value):
  _parse(name)
  assert getattr(tasks_lib.make_task(), field) == value


@pytest.mark.parametrize('name,parameter,value', [
    ('denoise_fcn.gin', 'Architecture.use_conv_gru', False),
    ('denoise_rmc.gin', 'Architecture.use_reward_map_conv', True),
    ('denoise.gin', 'Optimization.num_episodes', 30000),
    ('denoise.gin', 'TrainingData.batch_size', 64),
    ('denoise.gin', 'TrainingData.validation_source', 'default'),
    ('denoise.gin', 'PixelA2CAgent.gamma', 0.95),
    ('tiny.gin', 'TrainingData.crop_size', 16),
])
def test_bindings_take_effect(name, parameter, value):
  _parse(name)
  assert gin.query_parameter(parameter) == value


def test_the_bsd_configs_train_on_the_whole_list():
  _parse('denoise.gin')
  with pytest.raises(ValueError):
    gin.query_parameter('TrainingData.validation_fraction')


def test_command_line_bindings_override_files():
  _parse('denoise.gin', ['make_task.noise = "poisson:30"'])
  assert tasks_lib.make_task().noise == 'poisson:30'


@pytest.mark.parametrize('binding', [
    'train.not_a_parameter = 3',
    'FcnActorCritic.filters = 32',
    'PixelA2CAgent.use_reward_map_conv = True',
    'train.noise = "gaussian:15"',
])
def test_bindings_that_would_do_nothing_are_errors(binding):
  with pytest.raises(ValueError):
    cli.parse_gin([], [binding])

"""Every shipped gin file parses, and its bindings take effect."""

import gin
import pytest

from conftest import PROJECT_ROOT
from pixelrl_tf import cli
from pixelrl_tf.training import train_lib  # pylint: disable=unused-import

GIN_FILES = sorted((PROJECT_ROOT / 'configs').glob('*.gin'))


def test_there_are_configs():
  names = {p.name for p in GIN_FILES}
  assert {'denoise.gin', 'denoise_quick.gin', 'tiny.gin', 'denoise_fcn.gin',
          'denoise_rmc.gin', 'denoise_sigma15.gin',
          'denoise_sigma50.gin'} <= names


@pytest.mark.parametrize('path', GIN_FILES, ids=lambda p: p.name)
def test_gin_file_parses(path):
  cli.parse_gin([str(path)], [])
  assert gin.query_parameter('train.t_max') >= 1
  assert gin.query_parameter('train.batch_size') >= 1


@pytest.mark.parametrize('name,parameter,value', [
    ('denoise.gin', 'train.noise', 'gaussian:25'),
    ('denoise_sigma15.gin', 'train.noise', 'gaussian:15'),
    ('denoise_sigma50.gin', 'train.noise', 'gaussian:50'),
    ('denoise_fcn.gin', 'train.use_conv_gru', False),
    ('denoise_rmc.gin', 'train.use_reward_map_conv', True),
    ('denoise.gin', 'train.num_episodes', 30000),
    ('denoise.gin', 'train.batch_size', 64),
    ('tiny.gin', 'train.crop_size', 16),
])
def test_bindings_take_effect(name, parameter, value):
  cli.parse_gin([str(PROJECT_ROOT / 'configs' / name)], [])
  assert gin.query_parameter(parameter) == value


def test_command_line_bindings_override_files():
  cli.parse_gin([str(PROJECT_ROOT / 'configs' / 'denoise.gin')],
                ['train.noise = "poisson:30"'])
  assert gin.query_parameter('train.noise') == 'poisson:30'


def test_unknown_binding_is_an_error():
  with pytest.raises(ValueError):
    cli.parse_gin([], ['train.not_a_parameter = 3'])

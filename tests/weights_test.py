"""Tests of the Chainer npz and Caffe readers and of the weight import tool.

Everything here runs on small synthetic files (no shared data needed); known
names resolve through a temporary data root or fail offline.
"""

import hashlib
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import HANG_TIMEOUT_SECONDS
import caffe_encoding as wire
import reference_numpy
from pixelrl_tf.agents import reward_map as reward_map_lib
from pixelrl_tf.data import known_files
from pixelrl_tf.jobs import import_weights_lib
from pixelrl_tf.models import model_io
from pixelrl_tf.networks import conv_gru
from pixelrl_tf.networks import fcn_actor_critic
from pixelrl_tf.weights import caffemodel
from pixelrl_tf.weights import chainer_npz

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILTERS = 4
NUM_ACTIONS = 9

# Chainer link -> network layer, written out independently of the loader.
_CONV_LINKS = {
    'conv1': 'conv1', 'diconv2/diconv': 'diconv2',
    'diconv3/diconv': 'diconv3', 'diconv4/diconv': 'diconv4',
    'diconv5_pi/diconv': 'diconv5_pi', 'diconv6_pi/diconv': 'diconv6_pi',
    'diconv5_V/diconv': 'diconv5_v', 'diconv6_V/diconv': 'diconv6_v',
    'conv7_V': 'conv7_v',
}
_GRU_KEYS = {'conv7_Wz/W': 'wz', 'conv7_Uz/W': 'uz', 'conv7_Wr/W': 'wr',
             'conv7_Ur/W': 'ur', 'conv7_W/W': 'w', 'conv7_U/W': 'u'}


def fake_arrays(variant, channels=1, filters=FILTERS, seed=0):
  """Random arrays with the keys and shapes of a released file."""
  rng = np.random.default_rng(seed)
  arrays = {}

  def conv(link, out_channels, in_channels, bias=True):
    arrays[f'{link}/W'] = (0.4 * rng.normal(
        size=(out_channels, in_channels, 3, 3))).astype(np.float32)
    if bias:
      arrays[f'{link}/b'] = (0.1 * rng.normal(size=out_channels)).astype(
          np.float32)

  conv('conv1', filters, channels)
  if variant == 'regression':
    for index in range(2, 7):
      conv(f'diconv{index}/diconv', filters, filters)
    conv('conv7', channels, filters)
    return arrays
  for link in list(_CONV_LINKS)[1:-1]:
    conv(link, filters, filters)
  conv('conv7_V', 1, filters)
  if variant == 'fcn':
    conv('conv7_pi/model', NUM_ACTIONS, filters)
  else:
    for key in _GRU_KEYS:
      conv(key[:-2], filters, filters, bias=False)
    conv('conv8_pi/model', NUM_ACTIONS, filters)
  if variant == 'gru_rmc':
    arrays['conv_R/W'] = rng.normal(size=(1, 1, 33, 33)).astype(np.float32)
  return arrays


def write_npz(path, arrays):
  np.savez(path, **arrays)
  return str(path)


def make_network(variant, channels=1, filters=FILTERS,
                 num_actions=NUM_ACTIONS):
  network = fcn_actor_critic.FcnActorCritic(
      tf.TensorSpec([None, None, channels], tf.float32), num_actions,
      filters=filters, use_conv_gru=variant != 'fcn')
  network.create_variables()
  reward_map = (reward_map_lib.RewardMapConv()
                if variant == 'gru_rmc' else None)
  return network, reward_map


def assert_network_holds(network, reward_map, arrays, variant):
  """Checks every variable against the arrays (explicit key table)."""
  links = dict(_CONV_LINKS)
  links['conv7_pi/model' if variant == 'fcn' else 'conv8_pi/model'] = (
      'conv7_pi' if variant == 'fcn' else 'conv8_pi')
  for link, layer_name in links.items():
    layer = network.layer_by_name(layer_name)
    np.testing.assert_array_equal(
        layer.kernel.numpy(), arrays[f'{link}/W'].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(layer.bias.numpy(), arrays[f'{link}/b'])
  if variant != 'fcn':
    gru = network.layer_by_name('conv_gru')
    for key, name in _GRU_KEYS.items():
      np.testing.assert_array_equal(getattr(gru, name).numpy(),
                                    arrays[key].transpose(2, 3, 1, 0))
  if variant == 'gru_rmc':
    np.testing.assert_array_equal(reward_map.kernel.numpy()[:, :, 0, 0],
                                  arrays['conv_R/W'][0, 0])


def one_line_error(call, *fragments):
  """Runs `call`, expects a one-line ValueError containing `fragments`."""
  with pytest.raises(ValueError) as info:
    call()
  message = str(info.value)
  assert '\n' not in message, message
  for fragment in fragments:
    assert fragment in message, message
  return message


@pytest.mark.parametrize('variant', ['fcn', 'gru', 'gru_rmc', 'regression'])
def test_detect_variant(tmp_path, variant):
  arrays = fake_arrays(variant)
  assert chainer_npz.detect_variant(arrays) == variant
  path = write_npz(tmp_path / 'model.npz', arrays)
  assert chainer_npz.detect_variant(path) == variant


@pytest.mark.parametrize('variant', ['fcn', 'gru', 'gru_rmc'])
def test_full_load_copies_every_array(tmp_path, variant):
  arrays = fake_arrays(variant)
  path = write_npz(tmp_path / 'model.npz', arrays)
  network, reward_map = make_network(variant)
  written = chainer_npz.load_into_network(path, network, reward_map,
                                          variant=variant)
  assert {a.key for a in written} == set(arrays)
  assert_network_holds(network, reward_map, arrays, variant)


@pytest.mark.parametrize('variant', ['fcn', 'gru'])
def test_loaded_network_matches_the_numpy_reference(variant):
  arrays = fake_arrays(variant, seed=3)
  network, _ = make_network(variant)
  chainer_npz.load_into_network(arrays, network)
  rng = np.random.default_rng(1)
  image = rng.random((11, 13)).astype(np.float32)
  state = network.get_initial_state(1)
  hidden = None
  for _ in range(2):  # The second step runs with a non-zero GRU state.
    (logits, values), state = network(image[None, ..., None],
                                      network_state=state)
    want_logits, want_value, hidden = reference_numpy.forward(
        arrays, image, hidden, with_value=True)
    np.testing.assert_allclose(logits.numpy()[0], want_logits, atol=1e-4)
    np.testing.assert_allclose(values.numpy()[0], want_value, atol=1e-4)
    if variant == 'gru':
      # float32 sigmoid/tanh differ by CPU vector ISA (AVX2 vs AVX-512)
      # at the 1e-5 level; a wrong mapping is off by far more.
      np.testing.assert_allclose(state.numpy()[0], hidden, atol=3e-5)
    image = image + 0.1 * rng.random(image.shape).astype(np.float32)


def test_unreadable_files(tmp_path):
  network, _ = make_network('gru')
  text = tmp_path / 'notes.npz'
  text.write_text('not a zip archive\n')
  one_line_error(lambda: chainer_npz.load_into_network(str(text), network),
                 'notes.npz', 'not an .npz file')
  truncated = tmp_path / 'truncated.npz'
  data = open(write_npz(tmp_path / 'full.npz', fake_arrays('gru')),
              'rb').read()
  truncated.write_bytes(data[:len(data) // 2])
  one_line_error(
      lambda: chainer_npz.load_into_network(str(truncated), network),
      'truncated.npz')
  with pytest.raises(FileNotFoundError, match='missing.npz'):
    chainer_npz.load_into_network(str(tmp_path / 'missing.npz'), network)
  unknown = write_npz(tmp_path / 'unknown.npz', {'a/W': np.zeros(3)})
  one_line_error(lambda: chainer_npz.detect_variant(unknown),
                 'not a PixelRL model', "'a/W'")


def test_variant_mismatch_messages(tmp_path):
  gru = write_npz(tmp_path / 'gru.npz', fake_arrays('gru'))
  fcn = write_npz(tmp_path / 'fcn.npz', fake_arrays('fcn'))
  network, reward_map = make_network('gru_rmc')
  one_line_error(
      lambda: chainer_npz.load_into_network(gru, network, reward_map,
                                            variant='gru_rmc'),
      "variant 'gru_rmc'", "holds a 'gru' model", 'conv_R/W')
  one_line_error(
      lambda: chainer_npz.load_into_network(gru, network, variant='fcn'),
      "variant 'fcn'", "holds a 'gru' model")
  one_line_error(
      lambda: chainer_npz.load_into_network(fcn, network, variant='gru'),
      "holds a 'fcn' model", 'conv7_pi/model/W')
  one_line_error(
      lambda: chainer_npz.load_into_network(gru, network, variant='gru2'),
      "unknown variant 'gru2'")
  # The file and the network disagree.
  one_line_error(lambda: chainer_npz.load_into_network(fcn, network),
                 'use_conv_gru=False')
  rmc = write_npz(tmp_path / 'rmc.npz', fake_arrays('gru_rmc'))
  one_line_error(lambda: chainer_npz.load_into_network(rmc, network),
                 'conv_R/W', 'no reward map')


def test_key_and_shape_errors_name_the_key(tmp_path):
  network, _ = make_network('gru')
  arrays = fake_arrays('gru')
  missing = dict(arrays)
  del missing['conv7_Ur/W']
  one_line_error(lambda: chainer_npz.load_into_network(missing, network),
                 "missing key 'conv7_Ur/W'")
  extra = dict(arrays, **{'conv9/W': np.zeros([1, 1, 3, 3], np.float32)})
  one_line_error(lambda: chainer_npz.load_into_network(extra, network),
                 "unexpected key 'conv9/W'")
  wrong = dict(arrays)
  wrong['diconv3/diconv/W'] = np.zeros([4, 5, 3, 3], np.float32)
  one_line_error(lambda: chainer_npz.load_into_network(wrong, network),
                 "'diconv3/diconv/W'", 'expected (4, 4, 3, 3)',
                 'got (4, 5, 3, 3)')
  path = write_npz(tmp_path / 'wide.npz', fake_arrays('gru', filters=6))
  one_line_error(lambda: chainer_npz.load_into_network(path, network),
                 'wide.npz', "'conv1/W'", 'expected (4, 1, 3, 3)',
                 'got (6, 1, 3, 3)')
  not_finite = dict(arrays)
  not_finite['conv1/b'] = np.full([FILTERS], np.nan, np.float32)
  one_line_error(lambda: chainer_npz.load_into_network(not_finite, network),
                 "'conv1/b'", 'NaN')


def test_failed_load_leaves_the_network_unchanged():
  network, _ = make_network('gru')
  before = [v.numpy() for v in network.variables]
  arrays = fake_arrays('gru')
  arrays['conv8_pi/model/b'] = np.zeros([7], np.float32)  # checked last
  with pytest.raises(ValueError):
    chainer_npz.load_into_network(arrays, network)
  for old, variable in zip(before, network.variables):
    np.testing.assert_array_equal(old, variable.numpy())


def test_partial_load_of_the_colour_regression_model(tmp_path):
  arrays = fake_arrays('regression', channels=3)
  path = write_npz(tmp_path / '200model.npz', arrays)
  network, _ = make_network('gru', channels=3, num_actions=13)
  untouched = {name: network.layer_by_name(name).kernel.numpy()
               for name in ('conv8_pi', 'conv7_v')}
  gru_before = network.layer_by_name('conv_gru').wz.numpy()
  one_line_error(lambda: chainer_npz.load_into_network(path, network),
                 'regression', 'layers=')
  chainer_npz.load_into_network(path, network,
                                layers=chainer_npz.COLOR_INIT_LAYERS)
  sources = {'conv1': 'conv1', 'diconv2': 'diconv2/diconv',
             'diconv3': 'diconv3/diconv', 'diconv4': 'diconv4/diconv',
             'diconv5_pi': 'diconv5/diconv', 'diconv5_v': 'diconv5/diconv',
             'diconv6_pi': 'diconv6/diconv', 'diconv6_v': 'diconv6/diconv'}
  for name, link in sources.items():
    layer = network.layer_by_name(name)
    np.testing.assert_array_equal(layer.kernel.numpy(),
                                  arrays[link + '/W'].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(layer.bias.numpy(), arrays[link + '/b'])
  for name, kernel in untouched.items():
    np.testing.assert_array_equal(network.layer_by_name(name).kernel.numpy(),
                                  kernel)
  np.testing.assert_array_equal(network.layer_by_name('conv_gru').wz.numpy(),
                                gru_before)
  one_line_error(
      lambda: chainer_npz.load_into_network(path, network,
                                            layers=['conv_gru']),
      "no weights for layer 'conv_gru'")
  one_line_error(
      lambda: chainer_npz.load_into_network(path, network,
                                            layers=['conv9']),
      "no layer 'conv9'")


def test_partial_load_keeps_the_identity_reward_map():
  """The RMC training starts from a ConvGRU model and an identity w."""
  arrays = fake_arrays('gru')
  network, reward_map = make_network('gru_rmc')
  all_layers = ['conv1', 'diconv2', 'diconv3', 'diconv4', 'diconv5_pi',
                'diconv6_pi', 'diconv5_v', 'diconv6_v', 'conv_gru',
                'conv8_pi', 'conv7_v']
  chainer_npz.load_into_network(arrays, network, reward_map,
                                layers=all_layers)
  assert_network_holds(network, None, arrays, 'gru')
  np.testing.assert_array_equal(reward_map.kernel.numpy(),
                                reward_map_lib.identity_kernel(33))
  one_line_error(
      lambda: chainer_npz.load_into_network(
          arrays, network, reward_map,
          layers=[chainer_npz.REWARD_MAP_LAYER]),
      "no weights for layer 'reward_map_conv'")


@pytest.mark.parametrize('variant', ['fcn', 'gru', 'gru_rmc'])
def test_import_round_trip(tmp_path, variant):
  arrays = fake_arrays(variant, seed=5)
  path = write_npz(tmp_path / 'model.npz', arrays)
  run_dir = str(tmp_path / 'run')
  config, _ = import_weights_lib.import_npz(path, run_dir, t_max=7)
  assert config.variant == variant
  assert (config.channels, config.filters, config.t_max) == (1, FILTERS, 7)
  loaded_config, network, reward_map = model_io.load_model(run_dir)
  assert loaded_config == config
  assert_network_holds(network, reward_map, arrays, variant)
  one_line_error(lambda: import_weights_lib.import_npz(path, run_dir),
                 'already holds a model')


def test_import_errors(tmp_path):
  gru = write_npz(tmp_path / 'gru.npz', fake_arrays('gru'))
  one_line_error(
      lambda: import_weights_lib.import_npz(gru, str(tmp_path / 'a'),
                                            variant='gru_rmc'),
      'gru.npz', "variant 'gru_rmc'", 'conv_R/W')
  regression = write_npz(tmp_path / 'reg.npz', fake_arrays('regression'))
  one_line_error(
      lambda: import_weights_lib.import_npz(regression, str(tmp_path / 'b')),
      'regression FCN')
  assert not os.path.exists(tmp_path / 'a')
  colour = write_npz(tmp_path / 'colour.npz',
                     fake_arrays('fcn', channels=3))
  config, _ = import_weights_lib.import_npz(colour, str(tmp_path / 'c'))
  assert config.channels == 3


def test_import_a_known_name(tmp_path, monkeypatch):
  arrays = fake_arrays('gru_rmc', seed=4)
  root = tmp_path / 'data'
  relpath = 'official_weights/test/model.npz'
  (root / relpath).parent.mkdir(parents=True)
  payload = pathlib.Path(write_npz(root / relpath, arrays)).read_bytes()
  monkeypatch.setitem(known_files.REGISTRY, 'test_rmc', known_files.KnownFile(
      'test_rmc', relpath,
      known_files.Source('owner/repo', '0' * 40, 'model.npz'), len(payload),
      hashlib.sha256(payload).hexdigest()))
  monkeypatch.setenv(known_files.DATA_ROOT_ENV, str(root))
  config, _ = import_weights_lib.import_npz('test_rmc', str(tmp_path / 'run'))
  assert config.variant == 'gru_rmc'
  _, network, reward_map = model_io.load_model(str(tmp_path / 'run'))
  assert_network_holds(network, reward_map, arrays, 'gru_rmc')
  one_line_error(
      lambda: import_weights_lib.import_npz('test_rcm', str(tmp_path / 'x')),
      "weights file 'test_rcm' does not exist and is not a known name",
      'did you mean test_rmc?')
  with pytest.raises(FileNotFoundError,
                     match=r"^weights file 'nowhere/model\.npz' does not "
                     'exist$'):
    import_weights_lib.import_npz('nowhere/model.npz', str(tmp_path / 'x'))
  assert not os.path.exists(tmp_path / 'x')


def _run_cli(*args, env=None):
  env = dict(env if env is not None else os.environ, PYTHONPATH=PROJECT_ROOT)
  return subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.import_weights', *args],
      cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
      timeout=HANG_TIMEOUT_SECONDS, check=False)


def test_cli(tmp_path):
  arrays = fake_arrays('gru_rmc', seed=2)
  path = write_npz(tmp_path / 'rmc.npz', arrays)
  run_dir = str(tmp_path / 'run')
  result = _run_cli(f'--npz={path}', f'--output_dir={run_dir}',
                    '--variant=gru_rmc', '--t_max=6')
  assert result.returncode == 0, result.stderr
  assert "'gru_rmc'" in result.stdout
  config, network, reward_map = model_io.load_model(run_dir)
  assert config.t_max == 6
  assert_network_holds(network, reward_map, arrays, 'gru_rmc')

  result = _run_cli(f'--npz={path}', f'--output_dir={tmp_path / "x"}',
                    '--variant=gru')
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith('error: '), lines
  assert "variant 'gru' does not match" in lines[0]
  assert 'Traceback' not in result.stderr


def test_cli_known_name_offline_is_one_line(tmp_path):
  env = {k: v for k, v in os.environ.items() if not k.startswith('PIXELRL_')}
  env.update({known_files.CACHE_DIR_ENV: str(tmp_path / 'cache'),
              known_files.OFFLINE_ENV: '1'})
  result = _run_cli('--npz=gru_rmc_sigma25',
                    f'--output_dir={tmp_path / "run"}', env=env)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith('error: gru_rmc_sigma25 (official_weights/'
                             'denoise_with_convGRU_and_RMC/pretrained_25.npz) '
                             'is not available'), lines
  assert 'downloads are off' in lines[0]
  assert '`python -m pixelrl_tf.download gru_rmc_sigma25`' in lines[0]
  assert f'{known_files.DATA_ROOT_ENV}=<folder>' in lines[0]
  assert not (tmp_path / 'run').exists()
  assert not list((tmp_path / 'cache').rglob('*.npz'))


# --- Caffe --------------------------------------------------------------


def _conv_param(dilation, square=True):
  if square:
    geometry = wire.uint(4, 3) + wire.uint(3, dilation)
  else:
    geometry = (wire.uint(11, 3) + wire.uint(12, 3) +
                wire.uint(9, dilation) +
                wire.uint(10, dilation))
  return (wire.uint(1, 64) + geometry +
          wire.uint(18, dilation))


def _layer_v2(name, layer_type, blobs=(), convolution=None):
  message = wire.string(1, name) + wire.string(2, layer_type)
  message += b''.join(wire.field(7, 2, wire.blob(b)) for b in blobs)
  if convolution is not None:
    message += wire.field(106, 2, convolution)
  return wire.field(100, 2, message)


def test_caffe_parser_on_a_hand_encoded_net():
  rng = np.random.default_rng(0)
  weight = rng.normal(size=(2, 1, 3, 3)).astype(np.float32)
  bias = np.array([0.5, -1.5], np.float32)
  legacy_weight = rng.normal(size=(1, 2, 1, 1)).astype(np.float32)
  legacy = wire.field(2, 2, wire.string(4, 'old_conv') + wire.uint(5, 4) +
                  wire.field(6, 2, wire.blob(legacy_weight, legacy=True)))
  data = (wire.string(1, 'tiny') + _layer_v2('input', 'Input') +
          _layer_v2('conv_a', 'Convolution', [weight, bias],
                    _conv_param(2, square=False)) +
          _layer_v2('relu_a', 'ReLU') + legacy)
  net = caffemodel.parse_net(data)
  assert [(layer.name, layer.type, len(layer.blobs))
          for layer in net.layers] == [
              ('input', 'Input', 0), ('conv_a', 'Convolution', 2),
              ('relu_a', 'ReLU', 0), ('old_conv', 'Convolution', 1)]
  name, layer_type, blobs = net.layers[1]
  assert (name, layer_type) == ('conv_a', 'Convolution')
  np.testing.assert_array_equal(blobs[0], weight)
  np.testing.assert_array_equal(blobs[1], bias)
  np.testing.assert_array_equal(net.layers[3].blobs[0], legacy_weight)
  geometry = net.convolution_geometry['conv_a']
  assert geometry.dilation == (2,)
  assert geometry.pad == (2, 2)
  assert geometry.kernel_size == (3, 3)
  assert geometry.num_output == 64
  with pytest.raises(ValueError):
    caffemodel.parse_net(data[:-3])


def fake_ircnn(path, dilations=(1, 2, 3, 4, 3, 2, 1), seed=0):
  """Writes a random IRCNN-shaped caffemodel; returns its conv blobs."""
  rng = np.random.default_rng(seed)
  names = ['layer1', 'layer3', 'layer6', 'layer9', 'layer12', 'layer15',
           'layer18']
  data = wire.string(1, 'ircnn') + _layer_v2('input', 'Input')
  convolutions = []
  for index, (name, dilation) in enumerate(zip(names, dilations)):
    out_channels = 1 if index == 6 else 64
    in_channels = 1 if index == 0 else 64
    scale = np.sqrt(2.0 / (9 * in_channels))
    weight = (scale * rng.normal(size=(out_channels, in_channels, 3, 3))
             ).astype(np.float32)
    bias = (0.01 * rng.normal(size=out_channels)).astype(np.float32)
    convolutions.append((weight, bias))
    data += _layer_v2(name, 'Convolution', [weight, bias],
                      _conv_param(dilation, square=index % 2 == 0))
    if index < 6:
      data += _layer_v2(f'relu{index}', 'ReLU')
  with open(path, 'wb') as f:
    f.write(data)
  return convolutions


def test_ircnn_initialisation_mapping_and_forward(tmp_path):
  path = str(tmp_path / 'ircnn.caffemodel')
  convolutions = fake_ircnn(path)
  weights = caffemodel.ircnn_initialisation(path)
  assert set(weights) == {'conv1', 'diconv2', 'diconv3', 'diconv4',
                          'diconv5_pi', 'diconv5_v', 'diconv6_pi',
                          'diconv6_v', 'conv7_v'}
  np.testing.assert_array_equal(weights['diconv5_pi'][0],
                                convolutions[4][0].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(weights['diconv6_v'][1], convolutions[5][1])
  network, _ = make_network('gru', filters=64)
  policy_before = network.layer_by_name('conv8_pi').kernel.numpy()
  gru_before = network.layer_by_name('conv_gru').u.numpy()
  caffemodel.load_ircnn_into_network(path, network)
  np.testing.assert_array_equal(
      network.layer_by_name('conv8_pi').kernel.numpy(), policy_before)
  np.testing.assert_array_equal(
      network.layer_by_name('conv_gru').u.numpy(), gru_before)
  # The value branch of an IRCNN-initialised network is the IRCNN residual:
  # noisy - value == the IRCNN output.
  image = np.random.default_rng(1).random((14, 15)).astype(np.float32)
  (_, values), _ = network(image[None, ..., None],
                           network_state=network.get_initial_state(1))
  want = reference_numpy.ircnn_denoise(convolutions, image)
  np.testing.assert_allclose(image - values.numpy()[0], want, atol=1e-4)


def test_ircnn_errors(tmp_path):
  bad_dilation = str(tmp_path / 'bad.caffemodel')
  fake_ircnn(bad_dilation, dilations=(1, 2, 3, 4, 4, 2, 1))
  one_line_error(lambda: caffemodel.ircnn_initialisation(bad_dilation),
                 'layer12', 'dilation')
  garbage = tmp_path / 'garbage.caffemodel'
  garbage.write_bytes(b'\xff' * 20)
  one_line_error(lambda: caffemodel.read_layers(str(garbage)),
                 'garbage.caffemodel', 'not a Caffe model')
  with pytest.raises(FileNotFoundError):
    caffemodel.read_layers(str(tmp_path / 'missing.caffemodel'))
  good = str(tmp_path / 'good.caffemodel')
  fake_ircnn(good)
  network, _ = make_network('gru', filters=8)
  one_line_error(lambda: caffemodel.load_ircnn_into_network(good, network),
                 'conv1', 'shape')


def test_network_weights_lists_every_layer():
  network, reward_map = make_network('gru_rmc')
  weights = chainer_npz.network_weights(network, reward_map)
  assert set(weights['conv_gru']) == set(conv_gru.KERNEL_NAMES)
  assert weights['reward_map_conv']['kernel'].shape == (33, 33, 1, 1)
  assert len(weights) == 12

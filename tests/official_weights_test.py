"""The authors' released weights, imported, behave like the released system.

For each released denoiser an imported run directory is compared with the
independent numpy + OpenCV model of `reference_numpy` on real training images
with seeded Gaussian noise. Given the same image, pixelrl_tf's greedy actions
must agree with the reference on at least 99.9% of the pixels at every step
and its filters must reproduce OpenCV's; running each side's own episode, the
final PSNRs must agree within 0.01 dB. Also
checks the IRCNN initial weights (they must denoise), the learned RMC
kernels, and that `import_weights` takes a released model by name. Skips
when ../shared/data is absent.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import reference_numpy
from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT, shared_data_path
from pixelrl_tf.agents import reward_map as reward_map_lib
from pixelrl_tf.data import known_files
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.jobs import import_weights_lib
from pixelrl_tf.models import model_io
from pixelrl_tf.networks import fcn_actor_critic
from pixelrl_tf.weights import caffemodel
from pixelrl_tf.weights import chainer_npz

VARIANT_FOLDERS = {'fcn': 'denoise', 'gru': 'denoise_with_convGRU',
                   'gru_rmc': 'denoise_with_convGRU_and_RMC'}
IMAGE_NAMES = ('100007.jpg', '105019.jpg', '23025.jpg')
CROP = 160
T_MAX = 5
# Greedy actions of pixelrl_tf and the reference on the same image.
MIN_AGREEMENT = 0.999
# When each side runs its own trajectory, a rare float32 near-tie (logit
# margin ~3e-7) flips one pixel's action at some step; the changed pixel then
# feeds the 33x33 receptive field of its neighbours in later steps, so the
# disagreement grows (worst measured: 99.69% at step 5, plain FCN). The final
# PSNRs still agree to 0.001 dB.
MIN_FREE_AGREEMENT = 0.995
MAX_PSNR_DIFFERENCE = 0.01
# Autograph's rewrite of TF-Agents' `Network.__call__` compares with `()`.
pytestmark = pytest.mark.filterwarnings(
    'ignore:"is not" with a literal:SyntaxWarning')
# (variant, sigma, number of images).
CASES = (('fcn', 25, 3), ('gru', 25, 3), ('gru_rmc', 25, 3), ('gru', 50, 1))


def weights_path(variant, sigma):
  return shared_data_path('official_weights', VARIANT_FOLDERS[variant],
                          f'pretrained_{sigma}.npz')


def clean_crop(name):
  """A centred `CROP x CROP` crop of a BSD432 training image."""
  image = reference_numpy.read_gray(
      shared_data_path('BSD432_gray_train', name))
  top = (image.shape[0] - CROP) // 2
  left = (image.shape[1] - CROP) // 2
  return image[top:top + CROP, left:left + CROP]


def noisy_version(clean, sigma, index):
  return clean + reference_numpy.gaussian_noise(clean.shape, sigma,
                                                seed=1000 * sigma + index)


def make_step(network):
  """`(image [1,H,W,1], state) -> (greedy actions [1,H,W], new state)`."""

  @tf.function
  def step(image, state):
    (logits, _), new_state = network(image, network_state=state)
    return tf.argmax(logits, axis=-1, output_type=tf.int32), new_state

  return step


def pixelrl_tf_episode(step, initial_state, action_set, noisy, t_max):
  """Greedy episode with pixelrl_tf's network and TF filters."""
  image = tf.constant(noisy[None, ..., None])
  state = initial_state
  action_maps = []
  for _ in range(t_max):
    actions, state = step(image, state)
    image = action_set_lib.apply_action_map(image, actions, action_set)
    action_maps.append(actions.numpy()[0])
  return action_maps, image.numpy()[0, ..., 0]


def teacher_forced_check(step, initial_state, action_set, ref_images,
                         ref_actions):
  """Steps pixelrl_tf through the reference's own images.

  Returns:
    `(agreement per step, max |next image - reference next image|)`: the
    fraction of pixels where pixelrl_tf's greedy action (its network, with
    its own carried ConvGRU state) equals the reference's on the same image,
    and the largest difference between pixelrl_tf's filters and OpenCV when
    both apply the reference's actions.
  """
  state = initial_state
  agreement, filter_error = [], 0.0
  for t, ref_action in enumerate(ref_actions):
    image = tf.constant(ref_images[t][None, ..., None])
    actions, state = step(image, state)
    agreement.append(float(np.mean(actions.numpy()[0] == ref_action)))
    next_image = action_set_lib.apply_action_map(
        image, ref_action[None], action_set).numpy()[0, ..., 0]
    filter_error = max(filter_error,
                       float(np.abs(next_image - ref_images[t + 1]).max()))
  return agreement, filter_error


def _percent(values):
  return [round(100 * v, 3) for v in values]


@pytest.mark.parametrize('variant,sigma,num_images', CASES)
def test_imported_model_matches_the_reference(tmp_path, variant, sigma,
                                              num_images):
  path = weights_path(variant, sigma)
  run_dir = str(tmp_path / 'run')
  import_weights_lib.import_npz(str(path), run_dir, variant=variant)
  config, network, _ = model_io.load_model(run_dir)
  assert config.variant == variant
  action_set = config.get_action_set()
  step = make_step(network)
  initial_state = network.get_initial_state(1)
  weights = reference_numpy.load_npz(path)
  for index, name in enumerate(IMAGE_NAMES[:num_images]):
    clean = clean_crop(name)
    noisy = noisy_version(clean, sigma, index)
    ref_actions, ref_images = reference_numpy.run_episode(weights, noisy,
                                                          T_MAX)
    forced_agreement, filter_error = teacher_forced_check(
        step, initial_state, action_set, ref_images, ref_actions)
    tf_actions, tf_output = pixelrl_tf_episode(
        step, initial_state, action_set, noisy, config.t_max)
    free_agreement = [float(np.mean(a == b))
                      for a, b in zip(tf_actions, ref_actions)]
    tf_psnr = reference_numpy.psnr(clean, tf_output)
    ref_psnr = reference_numpy.psnr(clean, ref_images[-1])
    print(f'{variant} sigma {sigma} {name}: agreement per step, same '
          f'images {_percent(forced_agreement)} %, own trajectories '
          f'{_percent(free_agreement)} %; filter error {filter_error:.2g}; '
          f'PSNR noisy {reference_numpy.psnr(clean, noisy):.3f} -> '
          f'pixelrl_tf {tf_psnr:.3f} / reference {ref_psnr:.3f} dB')
    assert min(forced_agreement) >= MIN_AGREEMENT, (name, forced_agreement)
    assert filter_error < 1e-6, (name, filter_error)
    assert min(free_agreement) >= MIN_FREE_AGREEMENT, (name, free_agreement)
    assert abs(tf_psnr - ref_psnr) <= MAX_PSNR_DIFFERENCE, (name, tf_psnr,
                                                            ref_psnr)
    # The released denoisers must actually denoise.
    assert ref_psnr > reference_numpy.psnr(clean, noisy) + 3.0


# Learned RMC kernel w (facts s.4): centre, total sum, smallest entry.
RMC_KERNELS = ((15, -0.550, -1.24, -0.029), (25, -0.683, -1.57, -0.074),
               (50, -0.628, -1.92, -0.120))


@pytest.mark.parametrize('sigma,center,total,smallest', RMC_KERNELS)
def test_learned_reward_map_kernels(sigma, center, total, smallest):
  network = fcn_actor_critic.FcnActorCritic(
      tf.TensorSpec([None, None, 1], tf.float32), 9)
  reward_map = reward_map_lib.RewardMapConv()
  chainer_npz.load_into_network(str(weights_path('gru_rmc', sigma)), network,
                                reward_map, variant='gru_rmc')
  kernel = reward_map.kernel.numpy()[:, :, 0, 0]
  assert kernel.shape == (33, 33)
  assert abs(kernel[16, 16] - center) < 1e-3
  assert abs(kernel.sum() - total) < 5e-3
  off_centre = np.delete(kernel.ravel(), 16 * 33 + 16)
  assert abs(off_centre.min() - smallest) < 1e-3
  assert np.abs(off_centre).max() < 0.13  # every other weight is small


@pytest.mark.parametrize('sigma', [15, 25, 50])
def test_ircnn_files_have_the_expected_geometry(sigma):
  path = shared_data_path('official_weights', 'initial_weight',
                          f'zhang_cvpr17_denoise_{sigma}_gray.caffemodel')
  net = caffemodel.read_net(str(path))
  convolutions = [layer for layer in net.layers
                  if layer.type == 'Convolution']
  assert [layer.name for layer in convolutions] == [
      'layer1', 'layer3', 'layer6', 'layer9', 'layer12', 'layer15',
      'layer18']
  assert [net.convolution_geometry[layer.name].dilation[0]
          for layer in convolutions] == [1, 2, 3, 4, 3, 2, 1]
  assert {layer.type for layer in net.layers} == {'Input', 'Convolution',
                                                  'ReLU'}
  assert len(caffemodel.ircnn_initialisation(str(path))) == 9


def test_ircnn_denoises_a_real_image():
  path = str(shared_data_path('official_weights', 'initial_weight',
                              'zhang_cvpr17_denoise_15_gray.caffemodel'))
  clean = clean_crop(IMAGE_NAMES[0])
  noisy = noisy_version(clean, 15, 0)
  convolutions = [tuple(layer.blobs) for layer in caffemodel.read_layers(path)
                  if layer.type == 'Convolution']
  denoised = reference_numpy.ircnn_denoise(convolutions, noisy)
  noisy_psnr = reference_numpy.psnr(clean, noisy)
  denoised_psnr = reference_numpy.psnr(clean, denoised)
  # The same through the network: IRCNN is its value branch, noisy - V.
  network = fcn_actor_critic.FcnActorCritic(
      tf.TensorSpec([None, None, 1], tf.float32), 9)
  caffemodel.load_ircnn_into_network(path, network)
  (_, values), _ = network(noisy[None, ..., None],
                           network_state=network.get_initial_state(1))
  network_psnr = reference_numpy.psnr(clean, noisy - values.numpy()[0])
  print(f'IRCNN sigma 15 {IMAGE_NAMES[0]}: noisy {noisy_psnr:.3f} dB -> '
        f'numpy {denoised_psnr:.3f} dB, network value branch '
        f'{network_psnr:.3f} dB')
  assert denoised_psnr > noisy_psnr + 5.0
  assert abs(network_psnr - denoised_psnr) < 0.01


def test_initialisation_files_load():
  """The restoration and colour initial weights map onto the network."""
  salt_pepper = str(shared_data_path(
      'official_weights', 'inpaint_with_convGRU_and_RMC',
      'salt_pepper_noise_50_30000.npz'))
  assert chainer_npz.detect_variant(salt_pepper) == 'gru'
  network = fcn_actor_critic.FcnActorCritic(
      tf.TensorSpec([None, None, 1], tf.float32), 9)
  reward_map = reward_map_lib.RewardMapConv()
  layers = chainer_npz.TRUNK_AND_BRANCH_LAYERS + ('conv_gru', 'conv8_pi',
                                                  'conv7_v')
  chainer_npz.load_into_network(salt_pepper, network, reward_map,
                                layers=layers)
  np.testing.assert_array_equal(reward_map.kernel.numpy(),
                                reward_map_lib.identity_kernel(33))

  colour = str(shared_data_path('official_weights', 'fpop_with_convGRU',
                                '200model.npz'))
  assert chainer_npz.detect_variant(colour) == 'regression'
  colour_network = fcn_actor_critic.FcnActorCritic(
      tf.TensorSpec([None, None, 3], tf.float32), 13)
  written = chainer_npz.load_into_network(
      colour, colour_network, layers=chainer_npz.COLOR_INIT_LAYERS)
  assert len(written) == 16
  with np.load(colour) as arrays:
    np.testing.assert_array_equal(
        colour_network.layer_by_name('diconv6_v').kernel.numpy(),
        arrays['diconv6/diconv/W'].transpose(2, 3, 1, 0))


def test_import_weights_cli_takes_a_known_name(tmp_path):
  """`--npz=gru_rmc_sigma25` resolves through the data root."""
  root = shared_data_path('official_weights').parent
  path = weights_path('gru_rmc', 25)
  env = {k: v for k, v in os.environ.items() if not k.startswith('PIXELRL_')}
  env.update({known_files.DATA_ROOT_ENV: str(root),
              known_files.CACHE_DIR_ENV: str(tmp_path / 'cache'),
              known_files.OFFLINE_ENV: '1'})
  run_dir = tmp_path / 'run'
  result = subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.import_weights',
       '--npz=gru_rmc_sigma25', f'--output_dir={run_dir}'],
      cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS,
      check=False)
  assert result.returncode == 0, result.stderr
  assert "imported a 'gru_rmc' model" in result.stdout
  assert not (tmp_path / 'cache').exists()  # taken from the data root
  config, network, _ = model_io.load_model(str(run_dir))
  assert config.variant == 'gru_rmc'
  with np.load(path) as arrays:
    np.testing.assert_array_equal(
        network.layer_by_name('conv1').kernel.numpy(),
        arrays['conv1/W'].transpose(2, 3, 1, 0))

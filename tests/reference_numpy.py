"""An independent numpy + OpenCV model of the released PixelRL denoiser.

Written from the published description of the authors' code (network, ConvGRU,
action table, test loop, PSNR protocol), without using pixelrl_tf's network or
filters, so that tests can compare the two. Images are float32 `[H, W]` on the
0..1 scale (gray only); weights are the Chainer arrays of a released `.npz`
(kernels `(out, in, kh, kw)`).

Everything is float32; a convolution is an im2col matrix product over blocks
of rows, which runs a 481x321 image through 5 steps in about 25 s on two
cores.
"""

import cv2
import numpy as np

# Dilations of the trunk and of each branch (all kernels 3x3, pad = dilation).
TRUNK = (('conv1', 1), ('diconv2/diconv', 2), ('diconv3/diconv', 3),
         ('diconv4/diconv', 4))
POLICY_BRANCH = (('diconv5_pi/diconv', 3), ('diconv6_pi/diconv', 2))
VALUE_BRANCH = (('diconv5_V/diconv', 3), ('diconv6_V/diconv', 2))
IRCNN_DILATIONS = (1, 2, 3, 4, 3, 2, 1)
NUM_ACTIONS = 9


def load_npz(path):
  """Returns `{key: float32 array}` of an npz file."""
  with np.load(path) as npz:
    return {key: npz[key].astype(np.float32) for key in npz.files}


def variant_of(weights):
  if 'conv7_pi/model/W' in weights:
    return 'fcn'
  return 'gru_rmc' if 'conv_R/W' in weights else 'gru'


def conv2d(features, weight, bias=None, dilation=1, rows_per_block=16):
  """Zero-padded 'same' cross-correlation (im2col + one matrix product).

  Args:
    features: `[H, W, Cin]` float32.
    weight: `(Cout, Cin, k, k)` Chainer kernel, k odd.
    bias: optional `(Cout,)`.
    dilation: dilation rate; the padding is `dilation * (k // 2)`.
    rows_per_block: image rows per im2col block (bounds the memory).

  Returns:
    `[H, W, Cout]` float32.
  """
  height, width, in_channels = features.shape
  out_channels, _, size, _ = weight.shape
  pad = dilation * (size // 2)
  padded = np.pad(features.astype(np.float32),
                  ((pad, pad), (pad, pad), (0, 0)))
  # Column order (i, j, cin) matches the (kh, kw, in, out) kernel layout.
  matrix = weight.transpose(2, 3, 1, 0).reshape(-1, out_channels)
  out = np.empty((height, width, out_channels), np.float32)
  columns = np.empty((rows_per_block, width, size, size, in_channels),
                     np.float32)
  for top in range(0, height, rows_per_block):
    rows = min(rows_per_block, height - top)
    for i in range(size):
      for j in range(size):
        columns[:rows, :, i, j] = padded[
            top + i * dilation:top + i * dilation + rows,
            j * dilation:j * dilation + width]
    np.matmul(columns[:rows].reshape(rows * width, -1), matrix,
              out=out[top:top + rows].reshape(rows * width, out_channels))
  if bias is not None:
    out += bias
  return out


def _relu(x):
  return np.maximum(x, 0.0)


def _sigmoid(x):
  # tanh form: no overflow for large negative inputs.
  return 0.5 * (np.tanh(0.5 * x) + 1.0)


def _conv_link(weights, link, features, dilation):
  return conv2d(features, weights[link + '/W'], weights.get(link + '/b'),
                dilation)


def forward(weights, image, hidden=None, with_value=False):
  """One step of the actor-critic.

  Args:
    weights: the npz arrays.
    image: `[H, W]` current image (not clipped).
    hidden: `[H, W, F]` ConvGRU state, None for zeros (ignored for 'fcn').
    with_value: also compute the value map.

  Returns:
    `(logits [H, W, A], value [H, W] or None, new hidden or None)`.
  """
  features = image[..., None].astype(np.float32)
  for link, dilation in TRUNK:
    features = _relu(_conv_link(weights, link, features, dilation))
  policy = features
  for link, dilation in POLICY_BRANCH:
    policy = _relu(_conv_link(weights, link, policy, dilation))
  new_hidden = None
  if variant_of(weights) == 'fcn':
    logits = _conv_link(weights, 'conv7_pi/model', policy, 1)
  else:
    if hidden is None:
      hidden = np.zeros_like(policy)

    def gru_conv(name, x):
      return conv2d(x, weights[f'conv7_{name}/W'])

    z = _sigmoid(gru_conv('Wz', policy) + gru_conv('Uz', hidden))
    r = _sigmoid(gru_conv('Wr', policy) + gru_conv('Ur', hidden))
    candidate = np.tanh(gru_conv('W', policy) + gru_conv('U', r * hidden))
    new_hidden = (1.0 - z) * hidden + z * candidate
    logits = _conv_link(weights, 'conv8_pi/model', new_hidden, 1)
  value = None
  if with_value:
    value_features = features
    for link, dilation in VALUE_BRANCH:
      value_features = _relu(_conv_link(weights, link, value_features,
                                        dilation))
    value = _conv_link(weights, 'conv7_V', value_features, 1)[..., 0]
  return logits, value, new_hidden


def filtered_images(image):
  """The results of actions 3..8 on a `[H, W]` float32 image (cv2 calls)."""
  return {
      3: cv2.GaussianBlur(image, ksize=(5, 5), sigmaX=0.5),
      4: cv2.bilateralFilter(image, d=5, sigmaColor=0.1, sigmaSpace=5),
      5: cv2.medianBlur(image, ksize=5),
      6: cv2.GaussianBlur(image, ksize=(5, 5), sigmaX=1.5),
      7: cv2.bilateralFilter(image, d=5, sigmaColor=1.0, sigmaSpace=5),
      8: cv2.boxFilter(image, ddepth=-1, ksize=(5, 5)),
  }


def apply_actions(image, actions):
  """One environment step: each pixel takes the result of its action.

  Actions 0, 1, 2 add -1/255, 0, +1/255; 3..8 are the filters of
  `filtered_images`, all computed on the image before the step. Nothing is
  clipped.
  """
  image = image.astype(np.float32)
  move = (actions.astype(np.float32) - np.float32(1.0)) / np.float32(255.0)
  result = image + move
  for index, filtered in filtered_images(image).items():
    result = np.where(actions == index, filtered, result)
  return result.astype(np.float32)


def run_episode(weights, noisy, t_max=5):
  """Greedy test episode: returns `(action maps [t_max][H,W], images)`.

  `images[0]` is the noisy input and `images[t]` the image after step `t`;
  the ConvGRU state starts at zero and is carried across the steps.
  """
  image = noisy.astype(np.float32)
  hidden = None
  action_maps, images = [], [image]
  for _ in range(t_max):
    logits, _, hidden = forward(weights, image, hidden)
    actions = np.argmax(logits, axis=-1)
    image = apply_actions(image, actions)
    action_maps.append(actions)
    images.append(image)
  return action_maps, images


def quantize(image):
  """Clip to [0, 1] and round as `(v * 255 + 0.5).astype(uint8)`."""
  clipped = np.clip(image.astype(np.float32), 0.0, 1.0)
  return (clipped * np.float32(255) + np.float32(0.5)).astype(np.uint8)


def psnr(clean, restored):
  """PSNR with the reference protocol (8-bit images, `cv2.PSNR`)."""
  return cv2.PSNR(quantize(clean), quantize(restored))


def read_gray(path):
  """Reads an 8-bit gray image as float32 on the 0..1 scale."""
  image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
  if image is None:
    raise FileNotFoundError(path)
  return (image / 255.0).astype(np.float32)


def gaussian_noise(shape, sigma, seed):
  """Seeded N(0, sigma) noise on the 0..255 scale, divided by 255."""
  rng = np.random.default_rng(seed)
  return (rng.normal(0.0, sigma, shape).astype(np.float32) /
          np.float32(255.0))


def ircnn_denoise(convolutions, noisy):
  """The IRCNN denoiser: 7 convolutions, ReLU between, residual output.

  Args:
    convolutions: the 7 `(weight (out, in, 3, 3), bias)` pairs in order.
    noisy: `[H, W]` float32.

  Returns:
    `noisy - net(noisy)`, `[H, W]`.
  """
  features = noisy[..., None].astype(np.float32)
  for index, ((weight, bias), dilation) in enumerate(
      zip(convolutions, IRCNN_DILATIONS)):
    features = conv2d(features, weight, bias, dilation)
    if index < len(convolutions) - 1:
      features = _relu(features)
  return noisy - features[..., 0]


# TensorFlow checkpoint path (under `network/`) -> Chainer link of the same
# layer, read from the checkpoint's own variable names (not through the
# package's weight loaders, so that the two stay independent).
_CHECKPOINT_LINKS = {
    '_trunk/0': 'conv1', '_trunk/1': 'diconv2/diconv',
    '_trunk/2': 'diconv3/diconv', '_trunk/3': 'diconv4/diconv',
    '_policy_branch/0': 'diconv5_pi/diconv',
    '_policy_branch/1': 'diconv6_pi/diconv',
    '_value_branch/0': 'diconv5_V/diconv',
    '_value_branch/1': 'diconv6_V/diconv', '_value_head': 'conv7_V',
}
_CHECKPOINT_GRU = {'wz': 'conv7_Wz', 'uz': 'conv7_Uz', 'wr': 'conv7_Wr',
                   'ur': 'conv7_Ur', 'w': 'conv7_W', 'u': 'conv7_U'}


def weights_from_checkpoint(prefix):
  """The network of a training checkpoint as Chainer-named npz arrays.

  Kernels `(kh, kw, in, out)` become `(out, in, kh, kw)`; the policy head
  is `conv8_pi/model` with a ConvGRU and `conv7_pi/model` without one.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(str(prefix))
  suffix = '/.ATTRIBUTES/VARIABLE_VALUE'
  names = [name[len('network/'):-len(suffix)]
           for name in reader.get_variable_to_shape_map()
           if name.startswith('network/') and name.endswith(suffix)]
  gru = any(name.startswith('_conv_gru/') for name in names)
  links = dict(_CHECKPOINT_LINKS, _policy_head=(
      'conv8_pi/model' if gru else 'conv7_pi/model'))
  weights = {}
  for name in names:
    value = reader.get_tensor(f'network/{name}{suffix}').astype(np.float32)
    layer, variable = name.rsplit('/', 1)
    if layer == '_conv_gru':
      weights[_CHECKPOINT_GRU[variable] + '/W'] = value.transpose(3, 2, 0, 1)
    elif variable == 'kernel':
      weights[links[layer] + '/W'] = value.transpose(3, 2, 0, 1)
    else:
      weights[links[layer] + '/b'] = value
  return weights

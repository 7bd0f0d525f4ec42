"""Reward map convolution (RMC) of PixelRL (Furuta et al., 2020, Sec. V).

Shapes: `B` batch, `H, W` height and width.

The n-step return of a pixel is built from the rewards of its neighbours
through a learnable `k x k` kernel `w` (33x33 = the receptive field of the
network), applied once per step of the return recursion after the discount:
`R_t = r_t + gamma * w * R_{t+1}` (eq. 13). The kernel starts as the identity
(1 at the centre), for which RMC reduces to the ordinary per-pixel return.
"""

import numpy as np
import tensorflow as tf


def identity_kernel(size):
  """Returns a `[size,size,1,1]` float32 kernel that is 1 at the centre."""
  if size % 2 != 1:
    raise ValueError(f'reward map kernel size must be odd, got {size}')
  kernel = np.zeros([size, size, 1, 1], np.float32)
  kernel[size // 2, size // 2, 0, 0] = 1.0
  return kernel


class IdentityKernel(tf.keras.initializers.Initializer):
  """Initialiser of a `[k,k,1,1]` kernel: 1 at the centre, 0 elsewhere."""

  def __call__(self, shape, dtype=None, **kwargs):
    del kwargs
    if len(shape) != 4 or shape[0] != shape[1] or tuple(shape[2:]) != (1, 1):
      raise ValueError(f'expected a [k,k,1,1] kernel shape, got {shape}')
    return tf.constant(identity_kernel(int(shape[0])), dtype=dtype)


class RewardMapConv(tf.keras.layers.Conv2D):
  """A learnable `size x size` convolution of `[B,H,W]` reward/value maps.

  A Keras `Conv2D` with one filter, no bias, "same" zero padding and the
  identity initialiser, built at construction so that its kernel exists
  before a checkpoint is restored (the kernel is the layer's `kernel`
  attribute, as in run directories written before this was a Keras layer).
  It always computes in float32, whatever the global Keras dtype policy.
  """

  def __init__(self, size=33, name='reward_map_conv'):
    """Creates the layer and its kernel, initialised to the identity.

    Args:
      size: odd kernel size; 33 matches the network's receptive field.
      name: layer and variable name.
    """
    if size % 2 != 1:
      raise ValueError(f'reward map kernel size must be odd, got {size}')
    super().__init__(1, size, padding='same', use_bias=False,
                     kernel_initializer=IdentityKernel(), name=name,
                     dtype='float32')
    self.size = size
    self.build(tf.TensorShape([None, None, None, 1]))
    # The layer takes `[B,H,W]` maps and adds the channel axis itself.
    self.input_spec = None

  def call(self, maps):
    """Convolves `[B,H,W]` maps with zero padding (same size, no bias)."""
    return super().call(maps[..., None])[..., 0]

  def get_config(self):
    return {'size': self.size, 'name': self.name}

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


class RewardMapConv(tf.Module):
  """A learnable `size x size` convolution of `[B,H,W]` reward/value maps."""

  def __init__(self, size=33, name='reward_map_conv'):
    """Creates the kernel, initialised to the identity.

    Args:
      size: odd kernel size; 33 matches the network's receptive field.
      name: module and variable name.
    """
    super().__init__(name=name)
    self.size = size
    with self.name_scope:
      self.kernel = tf.Variable(identity_kernel(size), name='kernel')

  def __call__(self, maps):
    """Convolves `[B,H,W]` maps with zero padding (same size, no bias)."""
    with tf.name_scope(self.name):
      output = tf.nn.conv2d(maps[..., None], self.kernel, 1, 'SAME')
      return output[..., 0]

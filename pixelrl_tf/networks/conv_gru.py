"""Convolutional GRU cell of PixelRL (Furuta et al., 2020, eq. 8-11).

Shapes: `B` batch, `H, W` height and width, `F` feature channels.

  z   = sigmoid(Wz * x + Uz * h)
  r   = sigmoid(Wr * x + Ur * h)
  h~  = tanh(W * x + U * (r . h))
  h'  = (1 - z) . h + z . h~

`*` is a 3x3 "same" convolution without bias and `.` the element-wise product,
as in the authors' released code. The six kernels are separate variables (so
released weights map one to one), but the three input convolutions and the two
state convolutions are each run as one fused convolution, which is what makes
the cell cheap on a CPU.
"""

import tensorflow as tf

KERNEL_NAMES = ('wz', 'wr', 'w', 'uz', 'ur', 'u')


def he_normal():
  """Chainer's default HeNormal: N(0, sqrt(2 / fan_in)), not truncated."""
  return tf.keras.initializers.VarianceScaling(
      scale=2.0, mode='fan_in', distribution='untruncated_normal')


class ConvGRUCell(tf.keras.layers.Layer):
  """One step of a convolutional GRU over `[B,H,W,F]` feature maps."""

  def __init__(self, filters, kernel_size=3, kernel_initializer=None,
               **kwargs):
    """Creates the cell.

    Args:
      filters: `F`, channels of the input features and of the hidden state.
      kernel_size: spatial size of the six kernels (3 in the paper).
      kernel_initializer: initializer of the six kernels; defaults to
        Chainer's HeNormal, the reference initialisation.
      **kwargs: forwarded to `tf.keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self.filters = filters
    self.kernel_size = kernel_size
    self.kernel_initializer = tf.keras.initializers.get(
        kernel_initializer or he_normal())

  def _fresh_initializer(self):
    # One initializer instance per kernel: a reused unseeded Keras
    # initializer returns the same values on every call.
    initializer = self.kernel_initializer
    return initializer.__class__.from_config(initializer.get_config())

  def build(self, input_shape):
    shape = (self.kernel_size, self.kernel_size, self.filters, self.filters)
    for name in KERNEL_NAMES:
      setattr(self, name, self.add_weight(
          name=name, shape=shape, initializer=self._fresh_initializer(),
          trainable=True))
    super().build(input_shape)

  def call(self, inputs, state):
    """Computes the next hidden state.

    Args:
      inputs: `[B,H,W,F]` features `x_t`.
      state: `[B,H,W,F]` previous hidden state `h_{t-1}` (any shape that
        broadcasts to `inputs`, e.g. `[B,1,1,F]` zeros).

    Returns:
      `[B,H,W,F]` the new hidden state `h_t`.
    """
    f = self.filters
    state = tf.broadcast_to(tf.cast(state, inputs.dtype), tf.shape(inputs))
    x_kernels = tf.cast(tf.concat([self.wz, self.wr, self.w], axis=-1),
                        inputs.dtype)
    h_kernels = tf.cast(tf.concat([self.uz, self.ur], axis=-1), inputs.dtype)
    u_kernel = tf.cast(self.u, inputs.dtype)
    x_terms = tf.nn.conv2d(inputs, x_kernels, 1, 'SAME')
    h_terms = tf.nn.conv2d(state, h_kernels, 1, 'SAME')
    z = tf.sigmoid(x_terms[..., :f] + h_terms[..., :f])
    r = tf.sigmoid(x_terms[..., f:2 * f] + h_terms[..., f:])
    candidate = tf.tanh(
        x_terms[..., 2 * f:] + tf.nn.conv2d(r * state, u_kernel, 1, 'SAME'))
    return (1.0 - z) * state + z * candidate

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, kernel_size=self.kernel_size,
                  kernel_initializer=tf.keras.initializers.serialize(
                      self.kernel_initializer))
    return config

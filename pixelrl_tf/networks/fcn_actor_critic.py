"""The fully convolutional actor-critic of PixelRL (Fig. 1 of the paper).

Shapes: `B` batch, `H, W` height and width, `C` image channels, `F` feature
channels (64), `A` actions.

    image [B,H,W,C]
      conv1 (d1) -> diconv2 (d2) -> diconv3 (d3) -> diconv4 (d4)      trunk
      policy: diconv5_pi (d3) -> diconv6_pi (d2) -> ConvGRU -> conv8_pi -> logits [B,H,W,A]
      value:  diconv5_v  (d3) -> diconv6_v  (d2) -> conv7_v            -> value  [B,H,W]

Every convolution is 3x3 with "same" zero padding; ReLU after every trunk and
branch convolution; the value branch does not see the GRU state. The GRU hidden
map is the network state: zeroed on `FIRST` steps and carried between steps by
the caller, with no back-propagation through time (the state that comes in is
a constant), exactly as the reference code feeds it back through the
environment. `use_conv_gru=False` gives the paper's plain-FCN variant, whose
policy head sits directly on diconv6_pi.

The state spec has unknown height and width, so one network serves 70x70
training crops and full-size test images alike; `get_initial_state` returns a
`[B,1,1,F]` zero map that broadcasts to any size.
"""

import tensorflow as tf
from tf_agents.networks import network
from tf_agents.trajectories import time_step as ts

from pixelrl_tf.networks import conv_gru

_TRUNK = (('conv1', 1), ('diconv2', 2), ('diconv3', 3), ('diconv4', 4))
_POLICY_BRANCH = (('diconv5_pi', 3), ('diconv6_pi', 2))
_VALUE_BRANCH = (('diconv5_v', 3), ('diconv6_v', 2))


def _conv(name, filters, dilation, activation='relu', initializer=None,
          dtype=None):
  return tf.keras.layers.Conv2D(
      filters, 3, padding='same', dilation_rate=dilation,
      activation=activation, name=name,
      kernel_initializer=initializer or conv_gru.he_normal(),
      bias_initializer='zeros', dtype=dtype)


class FcnActorCritic(network.Network):
  """Per-pixel policy logits and values, with an optional ConvGRU state."""

  def __init__(self, input_tensor_spec, num_actions, filters=64,
               use_conv_gru=True, name='FcnActorCritic',
               preprocessing_fn=None, dtype_policy=None):
    """Creates the network.

    Args:
      input_tensor_spec: `TensorSpec` of one image `[H,W,C]`; `H` and `W` may
        be None.
      num_actions: `A`, the number of per-pixel actions.
      filters: `F`, feature channels of every hidden layer (64 in the paper).
      use_conv_gru: insert the ConvGRU before the policy head (the paper's
        "+convGRU"); False gives the plain FCN.
      name: name of the network (prefix of its variables).
      preprocessing_fn: optional TF function `[B,H,W,C] -> [B,H,W,C]`
        applied to the observation before conv1, without variables (e.g.
        the colour models' BGR -> scaled Lab conversion); None feeds the
        observation as it is.
      dtype_policy: Keras dtype policy of the layers (e.g.
        `'mixed_bfloat16'`: bfloat16 arithmetic, float32 variables); None
        uses the global policy. Inputs, the GRU state and the outputs
        (logits, values) stay float32 whatever the policy.
    """
    state_spec = (tf.TensorSpec([None, None, filters], tf.float32)
                  if use_conv_gru else ())
    super().__init__(input_tensor_spec=input_tensor_spec,
                     state_spec=state_spec, name=name)
    self._num_actions = num_actions
    self._filters = filters
    self._use_conv_gru = use_conv_gru
    self._preprocessing_fn = preprocessing_fn
    self._trunk = [_conv(n, filters, d, dtype=dtype_policy)
                   for n, d in _TRUNK]
    self._policy_branch = [_conv(n, filters, d, dtype=dtype_policy)
                           for n, d in _POLICY_BRANCH]
    self._value_branch = [_conv(n, filters, d, dtype=dtype_policy)
                          for n, d in _VALUE_BRANCH]
    self._conv_gru = (conv_gru.ConvGRUCell(filters, name='conv_gru',
                                           dtype=dtype_policy)
                      if use_conv_gru else None)
    self._policy_head = _conv('conv8_pi' if use_conv_gru else 'conv7_pi',
                              num_actions, 1, activation=None,
                              dtype=dtype_policy)
    self._value_head = _conv('conv7_v', 1, 1, activation=None,
                             dtype=dtype_policy)

  @property
  def num_actions(self):
    return self._num_actions

  @property
  def filters(self):
    return self._filters

  @property
  def use_conv_gru(self):
    return self._use_conv_gru

  def layer_by_name(self, name):
    """Returns the layer called `name` (the names of docs/design.md)."""
    layers = (self._trunk + self._policy_branch + self._value_branch +
              [self._policy_head, self._value_head])
    if self._conv_gru is not None:
      layers.append(self._conv_gru)
    for layer in layers:
      if layer.name == name:
        return layer
    raise KeyError(f'{self.name} has no layer {name!r}')

  def create_variables(self, input_tensor_spec=None, **kwargs):
    """Builds the variables with a small dummy image (H, W may be None)."""
    del input_tensor_spec, kwargs
    if not self.built:
      shape = [4 if d is None else d for d in self.input_tensor_spec.shape]
      self(tf.zeros([1] + shape),
           step_type=tf.fill([1], ts.StepType.FIRST),
           network_state=self.get_initial_state(1))
    return None

  def _get_initial_state(self, batch_size):
    if not self._use_conv_gru:
      return ()
    return tf.zeros([batch_size, 1, 1, self._filters])

  def call(self, observation, step_type=None, network_state=(),
           training=False):
    """Runs one step.

    Args:
      observation: `[B,H,W,C]` float32 current images (passed through
        `preprocessing_fn` first, when there is one).
      step_type: optional `[B]` step types; the GRU state of `FIRST` steps is
        reset to zeros.
      network_state: the GRU state `[B,H,W,F]` (or broadcastable, e.g. the
        `[B,1,1,F]` initial state); `()` for the plain FCN.
      training: unused (no dropout or batch norm in PixelRL).

    Returns:
      `((logits [B,H,W,A], values [B,H,W]), new_state)`; `new_state` is the
      new GRU map `[B,H,W,F]`, or `()` for the plain FCN.
    """
    del training
    features = observation
    if self._preprocessing_fn is not None:
      features = self._preprocessing_fn(features)
    for layer in self._trunk:
      features = layer(features)
    policy_features = features
    for layer in self._policy_branch:
      policy_features = layer(policy_features)
    value_features = features
    for layer in self._value_branch:
      value_features = layer(value_features)
    new_state = ()
    if self._use_conv_gru:
      hidden = network_state
      if hidden is None or (not tf.is_tensor(hidden) and hidden == ()):  # pylint: disable=g-explicit-bool-comparison
        hidden = self._get_initial_state(tf.shape(observation)[0])
      hidden = tf.stop_gradient(hidden)
      if step_type is not None:
        is_first = tf.equal(step_type, ts.StepType.FIRST)
        hidden = tf.where(is_first[:, None, None, None], 0.0, hidden)
      policy_features = self._conv_gru(policy_features, hidden)
      new_state = tf.cast(policy_features, tf.float32)
    logits = tf.cast(self._policy_head(policy_features), tf.float32)
    values = tf.cast(tf.squeeze(self._value_head(value_features), axis=-1),
                     tf.float32)
    return (logits, values), new_state

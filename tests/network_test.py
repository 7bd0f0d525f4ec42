"""Tests of the ConvGRU cell and the fully convolutional actor-critic."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from pixelrl_tf.networks import conv_gru
from pixelrl_tf.networks import fcn_actor_critic


def _conv_same(x, kernel):
  """Numpy 'same' cross-correlation, [H,W,Cin] x [k,k,Cin,Cout]."""
  k = kernel.shape[0]
  pad = k // 2
  xp = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
  out = np.zeros(x.shape[:2] + (kernel.shape[-1],), np.float64)
  for i in range(k):
    for j in range(k):
      out += np.tensordot(xp[i:i + x.shape[0], j:j + x.shape[1]],
                          kernel[i, j], axes=([2], [0]))
  return out


def _sigmoid(v):
  return 1 / (1 + np.exp(-v))


def test_conv_gru_matches_the_formulas():
  cell = conv_gru.ConvGRUCell(4)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(1, 5, 6, 4)).astype(np.float32)
  h = rng.normal(size=(1, 5, 6, 4)).astype(np.float32)
  got = cell(x, h).numpy()[0]
  k = {n: getattr(cell, n).numpy().astype(np.float64)
       for n in conv_gru.KERNEL_NAMES}
  z = _sigmoid(_conv_same(x[0], k['wz']) + _conv_same(h[0], k['uz']))
  r = _sigmoid(_conv_same(x[0], k['wr']) + _conv_same(h[0], k['ur']))
  cand = np.tanh(_conv_same(x[0], k['w']) + _conv_same(r * h[0], k['u']))
  want = (1 - z) * h[0] + z * cand
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_conv_gru_zero_state_broadcasts():
  cell = conv_gru.ConvGRUCell(3)
  x = tf.random.normal([2, 4, 5, 3])
  np.testing.assert_allclose(cell(x, tf.zeros([2, 1, 1, 3])).numpy(),
                             cell(x, tf.zeros([2, 4, 5, 3])).numpy())


def _network(use_conv_gru=True, channels=1, filters=8, num_actions=9):
  return fcn_actor_critic.FcnActorCritic(
      tf.TensorSpec([None, None, channels], tf.float32), num_actions,
      filters=filters, use_conv_gru=use_conv_gru)


@pytest.mark.parametrize('use_conv_gru', [True, False])
def test_output_shapes_any_size(use_conv_gru):
  net = _network(use_conv_gru)
  for shape in [(2, 7, 9, 1), (1, 1, 1, 1), (3, 16, 4, 1)]:
    state = net.get_initial_state(shape[0])
    (logits, values), new_state = net(
        tf.random.uniform(shape), step_type=tf.fill([shape[0]],
                                                    ts.StepType.FIRST),
        network_state=state)
    assert logits.shape == shape[:3] + (9,)
    assert values.shape == shape[:3]
    if use_conv_gru:
      assert new_state.shape == shape[:3] + (8,)
    else:
      assert new_state == ()


def test_layer_names_and_shapes_follow_the_reference_table():
  net = _network(filters=64)
  net.create_variables()
  dilations = {'conv1': 1, 'diconv2': 2, 'diconv3': 3, 'diconv4': 4,
               'diconv5_pi': 3, 'diconv6_pi': 2, 'diconv5_v': 3,
               'diconv6_v': 2, 'conv8_pi': 1, 'conv7_v': 1}
  for name, dilation in dilations.items():
    layer = net.layer_by_name(name)
    assert layer.dilation_rate == (dilation, dilation)
    assert layer.kernel_size == (3, 3)
  assert net.layer_by_name('conv1').kernel.shape == (3, 3, 1, 64)
  assert net.layer_by_name('conv8_pi').kernel.shape == (3, 3, 64, 9)
  assert net.layer_by_name('conv7_v').kernel.shape == (3, 3, 64, 1)
  gru = net.layer_by_name('conv_gru')
  assert all(getattr(gru, n).shape == (3, 3, 64, 64)
             for n in conv_gru.KERNEL_NAMES)
  # 4 trunk + 2x2 branch convs (W, b) + 6 GRU kernels + 2 heads (W, b).
  assert len(net.trainable_variables) == 16 + 6 + 4
  kernels = [getattr(gru, n).numpy() for n in conv_gru.KERNEL_NAMES]
  assert all(np.abs(a - b).max() > 0 for i, a in enumerate(kernels)
             for b in kernels[i + 1:])
  plain = _network(use_conv_gru=False, filters=64)
  plain.create_variables()
  assert plain.layer_by_name('conv7_pi').kernel.shape == (3, 3, 64, 9)
  assert len(plain.trainable_variables) == 16 + 4


def _receptive_radius(net, output_fn, state=None):
  image = tf.Variable(tf.random.uniform([1, 45, 45, 1], seed=1))
  with tf.GradientTape() as tape:
    outputs, _ = net(image, network_state=(
        net.get_initial_state(1) if state is None else state))
    out = output_fn(outputs)[0, 22, 22]
  grad = tape.gradient(out, image).numpy()[0, ..., 0]
  rows, cols = np.nonzero(grad)
  return max(22 - rows.min(), rows.max() - 22, 22 - cols.min(),
             cols.max() - 22)


def test_receptive_fields():
  # Values and plain-FCN logits see 33x33 (radius 16), the size of the RMC
  # kernel; the GRU adds one 3x3 input convolution on the policy path (and
  # the state convolutions U, r once the state is non-zero).
  gru = _network(filters=4)
  plain = _network(use_conv_gru=False, filters=4)
  assert _receptive_radius(gru, lambda o: o[1]) == 16
  assert _receptive_radius(plain, lambda o: o[0][..., 0]) == 16
  assert _receptive_radius(gru, lambda o: o[0][..., 0]) == 17


def test_state_resets_on_first_and_carries_otherwise():
  net = _network()
  image = tf.random.uniform([2, 6, 6, 1])
  state = tf.random.normal([2, 6, 6, 8])
  zero_state = tf.zeros([2, 6, 6, 8])
  first = tf.fill([2], ts.StepType.FIRST)
  mid = tf.fill([2], ts.StepType.MID)
  (l_first, _), _ = net(image, step_type=first, network_state=state)
  (l_zero, _), _ = net(image, step_type=mid, network_state=zero_state)
  (l_mid, _), _ = net(image, step_type=mid, network_state=state)
  np.testing.assert_allclose(l_first.numpy(), l_zero.numpy(), atol=1e-6)
  assert np.abs(l_mid.numpy() - l_first.numpy()).max() > 1e-4


def test_no_gradient_through_the_incoming_state():
  net = _network()
  state = tf.Variable(tf.random.normal([1, 5, 5, 8]))
  with tf.GradientTape() as tape:
    (logits, _), _ = net(tf.random.uniform([1, 5, 5, 1]),
                         network_state=state)
    loss = tf.reduce_sum(logits)
  assert tape.gradient(loss, state) is None


def test_value_branch_ignores_the_state():
  net = _network()
  image = tf.random.uniform([1, 5, 5, 1])
  (_, v1), _ = net(image, network_state=tf.random.normal([1, 5, 5, 8]))
  (_, v2), _ = net(image, network_state=tf.random.normal([1, 5, 5, 8]))
  np.testing.assert_allclose(v1.numpy(), v2.numpy())

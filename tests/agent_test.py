"""Tests of the per-pixel returns, the RMC kernel and the A2C agent."""

import math

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.networks import network
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from pixelrl_tf.agents import pixel_a2c_agent
from pixelrl_tf.agents import returns as returns_lib
from pixelrl_tf.agents import reward_map
from pixelrl_tf.networks import fcn_actor_critic


def test_returns_terminal_and_bootstrapped():
  rewards = tf.constant([1.0, 2.0, 3.0])[:, None, None, None]
  got = returns_lib.n_step_returns(rewards, None, 0.5)
  # R2 = 3; R1 = 2 + .5 * 3; R0 = 1 + .5 * 3.5
  np.testing.assert_allclose(got.numpy().ravel(), [2.75, 3.5, 3.0])
  got = returns_lib.n_step_returns(rewards, tf.fill([1, 1, 1], 4.0), 0.5)
  # R2 = 3 + .5 * 4 = 5; R1 = 2 + 2.5; R0 = 1 + 2.25
  np.testing.assert_allclose(got.numpy().ravel(), [3.25, 4.5, 5.0])


def test_returns_through_the_reward_map():
  kernel = np.arange(1, 10, dtype=np.float32).reshape(3, 3)
  rmc = reward_map.RewardMapConv(3)
  rmc.kernel.assign(kernel[..., None, None])
  r0 = np.zeros((1, 3, 3), np.float32)
  r0[0, 0, 0] = 1.0
  r1 = np.zeros((1, 3, 3), np.float32)
  r1[0, 1, 1] = 2.0
  got = returns_lib.n_step_returns(np.stack([r0, r1]), None, 0.5,
                                   reward_map_fn=rmc).numpy()
  # Terminal step: no map. Step 0: r0 + .5 * w (*) r1, where the
  # cross-correlation of a centred delta is the flipped kernel.
  np.testing.assert_allclose(got[1], r1)
  np.testing.assert_allclose(got[0][0], r0[0] + 0.5 * 2.0 * kernel[::-1, ::-1])
  # With a bootstrap the map also acts on it, after the discount.
  boot = np.zeros((1, 3, 3), np.float32)
  boot[0, 1, 1] = 4.0
  got = returns_lib.n_step_returns(r1[None], boot, 0.5,
                                   reward_map_fn=rmc).numpy()
  np.testing.assert_allclose(got[0][0], r1[0] + 0.5 * 4.0 * kernel[::-1, ::-1])


def test_identity_kernel():
  kernel = reward_map.identity_kernel(33)
  assert kernel.shape == (33, 33, 1, 1)
  assert kernel[16, 16, 0, 0] == 1 and kernel.sum() == 1
  rmc = reward_map.RewardMapConv()
  maps = tf.random.normal([2, 40, 35])
  np.testing.assert_allclose(rmc(maps).numpy(), maps.numpy(), atol=1e-6)
  with pytest.raises(ValueError):
    reward_map.identity_kernel(4)


class _ConstantNetwork(network.Network):
  """Logits and values that are trainable constants (hand-checkable)."""

  def __init__(self, input_tensor_spec, num_actions, value):
    super().__init__(input_tensor_spec, state_spec=(), name='constant')
    self.logit_bias = tf.Variable(tf.zeros([num_actions]))
    self.value = tf.Variable(value)

  def create_variables(self, input_tensor_spec=None, **kwargs):
    self.built = True

  def call(self, observation, step_type=None, network_state=(),
           training=False):
    shape = tf.shape(observation)[:3]
    logits = tf.zeros(tf.concat([shape, [2]], 0)) + self.logit_bias
    values = tf.zeros(shape) + self.value
    return (logits, values), ()


def _specs(height, width, channels, num_actions):
  observation_spec = tf.TensorSpec([height, width, channels], tf.float32)
  reward_spec = tf.TensorSpec([height, width], tf.float32)
  action_spec = tensor_spec.BoundedTensorSpec(
      [height, width], tf.int32, 0, num_actions - 1)
  return ts.time_step_spec(observation_spec, reward_spec), action_spec


def _experience(observations, actions, rewards, final_discount=0.0):
  """[B,T+1] trajectory: T transitions then a boundary item."""
  num_steps = len(rewards)
  batch = observations[0].shape[0]
  step_types = ([ts.StepType.FIRST] + [ts.StepType.MID] * (num_steps - 1) +
                [ts.StepType.LAST])
  discounts = [1.0] * (num_steps - 1) + [final_discount, 1.0]
  rewards = list(rewards) + [np.zeros_like(rewards[0])]
  actions = list(actions) + [np.zeros_like(actions[0])]
  next_types = step_types[1:] + [ts.StepType.FIRST]
  stack = lambda xs, dtype: tf.constant(np.stack(xs, axis=1), dtype)
  return trajectory.Trajectory(
      step_type=stack([np.full(batch, s) for s in step_types], tf.int32),
      observation=stack(observations, tf.float32),
      action=stack(actions, tf.int32),
      policy_info=(),
      next_step_type=stack([np.full(batch, s) for s in next_types], tf.int32),
      reward=stack(rewards, tf.float32),
      discount=stack([np.full(batch, d) for d in discounts], tf.float32))


def test_loss_matches_hand_computation():
  time_step_spec, action_spec = _specs(1, 2, 1, 2)
  net = _ConstantNetwork(time_step_spec.observation, 2, 1.0)
  agent = pixel_a2c_agent.PixelA2CAgent(
      time_step_spec, action_spec, net,
      tf.keras.optimizers.SGD(0.0), gamma=0.5, entropy_coef=0.01,
      value_loss_coef=0.5)
  obs = [np.zeros((1, 1, 2, 1), np.float32)] * 3
  actions = [np.array([[[0, 1]]]), np.array([[[1, 1]]])]
  rewards = [np.array([[[1.0, 3.0]]]), np.array([[[2.0, 0.0]]])]
  info = agent.train(_experience(obs, actions, rewards))
  # R1 = [2, 0]; R0 = [1, 3] + .5 * R1 = [2, 3]; V = 1 -> A0 = [1, 2],
  # A1 = [1, -1]; log pi = -ln 2, H = ln 2 everywhere.
  ln2 = math.log(2.0)
  policy = ln2 * (1.5 + 0.0)
  entropy_term = -0.01 * ln2 * 2
  value = 0.25 * ((1 + 4) / 2 + (1 + 1) / 2)
  np.testing.assert_allclose(info.extra.policy_loss, policy, rtol=1e-6)
  np.testing.assert_allclose(info.extra.entropy_loss, entropy_term, rtol=1e-6)
  np.testing.assert_allclose(info.extra.value_loss, value, rtol=1e-6)
  np.testing.assert_allclose(info.loss, policy + entropy_term + value,
                             rtol=1e-6)
  np.testing.assert_allclose(info.extra.entropy, ln2, rtol=1e-6)
  assert int(agent.train_step_counter) == 1


def test_gradients_match_hand_computation():
  time_step_spec, action_spec = _specs(1, 2, 1, 2)
  net = _ConstantNetwork(time_step_spec.observation, 2, 1.0)
  agent = pixel_a2c_agent.PixelA2CAgent(
      time_step_spec, action_spec, net, tf.keras.optimizers.SGD(1.0),
      gamma=0.5, entropy_coef=0.0, value_loss_coef=0.5)
  obs = [np.zeros((1, 1, 2, 1), np.float32)] * 3
  actions = [np.array([[[0, 1]]]), np.array([[[1, 1]]])]
  rewards = [np.array([[[1.0, 3.0]]]), np.array([[[2.0, 0.0]]])]
  agent.train(_experience(obs, actions, rewards))
  # d/dV sum_k mean(.25 (V - R_k)^2) = sum_k mean(.5 (V - R_k))
  #   = .5 * ((1-2) + (1-3)) / 2 + .5 * ((1-2) + (1-0)) / 2 = -.75
  np.testing.assert_allclose(net.value.numpy(), 1.0 + 0.75, rtol=1e-6)
  # d/db_j of -log softmax(b)_a * A at b = 0 is (p_j - [j == a]) * A.
  # Sum over the 4 pixel-steps / 2 pixels of (p - onehot(a)) * A:
  # a=0,A=1 -> (-.5, .5); a=1,A=2 -> (1, -1); a=1,A=1 -> (.5, -.5);
  # a=1,A=-1 -> (-.5, .5); total (.5, -.5), halved by the pixel mean.
  np.testing.assert_allclose(net.logit_bias.numpy(), [-0.25, 0.25],
                             atol=1e-6)


def test_bootstrap_uses_the_final_value():
  time_step_spec, action_spec = _specs(1, 1, 1, 2)
  net = _ConstantNetwork(time_step_spec.observation, 2, 2.0)
  agent = pixel_a2c_agent.PixelA2CAgent(
      time_step_spec, action_spec, net, tf.keras.optimizers.SGD(0.0),
      gamma=0.5, entropy_coef=0.0, value_loss_coef=0.5)
  obs = [np.zeros((1, 1, 1, 1), np.float32)] * 2
  info = agent.train(_experience(obs, [np.array([[[0]]])],
                                 [np.array([[[1.0]]])], final_discount=1.0))
  # R = 1 + .5 * V(s_1) = 2 = V -> zero advantage and value loss.
  np.testing.assert_allclose(info.extra.value_loss, 0.0, atol=1e-7)
  np.testing.assert_allclose(info.extra.mean_return, 2.0, rtol=1e-6)


def _full_graph_gradients(agent, net, experience, gamma, beta, vcoef,
                          rmc=None, policy_gradient_to_w=False):
  """One tape over the whole window: the reference formulation."""
  obs = tf.transpose(experience.observation, [1, 0, 2, 3, 4])
  actions = tf.transpose(experience.action, [1, 0, 2, 3])
  rewards = tf.transpose(experience.reward, [1, 0, 2, 3])
  steps = obs.shape[0] - 1
  variables = agent.trainable_variables_for_update()
  with tf.GradientTape() as tape:
    state = net.get_initial_state(obs.shape[1])
    outputs = []
    for k in range(steps):
      (logits, values), state = net(obs[k], network_state=state)
      outputs.append((logits, values))
    big_r = 0.0
    pi_loss, v_loss = 0.0, 0.0
    for k in reversed(range(steps)):
      big_r = gamma * big_r
      if rmc is not None and k < steps - 1:
        big_r = rmc(big_r)
      big_r = rewards[k] + big_r
      logits, values = outputs[k]
      log_probs = tf.nn.log_softmax(logits)
      taken = tf.reduce_sum(log_probs * tf.one_hot(actions[k], 9), -1)
      entropy = -tf.reduce_sum(tf.exp(log_probs) * log_probs, -1)
      advantage = big_r - values
      if not policy_gradient_to_w:
        advantage = tf.stop_gradient(advantage)
      else:
        advantage = big_r - tf.stop_gradient(values)
      pi_loss += -taken * advantage - beta * entropy
      v_loss += tf.square(values - big_r) / 2
    loss = tf.reduce_mean(pi_loss + vcoef * v_loss)
  return loss, tape.gradient(loss, variables)


@pytest.mark.parametrize('use_rmc,policy_gradient_to_w,max_update_batch',
                         [(False, False, None), (True, False, None),
                          (True, True, None), (True, False, 1),
                          (False, False, 2)])
def test_stepwise_update_equals_the_full_graph_gradient(
    use_rmc, policy_gradient_to_w, max_update_batch):
  tf.random.set_seed(3)
  time_step_spec, action_spec = _specs(9, 8, 1, 9)
  net = fcn_actor_critic.FcnActorCritic(
      time_step_spec.observation, 9, filters=6)
  agent = pixel_a2c_agent.PixelA2CAgent(
      time_step_spec, action_spec, net, tf.keras.optimizers.SGD(1.0),
      use_reward_map_conv=use_rmc, reward_map_size=5,
      reward_map_policy_gradient=policy_gradient_to_w,
      max_update_batch=max_update_batch)
  if use_rmc:
    agent.reward_map.kernel.assign(
        tf.random.uniform([5, 5, 1, 1], -0.3, 0.6, seed=4))
  rng = np.random.default_rng(0)
  obs = [rng.uniform(size=(3, 9, 8, 1)).astype(np.float32) for _ in range(4)]
  actions = [rng.integers(0, 9, size=(3, 9, 8)) for _ in range(3)]
  rewards = [rng.normal(size=(3, 9, 8)).astype(np.float32) for _ in range(3)]
  experience = _experience(obs, actions, rewards)
  loss, want = _full_graph_gradients(
      agent, net, experience, 0.95, 0.01, 0.5,
      rmc=agent.reward_map, policy_gradient_to_w=policy_gradient_to_w)
  before = [v.numpy() for v in agent.trainable_variables_for_update()]
  info = agent.train(experience)
  # Slices sum the loss in another order: float32 rounding of terms of order
  # one, so the tolerance is absolute (the total nearly cancels, ~1e-3).
  np.testing.assert_allclose(info.loss, loss, rtol=1e-4, atol=1e-5)
  after = [v.numpy() for v in agent.trainable_variables_for_update()]
  for b, a, g in zip(before, after, want):
    np.testing.assert_allclose(b - a, g.numpy(), atol=1e-5, rtol=1e-4)


def test_policies_greedy_and_sampled():
  time_step_spec, action_spec = _specs(6, 5, 1, 9)
  net = fcn_actor_critic.FcnActorCritic(
      time_step_spec.observation, 9, filters=4)
  agent = pixel_a2c_agent.PixelA2CAgent(
      time_step_spec, action_spec, net, tf.keras.optimizers.Adam())
  step = ts.restart(tf.random.uniform([3, 6, 5, 1]), batch_size=3,
                    reward_spec=time_step_spec.reward)
  state = agent.policy.get_initial_state(3)
  greedy = agent.policy.action(step, state)
  (logits, _), _ = net(step.observation, step_type=step.step_type,
                       network_state=state)
  np.testing.assert_array_equal(greedy.action.numpy(),
                                np.argmax(logits.numpy(), -1))
  assert greedy.state.shape == (3, 6, 5, 4)
  sampled = agent.collect_policy.action(step, state)
  assert sampled.action.shape == (3, 6, 5)
  assert sampled.action.dtype == tf.int32
  assert 0 <= sampled.action.numpy().min()
  assert sampled.action.numpy().max() <= 8


def test_sampling_follows_the_distribution():
  logits = tf.math.log(tf.constant([[[[0.7, 0.2, 0.1]]]]))
  logits = tf.tile(logits, [4, 50, 50, 1])
  from pixelrl_tf.agents import pixel_policy  # pylint: disable=g-import-not-at-top
  actions = pixel_policy.sample_actions(logits, seed=1).numpy()
  freq = np.bincount(actions.ravel(), minlength=3) / actions.size
  np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.02)


def test_poly_learning_rate():
  rate = pixel_a2c_agent.poly_learning_rate
  np.testing.assert_allclose(rate(1e-3, 0, 100), 1e-3)
  np.testing.assert_allclose(rate(1e-3, 50, 100), 1e-3 * 0.5 ** 0.9,
                             rtol=1e-6)
  # The last episode (index 99) still trains; after the budget it is 0.
  np.testing.assert_allclose(rate(1e-3, 99, 100), 1e-3 * 0.01 ** 0.9,
                             rtol=1e-5)
  assert float(rate(1e-3, 100, 100)) == 0.0


def _one_learner_episode(record_gradients, use_conv_gru, use_rmc, t_max,
                         window, gradient_clip_norm=None, traced=False):
  """`(weights before, weights after, result)` of one training episode.

  `traced`: run the episode as one `tf.function`, as training does (tracing
  it costs seconds to a minute; eagerly the same ops run in a few seconds).
  """
  from pixelrl_tf.data import noise as noise_lib  # pylint: disable=g-import-not-at-top
  from pixelrl_tf.drivers import learner as learner_lib  # pylint: disable=g-import-not-at-top
  from pixelrl_tf.environments import tf_pixel_env  # pylint: disable=g-import-not-at-top
  from pixelrl_tf.filters import action_set as action_set_lib  # pylint: disable=g-import-not-at-top
  tf.keras.utils.set_random_seed(5)
  environment = tf_pixel_env.PixelTFEnvironment(
      action_set_lib.DENOISE_ACTIONS, image_size=(8, 7), batch_size=3,
      t_max=t_max)
  net = fcn_actor_critic.FcnActorCritic(
      tf.TensorSpec([None, None, 1], tf.float32), 9, filters=4,
      use_conv_gru=use_conv_gru)
  agent = pixel_a2c_agent.PixelA2CAgent(
      environment.time_step_spec(), environment.action_spec(), net,
      tf.keras.optimizers.SGD(0.5), use_reward_map_conv=use_rmc,
      reward_map_size=5, max_update_batch=2,
      gradient_clip_norm=gradient_clip_norm)
  before = [v.numpy() for v in agent.trainable_variables_for_update()]
  learner = learner_lib.EpisodeLearner(
      agent, environment, t_max, window, seed=7,
      noise_model=noise_lib.parse_noise('gaussian:25'),
      record_gradients=record_gradients)
  clean = tf.random.stateless_uniform([3, 8, 7, 1], [1, 2])
  run = (tf.function(learner.run, autograph=False) if traced
         else learner.run)
  result = run(clean, clean, tf.constant(0, tf.int64))
  after = [v.numpy() for v in agent.trainable_variables_for_update()]
  return before, after, result


def _norm(before, after):
  return math.sqrt(sum(np.sum(np.square(a - b))
                       for a, b in zip(after, before)))


@pytest.mark.parametrize('use_conv_gru,use_rmc,t_max,window,traced', [
    (True, True, 4, 2, False), (False, False, 2, 2, True)])
def test_kept_activations_and_recompute_give_the_same_update(
    use_conv_gru, use_rmc, t_max, window, traced):
  """The update that reuses the rollout's forward pass equals the one that
  recomputes it step by step over batch slices (the same gradients)."""
  before, recomputed, first = _one_learner_episode(
      False, use_conv_gru, use_rmc, t_max, window, traced=traced)
  _, kept, second = _one_learner_episode(True, use_conv_gru, use_rmc, t_max,
                                         window, traced=traced)
  np.testing.assert_array_equal(first['actions'], second['actions'])
  np.testing.assert_allclose(first['loss'], second['loss'], rtol=1e-5)
  np.testing.assert_allclose(first['gradient_norm'], second['gradient_norm'],
                             rtol=1e-4)
  assert _norm(before, recomputed) > 0
  for got, want in zip(kept, recomputed):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_gradient_clipping_bounds_the_applied_step():
  before, after, result = _one_learner_episode(True, False, False, 2, 2,
                                               gradient_clip_norm=1e-3)
  norm = float(result['gradient_norm'])  # Before clipping.
  assert norm > 1e-2
  # SGD(0.5) moves the weights by 0.5 x the clipped gradient (norm 1e-3).
  np.testing.assert_allclose(_norm(before, after), 0.5e-3, rtol=1e-3)


def test_a_non_finite_update_leaves_weights_and_optimizer_untouched():
  time_step_spec, action_spec = _specs(1, 2, 1, 2)
  net = _ConstantNetwork(time_step_spec.observation, 2, 1.0)
  optimizer = tf.keras.optimizers.Adam(0.1)
  agent = pixel_a2c_agent.PixelA2CAgent(
      time_step_spec, action_spec, net, optimizer, gamma=0.5,
      entropy_coef=0.01, value_loss_coef=0.5)
  obs = [np.zeros((1, 1, 2, 1), np.float32)] * 3
  actions = [np.array([[[0, 1]]]), np.array([[[1, 1]]])]
  finite = [np.array([[[1.0, 3.0]]]), np.array([[[2.0, 0.0]]])]
  agent.train(_experience(obs, actions, finite))
  before = [v.numpy().copy() for v in net.variables + optimizer.variables]
  assert int(optimizer.iterations) == 1
  infinite = [np.array([[[np.inf, 3.0]]]), np.array([[[2.0, np.nan]]])]
  info = agent.train(_experience(obs, actions, infinite))
  assert not bool(info.extra.applied)
  assert not np.isfinite(float(info.extra.gradient_norm))
  after = [v.numpy() for v in net.variables + optimizer.variables]
  assert int(optimizer.iterations) == 1
  for got, want in zip(after, before):
    np.testing.assert_array_equal(got, want)
  # The next finite update is applied as usual.
  info = agent.train(_experience(obs, actions, finite))
  assert bool(info.extra.applied) and int(optimizer.iterations) == 2


# One pixel, three actions: logits, the taken action, every action's
# immediate reward, the return and the value (hand-checkable numbers).
_LOGITS = np.array([0.2, -0.1, 0.5], np.float32)
_ACTION_REWARDS = np.array([1.0, -2.0, 0.5], np.float32)
_RETURN, _VALUE = 1.5, 0.3


def _logit_gradient(taken, returns=_RETURN, **options):
  """d(policy + imitation term)/d(logits) of one pixel, and the terms."""
  logits = tf.Variable(_LOGITS[None, None, None])
  with tf.GradientTape() as tape:
    terms = pixel_a2c_agent.step_loss_terms(
        logits, tf.constant([[[_VALUE]]]), tf.constant([[[taken]]]),
        tf.constant([[[returns]]]), entropy_coef=0.0, value_loss_coef=0.5,
        action_rewards=tf.constant(_ACTION_REWARDS[None, None, None]),
        **options)
    loss = tf.reduce_sum(terms.policy + terms.imitation)
  return tape.gradient(loss, logits).numpy().ravel(), terms


def _softmax(x):
  e = np.exp(x - x.max())
  return e / e.sum()


def test_all_actions_gradient_matches_hand_computation():
  pi = _softmax(_LOGITS.astype(np.float64))
  r_bar = float(pi @ _ACTION_REWARDS)
  advantage = _RETURN - _VALUE
  for taken in range(3):
    got, terms = _logit_gradient(taken, all_actions_policy_gradient=True)
    # loss = -log pi(a) (A - r(a) + r_bar) - sum_b pi(b) r(b), r_bar held:
    # d/dz_b = -(1[a=b] - pi_b)(A - r_a + r_bar) - pi_b (r_b - r_bar).
    hand = (-(np.eye(3)[taken] - pi) * (advantage - _ACTION_REWARDS[taken] +
                                        r_bar) -
            pi * (_ACTION_REWARDS - r_bar))
    np.testing.assert_allclose(got, hand, atol=1e-6)
    # The advantage reported stays R - V; the value loss is unchanged.
    np.testing.assert_allclose(terms.advantage.numpy().ravel(), [advantage],
                               rtol=1e-6)
    np.testing.assert_allclose(terms.value.numpy().ravel(),
                               [0.25 * advantage ** 2], rtol=1e-6)


def test_all_actions_gradient_has_the_sampled_gradients_expectation():
  # The return is the taken action's reward plus a continuation that does
  # not depend on it. Over the policy's own distribution of the taken
  # action, the sampled and the all-actions gradients agree on average:
  # both are -pi_b (r_b - r_bar).
  pi = _softmax(_LOGITS.astype(np.float64))
  r_bar = float(pi @ _ACTION_REWARDS)
  continuation = 0.7
  sampled, exact = np.zeros(3), np.zeros(3)
  for taken in range(3):
    returns = float(_ACTION_REWARDS[taken]) + continuation
    plain, _ = _logit_gradient(taken, returns)
    all_actions, _ = _logit_gradient(taken, returns,
                                     all_actions_policy_gradient=True)
    sampled += pi[taken] * plain
    exact += pi[taken] * all_actions
    # Each all-actions gradient keeps only the continuation's sampled
    # term: the immediate reward enters through its expectation.
    np.testing.assert_allclose(
        all_actions, -(np.eye(3)[taken] - pi) * (continuation - _VALUE +
                                                 r_bar) -
        pi * (_ACTION_REWARDS - r_bar), atol=1e-6)
  np.testing.assert_allclose(sampled, -pi * (_ACTION_REWARDS - r_bar),
                             atol=1e-6)
  np.testing.assert_allclose(exact, sampled, atol=1e-6)


@pytest.mark.parametrize('temperature', [0.0, 0.5])
def test_imitation_gradient_matches_hand_computation(temperature):
  pi = _softmax(_LOGITS.astype(np.float64))
  weight = 0.3
  got, terms = _logit_gradient(1, imitation_weight=tf.constant(weight),
                               imitation_temperature=temperature)
  if temperature:
    target = _softmax(_ACTION_REWARDS.astype(np.float64) / temperature)
  else:
    target = np.eye(3)[0]  # Action 0 has the largest reward, 1.0.
  # Cross-entropy -w sum_a q_a log pi_a: d/dz = w (pi - q); the policy term
  # is the plain one, -(1[a=1] - pi) * (R - V).
  plain = -(np.eye(3)[1] - pi) * (_RETURN - _VALUE)
  np.testing.assert_allclose(got, plain + weight * (pi - target), atol=1e-6)
  np.testing.assert_allclose(
      terms.imitation.numpy().ravel(),
      [-weight * float(target @ np.log(pi))], rtol=1e-5)


def test_imitation_weight_decays_over_its_updates():
  time_step_spec, action_spec = _specs(1, 2, 1, 2)
  net = _ConstantNetwork(time_step_spec.observation, 2, 1.0)
  agent = pixel_a2c_agent.PixelA2CAgent(
      time_step_spec, action_spec, net, tf.keras.optimizers.SGD(0.0),
      imitation_coef=0.8, imitation_updates=4,
      train_step_counter=tf.Variable(0, dtype=tf.int64))
  assert agent.uses_action_rewards
  weights = []
  for _ in range(6):
    weights.append(float(agent._imitation_weight()))  # pylint: disable=protected-access
    agent.train_step_counter.assign_add(1)
  np.testing.assert_allclose(weights, [0.8, 0.6, 0.4, 0.2, 0.0, 0.0],
                             atol=1e-7)
  with pytest.raises(ValueError, match='imitation_updates'):
    pixel_a2c_agent.PixelA2CAgent(
        time_step_spec, action_spec, net, tf.keras.optimizers.SGD(0.0),
        imitation_coef=0.8, imitation_updates=0)


def test_an_update_without_the_action_rewards_is_one_line():
  time_step_spec, action_spec = _specs(1, 2, 1, 2)
  net = _ConstantNetwork(time_step_spec.observation, 2, 1.0)
  agent = pixel_a2c_agent.PixelA2CAgent(
      time_step_spec, action_spec, net, tf.keras.optimizers.SGD(0.1),
      all_actions_policy_gradient=True)
  obs = [np.zeros((1, 1, 2, 1), np.float32)] * 2
  with pytest.raises(ValueError, match="every action's reward"):
    agent.train(_experience(obs, [np.array([[[0, 1]]])],
                            [np.array([[[1.0, 3.0]]])]))

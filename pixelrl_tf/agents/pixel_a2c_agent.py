"""PixelRL's per-pixel advantage actor-critic agent (Furuta et al., 2020).

Shapes: `B` batch, `T` time, `H, W` height and width, `C` channels, `A`
actions.

Every pixel is an agent with its own policy, value, reward and return; all
pixels share the network parameters. One update per window of `n` steps
(synchronous A2C, as the single-process reference code), computed as:

  R <- bootstrap (0 at a terminal end, else V(s_{t+n}) as a constant)
  for k = t+n-1 .. t:  R <- gamma * R;  R <- w * R (RMC only);  R <- r_k + R
    A_k = R - V(s_k)
    policy_loss  += -log pi(a_k|s_k) * stop_gradient(A_k)
    entropy_loss += -beta * H(pi(.|s_k))
    value_loss   += value_loss_coef * (V(s_k) - R)^2 / 2
  loss = mean over B, H, W of (policy_loss + entropy_loss + value_loss)

Differences from a textbook `TFAgent` / A2C, all taken from the reference code:
- rewards, values, advantages and log-probabilities are `[B,H,W]` maps and the
  loss is the spatial mean of a sum over time;
- with `use_reward_map_conv`, the n-step return goes through the learnable
  33x33 kernel `w` (`RewardMapConv`, identity init). The reference code trains
  `w` only through the value loss (the advantage in the policy loss is
  detached); `reward_map_policy_gradient=True` also passes the policy term's
  gradient to `w`, as eq. (17) and Algorithm 1 of the paper write it;
- the ConvGRU state is carried through the sequence without
  back-propagation through time;
- `train` takes the window's first network state (`initial_network_state`,
  for windows that start inside an episode) and, optionally, the gradient
  tape under which the rollout ran the network (`rollout_tape`, with the
  logits and values in the policy info): the update then back-propagates
  through the rollout's own forward pass. Without a tape it recomputes the
  forward pass step by step (gradients accumulated per step, and per slice
  of `max_update_batch` images), which keeps memory at one step's
  activations of one slice whatever the window length and batch size. Both
  give the same gradients;
- under a `tf.distribute` strategy the replicas' gradients are summed (each
  replica's loss is its share of the global batch mean), optionally clipped
  by their global norm, and applied only when they are finite;
- opt-in stabilisers, off by default as in the reference: `reward_scale`
  multiplies the rewards before the returns, `gradient_clip_norm` clips the
  global gradient norm;
- opt-in sample efficiency from what the environment computes anyway (every
  action's result at every pixel, hence every action's immediate reward
  `r_k(a)` for a per-pixel reward; docs/training.md derives both):
  `all_actions_policy_gradient` replaces the sampled score-function term of
  the immediate reward's deviation from its expectation,
  `r_k(a_k) - sum_a pi(a|s_k) r_k(a)`, by its exact expectation
  `sum_a grad pi(a|s_k) r_k(a)` (unbiased, without that part's sampling
  variance); the rest of the advantage keeps the sampled term, which carries
  the multi-step credit:
    policy_loss += -sum_a pi(a|s_k) r_k(a)
                   - log pi(a_k|s_k) * stop_gradient(A_k - r_k(a_k) + rbar_k)
  with `rbar_k = stop_gradient(sum_a pi(a|s_k) r_k(a))`. `imitation_coef`
  adds a cross-entropy towards the per-pixel best immediate action (or,
  with `imitation_temperature > 0`, towards `softmax(r_k / temperature)`),
  decaying linearly to 0 over `imitation_updates` updates: a warm start
  that A2C then takes over. With the reward map convolution, `w` acts on
  the discounted future only (eq. 13), so the immediate term is unchanged.
"""

import collections
from typing import Optional

import gin
import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.utils import common

from pixelrl_tf.agents import pixel_policy
from pixelrl_tf.agents import returns as returns_lib
from pixelrl_tf.agents import reward_map

StepLossTerms = collections.namedtuple(
    'StepLossTerms',
    ('policy', 'entropy_term', 'value', 'entropy', 'advantage', 'log_prob',
     'imitation'))

PixelA2CLossInfo = collections.namedtuple(
    'PixelA2CLossInfo',
    ('policy_loss', 'value_loss', 'entropy_loss', 'entropy', 'mean_return',
     'mean_abs_advantage', 'gradient_norm', 'applied', 'imitation_loss'))


def step_loss_terms(logits, values, actions, returns, entropy_coef,
                    value_loss_coef, advantage_returns=None,
                    action_rewards=None, all_actions_policy_gradient=False,
                    imitation_weight=None, imitation_temperature=0.0):
  """Per-pixel loss terms of one step.

  Args:
    logits: `[B,H,W,A]` policy logits at `s_k`.
    values: `[B,H,W]` `V(s_k)`.
    actions: `[B,H,W]` int actions taken at `s_k`.
    returns: `[B,H,W]` n-step returns `R_k` (used in the value loss).
    entropy_coef: `beta`.
    value_loss_coef: weight of `(V - R)^2 / 2`.
    advantage_returns: the returns used for the advantage of the policy
      term, defaults to `returns`; the advantage is always detached from `V`.
    action_rewards: `[B,H,W,A]` every action's immediate reward `r_k(a)`
      (scaled as the returns' rewards), for the two options below.
    all_actions_policy_gradient: the immediate reward's deviation from its
      expectation enters through its exact expectation (module docstring).
    imitation_weight: weight of the cross-entropy towards the best
      immediate action(s); None or 0: none.
    imitation_temperature: 0: the target is the best action (one-hot);
      else `softmax(r_k / temperature)`.

  Returns:
    `StepLossTerms` of `[B,H,W]` maps: `policy` (`-log pi(a) * A`, or the
    all-actions form), `entropy_term = -beta * H`, `value`, `entropy = H`,
    the detached `advantage = R - V`, `log_prob = log pi(a)` and
    `imitation` (weighted cross-entropy, zeros without it).
  """
  if advantage_returns is None:
    advantage_returns = tf.stop_gradient(returns)
  logits = tf.cast(logits, tf.float32)
  values = tf.cast(values, tf.float32)
  log_probs = tf.nn.log_softmax(logits, axis=-1)
  probs = tf.exp(log_probs)
  entropy = -tf.reduce_sum(probs * log_probs, axis=-1)
  num_actions = tf.shape(logits)[-1]
  taken_one_hot = tf.one_hot(actions, num_actions, dtype=log_probs.dtype)
  taken = tf.reduce_sum(log_probs * taken_one_hot, axis=-1)
  advantages = advantage_returns - tf.stop_gradient(values)
  policy = -taken * advantages
  imitation = tf.zeros_like(entropy)
  if action_rewards is not None:
    action_rewards = tf.stop_gradient(tf.cast(action_rewards, tf.float32))
    if all_actions_policy_gradient:
      expected = tf.reduce_sum(probs * action_rewards, axis=-1)
      deviation = (tf.reduce_sum(action_rewards * taken_one_hot, axis=-1) -
                   tf.stop_gradient(expected))
      policy = -taken * (advantages - deviation) - expected
    if imitation_weight is not None:
      if imitation_temperature:
        target = tf.nn.softmax(action_rewards / imitation_temperature,
                               axis=-1)
      else:
        target = tf.one_hot(tf.argmax(action_rewards, axis=-1),
                            num_actions, dtype=log_probs.dtype)
      imitation = -imitation_weight * tf.reduce_sum(target * log_probs,
                                                    axis=-1)
  value = value_loss_coef * 0.5 * tf.square(values - returns)
  return StepLossTerms(policy, -entropy_coef * entropy, value, entropy,
                       advantages, taken, imitation)


def _num_replicas():
  context = tf.distribute.get_replica_context()
  return 1 if context is None else context.num_replicas_in_sync


@gin.configurable(module='pixelrl_tf.agents', allowlist=[
    'gamma', 'entropy_coef', 'value_loss_coef', 'reward_map_policy_gradient',
    'max_update_batch', 'reward_scale', 'gradient_clip_norm',
    'all_actions_policy_gradient', 'imitation_coef', 'imitation_temperature',
    'imitation_updates', 'debug_summaries', 'summarize_grads_and_vars'])
class PixelA2CAgent(tf_agent.TFAgent):
  """A2C with per-pixel agents, an optional ConvGRU state and optional RMC."""

  def __init__(self, time_step_spec, action_spec, actor_critic_network,
               optimizer, gamma: float = 0.95, entropy_coef: float = 0.01,
               value_loss_coef: float = 0.5,
               use_reward_map_conv: bool = False, reward_map_size: int = 33,
               reward_map_policy_gradient: bool = False,
               max_update_batch: Optional[int] = 32,
               reward_scale: float = 1.0,
               gradient_clip_norm: Optional[float] = None,
               all_actions_policy_gradient: bool = False,
               imitation_coef: float = 0.0,
               imitation_temperature: float = 0.0,
               imitation_updates: Optional[int] = None,
               debug_summaries: bool = False,
               summarize_grads_and_vars: bool = False,
               train_step_counter=None, name: str = 'PixelA2CAgent'):
    """Creates the agent.

    Args:
      time_step_spec: `TimeStep` spec: observation `[H,W,C]` image, reward
        `[H,W]` map.
      action_spec: `BoundedTensorSpec` of the `[H,W]` int32 action map.
      actor_critic_network: network returning `((logits, values), state)`;
        injected, so the agent does not depend on its architecture.
      optimizer: a `tf.keras.optimizers` optimizer (the reference uses Adam
        1e-3 with a poly(0.9) decay over the episode budget, no clipping).
      gamma: discount (0.95 in the paper and code).
      entropy_coef: `beta` of the entropy bonus (0.01 in the code).
      value_loss_coef: weight of the value loss (0.5 in the code, on top of
        the 1/2 of the squared error).
      use_reward_map_conv: learn the 33x33 reward map convolution (RMC).
      reward_map_size: odd RMC kernel size (33 = receptive field).
      reward_map_policy_gradient: also train `w` through the policy loss
        (paper eq. 17); False is the reference code's behaviour.
      max_update_batch: without a rollout tape, the update runs on slices of
        at most this many images and accumulates their gradients (the same
        gradient as the whole batch at once, in a fraction of the memory);
        None: no slicing.
      reward_scale: factor applied to the rewards before the returns (1.0:
        the reference); a stabiliser for tasks whose rewards are large.
      gradient_clip_norm: clip the global gradient norm to this (None: no
        clipping, as the reference).
      all_actions_policy_gradient: take the immediate reward's part of the
        policy gradient through its exact expectation over every action
        (module docstring; needs a per-pixel reward). False: the reference.
      imitation_coef: initial weight of the cross-entropy towards the best
        immediate action(s) (0: none, the reference).
      imitation_temperature: 0: the target is each pixel's best immediate
        action; else the reward-weighted distribution
        `softmax(r / temperature)`, in reward units.
      imitation_updates: the weight decays linearly to 0 over this many
        updates (None: constant).
      debug_summaries: write histograms of every update's returns, values,
        advantages and rewards and the share of each action taken
        (`debug/...`), under the default summary writer and step (the
        training loop sets them at its scalar-summary episodes).
      summarize_grads_and_vars: write histograms of every trainable
        variable and its gradient (`gradients/...`, `variables/...`), the
        same way.
      train_step_counter: optional counter incremented per update.
      name: agent name.
    """
    tf.Module.__init__(self, name=name)
    self._actor_critic_network = actor_critic_network
    self._optimizer = optimizer
    self._gamma = gamma
    self._entropy_coef = entropy_coef
    self._value_loss_coef = value_loss_coef
    self._reward_map_policy_gradient = reward_map_policy_gradient
    self._max_update_batch = max_update_batch
    self._reward_scale = reward_scale
    self._gradient_clip_norm = gradient_clip_norm
    self._all_actions_policy_gradient = bool(all_actions_policy_gradient)
    self._imitation_coef = float(imitation_coef)
    self._imitation_temperature = float(imitation_temperature)
    self._imitation_updates = imitation_updates
    if self._imitation_coef < 0 or self._imitation_temperature < 0:
      raise ValueError('imitation_coef and imitation_temperature must not '
                       'be negative')
    if imitation_updates is not None and imitation_updates < 1:
      raise ValueError(f'imitation_updates must be at least 1 (or None), '
                       f'got {imitation_updates}')
    self._reward_map = (reward_map.RewardMapConv(reward_map_size)
                        if use_reward_map_conv else None)
    actor_critic_network.create_variables()
    policy = pixel_policy.PixelActorCriticPolicy(
        time_step_spec, action_spec, actor_critic_network, greedy=True,
        name='greedy_policy')
    collect_policy = pixel_policy.PixelActorCriticPolicy(
        time_step_spec, action_spec, actor_critic_network, greedy=False,
        name='collect_policy')
    self._recording_collect_policy = pixel_policy.PixelActorCriticPolicy(
        time_step_spec, action_spec, actor_critic_network, greedy=False,
        emit_network_outputs=True, name='recording_collect_policy')
    super().__init__(
        time_step_spec, action_spec, policy, collect_policy,
        train_sequence_length=None, debug_summaries=debug_summaries,
        summarize_grads_and_vars=summarize_grads_and_vars,
        train_step_counter=train_step_counter)

  @property
  def actor_critic_network(self):
    return self._actor_critic_network

  @property
  def recording_collect_policy(self):
    """The collect policy that also emits logits and values as info."""
    return self._recording_collect_policy

  @property
  def reward_map(self):
    """The `RewardMapConv`, or None without RMC."""
    return self._reward_map

  @property
  def optimizer(self):
    return self._optimizer

  @property
  def gamma(self):
    return self._gamma

  @property
  def uses_action_rewards(self) -> bool:
    """Whether updates need every action's reward (policy info
    `pixel_policy.ACTION_REWARDS` of the transitions)."""
    return self._all_actions_policy_gradient or self._imitation_coef > 0

  @property
  def writes_summaries(self) -> bool:
    """Whether updates write summaries (debug or gradient histograms)."""
    return self._debug_summaries or self._summarize_grads_and_vars

  @property
  def hyperparameters(self):
    """The loss and update settings, for logs and tests."""
    return dict(gamma=self._gamma, entropy_coef=self._entropy_coef,
                value_loss_coef=self._value_loss_coef,
                reward_map_policy_gradient=self._reward_map_policy_gradient,
                max_update_batch=self._max_update_batch,
                reward_scale=self._reward_scale,
                gradient_clip_norm=self._gradient_clip_norm,
                all_actions_policy_gradient=self._all_actions_policy_gradient,
                imitation_coef=self._imitation_coef,
                imitation_temperature=self._imitation_temperature,
                imitation_updates=self._imitation_updates)

  def trainable_variables_for_update(self):
    variables = list(self._actor_critic_network.trainable_variables)
    if self._reward_map is not None:
      variables.append(self._reward_map.kernel)
    return variables

  def _initialize(self):
    return tf.no_op()

  def _batch_chunks(self, batch_size):
    """Slices of the batch whose gradients are accumulated one at a time."""
    if (self._max_update_batch is None or batch_size is None or
        batch_size <= self._max_update_batch):
      return [None]
    return [slice(start, min(start + self._max_update_batch, batch_size))
            for start in range(0, batch_size, self._max_update_batch)]

  def _returns(self, rewards, bootstrap_values):
    return returns_lib.n_step_returns(rewards, bootstrap_values, self._gamma,
                                      reward_map_fn=self._reward_map)

  def _bootstrap_values(self, final_observation, final_discount):
    """`[B,H,W]` V(s_T) * discount, skipping the forward pass if terminal."""
    def compute():
      (_, values), _ = self._actor_critic_network(
          final_observation, step_type=None,
          network_state=self._actor_critic_network.get_initial_state(
              tf.shape(final_observation)[0]))
      values = tf.cast(values, tf.float32)
      return tf.stop_gradient(values) * final_discount[:, None, None]

    def zeros():
      return tf.zeros(tf.shape(final_observation)[:3], tf.float32)

    return tf.cond(tf.reduce_any(final_discount > 0), compute, zeros)

  def _train(self, experience, weights=None, initial_network_state=None,
             rollout_tape=None):
    """Runs one update on a `[B,n+1]` trajectory (item `n` = boundary).

    Items `0..n-1` are the transitions of the window; the observation of item
    `n` is the state after the window, used to bootstrap when the window does
    not end the episode (`discount[n-1] > 0`).

    Args:
      experience: the `Trajectory` (see `drivers.rollout`).
      weights: unsupported (must be None).
      initial_network_state: the network state before item 0 (windows that
        start inside an episode); None: the initial state.
      rollout_tape: the tape the rollout ran the network under; its logits
        and values are in `experience.policy_info`.

    Returns:
      `LossInfo` with `PixelA2CLossInfo` extras.
    """
    if weights is not None:
      raise ValueError('PixelA2CAgent does not support sample weights')
    loss_info = self._loss_and_update(
        experience, apply_gradients=True,
        initial_network_state=initial_network_state,
        rollout_tape=rollout_tape)
    self.train_step_counter.assign_add(1)
    return loss_info

  def _loss(self, experience, weights=None, training=False,
            initial_network_state=None):
    del training
    if weights is not None:
      raise ValueError('PixelA2CAgent does not support sample weights')
    return self._loss_and_update(experience, apply_gradients=False,
                                 initial_network_state=initial_network_state)

  def _loss_and_update(self, experience, apply_gradients,
                       initial_network_state=None, rollout_tape=None):
    """Computes the loss of `experience` and optionally applies gradients."""
    with tf.name_scope('pixel_a2c_loss'):
      observations = tf.nest.map_structure(
          common.transpose_batch_time, experience.observation)
      actions = common.transpose_batch_time(experience.action)
      rewards = common.transpose_batch_time(experience.reward)
      discounts = common.transpose_batch_time(experience.discount)
      step_types = common.transpose_batch_time(experience.step_type)
      num_steps = observations.shape[0] - 1
      if num_steps < 1:
        raise ValueError('experience needs at least 2 time items, got '
                         f'{num_steps + 1}')
      rewards = rewards[:num_steps] * self._reward_scale
      action_rewards = self._action_rewards(experience, num_steps)
      bootstrap = self._bootstrap_values(observations[num_steps],
                                         discounts[num_steps - 1])
      step_returns = tf.stop_gradient(self._returns(rewards, bootstrap))
      # Each replica's loss is its share of the global batch mean.
      replica_weight = 1.0 / _num_replicas()
      network_variables = self._actor_critic_network.trainable_variables

      if rollout_tape is not None:
        grads, totals, value_maps, log_prob_maps = self._reuse_rollout(
            experience, actions, step_returns, num_steps, replica_weight,
            rollout_tape, network_variables, apply_gradients, action_rewards)
      else:
        grads, totals, value_maps, log_prob_maps = self._recompute(
            observations, actions, step_types, step_returns, num_steps,
            replica_weight, initial_network_state, network_variables,
            apply_gradients, action_rewards)
      totals['return'] = tf.reduce_mean(step_returns)
      if self._debug_summaries:
        self._summarize_update(actions[:num_steps], rewards, step_returns,
                               value_maps)

      variables = list(network_variables)
      if self._reward_map is not None:
        grads.append(self._reward_map_gradient(
            rewards, bootstrap, value_maps, log_prob_maps, replica_weight))
        variables.append(self._reward_map.kernel)

      gradient_norm = tf.constant(0.0)
      applied = tf.constant(False)
      if apply_gradients:
        gradient_norm, applied = self._apply(grads, variables)

      total = (totals['policy'] + totals['entropy_term'] + totals['value'] +
               totals['imitation'])
      return tf_agent.LossInfo(
          total, PixelA2CLossInfo(
              policy_loss=totals['policy'], value_loss=totals['value'],
              entropy_loss=totals['entropy_term'], entropy=totals['entropy'],
              mean_return=totals['return'],
              mean_abs_advantage=totals['abs_advantage'],
              gradient_norm=gradient_norm, applied=applied,
              imitation_loss=totals['imitation']))

  def _action_rewards(self, experience, num_steps):
    """`[T,B,H,W,A]` every action's reward, scaled, or None if unused."""
    if not self.uses_action_rewards:
      return None
    info = experience.policy_info
    if not isinstance(info, dict) or pixel_policy.ACTION_REWARDS not in info:
      raise ValueError(
          'all_actions_policy_gradient and imitation_coef need every '
          "action's reward in the policy info (run the episode with "
          'record_action_rewards=True on an environment with a per-pixel '
          'reward)')
    action_rewards = common.transpose_batch_time(
        info[pixel_policy.ACTION_REWARDS])
    return action_rewards[:num_steps] * self._reward_scale

  def _imitation_weight(self):
    """The cross-entropy's weight at this update, or None without it."""
    if self._imitation_coef <= 0:
      return None
    if self._imitation_updates is None:
      return tf.constant(self._imitation_coef)
    done = tf.cast(self.train_step_counter, tf.float32)
    return self._imitation_coef * tf.maximum(
        0.0, 1.0 - done / float(self._imitation_updates))

  def _step_terms(self, logits, values, actions, returns, action_rewards):
    return step_loss_terms(
        logits, values, actions, returns, self._entropy_coef,
        self._value_loss_coef, action_rewards=action_rewards,
        all_actions_policy_gradient=self._all_actions_policy_gradient,
        imitation_weight=self._imitation_weight(),
        imitation_temperature=self._imitation_temperature)

  def _accumulate_totals(self, totals, weight, num_steps, terms):
    totals['policy'] += weight * tf.reduce_mean(terms.policy)
    totals['entropy_term'] += weight * tf.reduce_mean(terms.entropy_term)
    totals['value'] += weight * tf.reduce_mean(terms.value)
    totals['imitation'] += weight * tf.reduce_mean(terms.imitation)
    totals['entropy'] += weight * tf.reduce_mean(terms.entropy) / num_steps
    totals['abs_advantage'] += (
        weight * tf.reduce_mean(tf.abs(terms.advantage)) / num_steps)

  def _reuse_rollout(self, experience, actions, step_returns, num_steps,
                     replica_weight, rollout_tape, network_variables,
                     apply_gradients, action_rewards=None):
    """Loss from the rollout's logits and values; one backward pass."""
    info = experience.policy_info
    if not isinstance(info, dict) or pixel_policy.LOGITS not in info:
      raise ValueError('a rollout tape needs the logits and values in the '
                       'policy info (agent.recording_collect_policy)')
    logits = info[pixel_policy.LOGITS]
    values = info[pixel_policy.VALUES]
    totals = collections.defaultdict(lambda: tf.constant(0.0))
    with tf.GradientTape() as loss_tape:
      loss_tape.watch([logits, values])
      time_logits = common.transpose_batch_time(logits)
      time_values = common.transpose_batch_time(values)
      loss = tf.constant(0.0)
      value_maps, log_prob_maps = [], []
      for k in range(num_steps):
        terms = self._step_terms(
            time_logits[k], time_values[k], actions[k], step_returns[k],
            None if action_rewards is None else action_rewards[k])
        loss += tf.reduce_mean(terms.policy + terms.entropy_term +
                               terms.value + terms.imitation)
        self._accumulate_totals(totals, 1.0, num_steps, terms)
        value_maps.append(tf.stop_gradient(time_values[k]))
        log_prob_maps.append(tf.stop_gradient(terms.log_prob))
      loss = self._scaled(loss * replica_weight)
    if not apply_gradients:
      return [], totals, value_maps, log_prob_maps
    output_gradients = loss_tape.gradient(loss, [logits, values])
    grads = rollout_tape.gradient([logits, values], network_variables,
                                  output_gradients=output_gradients)
    grads = [tf.zeros_like(v) if g is None else g
             for g, v in zip(grads, network_variables)]
    return self._unscaled(grads), totals, value_maps, log_prob_maps

  def _recompute(self, observations, actions, step_types, step_returns,
                 num_steps, replica_weight, initial_network_state,
                 network_variables, apply_gradients, action_rewards=None):
    """Re-runs the window's forward passes step by step, per batch slice."""
    network = self._actor_critic_network
    accumulated = [tf.zeros_like(v) for v in network_variables]
    batch_size = actions.shape[1]
    if initial_network_state is None:
      initial_network_state = network.get_initial_state(
          batch_size if batch_size is not None else tf.shape(actions)[1])
    chunks = self._batch_chunks(batch_size)
    totals = collections.defaultdict(lambda: tf.constant(0.0))
    value_maps = [[] for _ in range(num_steps)]
    log_prob_maps = [[] for _ in range(num_steps)]
    # In a graph nothing orders a step's forward pass after the previous
    # step's backward pass, and the executor would keep every step's
    # activations alive at once; chaining each step on the gradients so
    # far keeps one (chunk, step)'s activations in memory.
    previous = [step_returns]
    for chunk in chunks:
      weight = 1.0 if chunk is None else (
          (chunk.stop - chunk.start) / batch_size)
      take = (lambda x: x) if chunk is None else (lambda x, c=chunk: x[c])
      state = tf.nest.map_structure(take, initial_network_state)
      for k in range(num_steps):
        with tf.control_dependencies(previous):
          observation = tf.identity(take(observations[k]))
        with tf.GradientTape() as tape:
          (logits, values), state = network(
              observation, step_type=take(step_types[k]),
              network_state=state, training=True)
          terms = self._step_terms(
              logits, values, take(actions[k]), take(step_returns[k]),
              None if action_rewards is None else take(action_rewards[k]))
          step_loss = self._scaled(replica_weight * weight * tf.reduce_mean(
              terms.policy + terms.entropy_term + terms.value +
              terms.imitation))
        if apply_gradients:
          grads = tape.gradient(step_loss, network_variables)
          accumulated = [a if g is None else a + g
                         for a, g in zip(accumulated, grads)]
          previous = accumulated
        else:
          previous = [step_loss]
        self._accumulate_totals(totals, weight, num_steps, terms)
        value_maps[k].append(tf.stop_gradient(tf.cast(values, tf.float32)))
        log_prob_maps[k].append(tf.stop_gradient(terms.log_prob))
    value_maps = [tf.concat(maps, axis=0) for maps in value_maps]
    log_prob_maps = [tf.concat(maps, axis=0) for maps in log_prob_maps]
    if apply_gradients:
      accumulated = self._unscaled(accumulated)
    return accumulated, totals, value_maps, log_prob_maps

  def _scaled(self, loss):
    """The loss scaled for float16 gradients (a `LossScaleOptimizer`)."""
    if hasattr(self._optimizer, 'get_scaled_loss'):
      return self._optimizer.get_scaled_loss(loss)
    return loss

  def _unscaled(self, grads):
    if hasattr(self._optimizer, 'get_unscaled_gradients'):
      return self._optimizer.get_unscaled_gradients(grads)
    return grads

  def _reward_map_gradient(self, rewards, bootstrap, value_maps,
                           log_prob_maps, replica_weight):
    """`w`'s gradient: the value loss (and optionally the policy loss).

    `w` only enters through the returns: its gradient is that of the value
    loss (and, on request, of the policy loss) with V and log pi held fixed,
    which is exactly its share of the full gradient.
    """
    with tf.GradientTape() as tape:
      map_returns = self._returns(rewards, bootstrap)
      values = tf.stack(value_maps, axis=0)
      w_loss = self._value_loss_coef * 0.5 * tf.square(values - map_returns)
      if self._reward_map_policy_gradient:
        w_loss += -tf.stack(log_prob_maps, axis=0) * map_returns
      w_loss = replica_weight * tf.reduce_sum(
          tf.reduce_mean(w_loss, axis=[1, 2, 3]))
    return tape.gradient(w_loss, self._reward_map.kernel)

  def _apply(self, grads, variables):
    """Sums replicas, clips, and applies finite gradients.

    Returns:
      `(global gradient norm before clipping, whether they were applied)`.
    """
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
      grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    gradient_norm = tf.linalg.global_norm(grads)
    if self._gradient_clip_norm is not None:
      grads, _ = tf.clip_by_global_norm(grads, self._gradient_clip_norm,
                                        use_norm=gradient_norm)
    finite = tf.math.is_finite(gradient_norm)
    grads_and_vars = list(zip(grads, variables))
    if self._summarize_grads_and_vars:
      self._summarize(grads_and_vars)

    def apply():
      self._optimizer.apply_gradients(grads_and_vars,
                                      skip_gradients_aggregation=True)
      return tf.constant(True)

    if _num_replicas() > 1:
      # Every replica holds the same summed gradients; a conditional around
      # the optimizer's cross-replica update is not supported, so a
      # non-finite update is caught by the caller after the episode.
      return gradient_norm, apply()
    return gradient_norm, tf.cond(finite, apply, lambda: tf.constant(False))

  def _summary_step(self):
    step = tf.summary.experimental.get_step()
    return self.train_step_counter if step is None else step

  def _summarize(self, grads_and_vars):
    """Histograms of every variable and its gradient."""
    step = self._summary_step()
    # Tags from the root, whatever name scope the update runs in.
    with tf.compat.v1.name_scope(''):
      for grad, var in grads_and_vars:
        name = var.name.replace(':', '_')
        tf.summary.histogram(f'gradients/{name}', grad, step=step)
        tf.summary.histogram(f'variables/{name}', var, step=step)

  def _summarize_update(self, actions, rewards, returns, value_maps):
    """Histograms of `[T,B,H,W]` rewards, returns, values, advantages."""
    step = self._summary_step()
    values = tf.stack(value_maps, axis=0)
    num_actions = int(self.action_spec.maximum) + 1
    counts = tf.math.bincount(tf.reshape(actions, [-1]),
                              minlength=num_actions, maxlength=num_actions,
                              dtype=tf.float32)
    shares = counts / tf.maximum(tf.reduce_sum(counts), 1.0)
    with tf.compat.v1.name_scope(''):
      tf.summary.histogram('debug/rewards', rewards, step=step)
      tf.summary.histogram('debug/returns', returns, step=step)
      tf.summary.histogram('debug/values', values, step=step)
      tf.summary.histogram('debug/advantages', returns - values, step=step)
      for index in range(num_actions):
        tf.summary.scalar(f'debug/action_share/{index}', shares[index],
                          step=step)


def poly_learning_rate(initial_learning_rate, episode, num_episodes,
                       power=0.9):
  """The reference schedule `lr * (1 - episode / episodes) ** power`.

  The reference sets Adam's rate after every episode, so the episode with
  0-based index `episode` trains at this rate: the first at `lr`, the last at
  `lr * (1 / episodes) ** power`, and after the budget it is 0.

  Args:
    initial_learning_rate: learning rate at episode 0 (1e-3).
    episode: 0-based index of the episode about to run (int or tensor).
    num_episodes: the episode budget (30000 in the paper).
    power: 0.9 in the reference.

  Returns:
    float32 scalar tensor.
  """
  fraction = tf.cast(episode, tf.float32) / float(max(num_episodes, 1))
  fraction = tf.clip_by_value(fraction, 0.0, 1.0)
  return initial_learning_rate * tf.pow(1.0 - fraction, power)

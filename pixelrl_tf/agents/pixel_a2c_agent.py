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
  back-propagation through time; the update therefore runs step by step
  (gradients accumulated per step, and per slice of `max_update_batch`
  images), which keeps memory at one step's activations of one slice
  whatever the window length and batch size.
"""

import collections

import gin
import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.utils import common

from pixelrl_tf.agents import pixel_policy
from pixelrl_tf.agents import returns as returns_lib
from pixelrl_tf.agents import reward_map

PixelA2CLossInfo = collections.namedtuple(
    'PixelA2CLossInfo',
    ('policy_loss', 'value_loss', 'entropy_loss', 'entropy', 'mean_return'))


def step_loss_terms(logits, values, actions, returns, entropy_coef,
                    value_loss_coef, advantage_returns=None):
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

  Returns:
    `(policy, entropy_term, value, entropy)` maps `[B,H,W]`, where
    `entropy_term = -beta * H` and `entropy = H`.
  """
  if advantage_returns is None:
    advantage_returns = tf.stop_gradient(returns)
  log_probs = tf.nn.log_softmax(logits, axis=-1)
  probs = tf.exp(log_probs)
  entropy = -tf.reduce_sum(probs * log_probs, axis=-1)
  num_actions = tf.shape(logits)[-1]
  taken = tf.reduce_sum(
      log_probs * tf.one_hot(actions, num_actions, dtype=log_probs.dtype),
      axis=-1)
  advantages = advantage_returns - tf.stop_gradient(values)
  policy = -taken * advantages
  value = value_loss_coef * 0.5 * tf.square(values - returns)
  return policy, -entropy_coef * entropy, value, entropy


@gin.configurable(module='pixelrl_tf.agents')
class PixelA2CAgent(tf_agent.TFAgent):
  """A2C with per-pixel agents, an optional ConvGRU state and optional RMC."""

  def __init__(self, time_step_spec, action_spec, actor_critic_network,
               optimizer, gamma=0.95, entropy_coef=0.01, value_loss_coef=0.5,
               use_reward_map_conv=False, reward_map_size=33,
               reward_map_policy_gradient=False, max_update_batch=32,
               debug_summaries=False,
               summarize_grads_and_vars=False, train_step_counter=None,
               name='PixelA2CAgent'):
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
      max_update_batch: the update runs on slices of at most this many
        images and accumulates their gradients (the same gradient as the
        whole batch at once, in a fraction of the memory); None: no slicing.
      debug_summaries: emit extra summaries.
      summarize_grads_and_vars: emit gradient and variable summaries.
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
    self._reward_map = (reward_map.RewardMapConv(reward_map_size)
                        if use_reward_map_conv else None)
    actor_critic_network.create_variables()
    policy = pixel_policy.PixelActorCriticPolicy(
        time_step_spec, action_spec, actor_critic_network, greedy=True,
        name='greedy_policy')
    collect_policy = pixel_policy.PixelActorCriticPolicy(
        time_step_spec, action_spec, actor_critic_network, greedy=False,
        name='collect_policy')
    super().__init__(
        time_step_spec, action_spec, policy, collect_policy,
        train_sequence_length=None, debug_summaries=debug_summaries,
        summarize_grads_and_vars=summarize_grads_and_vars,
        train_step_counter=train_step_counter)

  @property
  def actor_critic_network(self):
    return self._actor_critic_network

  @property
  def reward_map(self):
    """The `RewardMapConv`, or None without RMC."""
    return self._reward_map

  @property
  def optimizer(self):
    return self._optimizer

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
      return tf.stop_gradient(values) * final_discount[:, None, None]

    def zeros():
      return tf.zeros(tf.shape(final_observation)[:3], tf.float32)

    return tf.cond(tf.reduce_any(final_discount > 0), compute, zeros)

  def _train(self, experience, weights=None):
    """Runs one update on a `[B,T+1]` trajectory (time item `T` = boundary).

    Items `0..T-1` are the transitions of the window; the observation of item
    `T` is the state after the window, used to bootstrap when the window does
    not end the episode (`discount[T-1] > 0`).
    """
    if weights is not None:
      raise ValueError('PixelA2CAgent does not support sample weights')
    loss_info = self.loss_and_gradients(experience, apply_gradients=True)
    self.train_step_counter.assign_add(1)
    return loss_info

  def _loss(self, experience, weights=None, training=False):
    del training
    if weights is not None:
      raise ValueError('PixelA2CAgent does not support sample weights')
    return self.loss_and_gradients(experience, apply_gradients=False)

  def train_window(self, experience, initial_network_state):
    """Like `train`, for a window that starts inside an episode.

    Windows after the first of a long episode (restoration: 15 steps updated
    every 5) start from the GRU state the rollout reached, which the caller
    passes; `train` assumes the window starts at the episode's first step.

    Args:
      experience: `[B,n+1]` trajectory as for `train`.
      initial_network_state: the network state before item 0.

    Returns:
      `LossInfo`.
    """
    loss_info = self.loss_and_gradients(
        experience, apply_gradients=True,
        initial_network_state=initial_network_state)
    self.train_step_counter.assign_add(1)
    return loss_info

  def loss_and_gradients(self, experience, apply_gradients,
                         initial_network_state=None):
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
      bootstrap = self._bootstrap_values(observations[num_steps],
                                         discounts[num_steps - 1])
      step_returns = tf.stop_gradient(
          self._returns(rewards[:num_steps], bootstrap))

      network = self._actor_critic_network
      network_variables = network.trainable_variables
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
            policy, entropy_term, value, entropy = step_loss_terms(
                logits, values, take(actions[k]), take(step_returns[k]),
                self._entropy_coef, self._value_loss_coef)
            step_loss = weight * tf.reduce_mean(policy + entropy_term + value)
          if apply_gradients:
            grads = tape.gradient(step_loss, network_variables)
            accumulated = [a if g is None else a + g
                           for a, g in zip(accumulated, grads)]
            previous = accumulated
          else:
            previous = [step_loss]
          totals['policy'] += weight * tf.reduce_mean(policy)
          totals['entropy_term'] += weight * tf.reduce_mean(entropy_term)
          totals['value'] += weight * tf.reduce_mean(value)
          totals['entropy'] += weight * tf.reduce_mean(entropy) / num_steps
          value_maps[k].append(tf.stop_gradient(values))
          taken = tf.reduce_sum(
              tf.nn.log_softmax(logits) * tf.one_hot(
                  take(actions[k]), tf.shape(logits)[-1]), axis=-1)
          log_prob_maps[k].append(tf.stop_gradient(taken))
      totals['return'] = tf.reduce_mean(step_returns)
      value_maps = [tf.concat(maps, axis=0) for maps in value_maps]
      log_prob_maps = [tf.concat(maps, axis=0) for maps in log_prob_maps]

      grads_and_vars = list(zip(accumulated, network_variables))
      if self._reward_map is not None:
        # `w` only enters through the returns: its gradient is that of the
        # value loss (and, on request, of the policy loss) with V and log pi
        # held fixed, which is exactly its share of the full gradient.
        with tf.GradientTape() as tape:
          map_returns = self._returns(rewards[:num_steps], bootstrap)
          values = tf.stack(value_maps, axis=0)
          w_loss = self._value_loss_coef * 0.5 * tf.square(
              values - map_returns)
          if self._reward_map_policy_gradient:
            w_loss += -tf.stack(log_prob_maps, axis=0) * map_returns
          w_loss = tf.reduce_sum(tf.reduce_mean(w_loss, axis=[1, 2, 3]))
        grads_and_vars.append(
            (tape.gradient(w_loss, self._reward_map.kernel),
             self._reward_map.kernel))

      if apply_gradients:
        if self._summarize_grads_and_vars:
          self._summarize(grads_and_vars)
        self._optimizer.apply_gradients(grads_and_vars)

      total = totals['policy'] + totals['entropy_term'] + totals['value']
      return tf_agent.LossInfo(
          total, PixelA2CLossInfo(
              policy_loss=totals['policy'], value_loss=totals['value'],
              entropy_loss=totals['entropy_term'], entropy=totals['entropy'],
              mean_return=totals['return']))

  def _summarize(self, grads_and_vars):
    step = self.train_step_counter
    for grad, var in grads_and_vars:
      name = var.name.replace(':', '_')
      tf.summary.histogram(f'gradients/{name}', grad, step=step)
      tf.summary.histogram(f'variables/{name}', var, step=step)


def poly_learning_rate(initial_learning_rate, decay_episodes, episode_counter,
                       power=0.9):
  """The reference schedule `lr * (1 - episode / episodes) ** power`.

  Args:
    initial_learning_rate: learning rate at episode 0 (1e-3).
    decay_episodes: the episode budget (30000 in the paper).
    episode_counter: int64 variable counting finished episodes; keeping the
      schedule on it (not on optimizer steps) keeps it per episode when an
      episode has several updates, and restores it with the checkpoint.
    power: 0.9 in the reference.

  Returns:
    A zero-argument callable for a Keras optimizer's `learning_rate`.
  """
  def learning_rate():
    fraction = tf.cast(episode_counter, tf.float32) / float(decay_episodes)
    fraction = tf.clip_by_value(fraction, 0.0, 1.0)
    return initial_learning_rate * tf.pow(1.0 - fraction, power)
  return learning_rate


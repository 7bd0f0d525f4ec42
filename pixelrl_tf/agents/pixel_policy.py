"""TF-Agents policies that pick one action per pixel.

Shapes: `B` batch, `H, W` height and width, `C` channels, `A` actions, `F`
GRU feature channels.

`PixelActorCriticPolicy` wraps an injected actor-critic network whose call
returns `((logits [B,H,W,A], values [B,H,W]), new_state)`; the network state
(the ConvGRU map, if any) is the policy state. `greedy=True` takes the
per-pixel argmax (the reference test procedure; the agent's `policy`);
otherwise actions are sampled from the per-pixel categorical distribution
(the reference training procedure; the agent's `collect_policy`).
`RandomPixelPolicy` draws every pixel's action uniformly (the paper's
"random agents" baseline).

Sampling is stateless: a policy given an int `[2]` seed returns a pure
function of it, which makes training resumable exactly. The random numbers
are drawn for the whole global batch and sliced to this replica's images
(`replica_batch_slice`), so the actions of an image do not depend on how a
batch is split across replicas.
"""

from typing import Optional

import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.policies import tf_policy
from tf_agents.trajectories import policy_step

tfd = tfp.distributions

LOGITS = 'logits'
VALUES = 'values'
# `[H,W,A]` what every action would have earned at every pixel in a step;
# the rollout adds it to the policy info of training transitions for agents
# that learn from every action's reward.
ACTION_REWARDS = 'action_rewards'


def replica_batch_slice(batch_size):
  """`(offset, global_batch)` of this replica's `batch_size` images.

  In a `tf.distribute` replica context replica `r` of `n` holds images
  `r*B .. (r+1)*B - 1` of a global batch of `n*B`; elsewhere `(0, B)`.
  """
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return 0, batch_size
  replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
  return replica * batch_size, batch_size * context.num_replicas_in_sync


def _global_draw(draw_fn, local_shape):
  """Draws `[global B, ...]` with `draw_fn(shape)` and keeps this replica's."""
  batch = local_shape[0]
  offset, global_batch = replica_batch_slice(batch)
  values = draw_fn(tf.concat([[global_batch], local_shape[1:]], axis=0))
  return values[offset:offset + batch]


def sample_actions(logits, seed=None):
  """Samples `[B,H,W]` int32 actions from `[B,H,W,A]` logits.

  The Gumbel-max trick, as the reference code samples: `argmax(logits + g)`
  with `g = -log(-log(u))`, `u ~ U(0, 1)`.

  Args:
    logits: `[B,H,W,A]` per-pixel logits.
    seed: an int `[2]` tensor (stateless: a pure function of the seed), or
      None / a Python int (stateful sampling).
  """
  logits = tf.convert_to_tensor(logits)
  shape = tf.shape(logits)
  tiny = tf.constant(1e-20, tf.float32)

  def draw(global_shape):
    if tf.is_tensor(seed) and seed.shape.rank == 1:
      return tf.random.stateless_uniform(global_shape, seed, minval=tiny,
                                         maxval=1.0)
    return tf.random.uniform(global_shape, minval=tiny, maxval=1.0,
                             seed=seed)

  uniform = _global_draw(draw, shape)
  gumbel = -tf.math.log(-tf.math.log(uniform))
  return tf.argmax(tf.cast(logits, tf.float32) + gumbel, axis=-1,
                   output_type=tf.int32)


def uniform_actions(shape, num_actions, seed=None):
  """`[B,H,W]` int32 actions drawn uniformly from `0 .. A-1`."""
  def draw(global_shape):
    if tf.is_tensor(seed) and seed.shape.rank == 1:
      return tf.random.stateless_uniform(global_shape, seed,
                                         maxval=num_actions, dtype=tf.int32)
    return tf.random.uniform(global_shape, maxval=num_actions,
                             dtype=tf.int32, seed=seed)
  return _global_draw(draw, tf.convert_to_tensor(shape))


class PixelActorCriticPolicy(tf_policy.TFPolicy):
  """Per-pixel categorical policy over an actor-critic network."""

  def __init__(self, time_step_spec, action_spec, actor_critic_network,
               greedy: bool = False, emit_network_outputs: bool = False,
               name: Optional[str] = None):
    """Creates the policy.

    Args:
      time_step_spec: `TimeStep` spec; the observation is an image `[H,W,C]`.
      action_spec: `BoundedTensorSpec` of the `[H,W]` int32 action map with
        `maximum = A - 1`.
      actor_critic_network: the network (see module docstring); its
        `state_spec` becomes the policy state spec.
      greedy: argmax actions instead of sampled ones.
      emit_network_outputs: put the network's `logits` `[H,W,A]` and
        `values` `[H,W]` in the policy info, for an update that reuses them.
      name: policy name.
    """
    self._network = actor_critic_network
    self._greedy = greedy
    self._emit_network_outputs = emit_network_outputs
    info_spec = ()
    if emit_network_outputs:
      height, width = action_spec.shape
      info_spec = {
          LOGITS: tf.TensorSpec(
              [height, width, int(action_spec.maximum) + 1], tf.float32),
          VALUES: tf.TensorSpec([height, width], tf.float32)}
    super().__init__(
        time_step_spec, action_spec,
        policy_state_spec=actor_critic_network.state_spec,
        info_spec=info_spec, clip=False, automatic_state_reset=False,
        name=name)

  @property
  def greedy(self):
    return self._greedy

  @property
  def network(self):
    return self._network

  def _variables(self):
    return self._network.variables

  def _get_initial_state(self, batch_size):
    return self._network.get_initial_state(batch_size)

  def _apply_network(self, time_step, policy_state):
    (logits, values), new_state = self._network(
        time_step.observation, step_type=time_step.step_type,
        network_state=policy_state, training=False)
    return logits, values, new_state

  def _info(self, logits, values):
    if not self._emit_network_outputs:
      return ()
    return {LOGITS: logits, VALUES: values}

  def _distribution(self, time_step, policy_state):
    logits, values, new_state = self._apply_network(time_step, policy_state)
    if self._greedy:
      distribution = tfd.Deterministic(
          tf.argmax(logits, axis=-1, output_type=tf.int32))
    else:
      distribution = tfd.Categorical(logits=logits, dtype=tf.int32)
    return policy_step.PolicyStep(distribution, new_state,
                                  self._info(logits, values))

  def _action(self, time_step, policy_state, seed=None):
    logits, values, new_state = self._apply_network(time_step, policy_state)
    if self._greedy:
      actions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    else:
      actions = sample_actions(logits, seed=seed)
    return policy_step.PolicyStep(actions, new_state,
                                  self._info(logits, values))


class RandomPixelPolicy(tf_policy.TFPolicy):
  """Every pixel's action uniform over the `A` actions (no network)."""

  def __init__(self, time_step_spec, action_spec, name='random_policy'):
    super().__init__(time_step_spec, action_spec, clip=False, name=name)
    self._num_actions = int(action_spec.maximum) + 1

  def _variables(self):
    return []

  def _distribution(self, time_step, policy_state):
    shape = tf.shape(time_step.observation)[:3]
    logits = tf.zeros(tf.concat([shape, [self._num_actions]], axis=0))
    return policy_step.PolicyStep(
        tfd.Categorical(logits=logits, dtype=tf.int32), policy_state, ())

  def _action(self, time_step, policy_state, seed=None):
    actions = uniform_actions(tf.shape(time_step.observation)[:3],
                              self._num_actions, seed=seed)
    return policy_step.PolicyStep(actions, policy_state, ())

"""TF-Agents policies that pick one action per pixel.

Shapes: `B` batch, `H, W` height and width, `C` channels, `A` actions, `F`
GRU feature channels.

The policy wraps an injected actor-critic network whose call returns
`((logits [B,H,W,A], values [B,H,W]), new_state)`; the network state (the
ConvGRU map, if any) is the policy state. `greedy=True` takes the per-pixel
argmax (the reference test procedure); otherwise actions are sampled from the
per-pixel categorical distribution (the reference training procedure).
"""

import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.policies import tf_policy
from tf_agents.trajectories import policy_step

tfd = tfp.distributions


class PixelActorCriticPolicy(tf_policy.TFPolicy):
  """Per-pixel categorical policy over an actor-critic network."""

  def __init__(self, time_step_spec, action_spec, actor_critic_network,
               greedy=False, name=None):
    """Creates the policy.

    Args:
      time_step_spec: `TimeStep` spec; the observation is an image `[H,W,C]`.
      action_spec: `BoundedTensorSpec` of the `[H,W]` int32 action map with
        `maximum = A - 1`.
      actor_critic_network: the network (see module docstring); its
        `state_spec` becomes the policy state spec.
      greedy: argmax actions instead of sampled ones.
      name: policy name.
    """
    self._network = actor_critic_network
    self._greedy = greedy
    super().__init__(
        time_step_spec, action_spec,
        policy_state_spec=actor_critic_network.state_spec,
        info_spec=(), clip=False, name=name)

  @property
  def greedy(self):
    return self._greedy

  def _variables(self):
    return self._network.variables

  def _get_initial_state(self, batch_size):
    return self._network.get_initial_state(batch_size)

  def _apply_network(self, time_step, policy_state):
    (logits, _), new_state = self._network(
        time_step.observation, step_type=time_step.step_type,
        network_state=policy_state, training=False)
    return logits, new_state

  def _distribution(self, time_step, policy_state):
    logits, new_state = self._apply_network(time_step, policy_state)
    if self._greedy:
      distribution = tfp.distributions.Deterministic(
          tf.argmax(logits, axis=-1, output_type=tf.int32))
    else:
      distribution = tfd.Categorical(logits=logits, dtype=tf.int32)
    return policy_step.PolicyStep(distribution, new_state, ())

  def _action(self, time_step, policy_state, seed=None):
    logits, new_state = self._apply_network(time_step, policy_state)
    if self._greedy:
      actions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    else:
      actions = sample_actions(logits, seed=seed)
    return policy_step.PolicyStep(actions, new_state, ())


def sample_actions(logits, seed=None):
  """Samples `[B,H,W]` int32 actions from `[B,H,W,A]` logits.

  Args:
    logits: `[B,H,W,A]` per-pixel logits.
    seed: None or an int op seed (stateful sampling), or an int `[2]` tensor
      for stateless sampling, which makes a rollout a pure function of its
      seed (used for exactly resumable training).
  """
  num_actions = tf.shape(logits)[-1]
  flat = tf.reshape(logits, [-1, num_actions])
  if tf.is_tensor(seed) and seed.shape.rank == 1:
    samples = tf.random.stateless_categorical(flat, 1, seed, dtype=tf.int32)
  else:
    samples = tf.random.categorical(flat, 1, dtype=tf.int32, seed=seed)
  return tf.reshape(samples, tf.shape(logits)[:-1])

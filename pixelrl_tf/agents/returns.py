"""Per-pixel n-step returns, optionally through a reward map convolution.

Shapes: `T` time, `B` batch, `H, W` height and width. Time-major inputs.
"""

import tensorflow as tf


def n_step_returns(rewards, bootstrap_values, gamma, reward_map_fn=None):
  """Computes `R_k = r_k + gamma * w(R_{k+1})` backwards from a bootstrap.

  This is the recursion of the reference code (and eq. 13 of the paper):
  starting from `R = bootstrap`, for `k = T-1 .. 0`: `R <- gamma * R`,
  `R <- reward_map_fn(R)`, `R <- r_k + R`. With `bootstrap_values=None` the
  episode ended (terminal, `R = 0`) and the map is not applied to that zero
  start, as in the reference code; with a bias-free map this is the same as
  applying it to zeros.

  Args:
    rewards: `[T,B,H,W]` per-pixel rewards `r_k`.
    bootstrap_values: `[B,H,W]` value of the state after the last step
      (treated as a constant), or None at a terminal end.
    gamma: discount factor.
    reward_map_fn: optional callable `[B,H,W] -> [B,H,W]` (the RMC kernel).

  Returns:
    `[T,B,H,W]` returns `R_k`.
  """
  with tf.name_scope('n_step_returns'):
    rewards = tf.convert_to_tensor(rewards)
    num_steps = rewards.shape[0]
    if num_steps is None:
      raise ValueError('n_step_returns needs a static number of steps')
    returns = [None] * num_steps
    if bootstrap_values is None:
      future = None
    else:
      future = tf.stop_gradient(tf.convert_to_tensor(bootstrap_values))
    for k in reversed(range(num_steps)):
      if future is None:
        current = rewards[k]
      else:
        discounted = gamma * future
        if reward_map_fn is not None:
          discounted = reward_map_fn(discounted)
        current = rewards[k] + discounted
      returns[k] = current
      future = current
    return tf.stack(returns, axis=0)

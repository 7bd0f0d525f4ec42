"""One PixelRL training episode: corrupt, roll out, update every window.

Shapes: `B` global batch, `b` this replica's batch (`B / replicas`), `T`
steps, `H, W` height and width, `C` channels.

`EpisodeLearner.run` is the body of a training episode (the reference
`train.py` loop): take a batch of clean crops (or given start states),
corrupt them with the episode's seed, start an episode of the
`PixelTFEnvironment`, and run the agent's collect policy through
`rollout.run_episode`, which calls `agent.train` after every
`update_interval` steps (once per episode for denoising; every 5 of 15 steps
for restoration, bootstrapping from V).

Randomness is a pure function of `(seed, episode)`: the episode's seed is
split into the noise seed and the rollout seed (one per step). Noise and
action sampling draw their random numbers for the whole global batch and
keep this replica's share, so one replica or several give the same episode.
Under a `tf.distribute` strategy `run` is the per-replica function: it takes
the global batch and keeps images `r*b .. (r+1)*b - 1` on replica `r`.
"""

from typing import Dict, Optional

import tensorflow as tf

from pixelrl_tf.agents import pixel_policy
from pixelrl_tf.drivers import rollout

# Scalars `run` returns, each reduced over replicas by the caller (mean).
SCALARS = ('loss', 'policy_loss', 'value_loss', 'entropy_loss', 'entropy',
           'mean_abs_advantage', 'episode_reward', 'mean_abs_reward',
           'imitation_loss')
# The largest gradient norm of the episode's updates.
GRADIENT_NORM = 'gradient_norm'
# 1.0 if every window's update was applied (finite gradients), else 0.0.
APPLIED = 'applied'


class EpisodeLearner(tf.Module):
  """Runs one training episode (rollout + updates) of an agent."""

  def __init__(self, agent, environment, t_max: int,
               update_interval: Optional[int] = None, seed: int = 0,
               noise_model=None, record_gradients: bool = False,
               reward_log_scale: float = 1.0):
    """Creates the learner.

    Args:
      agent: the `PixelA2CAgent`.
      environment: the `PixelTFEnvironment` of the training crops.
      t_max: `T`, steps per episode.
      update_interval: steps per update (None: `T`, one update per episode).
      seed: the run's seed.
      noise_model: a `NoiseModel` applied to the start states in-graph with
        the episode's seed, or None when the episode source corrupts them.
      record_gradients: keep the rollout's forward pass for the update
        (faster, more memory) instead of recomputing it.
      reward_log_scale: factor of the logged episode reward (255 for the
        squared-error tasks, as the reference logs it).
    """
    super().__init__(name='episode_learner')
    # `rollout.run_episode` refuses a window that does not divide `t_max`
    # (a `Task` never holds one).
    update_interval = update_interval or t_max
    self._agent = agent
    self._environment = environment
    self._t_max = int(t_max)
    self._update_interval = int(update_interval)
    self._seed = int(seed)
    self._noise_model = noise_model
    self._record_gradients = bool(record_gradients)
    self._reward_log_scale = float(reward_log_scale)

  @property
  def record_gradients(self):
    return self._record_gradients

  def _train_window(self, experience, initial_state, tape):
    return self._agent.train(experience, initial_network_state=initial_state,
                             rollout_tape=tape)

  def run(self, start: tf.Tensor, target: tf.Tensor, episode: tf.Tensor,
          extra: Optional[tf.Tensor] = None) -> Dict[str, tf.Tensor]:
    """Runs the episode (per replica under a strategy).

    Args:
      start: `[B,H,W,C]` first states of the global batch; with a noise
        model these are the clean crops, corrupted here.
      target: `[B,H,W,C]` the targets of the rewards.
      episode: int64 scalar, the episode index (seeds the randomness).
      extra: optional `[B,H,W,E]` extra observation channels.

    Returns:
      Dict of scalars (`SCALARS`, `GRADIENT_NORM`, `APPLIED`) of this
      replica, plus `start` `[b,H,W,C]`, `outputs` `[b,T,H,W,C]` and
      `actions` `[b,T,H,W]`.
    """
    base_seed = tf.stack([tf.constant(self._seed, tf.int64),
                          tf.cast(episode, tf.int64)])
    noise_seed, rollout_seed = tf.unstack(
        tf.random.experimental.stateless_split(base_seed, 2))
    if self._noise_model is not None:
      start = self._noise_model.apply(start, noise_seed)
    context = tf.distribute.get_replica_context()
    replicas = 1 if context is None else context.num_replicas_in_sync
    if replicas > 1:
      batch = start.shape[0] // replicas
      offset, _ = pixel_policy.replica_batch_slice(batch)
      take = lambda x: None if x is None else x[offset:offset + batch]
      start, target, extra = take(start), take(target), take(extra)
    time_step = self._environment.start_episode(start, target, extra)
    policy = (self._agent.recording_collect_policy if self._record_gradients
              else self._agent.collect_policy)
    result = rollout.run_episode(
        self._environment, policy, time_step, self._t_max,
        seed=rollout_seed, window_size=self._update_interval,
        train_fn=self._train_window,
        record_gradients=self._record_gradients,
        record_action_rewards=self._agent.uses_action_rewards)
    num_windows = len(result.losses)
    extras = [loss.extra for loss in result.losses]
    discounts = tf.pow(self._agent.gamma,
                       tf.range(self._t_max, dtype=tf.float32))
    scalars = {
        'loss': tf.add_n([loss.loss for loss in result.losses]),
        'policy_loss': tf.add_n([e.policy_loss for e in extras]),
        'value_loss': tf.add_n([e.value_loss for e in extras]),
        'entropy_loss': tf.add_n([e.entropy_loss for e in extras]),
        'imitation_loss': tf.add_n([e.imitation_loss for e in extras]),
        'entropy': tf.add_n([e.entropy for e in extras]) / num_windows,
        'mean_abs_advantage': tf.add_n(
            [e.mean_abs_advantage for e in extras]) / num_windows,
        'episode_reward': self._reward_log_scale * tf.reduce_sum(
            discounts * result.step_rewards),
        'mean_abs_reward': tf.reduce_mean(result.mean_abs_rewards),
        GRADIENT_NORM: tf.reduce_max(
            tf.stack([e.gradient_norm for e in extras])),
        APPLIED: tf.reduce_min(tf.cast(
            tf.stack([e.applied for e in extras]), tf.float32)),
    }
    scalars.update(start=result.images[:, 0], outputs=result.images[:, 1:],
                   actions=result.actions)
    return scalars

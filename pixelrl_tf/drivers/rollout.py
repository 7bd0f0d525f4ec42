"""The one PixelRL rollout: a policy stepping a `PixelTFEnvironment`.

Shapes: `B` batch, `T` steps (`t_max`), `n` steps per update window, `H, W`
height and width, `C` image channels, `A` actions.

Everything that runs an episode calls `run_episode`: training (sampled
actions, an update every `n` steps), validation, evaluation and its x8
augmentation (greedy actions), the random-agents baseline (uniform actions),
the exported SavedModel and `restore` (greedy, in-graph), and saliency
editing (training and editing). The loop is unrolled in Python, so it traces
into a single graph with every step's ops in order; `t_max` and the window
length are static.

For each step `t`: the policy acts on the environment's time step (with the
step's stateless seed, if any), the environment applies the per-pixel action
map and returns the next time step. An episode without updates (restoration,
evaluation, random agents) runs as a `tf.while_loop`, so its graph holds one
step whatever `t_max` is (the exported model stays small and traces fast);
with updates the steps are unrolled in Python. Every `n` steps the window's transitions
are handed to `train_fn` as a TF-Agents `Trajectory` of `[B, n+1]` items:
items `0..n-1` are `trajectory.from_transition(time_step_k, policy_step_k,
time_step_{k+1})` and item `n` is the boundary (observation `s_{t+n}`, its
step type; action, reward and policy info zeros), which the agent uses to
bootstrap when the window does not end the episode.

With `record_gradients=True` each window's policy steps run under a
`tf.GradientTape` (the environment's filters do not), the policy is expected
to emit its network outputs as policy info, and the tape is handed to
`train_fn`: the update then reuses the rollout's forward pass instead of
recomputing it.

With `record_action_rewards=True` each transition's policy info also holds
the environment's `action_rewards` (`[B,H,W,A]`: what every action would
have earned at every pixel in that step) under
`pixel_policy.ACTION_REWARDS`, for agents that learn from all of them.
"""

import contextlib
import dataclasses
from typing import Any, Callable, List, Optional

import tensorflow as tf
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from pixelrl_tf.agents import pixel_policy

# `(experience [B,n+1], initial policy state, tape or None) -> LossInfo`.
TrainFn = Callable[[trajectory.Trajectory, Any, Optional[tf.GradientTape]],
                   Any]


@dataclasses.dataclass
class Episode:
  """What `run_episode` returns.

  Attributes:
    images: `[B,T+1,H,W,C]` the images before the first step and after each
      step (unclipped), or None without `keep_images`.
    actions: `[B,T,H,W]` int32 action maps.
    step_rewards: `[T]` mean reward of each step (over this replica's
      pixels).
    mean_abs_rewards: `[T]` mean absolute reward of each step.
    losses: the `train_fn` results, one per window (empty without one).
    policy_state: the policy state after the last step.
  """
  images: Optional[tf.Tensor]
  actions: tf.Tensor
  step_rewards: tf.Tensor
  mean_abs_rewards: tf.Tensor
  losses: List[Any]
  policy_state: Any


def _stack_items(items):
  return tf.nest.map_structure(lambda *x: tf.stack(x, axis=1), *items)


def _window_trajectory(time_steps, policy_steps):
  """The `[B,n+1]` trajectory of `n` transitions plus the boundary item."""
  items = [trajectory.from_transition(time_steps[k], policy_steps[k],
                                      time_steps[k + 1])
           for k in range(len(policy_steps))]
  boundary_step = time_steps[-1]
  zeros = lambda x: tf.zeros_like(x)  # pylint: disable=unnecessary-lambda
  items.append(trajectory.Trajectory(
      step_type=boundary_step.step_type,
      observation=boundary_step.observation,
      action=tf.nest.map_structure(zeros, policy_steps[-1].action),
      policy_info=tf.nest.map_structure(zeros, policy_steps[-1].info),
      next_step_type=tf.fill(tf.shape(boundary_step.step_type),
                             ts.StepType.FIRST),
      reward=tf.zeros_like(boundary_step.reward),
      discount=tf.ones_like(boundary_step.discount)))
  return _stack_items(items)


def run_episode(environment, policy, time_step: ts.TimeStep, t_max: int,
                seed: Optional[tf.Tensor] = None, policy_state=None,
                window_size: Optional[int] = None,
                train_fn: Optional[TrainFn] = None,
                record_gradients: bool = False,
                keep_images: bool = True,
                record_action_rewards: bool = False) -> Episode:
  """Runs `t_max` steps of `policy` on `environment`.

  Args:
    environment: a `PixelTFEnvironment` whose episode has started.
    policy: a TF-Agents policy (`PixelActorCriticPolicy`,
      `RandomPixelPolicy`, ...).
    time_step: the first time step (`environment.start_episode(...)`).
    t_max: `T`, steps to run (static).
    seed: int `[2]` seed of the policy's sampling; step `t` gets the `t`-th
      of `stateless_split(seed, T)`. None for a deterministic policy.
    policy_state: initial policy state (default: the policy's initial state
      for the batch).
    window_size: `n`, steps per `train_fn` call (default `T`); must divide
      `T`.
    train_fn: called after every window (see `TrainFn`).
    record_gradients: run each window's policy steps under a gradient tape
      handed to `train_fn`.
    keep_images: return the image after every step.
    record_action_rewards: add the environment's `action_rewards` of each
      step to its policy info (`pixel_policy.ACTION_REWARDS`).

  Returns:
    An `Episode`.
  """
  if t_max < 1:
    raise ValueError(f't_max must be at least 1, got {t_max}')
  window_size = window_size or t_max
  if t_max % window_size:
    raise ValueError(f't_max ({t_max}) must be a multiple of the update '
                     f'window ({window_size})')
  with tf.name_scope('rollout'):
    if policy_state is None:
      policy_state = policy.get_initial_state(
          tf.shape(time_step.step_type)[0])
    seeds = (None if seed is None else
             tf.random.experimental.stateless_split(seed, t_max))
    if train_fn is None and not record_gradients and not record_action_rewards:
      return _run_loop(environment, policy, policy_state, t_max, seeds,
                       keep_images)
    images = [environment.images] if keep_images else None
    actions, step_rewards, mean_abs_rewards, losses = [], [], [], []
    for window_start in range(0, t_max, window_size):
      window_state = policy_state
      tape = tf.GradientTape() if record_gradients else None
      time_steps, policy_steps = [time_step], []
      with tape if tape is not None else contextlib.nullcontext():
        for t in range(window_start, window_start + window_size):
          step = policy.action(time_step, policy_state,
                               seed=None if seeds is None else seeds[t])
          with (tape.stop_recording() if tape is not None
                else contextlib.nullcontext()):
            time_step = environment.step(step.action)
            if record_action_rewards:
              info = dict(step.info) if isinstance(step.info, dict) else {}
              info[pixel_policy.ACTION_REWARDS] = environment.action_rewards
              step = step._replace(info=info)
          time_steps.append(time_step)
          policy_steps.append(step)
          policy_state = step.state
          actions.append(step.action)
          step_rewards.append(tf.reduce_mean(time_step.reward))
          mean_abs_rewards.append(tf.reduce_mean(tf.abs(time_step.reward)))
          if keep_images:
            images.append(environment.images)
        experience = (None if train_fn is None else
                      _window_trajectory(time_steps, policy_steps))
      if train_fn is not None:
        losses.append(train_fn(experience, window_state, tape))
    return Episode(
        images=tf.stack(images, axis=1) if keep_images else None,
        actions=tf.stack(actions, axis=1),
        step_rewards=tf.stack(step_rewards),
        mean_abs_rewards=tf.stack(mean_abs_rewards),
        losses=losses, policy_state=policy_state)


def _run_loop(environment, policy, policy_state, t_max, seeds, keep_images):
  """`run_episode` without updates, as one `tf.while_loop`."""
  images = environment.images
  step_images = tf.TensorArray(tf.float32, size=t_max + 1,
                               element_shape=images.shape)
  step_actions = tf.TensorArray(tf.int32, size=t_max,
                                element_shape=images.shape[:3])
  step_rewards = tf.TensorArray(tf.float32, size=t_max)
  abs_rewards = tf.TensorArray(tf.float32, size=t_max)

  def body(t, images, state, step_images, step_actions, step_rewards,
           abs_rewards):
    time_step = environment.resume(images, t)
    step = policy.action(time_step, state,
                         seed=None if seeds is None else seeds[t])
    next_time_step = environment.step(step.action)
    images = environment.images
    if keep_images:
      step_images = step_images.write(t + 1, images)
    return (t + 1, images, step.state, step_images,
            step_actions.write(t, step.action),
            step_rewards.write(t, tf.reduce_mean(next_time_step.reward)),
            abs_rewards.write(t, tf.reduce_mean(tf.abs(
                next_time_step.reward))))

  if keep_images:
    step_images = step_images.write(0, images)
  # The policy state starts as a broadcastable zero map and takes the
  # image's size in the first step, which therefore runs before the loop:
  # inside it every shape stays the same, as XLA requires.
  first = body(tf.constant(0), images, policy_state, step_images,
               step_actions, step_rewards, abs_rewards)
  state_invariants = tf.nest.map_structure(
      lambda s: tf.TensorShape([None] * s.shape.rank), first[2])
  loop = tf.while_loop(
      lambda t, *_: t < t_max, body, first,
      shape_invariants=(tf.TensorShape([]), images.shape, state_invariants,
                        tf.TensorShape(None), tf.TensorShape(None),
                        tf.TensorShape(None), tf.TensorShape(None)),
      maximum_iterations=t_max - 1)
  _, images, policy_state, step_images, step_actions, step_rewards, \
      abs_rewards = loop
  environment.resume(images, t_max)
  return Episode(
      images=(tf.transpose(step_images.stack(),
                           [1, 0] + list(range(2, images.shape.rank + 1)))
              if keep_images else None),
      actions=tf.transpose(step_actions.stack(), [1, 0, 2, 3]),
      step_rewards=step_rewards.stack(),
      mean_abs_rewards=abs_rewards.stack(),
      losses=[], policy_state=policy_state)

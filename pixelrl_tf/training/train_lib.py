"""Training of PixelRL agents: data, rollouts, updates, summaries, resume.

Shapes: `B` batch, `T` steps, `H, W` height and width, `C` channels, `A`
actions.

One episode (the reference `train.py`): take a batch of clean crops, corrupt
them, then for `t_max` steps let every pixel sample an action from the
collect policy and apply it (`pixel_env.transition`, TF ops); the agent is
updated after every `update_interval` steps (once per episode for denoising;
every 5 of 15 steps for restoration, bootstrapping from V). The whole
episode runs as one `tf.function`. All randomness of an episode (noise,
action sampling) is drawn with stateless ops from `(seed, episode)`, and the
crop stream is positioned by the episode counter, so a run that is stopped
and started again continues exactly where it was.

Layout of `root_dir` (see `model_io`): `model.json`, `train/ckpt-N.*`
(network, reward map, optimizer, episode counter), `operative_config.gin`,
and TensorBoard event files under `train/` and `eval/`.
"""

import dataclasses
import math
import os
import sys
import time

import gin
import numpy as np
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from pixelrl_tf import metrics
from pixelrl_tf.agents import pixel_a2c_agent
from pixelrl_tf.agents import pixel_policy
from pixelrl_tf.data import datasets
from pixelrl_tf.environments import pixel_env
from pixelrl_tf.training import episode_sources
from pixelrl_tf.training import eval_lib
from pixelrl_tf.training import model_io
from pixelrl_tf.training import progress
from pixelrl_tf.visualization import summaries

EVAL_DIR = 'eval'
OPERATIVE_CONFIG_FILE = 'operative_config.gin'


class TrainingError(Exception):
  """A run cannot go on; the message is one line for the user."""


def cli_text(error):
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


@dataclasses.dataclass
class EpisodeResult:
  loss: float
  policy_loss: float
  value_loss: float
  entropy_loss: float
  entropy: float
  episode_reward: float


def specs_for(image_shape, num_actions):
  """`(time_step_spec, action_spec)` of `[H,W,C]` images and `A` actions."""
  height, width, _ = image_shape
  observation_spec = tf.TensorSpec(image_shape, tf.float32, 'observation')
  reward_spec = tf.TensorSpec((height, width), tf.float32, 'reward')
  action_spec = tensor_spec.BoundedTensorSpec(
      (height, width), tf.int32, 0, num_actions - 1, 'action')
  return ts.time_step_spec(observation_spec, reward_spec), action_spec


def _stack_window(observations, actions, rewards, first_step, ends_episode):
  """Builds the `[B,n+1]` trajectory of a window of `n` transitions."""
  n = len(actions)
  batch = tf.shape(actions[0])[0]
  step_types = [ts.StepType.FIRST if (k == 0 and first_step) else
                ts.StepType.MID for k in range(n)]
  step_types.append(ts.StepType.LAST if ends_episode else ts.StepType.MID)
  next_types = step_types[1:] + [
      ts.StepType.FIRST if ends_episode else ts.StepType.MID]
  discounts = [1.0] * (n - 1) + [0.0 if ends_episode else 1.0, 1.0]

  def per_step(values, dtype):
    return tf.stack([tf.fill([batch], tf.cast(v, dtype)) for v in values],
                    axis=1)

  return trajectory.Trajectory(
      step_type=per_step(step_types, tf.int32),
      observation=tf.stack(observations, axis=1),
      action=tf.stack(actions + [tf.zeros_like(actions[0])], axis=1),
      policy_info=(),
      next_step_type=per_step(next_types, tf.int32),
      reward=tf.stack(rewards + [tf.zeros_like(rewards[0])], axis=1),
      discount=per_step(discounts, tf.float32))


class EpisodeRunner(tf.Module):
  """Runs one training episode (rollout + updates) in a `tf.function`."""

  def __init__(self, agent, action_set, noise_model, t_max, update_interval,
               seed, gamma, reward_fn=pixel_env.squared_error_decrease,
               update=True):
    super().__init__(name='episode_runner')
    if t_max % update_interval:
      raise ValueError(f't_max ({t_max}) must be a multiple of '
                       f'update_interval ({update_interval})')
    self._agent = agent
    self._network = agent.actor_critic_network
    self._action_set = action_set
    self._noise_model = noise_model
    self._t_max = t_max
    self._update_interval = update_interval
    self._seed = int(seed)
    self._gamma = gamma
    self._reward_fn = reward_fn
    # update=False only collects (used to time collection apart from
    # the update).
    self._update = update

  def _seeds(self, episode):
    """Stateless seeds `[t_max + 1, 2]`: noise, then one per step."""
    base = tf.stack([tf.constant(self._seed, tf.int64),
                     tf.cast(episode, tf.int64)])
    return tf.random.experimental.stateless_split(base, self._t_max + 1)

  def run(self, start, target, episode):
    """Runs the episode.

    Args:
      start: `[B,H,W,C]` first states; with a noise model these are the
        clean crops, corrupted here with the episode's seed.
      target: `[B,H,W,C]` the targets of the rewards (the clean crops).
      episode: int64 scalar, the episode index (seeds the randomness).

    Returns:
      Dict of scalar losses, `episode_reward` (255 * sum_t gamma^t mean r_t,
      as the reference logs it), `start` `[B,H,W,C]`, `outputs`
      `[B,T,H,W,C]` and `actions` `[B,T,H,W]`.
    """
    seeds = self._seeds(episode)
    images = start
    if self._noise_model is not None:
      images = self._noise_model.apply(start, seeds[0])
    start = images
    batch = tf.shape(target)[0]
    state = self._network.get_initial_state(batch)
    totals = {k: tf.constant(0.0) for k in (
        'loss', 'policy_loss', 'value_loss', 'entropy_loss', 'entropy')}
    episode_reward = tf.constant(0.0)
    all_outputs, all_actions = [], []
    num_windows = self._t_max // self._update_interval
    for window in range(num_windows):
      window_state = state
      observations, actions, rewards = [], [], []
      for k in range(self._update_interval):
        t = window * self._update_interval + k
        step_type = tf.fill([batch], ts.StepType.FIRST if t == 0 else
                            ts.StepType.MID)
        (logits, _), state = self._network(
            images, step_type=step_type, network_state=state)
        step_actions = pixel_policy.sample_actions(logits, seed=seeds[t + 1])
        next_images, step_rewards = pixel_env.transition(
            images, step_actions, target, self._action_set, self._reward_fn)
        observations.append(images)
        actions.append(step_actions)
        rewards.append(step_rewards)
        episode_reward += (self._gamma ** t) * tf.reduce_mean(step_rewards)
        all_outputs.append(next_images)
        all_actions.append(step_actions)
        images = next_images
      observations.append(images)
      experience = _stack_window(
          observations, actions, rewards, first_step=(window == 0),
          ends_episode=(window == num_windows - 1))
      if not self._update:
        continue
      loss_info = self._agent.train_window(experience, window_state)
      totals['loss'] += loss_info.loss
      totals['policy_loss'] += loss_info.extra.policy_loss
      totals['value_loss'] += loss_info.extra.value_loss
      totals['entropy_loss'] += loss_info.extra.entropy_loss
      totals['entropy'] += loss_info.extra.entropy / num_windows
    results = dict(totals)
    results['episode_reward'] = 255.0 * episode_reward
    results['start'] = start
    results['outputs'] = tf.stack(all_outputs, axis=1)
    results['actions'] = tf.stack(all_actions, axis=1)
    return results


def _check_finite(result, episode):
  for key in ('loss', 'policy_loss', 'value_loss'):
    if not math.isfinite(result[key]):
      raise TrainingError(
          f'{key} became {result[key]} at episode {episode}; the last good '
          'checkpoint is kept (lower the learning rate or check the data)')


def _save_checkpoint(manager, episode):
  try:
    return manager.save(checkpoint_number=episode)
  except (tf.errors.OpError, OSError) as error:
    raise TrainingError(
        f'could not write a checkpoint at episode {episode} in '
        f'{manager.directory} ({cli_text(error)}); earlier checkpoints are '
        'intact') from error


def _check_model_config(root_dir, config):
  path = os.path.join(root_dir, model_io.MODEL_CONFIG_FILE)
  if tf.io.gfile.exists(path):
    existing = model_io.read_model_config(root_dir)
    if existing != config:
      raise TrainingError(
          f'{root_dir} holds a different model ({existing}); use another '
          '--root_dir or the same configuration to resume')
  else:
    model_io.write_model_config(root_dir, config)


@gin.configurable(module='pixelrl_tf.training')
def initialise_network(network, reward_map=None, init_checkpoint=None,
                       init_caffemodel=None, init_npz=None,
                       init_npz_layers=None, missing_ok=False):
  """Initialises a new network before training (not used when resuming).

  Args:
    network: the `FcnActorCritic`.
    reward_map: the `RewardMapConv` or None (kept at the identity).
    init_checkpoint: a run directory or checkpoint prefix whose network
      weights are loaded (stepwise training: an RMC model starts from a GRU
      run; its reward map, optimizer and counters are not taken).
    init_caffemodel: IRCNN `.caffemodel` for trunk and branches (the
      paper's initialisation; GRU and policy head keep their own).
    init_npz: a released Chainer `.npz` to start from.
    init_npz_layers: the layers taken from `init_npz` (None: all).
    missing_ok: when the file to initialise from does not exist, keep the
      random initialisation (with a note) instead of failing.

  Returns:
    A one-line description of what was loaded, or None.
  """
  del reward_map  # always starts at the identity, as the reference
  # pylint: disable=g-import-not-at-top
  source = init_checkpoint or init_caffemodel or init_npz
  if source and missing_ok and not tf.io.gfile.exists(source):
    return f'note: {source} not found; starting from random weights'
  if init_checkpoint:
    _, prefix = model_io.resolve_checkpoint(init_checkpoint)
    status = tf.train.Checkpoint(network=network).restore(prefix)
    status.expect_partial().assert_existing_objects_matched()
    return f'network initialised from {prefix}'
  if init_caffemodel:
    from pixelrl_tf.weights import caffemodel
    caffemodel.load_ircnn_into_network(init_caffemodel, network)
    return f'trunk and branches initialised from {init_caffemodel}'
  if init_npz:
    from pixelrl_tf.weights import chainer_npz
    chainer_npz.load_into_network(init_npz, network, layers=init_npz_layers)
    return f'network initialised from {init_npz}'
  return None


class Validator:
  """Greedy restoration PSNR on fixed, seeded validation images."""

  def __init__(self, network, action_set, pairs, t_max, lab_metric=False):
    """Creates the validator.

    Args:
      network: the network being trained.
      action_set: its `ActionSet`.
      pairs: `(name, corrupted [H,W,C], target [H,W,C])` triples.
      t_max: restoration steps.
      lab_metric: also measure the mean Lab distance of BGR colour images
        (`metrics.mean_lab_distance`); `lab_distance` holds the last value.
    """
    self._restorer = eval_lib.Restorer(network, action_set, t_max)
    self._pairs = list(pairs)
    self._lab_metric = lab_metric
    self.lab_distance = None

  def __len__(self):
    return len(self._pairs)

  def input_psnr(self):
    return float(np.mean([metrics.psnr(clean, noisy)
                          for _, noisy, clean in self._pairs]))

  def evaluate(self):
    """Returns `(mean PSNR, (images [T+1,1,H,W,C], actions [T,1,H,W]))`.

    The images and actions are those of the first validation image, laid
    out for `summaries.write_episode_images`.
    """
    values, lab_distances, example = [], [], None
    for _, noisy, clean in self._pairs:
      outputs, actions = self._restorer.greedy(noisy)
      values.append(metrics.psnr(clean, outputs[-1]))
      if self._lab_metric:
        lab_distances.append(metrics.mean_lab_distance(clean, outputs[-1]))
      if example is None:
        example = (np.concatenate([noisy[None], outputs])[:, None],
                   actions[:, None])
    if lab_distances:
      self.lab_distance = float(np.mean(lab_distances))
    return float(np.mean(values)), example


def _time_major_episode(result):
  """`(images [T+1,B,H,W,C], actions [T,B,H,W])` of an episode result."""
  outputs = np.swapaxes(result['outputs'].numpy(), 0, 1)
  images = np.concatenate([result['start'].numpy()[None], outputs])
  return images, np.swapaxes(result['actions'].numpy(), 0, 1)


@gin.configurable(module='pixelrl_tf.training', denylist=['root_dir'])
def train(root_dir,
          # Data.
          episode_source=episode_sources.NOISE,
          data_source=datasets.DEFAULT_SOURCE,
          list_file=None,
          validation_source=None,
          validation_fraction=None,
          channels=1,
          noise='gaussian:25',
          batch_size=64,
          crop_size=70,
          max_rotation_degrees=10.0,
          bgr=False,
          # Model.
          action_set='denoise',
          filters=64,
          use_conv_gru=True,
          use_reward_map_conv=False,
          reward_map_size=33,
          t_max=5,
          update_interval=None,
          reward='squared_error',
          input_transform='none',
          # Agent.
          gamma=0.95,
          entropy_coef=0.01,
          value_loss_coef=0.5,
          reward_map_policy_gradient=False,
          learning_rate=1e-3,
          learning_rate_power=0.9,
          adam_epsilon=1e-8,
          # Schedule.
          num_episodes=30000,
          checkpoint_interval=500,
          summary_interval=50,
          image_summary_interval=500,
          eval_interval=500,
          max_validation_images=None,
          keep_checkpoints=3,
          seed=0,
          stop_after_episodes=None,
          progress_stream=None):
  """Trains (or resumes training) a PixelRL agent in `root_dir`.

  Args:
    root_dir: run directory; an existing run is resumed from its latest
      checkpoint.
    episode_source: `'noise'` (denoising), `'text'` (text removal) or
      `'paired'` (input/target folders), see `episode_sources`.
    data_source: `'default'` (scikit-image's photographs) or a folder.
    list_file: optional list of training files in `data_source`.
    validation_source: optional folder of validation images.
    validation_fraction: fraction of the source held out for validation.
    channels: 1 gray, 3 colour.
    noise: noise spec, e.g. `'gaussian:25'` (see `data.noise.parse_noise`).
    batch_size: crops per episode (64 in the paper).
    crop_size: crop side (70 in the paper).
    max_rotation_degrees: augmentation rotation (10 in the reference).
    bgr: load colour images in BGR order.
    action_set: name of the action set.
    filters: network channels (64).
    use_conv_gru: the "+convGRU" variant.
    use_reward_map_conv: the "+RMC" variant.
    reward_map_size: RMC kernel size (33).
    t_max: steps per episode (5 for denoising).
    update_interval: steps per update (None: `t_max`, one update per
      episode; the reference restoration code uses 5 with `t_max` 15).
    reward: name of the reward function (`pixel_env.get_reward_fn`).
    input_transform: the network's input transform (`'none'`, or `'lab'`
      for colour models; `model_io.INPUT_TRANSFORMS`).
    gamma: discount (0.95).
    entropy_coef: entropy bonus `beta` (0.01).
    value_loss_coef: value loss weight (0.5).
    reward_map_policy_gradient: train `w` through the policy loss too
      (paper eq. 17); False as the reference code.
    learning_rate: initial Adam learning rate (1e-3).
    learning_rate_power: poly decay power over `num_episodes` (0.9).
    adam_epsilon: Adam epsilon (Chainer's default 1e-8).
    num_episodes: episode budget (30000 in the paper).
    checkpoint_interval: episodes between checkpoints.
    summary_interval: episodes between scalar summaries.
    image_summary_interval: episodes between image summaries.
    eval_interval: episodes between validation PSNR measurements.
    max_validation_images: cap on validation images (None: all).
    keep_checkpoints: checkpoints kept.
    seed: seed of everything random in the run.
    stop_after_episodes: stop (with a checkpoint) after this many episodes
      of this invocation, for tests and time-boxed runs.
    progress_stream: where the progress bar goes (default stderr).

  Returns:
    Dict with `episode` (episodes done), `val_psnr` (last validation PSNR
    or None), `input_psnr` (of the corrupted validation inputs),
    `val_lab_distance` (last validation mean Lab distance of BGR colour
    runs, else None) and `interrupted` (signal name or None).

  Raises:
    TrainingError: a one-line reason the run cannot go on.
  """
  update_interval = update_interval or t_max
  if t_max % update_interval:
    raise ValueError(f't_max ({t_max}) must be a multiple of '
                     f'update_interval ({update_interval})')
  progress_stream = progress_stream or sys.stderr
  # Seeds the initial weights too, so a seed names one whole run.
  tf.keras.utils.set_random_seed(seed)
  config = model_io.ModelConfig(
      channels=channels, action_set=action_set, filters=filters,
      use_conv_gru=use_conv_gru, use_reward_map_conv=use_reward_map_conv,
      reward_map_size=reward_map_size, t_max=t_max,
      input_transform=input_transform)
  actions = config.get_action_set()
  tf.io.gfile.makedirs(root_dir)
  _check_model_config(root_dir, config)

  # Model, agent and checkpoint.
  network = model_io.build_network(config)
  episode = tf.Variable(0, dtype=tf.int64, name='episode')
  optimizer = tf.keras.optimizers.Adam(
      pixel_a2c_agent.poly_learning_rate(
          learning_rate, num_episodes, episode, learning_rate_power),
      epsilon=adam_epsilon)
  time_step_spec, action_spec = specs_for(
      (crop_size, crop_size, channels), actions.num_actions)
  agent = pixel_a2c_agent.PixelA2CAgent(
      time_step_spec, action_spec, network, optimizer, gamma=gamma,
      entropy_coef=entropy_coef, value_loss_coef=value_loss_coef,
      use_reward_map_conv=use_reward_map_conv,
      reward_map_size=reward_map_size,
      reward_map_policy_gradient=reward_map_policy_gradient,
      train_step_counter=tf.Variable(0, dtype=tf.int64, name='train_step'))
  # Slots exist before a restore, so every one of them is restored now
  # rather than through deferred restoration.
  optimizer.build(agent.trainable_variables_for_update())
  checkpoint = model_io.model_checkpoint(
      network, agent.reward_map, optimizer=optimizer, episode=episode,
      train_step=agent.train_step_counter)
  manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(root_dir, model_io.TRAIN_DIR),
      max_to_keep=keep_checkpoints)
  if manager.latest_checkpoint:
    checkpoint.restore(
        manager.latest_checkpoint).assert_existing_objects_matched()
    print(f'resuming from {manager.latest_checkpoint} at episode '
          f'{int(episode)}', file=progress_stream)
  else:
    note = initialise_network(network, agent.reward_map)
    if note:
      print(note, file=progress_stream)
  model_io.write_text_atomically(
      os.path.join(root_dir, OPERATIVE_CONFIG_FILE),
      gin.operative_config_str())
  start_episode = int(episode)

  source = episode_sources.make_episode_source(
      episode_source, data_source, channels, batch_size, crop_size, seed,
      start_batch=start_episode, noise=noise, list_file=list_file,
      validation_source=validation_source,
      validation_fraction=validation_fraction,
      max_rotation_degrees=max_rotation_degrees,
      max_validation_images=max_validation_images, bgr=bgr)
  batches = iter(source.dataset)
  runner = EpisodeRunner(agent, actions, source.noise_model, t_max,
                         update_interval, seed, gamma,
                         reward_fn=pixel_env.get_reward_fn(reward))
  batch_spec = tf.TensorSpec([batch_size, crop_size, crop_size, channels],
                             tf.float32)
  run_episode = tf.function(runner.run, input_signature=[
      batch_spec, batch_spec, tf.TensorSpec([], tf.int64)])
  validator = Validator(network, actions, source.validation, t_max,
                        lab_metric=bgr and channels == 3)

  train_writer = tf.summary.create_file_writer(
      os.path.join(root_dir, model_io.TRAIN_DIR))
  eval_writer = tf.summary.create_file_writer(os.path.join(root_dir, EVAL_DIR))
  bar = progress.ProgressBar(num_episodes, initial=start_episode,
                             stream=progress_stream)
  val_psnr = None
  input_psnr = validator.input_psnr() if len(validator) else None
  if input_psnr is not None and start_episode == 0:
    with eval_writer.as_default(step=0):
      tf.summary.scalar('Metrics/val_psnr_input', input_psnr)
  last_saved = start_episode
  episodes_this_run = 0
  try:
    with progress.StopRequest() as stop:
      while int(episode) < num_episodes:
        current = int(episode)
        start, target = next(batches)
        started = time.monotonic()
        result = run_episode(start, target, tf.constant(current, tf.int64))
        scalars = {k: float(result[k]) for k in (
            'loss', 'policy_loss', 'value_loss', 'entropy_loss', 'entropy',
            'episode_reward')}
        _check_finite(scalars, current)
        episode.assign_add(1)
        done = current + 1
        episodes_this_run += 1
        if done % summary_interval == 0 or done == num_episodes:
          with train_writer.as_default(step=done):
            tf.summary.scalar('Losses/total', scalars['loss'])
            tf.summary.scalar('Losses/policy', scalars['policy_loss'])
            tf.summary.scalar('Losses/value', scalars['value_loss'])
            tf.summary.scalar('Losses/entropy', scalars['entropy_loss'])
            tf.summary.scalar('Metrics/entropy', scalars['entropy'])
            tf.summary.scalar('Metrics/reward', scalars['episode_reward'])
            tf.summary.scalar('Metrics/learning_rate',
                              float(optimizer.learning_rate))
            tf.summary.scalar('Metrics/episode_seconds',
                              time.monotonic() - started)
        if done % image_summary_interval == 0 or done == 1:
          with train_writer.as_default(step=done):
            images, action_maps = _time_major_episode(result)
            summaries.write_episode_images('train', images, action_maps,
                                           actions, done, bgr=bgr)
            if agent.reward_map is not None:
              summaries.write_reward_map_kernel(
                  agent.reward_map.kernel.numpy(), done)
        if len(validator) and (done % eval_interval == 0 or
                               done == num_episodes):
          val_psnr, (images, action_maps) = validator.evaluate()
          with eval_writer.as_default(step=done):
            tf.summary.scalar('Metrics/val_psnr', val_psnr)
            if validator.lab_distance is not None:
              tf.summary.scalar('Metrics/val_lab_distance',
                                validator.lab_distance)
            summaries.write_episode_images('validation', images, action_maps,
                                           actions, done, max_outputs=1,
                                           bgr=bgr)
        bar_metrics = {'reward': scalars['episode_reward'],
                       'loss': scalars['loss']}
        if val_psnr is not None:
          bar_metrics['val_psnr'] = val_psnr
        if validator.lab_distance is not None:
          bar_metrics['val_lab'] = validator.lab_distance
        bar.update(done, bar_metrics)
        if done % checkpoint_interval == 0 or done == num_episodes:
          _save_checkpoint(manager, done)
          last_saved = done
        if stop or (stop_after_episodes is not None and
                    episodes_this_run >= stop_after_episodes):
          break
      if int(episode) != last_saved:
        _save_checkpoint(manager, int(episode))
  finally:
    # A live `from_generator` iterator can hang the interpreter's exit.
    del batches
  bar.update(int(episode), force=True)
  train_writer.flush()
  eval_writer.flush()
  if stop:
    print(f'stopped by {stop.signal_name} at episode {int(episode)}; '
          f'checkpoint saved in {manager.directory}; run the same command '
          'to resume', file=progress_stream)
  return {'episode': int(episode), 'val_psnr': val_psnr,
          'input_psnr': input_psnr,
          'val_lab_distance': validator.lab_distance,
          'interrupted': stop.signal_name}

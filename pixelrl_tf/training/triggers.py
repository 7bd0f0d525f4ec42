"""What happens after a training episode: one trigger per concern.

Shapes: `b` images of one replica, `T` steps, `H, W` height and width, `C`
channels.

The loop (`training.loop.run_episodes`) hands every trigger an `Episode`
(the episode just done, its scalars and images) in the order it was given
them; a trigger that returns True stops the run after that episode (with a
checkpoint), as a signal or a time limit does. After the loop, every trigger
with a `finish(episode)` method is called once.

The interval triggers fire on TF-Agents' `IntervalTrigger` (every
`interval` episodes counted from episode 0, so a resumed run fires at the
same episodes as one that never stopped) and, where they say so, at the last
episode of the budget.

`train` uses, in this order: `FiniteCheck` (a non-finite loss or update
stops the run before anything is written), `LossWatchdog`,
`ScalarSummaries`, `ImageSummaries`, `Validation` (with `BestCheckpoint`
and the restoration step-count choice), `ProgressReport`, `Checkpoints`
and `EpisodeHooks`.
"""

import contextlib
import dataclasses
import json
import math
import os
import time
from typing import (Callable, Dict, Iterable, Optional, Protocol, Sequence,
                    TextIO)

import numpy as np
import tensorflow as tf
from tf_agents.train import interval_trigger

from pixelrl_tf import cli
from pixelrl_tf.drivers import learner as learner_lib
from pixelrl_tf.io import files
from pixelrl_tf.models import model_io
from pixelrl_tf.training import progress
from pixelrl_tf.visualization import summaries

BEST_FILE = 'best.json'


class TrainingError(Exception):
  """A run cannot go on; the message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class Episode:
  """What every trigger sees after a training episode.

  Attributes:
    episode: episodes done so far (this one included).
    num_episodes: the budget.
    scalars: the episode's scalars (`drivers.learner.SCALARS`,
      `GRADIENT_NORM`, `APPLIED`), as floats.
    images: `start` `[b,H,W,C]`, `outputs` `[b,T,H,W,C]` and `actions`
      `[b,T,H,W]` of the first replica.
    learning_rate: the rate this episode's updates used.
    seconds: wall-clock seconds of the episode call.
  """
  episode: int
  num_episodes: int
  scalars: Dict[str, float]
  images: Dict[str, tf.Tensor]
  learning_rate: float
  seconds: float


class Trigger(Protocol):
  """`(Episode) -> bool or None`; True stops the run after that episode."""

  def __call__(self, episode: Episode) -> Optional[bool]:
    ...


class Every:
  """Whether an episode is one of every `interval` (and the last one).

  Backed by TF-Agents' `IntervalTrigger`, started at the last multiple of
  `interval` before the run's first episode.
  """

  def __init__(self, interval: int, first_episode: int = 0,
               at_end: bool = True, at_first: bool = False):
    """Creates the schedule.

    Args:
      interval: episodes between firings (multiples of it).
      first_episode: episodes done before this start.
      at_end: also fire at the last episode of the budget.
      at_first: also fire after the run's very first episode.
    """
    self._at_end = at_end
    self._at_first = at_first
    self._fired = False
    self._trigger = interval_trigger.IntervalTrigger(
        interval, self._fire, start=first_episode - first_episode % interval)

  def _fire(self):
    self._fired = True

  def __call__(self, episode: int, num_episodes: int) -> bool:
    self._fired = False
    self._trigger(episode, force_trigger=self._at_end and
                  episode == num_episodes)
    return self._fired or (self._at_first and episode == 1)


class FiniteCheck:
  """Stops the run with one line when a loss or an update is not finite."""

  KEYS = ('loss', 'policy_loss', 'value_loss', learner_lib.GRADIENT_NORM)

  def __init__(self, checkpoints: 'Checkpoints'):
    self._checkpoints = checkpoints

  def __call__(self, episode: Episode) -> None:
    scalars = episode.scalars
    bad = [key for key in self.KEYS if not math.isfinite(scalars[key])]
    if bad or scalars[learner_lib.APPLIED] < 1.0:
      what = ', '.join(f'{k} {scalars[k]}' for k in bad) or 'gradients'
      raise TrainingError(
          f'non-finite {what} at episode {episode.episode - 1}; that update '
          'was not saved and the last good checkpoint (episode '
          f'{self._checkpoints.last_saved}) is kept (lower the learning '
          'rate, set PixelA2CAgent.gradient_clip_norm, or check the data)')


class LossWatchdog:
  """Warns once when the loss grows far past its first episodes."""

  def __init__(self, stream: TextIO, growth_factor: Optional[float],
               baseline_episodes: int = 10):
    self._stream = stream
    self._factor = growth_factor
    self._baseline_episodes = baseline_episodes
    self._losses = []
    self._recent = None
    self.loss_growth = 1.0
    self._warned = False

  def __call__(self, episode: Episode) -> None:
    magnitude = abs(episode.scalars['loss'])
    if len(self._losses) < self._baseline_episodes:
      self._losses.append(magnitude)
      return
    self._recent = (magnitude if self._recent is None
                    else 0.9 * self._recent + 0.1 * magnitude)
    baseline = max(float(np.mean(self._losses)), 1e-8)
    self.loss_growth = self._recent / baseline
    if self._factor and self.loss_growth > self._factor and not self._warned:
      self._warned = True
      print(f'warning: the loss has grown {self.loss_growth:.1f}x over its '
            f'first {self._baseline_episodes} episodes (threshold '
            f'{self._factor}x); training may be diverging (see '
            'Metrics/loss_growth; lower the learning rate or use the '
            'stabilisers of docs/design.md)', file=self._stream)


class ScalarSummaries:
  """Losses and metrics of the episode, every `interval` episodes."""

  def __init__(self, writer: tf.summary.SummaryWriter, every: Every,
               watchdog: LossWatchdog, reward_map=None):
    self._writer = writer
    self._every = every
    self._watchdog = watchdog
    self._reward_map = reward_map

  def __call__(self, episode: Episode) -> None:
    if not self._every(episode.episode, episode.num_episodes):
      return
    scalars = episode.scalars
    with self._writer.as_default(step=episode.episode):
      if self._reward_map is not None:
        summaries.write_reward_map_scalars(self._reward_map.kernel.numpy(),
                                           episode.episode)
      tf.summary.scalar('Losses/total', scalars['loss'])
      tf.summary.scalar('Losses/policy', scalars['policy_loss'])
      tf.summary.scalar('Losses/value', scalars['value_loss'])
      tf.summary.scalar('Losses/entropy', scalars['entropy_loss'])
      if scalars['imitation_loss']:
        tf.summary.scalar('Losses/imitation', scalars['imitation_loss'])
      tf.summary.scalar('Metrics/entropy', scalars['entropy'])
      tf.summary.scalar('Metrics/reward', scalars['episode_reward'])
      tf.summary.scalar('Metrics/mean_abs_reward', scalars['mean_abs_reward'])
      tf.summary.scalar('Metrics/mean_abs_advantage',
                        scalars['mean_abs_advantage'])
      tf.summary.scalar('Metrics/gradient_norm',
                        scalars[learner_lib.GRADIENT_NORM])
      tf.summary.scalar('Metrics/learning_rate', episode.learning_rate)
      tf.summary.scalar('Metrics/loss_growth', self._watchdog.loss_growth)
      tf.summary.scalar('Metrics/episode_seconds', episode.seconds)


class HistogramSummaries:
  """The agent's histograms, written from inside the episode function.

  `PixelA2CAgent.summarize_grads_and_vars` and `debug_summaries` write
  summaries inside the update; the traced episode holds those ops with the
  training writer, a step variable and a recording switch, so they write at
  the scalar-summary episodes and nowhere else. Not a trigger: the loop
  enters `during(episode)` around each episode call.
  """

  def __init__(self, writer: Optional[tf.summary.SummaryWriter],
               every: Every, enabled: bool):
    self._writer = writer
    self._every = every
    self._enabled = enabled and writer is not None
    self._step = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._record = tf.Variable(False, trainable=False)

  def during(self, episode: int, num_episodes: int):
    """A context for the call of episode `episode` (1-based)."""
    if not self._enabled:
      return contextlib.nullcontext()
    self._step.assign(episode)
    self._record.assign(bool(self._every(episode, num_episodes)))
    stack = contextlib.ExitStack()
    stack.enter_context(self._writer.as_default(step=self._step))
    stack.enter_context(tf.summary.record_if(lambda: self._record))
    return stack


class ImageSummaries:
  """The episode's images and action maps (and the RMC kernel)."""

  def __init__(self, writer: tf.summary.SummaryWriter, every: Every,
               action_set, bgr: bool, reward_map=None):
    self._writer = writer
    self._every = every
    self._action_set = action_set
    self._bgr = bgr
    self._reward_map = reward_map

  def __call__(self, episode: Episode) -> None:
    if not self._every(episode.episode, episode.num_episodes):
      return
    images = episode.images
    with self._writer.as_default(step=episode.episode):
      steps = np.concatenate([images['start'].numpy()[None],
                              np.swapaxes(images['outputs'].numpy(), 0, 1)])
      summaries.write_episode_images(
          'train', steps, np.swapaxes(images['actions'].numpy(), 0, 1),
          self._action_set, episode.episode, bgr=self._bgr)
      if self._reward_map is not None:
        summaries.write_reward_map_kernel(self._reward_map.kernel.numpy(),
                                          episode.episode)


def save_checkpoint(manager: tf.train.CheckpointManager, episode: int) -> str:
  """Saves checkpoint `episode`; a failed write as one `TrainingError` line.

  The writer's `ckpt-N_temp` folder of a failed save is removed (a full disk
  needs every byte back); earlier checkpoints are intact.
  """
  try:
    return manager.save(checkpoint_number=episode)
  except (tf.errors.OpError, OSError) as error:
    files.remove_stale_temporaries(manager.directory)
    reason = (model_io.op_error_text(error)
              if isinstance(error, tf.errors.OpError) else
              cli.first_line(error))
    raise TrainingError(
        f'could not write a checkpoint at episode {episode} in '
        f'{manager.directory} ({reason}); earlier checkpoints are intact '
        '(free space or fix the folder, then rerun the same command to '
        'resume)') from error


class Checkpoints:
  """The run's checkpoint every `interval` episodes and when it stops."""

  def __init__(self, manager: tf.train.CheckpointManager, every: Every,
               first_episode: int):
    self.manager = manager
    self._every = every
    self.last_saved = first_episode

  def __call__(self, episode: Episode) -> None:
    if self._every(episode.episode, episode.num_episodes):
      save_checkpoint(self.manager, episode.episode)
      self.last_saved = episode.episode

  def finish(self, episode: int) -> None:
    if episode != self.last_saved:
      save_checkpoint(self.manager, episode)
      self.last_saved = episode


def read_best(root_dir: str) -> Optional[Dict]:
  """`best.json` of a run, or None."""
  path = os.path.join(root_dir, BEST_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


class BestCheckpoint:
  """Keeps the checkpoint with the best validation metric (`best.json`)."""

  def __init__(self, manager: tf.train.CheckpointManager, root_dir: str,
               metric, write_files: bool):
    """Creates the keeper.

    Args:
      manager: the `best/` checkpoint manager (one checkpoint kept).
      root_dir: the run directory (`best.json`).
      metric: the task's `Metric`.
      write_files: whether this process writes `best.json` (the chief).
    """
    self._manager = manager
    self._root_dir = root_dir
    self._metric = metric
    self._write_files = write_files
    self.best = read_best(root_dir)

  def offer(self, episode: int, value: float, inference_steps: int) -> None:
    """Keeps the current weights if `value` beats the best so far."""
    if not self._metric.better(
        value, None if self.best is None else self.best['value']):
      return
    path = save_checkpoint(self._manager, episode)
    self.best = {'episode': episode, 'metric': self._metric.name,
                 'value': value, 'inference_steps': inference_steps,
                 'checkpoint': os.path.relpath(path, self._root_dir)}
    if self._write_files:
      files.write_text_atomically(os.path.join(self._root_dir, BEST_FILE),
                                  json.dumps(self.best, indent=2))


class Validation:
  """Validates every `interval` episodes; keeps the best; picks the steps.

  Attributes:
    value: the last validation metric (None before the first).
    input_value: the metric of the untouched validation inputs.
  """

  def __init__(self, validator, every: Every, best: BestCheckpoint,
               inference_steps: tf.Variable, choose_inference_steps: bool,
               writer: Optional[tf.summary.SummaryWriter], action_set,
               bgr: bool, stream: TextIO, first_episode: int):
    """Creates the trigger.

    Args:
      validator: the `training.validation.Validator`.
      every: when to validate.
      best: the `BestCheckpoint` keeper.
      inference_steps: the restoration step count the checkpoints store.
      choose_inference_steps: set it to the count (1..t_max) that validates
        best each time.
      writer: the `eval/` summary writer (None: no summaries).
      action_set: the `ActionSet` (for the action maps).
      bgr: colour images in BGR order.
      stream: where warnings go.
      first_episode: episodes done before this start (the input's metric
        is written at step 0 by a new run).
    """
    self._validator = validator
    self._every = every
    self._best = best
    self._inference_steps = inference_steps
    self._choose = choose_inference_steps
    self._writer = writer
    self._action_set = action_set
    self._bgr = bgr
    self._stream = stream
    self.value = None
    self.input_value = validator.input_score() if len(validator) else None
    name = validator.metric_name
    if self.input_value is not None and first_episode == 0 and writer:
      with writer.as_default(step=0):
        tf.summary.scalar(f'Metrics/val_{name}_input', self.input_value)

  def __call__(self, episode: Episode) -> None:
    validator = self._validator
    if not len(validator) or not self._every(episode.episode,
                                             episode.num_episodes):
      return
    done, name = episode.episode, validator.metric_name
    per_step, (images, action_maps) = validator.evaluate(
        every_step=self._choose)
    if self._choose:
      self._inference_steps.assign(validator.best_step(per_step))
    self.value = per_step[int(self._inference_steps) - 1 if self._choose
                          else -1]
    worse = validator.metric.better(self.input_value, self.value)
    if worse:
      print(f'warning: at episode {done} validation {name} {self.value:.4g} '
            f'is worse than the untouched input ({self.input_value:.4g})',
            file=self._stream)
    if self._writer:
      with self._writer.as_default(step=done):
        tf.summary.scalar(f'Metrics/val_{name}', self.value)
        tf.summary.scalar('Metrics/val_worse_than_input', float(worse))
        if self._choose:
          tf.summary.scalar('Metrics/val_inference_steps',
                            int(self._inference_steps))
          tf.summary.scalar(f'Metrics/val_{name}_at_t_max', per_step[-1])
        summaries.write_episode_images(
            'validation', images, action_maps, self._action_set, done,
            max_outputs=1, bgr=self._bgr)
    self._best.offer(done, self.value, int(self._inference_steps))

  @property
  def best(self) -> Optional[Dict]:
    """`best.json`'s content (None before the first validation)."""
    return self._best.best


class ProgressReport:
  """The progress bar with the reward, the loss and the last validation."""

  def __init__(self, bar: progress.ProgressBar,
               validation: Optional[Validation], metric_name: str):
    self._bar = bar
    self._validation = validation
    self._metric_name = metric_name

  def __call__(self, episode: Episode) -> None:
    shown = {'reward': episode.scalars['episode_reward'],
             'loss': episode.scalars['loss']}
    if self._validation is not None and self._validation.value is not None:
      shown[f'val_{self._metric_name}'] = self._validation.value
    self._bar.update(episode.episode, shown)

  def finish(self, episode: int) -> None:
    self._bar.update(episode, force=True)


class FlushSummaries:
  """Flushes the summary writers when the loop ends."""

  def __init__(self, writers: Iterable[tf.summary.SummaryWriter]):
    self._writers = list(writers)

  def __call__(self, episode: Episode) -> None:
    del episode

  def finish(self, episode: int) -> None:
    del episode
    for writer in self._writers:
      writer.flush()


@dataclasses.dataclass(frozen=True)
class EpisodeEnd:
  """What an episode hook sees after every training episode.

  Attributes:
    episode: episodes done so far.
    num_episodes: the budget.
    seconds: wall-clock seconds since this `train` call began (set-up,
      tracing, validations and checkpoints included).
    network: the network being trained (its current weights).
    inference_steps: the restoration step count the checkpoints would store
      now.
    scalars: the episode's scalars (`drivers.learner.SCALARS`, ...).
  """
  episode: int
  num_episodes: int
  seconds: float
  network: tf.Module
  inference_steps: int
  scalars: Dict[str, float]


# `(EpisodeEnd) -> bool`: a true result stops the run after that episode
# (with a checkpoint), as a time limit does.
EpisodeHook = Callable[[EpisodeEnd], bool]


class EpisodeHooks:
  """Calls the user's `EpisodeHook`s; any true result stops the run."""

  def __init__(self, hooks: Sequence[EpisodeHook], network: tf.Module,
               inference_steps: tf.Variable, started: float,
               clock: Callable[[], float] = time.monotonic):
    self._hooks = list(hooks)
    self._network = network
    self._inference_steps = inference_steps
    self._started = started
    self._clock = clock

  def __call__(self, episode: Episode) -> bool:
    end = EpisodeEnd(episode.episode, episode.num_episodes,
                     self._clock() - self._started, self._network,
                     int(self._inference_steps), episode.scalars)
    return any([bool(hook(end)) for hook in self._hooks])


"""The training loop: episodes until the budget, a signal or a trigger.

Shapes: `B` global batch, `H, W` height and width, `C` channels.

`run_episodes` is all of training's control flow: before each episode it
sets the learning rate of the schedule, runs the episode function (a
`tf.function` over `drivers.learner.EpisodeLearner.run`, on every replica)
inside the given contexts, counts it, and hands the result to the triggers
(`training.triggers`: checkpoints, summaries, validation, the watchdogs,
user hooks). SIGINT and SIGTERM stop it after the current episode.
"""

import collections
import contextlib
import dataclasses
import time
from typing import Callable, ContextManager, Dict, Optional, Sequence

import tensorflow as tf

from pixelrl_tf.agents import pixel_a2c_agent
from pixelrl_tf.drivers import learner as learner_lib
from pixelrl_tf.training import progress
from pixelrl_tf.training import triggers as triggers_lib

# `(episode index) -> result`: the episode's `learner.SCALARS`,
# `GRADIENT_NORM` and `APPLIED` (tensors, mean over replicas) and its
# `start`, `outputs` and `actions`.
EpisodeFn = Callable[[int], Dict[str, tf.Tensor]]
# `(episode index) -> learning rate` set on the optimizer for that episode.
ScheduleFn = Callable[[int], float]
# `(episode done, budget) -> context` entered around the episode call.
ContextFn = Callable[[int, int], ContextManager]


@dataclasses.dataclass(frozen=True)
class LoopResult:
  """How the loop ended.

  Attributes:
    episodes_run: episodes this call ran.
    signal_name: `'SIGINT'` or `'SIGTERM'` when a signal stopped it, else
      None.
    seconds_by_part: where the loop's time went: `FIRST_EPISODE` (the
      first call traces the episode function), `EPISODES` (every other
      call) and each trigger by its class name (its calls and `finish`).
  """
  episodes_run: int
  signal_name: Optional[str]
  seconds_by_part: Dict[str, float] = dataclasses.field(default_factory=dict)


FIRST_EPISODE = 'first episode'
EPISODES = 'episodes'


def run_episodes(episode_fn: EpisodeFn, episode: tf.Variable,
                 num_episodes: int, schedule_fn: ScheduleFn,
                 triggers: Sequence[triggers_lib.Trigger],
                 contexts: Sequence[ContextFn] = (),
                 stop_after_episodes: Optional[int] = None,
                 clock: Callable[[], float] = time.monotonic) -> LoopResult:
  """Runs training episodes from `episode` up to `num_episodes`.

  Args:
    episode_fn: runs one episode.
    episode: int64 counter of the episodes done (checkpointed); counts up.
    num_episodes: the budget.
    schedule_fn: sets the learning rate of an episode; returns it.
    triggers: called in order after every episode; one that returns True
      stops the loop after that episode. Those with `finish(episode)` are
      called once at the end (the last checkpoint, the progress line).
    contexts: entered around every episode call (histogram recording).
    stop_after_episodes: stop after this many episodes of this call.
    clock: seconds, for the episodes' and the parts' durations.

  Returns:
    The `LoopResult`.
  """
  episodes_run = 0
  seconds_by_part = collections.defaultdict(float)

  def timed(part, fn, *args):
    started = clock()
    value = fn(*args)
    seconds_by_part[part] += clock() - started
    return value

  with progress.StopRequest() as stop:
    while int(episode) < num_episodes:
      current = int(episode)
      learning_rate = schedule_fn(current)
      started = clock()
      with contextlib.ExitStack() as stack:
        for make_context in contexts:
          stack.enter_context(make_context(current + 1, num_episodes))
        result = episode_fn(current)
      seconds = clock() - started
      seconds_by_part[EPISODES if episodes_run else FIRST_EPISODE] += seconds
      scalars = {key: float(result[key]) for key in learner_lib.SCALARS + (
          learner_lib.GRADIENT_NORM, learner_lib.APPLIED)}
      episode.assign_add(1)
      episodes_run += 1
      done = triggers_lib.Episode(
          current + 1, num_episodes, scalars,
          {key: result[key] for key in ('start', 'outputs', 'actions')},
          learning_rate, seconds)
      stops = [bool(timed(type(trigger).__name__, trigger, done))
               for trigger in triggers]
      if stop or any(stops) or (stop_after_episodes is not None and
                                episodes_run >= stop_after_episodes):
        break
    for trigger in triggers:
      finish = getattr(trigger, 'finish', None)
      if finish is not None:
        timed(type(trigger).__name__, finish, int(episode))
  return LoopResult(episodes_run, stop.signal_name, dict(seconds_by_part))


def poly_schedule(optimizer: tf.keras.optimizers.Optimizer,
                  learning_rate: float, num_episodes: int,
                  power: float) -> ScheduleFn:
  """The reference's poly learning rate, set on `optimizer` per episode."""

  def schedule(current):
    optimizer.learning_rate.assign(pixel_a2c_agent.poly_learning_rate(
        learning_rate, current, num_episodes, power))
    return float(optimizer.learning_rate.numpy())
  return schedule

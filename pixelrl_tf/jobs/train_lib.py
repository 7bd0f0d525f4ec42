"""Training of PixelRL agents: the job that wires the parts together.

Shapes: `B` global batch, `T` steps, `H, W` height and width, `C` channels,
`A` actions.

`train` builds, under a `tf.distribute` strategy, the task's environment
(`PixelTFEnvironment`, in-graph), the network (`models.model_io`, initial
weights from `models.initialise`), the agent (`PixelA2CAgent`,
gin-configurable) and an `EpisodeLearner` (`drivers.learner`: corrupt a
batch of crops with a stateless seed of `(seed, episode)`, roll out the
collect policy, update every window), and runs `training.loop.run_episodes`
with the triggers of `training.triggers`: the non-finite and loss-growth
watchdogs, summaries, validation with the best checkpoint and the
restoration step-count choice, the progress bar, checkpoints and the
caller's hooks. The learning rate follows the reference's poly schedule.
Everything random is a function of the run's seed and the episode counter,
and the crop stream is positioned by the counter, so a run that is stopped
and started again continues exactly where it was.

Layout of `root_dir` (see `models.model_io`): `model.json` (the
architecture, written once the data and initial weights have been read),
`run.json` (the settings a resume must not change, `training.run_settings`),
`train/ckpt-N.*` (network, reward map, optimizer, episode counter,
restoration step count), `best/ckpt-N.*` and `best.json` (the checkpoint
with the best validation metric), `operative_config-<episode>.gin` (the gin
configuration of every start), TensorBoard event files under `train/` and
`eval/`.
"""

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, Optional, Sequence, TextIO

import gin
import tensorflow as tf

from pixelrl_tf import cli
from pixelrl_tf import hardware
from pixelrl_tf.agents import pixel_a2c_agent
from pixelrl_tf.data import datasets
from pixelrl_tf.data import known_files
from pixelrl_tf.drivers import learner as learner_lib
from pixelrl_tf.environments import tf_pixel_env
from pixelrl_tf.io import files
from pixelrl_tf.models import initialise
from pixelrl_tf.models import model_io
from pixelrl_tf.tasks import episode_sources
from pixelrl_tf.tasks import tasks as tasks_lib
from pixelrl_tf.training import loop
from pixelrl_tf.training import progress
from pixelrl_tf.training import run_settings
from pixelrl_tf.training import settings as settings_lib
from pixelrl_tf.training import triggers
from pixelrl_tf.training import validation

EVAL_DIR = 'eval'
BEST_DIR = 'best'
FINAL_REPORT_FILE = 'final_report.json'
# `seconds_by_part` keys besides the loop's (`loop.LoopResult`).
SET_UP = 'set-up'
DATA = 'data'
FINAL_REPORT = 'final report'

STRATEGIES = ('default', 'mirrored', 'multi_worker')
MIXED_PRECISION_POLICIES = (None, 'mixed_bfloat16', 'mixed_float16', 'auto')

# Activation maps of `F` channels kept per image pixel and step when the
# update reuses the rollout's forward pass (measured, see
# docs/benchmarks.md); the 'auto' recompute choice compares the estimate with
# half the memory of the device.
_KEPT_MAPS_PER_STEP = 40

TrainingError = triggers.TrainingError
EpisodeEnd = triggers.EpisodeEnd
EpisodeHook = triggers.EpisodeHook
moved_binding_hint = settings_lib.moved_binding_hint


@gin.configurable(module='pixelrl_tf.jobs',
                  denylist=['root_dir', 'progress_stream', 'episode_hooks'])
def train(root_dir: str,
          task=None,
          data: Optional[settings_lib.TrainingData] = None,
          architecture: Optional[settings_lib.Architecture] = None,
          optimization: Optional[settings_lib.Optimization] = None,
          scale: Optional[settings_lib.Scale] = None,
          cadence: Optional[settings_lib.Cadence] = None,
          run_control: Optional[settings_lib.RunControl] = None,
          progress_stream: Optional[TextIO] = None,
          episode_hooks: Sequence[EpisodeHook] = ()) -> Dict[str, Any]:
  """Trains (or resumes training) a PixelRL agent in `root_dir`.

  The run's settings come in parts (`training.settings`), each built from
  its gin bindings when it is not given (`TrainingData.batch_size = 8`,
  `Optimization.num_episodes = 150`, ...). Agent hyper-parameters
  (discount, entropy and value weights, RMC policy gradient, stabilisers)
  are bindings of `PixelA2CAgent` (e.g. `PixelA2CAgent.gamma = 0.95`); the
  task's fields are bindings of `make_task`.

  Args:
    root_dir: run directory; an existing run is resumed from its latest
      checkpoint.
    task: None (the task `make_task` builds from its gin bindings:
      `make_task.name = 'denoise'`, ...), a registered task name (also
      through `make_task`, so its field bindings apply) or a `Task`.
    data: episodes and validation images (`TrainingData`).
    architecture: the network's variant and width (`Architecture`).
    optimization: Adam and the schedule, with the episode budget
      (`Optimization`).
    scale: devices, precision and memory (`Scale`).
    cadence: checkpoints, summaries and validation (`Cadence`).
    run_control: seed, allowed resume changes, early stop (`RunControl`).
    progress_stream: where the progress bar goes (default stderr).
    episode_hooks: Python callables given an `EpisodeEnd` after every
      episode (e.g. a benchmark's snapshots); one that returns True stops
      the run after that episode, with a checkpoint.

  Returns:
    Dict with `episode` (episodes done), `val_metric` (last validation
    value or None), `input_metric` (of the corrupted validation inputs),
    `metric` (`'psnr'` or `'lab_distance'`), `best` (`best.json`'s
    content or None), `final_report` (or None), `inference_steps` (the
    restoration step count the checkpoints store), `interrupted` (signal
    name or None), and what the run was built with: `task`,
    `model_config`, `mixed_precision` (the policy used, `'auto'` resolved),
    `agent_hyperparameters` and `record_gradients`; `seconds_by_part`:
    where this call's time went (`SET_UP` before the first episode, the
    loop's parts of `loop.LoopResult.seconds_by_part`, `DATA`: waiting for
    the next batch, inside the episodes, and `FINAL_REPORT`).

  Raises:
    TrainingError: a one-line reason the run cannot go on.
  """
  worker_dirs = []
  try:
    return _train(root_dir, task, data, architecture, optimization, scale,
                  cadence, run_control, progress_stream, episode_hooks,
                  worker_dirs)
  finally:
    for directory in worker_dirs:
      shutil.rmtree(directory, ignore_errors=True)


def _train(root_dir, task, data, architecture, optimization, scale, cadence,
           run_control, progress_stream, episode_hooks, worker_dirs):
  """`train`; `worker_dirs` gets the temporary folders it makes."""
  started = time.monotonic()
  stream = progress_stream or sys.stderr
  task = resolve_task(task)
  data, architecture, optimization, scale, cadence, run_control = (
      given or part() for given, part in zip(
          (data, architecture, optimization, scale, cadence, run_control),
          settings_lib.PARTS))
  mixed_precision = _precision_policy(scale.mixed_precision, stream)
  strategy, local_batch, chief = _distribution(scale, data.batch_size)
  # Seeds the initial weights too, so a seed names one whole run.
  tf.keras.utils.set_random_seed(run_control.seed)
  config = model_io.ModelConfig.for_task(
      task, **dataclasses.asdict(architecture))
  new_run = _make_run_dir(root_dir)
  record_gradients = choose_record_gradients(
      scale.update_recompute, local_batch, data.crop_size,
      architecture.filters, task.window)
  episode, inference_steps = _counters(task)
  action_set = task.get_action_set()
  with strategy.scope():
    network, optimizer, environment, agent = _build_agent(
        config, task, action_set, local_batch, data.crop_size, optimization,
        mixed_precision)
  guarded = _guarded_settings(task, data, optimization, run_control,
                              cadence, mixed_precision, agent)
  stored_settings = run_settings.check_resume(
      root_dir, guarded, set(run_control.allow_changes), config,
      None if new_run else model_io.read_model_config(root_dir))
  manager = tf.train.CheckpointManager(
      model_io.model_checkpoint(
          network, agent.reward_map, optimizer=optimizer,
          train_step=agent.train_step_counter,
          **{model_io.EPISODE: episode,
             model_io.INFERENCE_STEPS: inference_steps}),
      _checkpoint_dir(root_dir, model_io.TRAIN_DIR, chief, worker_dirs),
      max_to_keep=cadence.keep_checkpoints)
  resumed = _resume(manager.checkpoint, root_dir, stream)
  start_episode = int(episode)
  source = _episode_source(task, data, run_control.seed, start_episode,
                           initialising=not resumed)
  if not resumed:
    _initialise(network, stream)
  if chief:
    _write_run_files(root_dir, new_run, config, guarded, stored_settings,
                     start_episode)
  data_seconds = []
  episode_fn = _episode_fn(strategy, agent, environment, task, data,
                           source, run_control.seed, record_gradients,
                           scale.jit_compile, data_seconds)
  validator = validation.Validator(network, action_set, source.validation,
                                   task)
  after_episode, histograms, validating = _triggers(
      root_dir, chief, task, action_set, agent, network, validator, manager,
      inference_steps, start_episode, optimization.num_episodes, cadence,
      started, stream, episode_hooks, worker_dirs)
  set_up_seconds = time.monotonic() - started
  try:
    ended = loop.run_episodes(
        episode_fn, episode, optimization.num_episodes,
        loop.poly_schedule(optimizer, optimization.learning_rate,
                           optimization.num_episodes,
                           optimization.learning_rate_power),
        after_episode, contexts=[histograms.during],
        stop_after_episodes=run_control.stop_after_episodes)
  finally:
    # A live `from_generator` iterator can hang the interpreter's exit.
    del episode_fn
  report = None
  report_started = time.monotonic()
  if (cadence.final_report and len(validator) and not ended.signal_name and
      int(episode) == optimization.num_episodes):
    report = _final_report(validator, root_dir, int(inference_steps), chief,
                           ended.episodes_run, stream)
  seconds_by_part = {SET_UP: set_up_seconds, **ended.seconds_by_part,
                     DATA: sum(data_seconds),
                     FINAL_REPORT: time.monotonic() - report_started}
  _say_how_it_stopped(ended, int(episode), manager.directory, stream)
  return dict(
      episode=int(episode), val_metric=validating.value,
      input_metric=validating.input_value, metric=validator.metric_name,
      best=validating.best, final_report=report,
      inference_steps=int(inference_steps), interrupted=ended.signal_name,
      task=task, model_config=config, mixed_precision=mixed_precision,
      agent_hyperparameters=agent.hyperparameters,
      record_gradients=record_gradients, seconds_by_part=seconds_by_part)


def resolve_task(task):
  if isinstance(task, tasks_lib.Task):
    return task
  if task is None:
    return tasks_lib.make_task()
  bound = _bound_task_name()
  if bound is not None and bound != task:
    raise ValueError(f'train.task is {task!r} but make_task.name is '
                     f'{bound!r}; set only one of them')
  return tasks_lib.make_task(name=task)


def _bound_task_name():
  try:
    return gin.query_parameter('make_task.name')
  except ValueError:
    return None


def _distributed_episode_fn(strategy, learner, batch_shape, jit_compile):
  """The `tf.function` running one episode on every replica."""
  batch_spec = tf.TensorSpec(batch_shape, tf.float32)

  def episode_fn(start, target, episode):
    per_replica = strategy.run(learner.run, args=(start, target, episode))
    # The gradient norm is that of the summed gradients, the same on every
    # replica; `applied` averages to 1 only if every replica applied.
    mean = tf.distribute.ReduceOp.MEAN
    result = {key: strategy.reduce(mean, per_replica[key], axis=None)
              for key in learner_lib.SCALARS + (learner_lib.GRADIENT_NORM,
                                                learner_lib.APPLIED)}
    for key in ('start', 'outputs', 'actions'):
      result[key] = strategy.experimental_local_results(per_replica[key])[0]
    return result

  # The episode's Python control flow is on Python values (step counts,
  # windows), so autograph would only spend time rewriting every function
  # it calls (most of a trace).
  return tf.function(episode_fn, autograph=False,
                     jit_compile=jit_compile or None,
                     input_signature=[batch_spec, batch_spec,
                                      tf.TensorSpec([], tf.int64)])


def _summary_writers(root_dir, chief) -> Dict[str, tf.summary.SummaryWriter]:
  if not chief:
    return {}
  return {name: tf.summary.create_file_writer(os.path.join(root_dir, name))
          for name in (model_io.TRAIN_DIR, EVAL_DIR)}


def _precision_policy(mixed_precision, stream):
  if mixed_precision not in MIXED_PRECISION_POLICIES:
    raise ValueError(f'unknown mixed_precision {mixed_precision!r}; use one '
                     f'of {MIXED_PRECISION_POLICIES}')
  if mixed_precision == 'auto':
    return resolve_auto_precision(stream)
  return mixed_precision


def _distribution(scale, batch_size):
  """`(strategy, images per replica, whether this process is the chief)`."""
  strategy = make_strategy(scale.strategy, scale.worker_timeout_seconds,
                           scale.virtual_cpu_devices)
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise ValueError(f'batch_size ({batch_size}) must be a multiple of the '
                     f'{replicas} replicas')
  return strategy, batch_size // replicas, _is_chief(strategy)


def _counters(task):
  """`(episode counter, restoration step count)` variables of a run.

  The episode counter is host bookkeeping, so it lives outside the strategy
  (a mirrored variable has no int()).
  """
  return (tf.Variable(0, dtype=tf.int64, name=model_io.EPISODE),
          tf.Variable(task.t_max, dtype=tf.int64,
                      name=model_io.INFERENCE_STEPS))


def _make_run_dir(root_dir) -> bool:
  """Creates `root_dir` if need be; returns whether it holds no run yet."""
  try:
    tf.io.gfile.makedirs(root_dir)
  except (tf.errors.OpError, OSError) as error:
    raise TrainingError(f'cannot create the run directory {root_dir} '
                        f'({cli.first_line(error)})') from None
  return not tf.io.gfile.exists(
      os.path.join(root_dir, model_io.MODEL_CONFIG_FILE))


def _build_agent(config, task, action_set, local_batch, crop_size,
                 optimization, mixed_precision):
  """`(network, optimizer, environment, agent)` of a run (in its scope)."""
  network = model_io.build_network(
      config, dtype_policy=(tf.keras.mixed_precision.Policy(mixed_precision)
                            if mixed_precision else None))
  optimizer = tf.keras.optimizers.Adam(optimization.learning_rate,
                                       epsilon=optimization.adam_epsilon)
  if mixed_precision == 'mixed_float16':
    optimizer = tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
  environment = tf_pixel_env.PixelTFEnvironment(
      action_set, task.get_reward_fn(), channels=task.channels,
      extra_channels=task.extra_channels, image_size=(crop_size, crop_size),
      batch_size=local_batch, t_max=task.t_max)
  agent = pixel_a2c_agent.PixelA2CAgent(
      environment.time_step_spec(), environment.action_spec(), network,
      optimizer, use_reward_map_conv=config.use_reward_map_conv,
      reward_map_size=config.reward_map_size,
      train_step_counter=tf.Variable(0, dtype=tf.int64, name='train_step'))
  # Slots exist before a restore, so every one of them is restored now
  # rather than through deferred restoration.
  optimizer.build(agent.trainable_variables_for_update())
  replicas = tf.distribute.get_strategy().num_replicas_in_sync
  if agent.writes_summaries and replicas > 1:
    raise ValueError(
        'PixelA2CAgent.summarize_grads_and_vars and debug_summaries write '
        f'from one replica only; this run has {replicas} (use the default '
        'strategy to record them)')
  return network, optimizer, environment, agent


def _guarded_settings(task, data, optimization, run_control, cadence,
                      mixed_precision, agent):
  """This start's `run_settings.GUARDED_SETTINGS` (`run.json`)."""
  optional_path = lambda p: None if p is None else os.fspath(p)
  return dict(
      task=run_settings.task_settings(task),
      data_source=os.fspath(data.data_source),
      list_file=optional_path(data.list_file), seed=run_control.seed,
      batch_size=data.batch_size, crop_size=data.crop_size,
      num_episodes=optimization.num_episodes,
      learning_rate=optimization.learning_rate,
      learning_rate_power=optimization.learning_rate_power,
      adam_epsilon=optimization.adam_epsilon,
      mixed_precision=mixed_precision,
      validation_source=optional_path(data.validation_source),
      validation_fraction=data.validation_fraction,
      max_validation_images=data.max_validation_images,
      choose_inference_steps=bool(cadence.choose_inference_steps),
      agent={key: agent.hyperparameters[key]
             for key in run_settings.GUARDED_AGENT_HYPERPARAMETERS})


def _episode_source(task, data, seed, start_episode, initialising):
  """The run's `EpisodeSource`, positioned at `start_episode`."""
  resolved = _require_known_files(
      [data.data_source, data.list_file, data.validation_source],
      initialising)
  return episode_sources.make_episode_source(
      task, _data_path(data.data_source, resolved), data.batch_size,
      data.crop_size, seed, start_batch=start_episode,
      list_file=_data_path(data.list_file, resolved),
      validation_source=_data_path(data.validation_source, resolved),
      validation_fraction=data.validation_fraction,
      max_validation_images=data.max_validation_images)


def _checkpoint_dir(root_dir, folder, chief, worker_dirs):
  """`root_dir/folder`; a temporary folder on workers other than the chief.

  Only the chief's checkpoints count; the other workers write theirs (the
  collective writes need every worker) where nobody reads them, in a
  temporary folder appended to `worker_dirs` (`train` removes them).
  """
  if chief:
    return os.path.join(root_dir, folder)
  worker_dirs.append(tempfile.mkdtemp(prefix=f'pixelrl_worker_{folder}_'))
  return worker_dirs[-1]


def _resume(checkpoint, root_dir, stream) -> bool:
  """Restores the run's newest checkpoint, if it has one; says so."""
  train_dir = os.path.join(root_dir, model_io.TRAIN_DIR)
  try:
    latest, older = model_io.latest_resumable_checkpoint(train_dir)
  except model_io.CheckpointError as error:
    raise TrainingError(str(error)) from None
  if not latest:
    return False
  try:
    model_io.restore_checkpoint(checkpoint, latest, f'the run in {root_dir}',
                                partial=False)
  except model_io.CheckpointError as error:
    how = (f'move {latest}.* out of {train_dir} to resume from {older[-1]}'
           if older else 'use a new --root_dir')
    raise TrainingError(f'{error}; {how}') from None
  print(f'resuming from {latest} at episode '
        f'{int(getattr(checkpoint, model_io.EPISODE))}', file=stream)
  return True


def _initialise(network, stream):
  """The configured initial weights (`initialise_network`); says which."""
  note = initialise.initialise_network(network)
  if note:
    print(note, file=stream)


def _write_run_files(root_dir, new_run, config, settings, stored_settings,
                     start_episode):
  """`model.json`, `run.json` and this start's operative config."""
  # What a killed start was writing (never read: the files it was about to
  # replace and the checkpoints it had finished are kept).
  for directory in (root_dir, os.path.join(root_dir, model_io.TRAIN_DIR),
                    os.path.join(root_dir, BEST_DIR)):
    files.remove_stale_temporaries(directory)
  if new_run:
    model_io.write_model_config(root_dir, config)
  if stored_settings is None or stored_settings != settings:
    run_settings.write_run_settings(root_dir, settings)
  run_settings.write_operative_config(root_dir, start_episode,
                                      gin.operative_config_str())


def _episode_fn(strategy, agent, environment, task, data, source, seed,
                record_gradients, jit_compile,
                data_seconds: list) -> loop.EpisodeFn:
  """The loop's episode: the next batch through the distributed learner.

  Appends each wait for the next batch to `data_seconds`.
  """
  learner = learner_lib.EpisodeLearner(
      agent, environment, task.t_max, task.window, seed,
      noise_model=source.noise_model, record_gradients=record_gradients,
      reward_log_scale=task.reward_log_scale)
  run_episode = _distributed_episode_fn(
      strategy, learner,
      [data.batch_size, data.crop_size, data.crop_size, task.channels],
      jit_compile)
  batches = iter(source.dataset)

  def episode_fn(current):
    waited = time.monotonic()
    start, target = next(batches)
    data_seconds.append(time.monotonic() - waited)
    try:
      return run_episode(start, target, tf.constant(current, tf.int64))
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError) as error:
      raise TrainingError(
          f'a worker stopped answering at episode {current} '
          f'({cli.first_line(error)}); rerun the same commands on every '
          'worker to resume from the last checkpoint') from error
  return episode_fn


def _say_how_it_stopped(ended, episode, checkpoint_dir, stream):
  if ended.signal_name:
    print(f'stopped by {ended.signal_name} at episode {episode}; '
          f'checkpoint saved in {checkpoint_dir}; run the same command to '
          'resume', file=stream)


def _final_report(validator, root_dir, inference_steps, chief, episodes_run,
                  stream):
  """Compares the model with the input and the best fixed schedule.

  A start that trained no episode still writes the report a killed start
  did not get to write; otherwise it is not repeated.
  """
  path = os.path.join(root_dir, FINAL_REPORT_FILE)
  if not episodes_run and tf.io.gfile.exists(path):
    return None
  report = validator.final_report(inference_steps)
  print(validation.final_report_line(report), file=stream)
  if chief:
    files.write_text_atomically(path, json.dumps(report, indent=2))
  return report


def _triggers(root_dir, chief, task, action_set, agent, network, validator,
              manager, inference_steps, start_episode, num_episodes, cadence,
              started, stream, episode_hooks, worker_dirs):
  """`(triggers in order, histogram recorder, validation trigger)`."""
  every = lambda interval, **kwargs: triggers.Every(interval, start_episode,
                                                    **kwargs)
  reward_map = agent.reward_map
  writers = _summary_writers(root_dir, chief)
  train_writer = writers.get(model_io.TRAIN_DIR)
  checkpoints = triggers.Checkpoints(manager, every(cadence.checkpoint_interval),
                                     start_episode)
  watchdog = triggers.LossWatchdog(stream,
                                   cadence.loss_growth_warning_factor)
  best = triggers.BestCheckpoint(
      tf.train.CheckpointManager(
          model_io.model_checkpoint(
              network, reward_map,
              **{model_io.INFERENCE_STEPS: inference_steps}),
          _checkpoint_dir(root_dir, BEST_DIR, chief, worker_dirs),
          max_to_keep=1),
      root_dir, validator.metric, chief)
  validating = triggers.Validation(
      validator, every(cadence.eval_interval), best, inference_steps,
      cadence.choose_inference_steps, writers.get(EVAL_DIR),
      action_set,
      task.bgr, stream, start_episode)
  in_order = [triggers.FiniteCheck(checkpoints), watchdog]
  if train_writer:
    in_order += [
        triggers.ScalarSummaries(train_writer, every(cadence.summary_interval),
                                 watchdog, reward_map),
        triggers.ImageSummaries(
            train_writer, every(cadence.image_summary_interval, at_end=False,
                                at_first=True),
            action_set, task.bgr, reward_map)]
  bar = progress.ProgressBar(num_episodes, initial=start_episode,
                             stream=stream)
  in_order += [
      validating,
      triggers.ProgressReport(bar, validating, validator.metric_name),
      checkpoints,
      triggers.EpisodeHooks(episode_hooks, network, inference_steps, started),
      triggers.FlushSummaries(writers.values())]
  histograms = triggers.HistogramSummaries(
      train_writer, every(cadence.summary_interval), agent.writes_summaries)
  return in_order, histograms, validating


def _known_names(values):
  """The values that are registered names (not paths, not `'default'`)."""
  names = []
  for value in values:
    if value is None or not isinstance(value, str):
      continue
    if value in known_files.REGISTRY and not os.path.exists(value):
      names.append(value)
  return names


def _require_known_files(data_values, initialising):
  """Resolves every known file the run needs, reporting all missing at once.

  Args:
    data_values: the data settings (folders, lists; paths or names).
    initialising: whether the network will be initialised from its
      configured files (a new run); files that `initialise_network.missing_ok`
      may do without are not required.

  Returns:
    `{name: path}` of what was resolved, so that the data is not resolved
    (and, from the cache, hashed) a second time.
  """
  names = _known_names(data_values)
  if initialising:
    names += _known_names(initialise.required_files())
  return {name: str(path)
          for name, path in known_files.require(names).items()} if names else {}


def _data_path(value, resolved):
  """A data folder or list setting: a path, a known name, or `'default'`.

  Args:
    value: the setting.
    resolved: `{name: path}` of the names already resolved.
  """
  if value is None or os.fspath(value) == datasets.DEFAULT_SOURCE:
    return value
  if isinstance(value, str) and value in resolved:
    return resolved[value]
  return str(known_files.resolve_path_or_name(value))


def resolve_auto_precision(stream=None) -> Optional[str]:
  """`mixed_precision='auto'`: bfloat16 where it is native, else float32.

  Prints the choice and its reason on `stream`.
  """
  native = hardware.native_bfloat16()
  where = (f'a GPU ({", ".join(str(g["name"]) for g in hardware.gpus())})'
           if native == 'gpu' else f'this CPU ({hardware.cpu_model()})')
  if native:
    print(f'mixed precision: mixed_bfloat16 (bfloat16 is native on {where})',
          file=stream)
    return 'mixed_bfloat16'
  print(f'mixed precision: float32 (bfloat16 is not native on {where})',
        file=stream)
  return None


def make_strategy(name: str, timeout_seconds: Optional[float] = None,
                  virtual_cpu_devices: Optional[int] = None):
  """The `tf.distribute` strategy called `name` (see `train`)."""
  if name not in STRATEGIES:
    raise ValueError(f'unknown strategy {name!r}; use one of {STRATEGIES}')
  if virtual_cpu_devices:
    cpus = tf.config.list_physical_devices('CPU')
    try:
      tf.config.set_logical_device_configuration(
          cpus[0], [tf.config.LogicalDeviceConfiguration()] *
          int(virtual_cpu_devices))
    except RuntimeError as error:
      raise ValueError('virtual_cpu_devices must be set before TensorFlow '
                       f'starts ({cli.first_line(error)})') from None
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    gpus = tf.config.list_logical_devices('GPU')
    devices = [d.name for d in gpus] or [
        d.name for d in tf.config.list_logical_devices('CPU')]
    return tf.distribute.MirroredStrategy(devices)
  if 'TF_CONFIG' not in os.environ:
    raise ValueError("strategy 'multi_worker' needs the TF_CONFIG "
                     'environment variable (see the README)')
  options = tf.distribute.experimental.CommunicationOptions(
      timeout_seconds=timeout_seconds)
  return tf.distribute.MultiWorkerMirroredStrategy(
      communication_options=options)


def _is_chief(strategy) -> bool:
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not resolver.task_type:
    return True
  return (resolver.task_type == 'chief' or
          (resolver.task_type == 'worker' and resolver.task_id == 0 and
           'chief' not in resolver.cluster_spec().as_dict()))


def _estimated_kept_bytes(batch, crop_size, filters, window):
  return batch * crop_size * crop_size * filters * 4 * (
      _KEPT_MAPS_PER_STEP * window)


def _device_memory_bytes():
  gpus = tf.config.list_physical_devices('GPU')
  if gpus:
    details = tf.config.experimental.get_device_details(gpus[0])
    if details.get('memory_limit'):
      return int(details['memory_limit'])
    return 16 << 30
  return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')


def choose_record_gradients(update_recompute, batch, crop_size, filters,
                            window):
  """Whether the update reuses the rollout's forward pass.

  Args:
    update_recompute: True (always recompute, least memory), False (always
      reuse, fastest) or `'auto'` (reuse when the kept activations are
      estimated to fit in half of the device's memory).
    batch: images per replica.
    crop_size: crop side.
    filters: network channels.
    window: steps per update.
  """
  if update_recompute == 'auto':
    kept = _estimated_kept_bytes(batch, crop_size, filters, window)
    return kept <= _device_memory_bytes() // 2
  if update_recompute not in (True, False):
    raise ValueError("update_recompute must be True, False or 'auto', got "
                     f'{update_recompute!r}')
  return not update_recompute

"""Training of PixelRL agents: wiring, schedule, validation, checkpoints.

Shapes: `B` global batch, `T` steps, `H, W` height and width, `C` channels,
`A` actions.

`train` builds the task's environment (`PixelTFEnvironment`, in-graph), the
network, the agent (`PixelA2CAgent`, gin-configurable) and an
`EpisodeLearner`, under a `tf.distribute` strategy, and runs episodes: each
takes a batch of crops from the episode source, corrupts it in-graph with a
stateless seed of `(seed, episode)`, rolls out the collect policy and calls
`agent.train` every update window (see `drivers.learner`). The learning rate
follows the reference's poly schedule, set on the optimizer before every
episode. Everything random is a function of the run's seed and the episode
counter, and the crop stream is positioned by the counter, so a run that is
stopped and started again continues exactly where it was.

Layout of `root_dir` (see `model_io`): `model.json` (the architecture,
written once the data and initial weights have been read), `run.json` (the
settings a resume must not change), `train/ckpt-N.*` (network, reward map,
optimizer, episode counter, restoration step count), `best/ckpt-N.*` and
`best.json` (the checkpoint with the best validation metric),
`operative_config-<episode>.gin` (the gin configuration of every start),
TensorBoard event files under `train/` and `eval/`.
"""

import contextlib
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from typing import Callable, Dict, Optional, Sequence

import gin
import numpy as np
import tensorflow as tf

from pixelrl_tf import cli
from pixelrl_tf import hardware
from pixelrl_tf import metrics
from pixelrl_tf.agents import pixel_a2c_agent
from pixelrl_tf.data import datasets
from pixelrl_tf.data import known_files
from pixelrl_tf.drivers import learner as learner_lib
from pixelrl_tf.environments import tf_pixel_env
from pixelrl_tf.io import files
from pixelrl_tf.jobs import eval_lib
from pixelrl_tf.jobs import model_io
from pixelrl_tf.jobs import progress
from pixelrl_tf.serving import restoration_module
from pixelrl_tf.tasks import episode_sources
from pixelrl_tf.tasks import tasks as tasks_lib
from pixelrl_tf.visualization import summaries

EVAL_DIR = 'eval'
BEST_DIR = 'best'
BEST_FILE = 'best.json'
RUN_SETTINGS_FILE = 'run.json'
OPERATIVE_CONFIG_PATTERN = 'operative_config-{episode}.gin'
# A later start at the same episode with another configuration (k = 2, 3...).
OPERATIVE_CONFIG_AGAIN_PATTERN = 'operative_config-{episode}-{k}.gin'

STRATEGIES = ('default', 'mirrored', 'multi_worker')
MIXED_PRECISION_POLICIES = (None, 'mixed_bfloat16', 'mixed_float16', 'auto')

# Settings of a run that a resume may not change silently (`run.json`):
# everything that changes the training trajectory or the validation split.
# Settings a resume may change freely change neither, or only the order of
# float32 sums: strategy, update_recompute, jit_compile,
# PixelA2CAgent.max_update_batch, the logging, checkpoint and validation
# intervals (docs/design.md, "What a resume may change").
GUARDED_SETTINGS = ('task', 'data_source', 'list_file', 'seed', 'batch_size',
                    'crop_size', 'num_episodes', 'learning_rate',
                    'learning_rate_power', 'adam_epsilon', 'agent',
                    'mixed_precision', 'validation_source',
                    'validation_fraction', 'max_validation_images',
                    'choose_inference_steps')
# Agent hyper-parameters that change the result of an update (the others,
# e.g. `max_update_batch`, change only how it is computed).
GUARDED_AGENT_HYPERPARAMETERS = ('gamma', 'entropy_coef', 'value_loss_coef',
                                 'reward_map_policy_gradient', 'reward_scale',
                                 'gradient_clip_norm',
                                 'all_actions_policy_gradient',
                                 'imitation_coef', 'imitation_temperature',
                                 'imitation_updates')

# Activation maps of `F` channels kept per image pixel and step when the
# update reuses the rollout's forward pass (measured, see
# docs/benchmarks.md); the 'auto' recompute choice compares the estimate with
# half the memory of the device.
_KEPT_MAPS_PER_STEP = 40


class TrainingError(Exception):
  """A run cannot go on; the message is one line for the user."""


def _save_checkpoint(manager, episode):
  try:
    return manager.save(checkpoint_number=episode)
  except (tf.errors.OpError, OSError) as error:
    # The writer's `ckpt-N_temp` folder of the failed save (a full disk
    # needs every byte back).
    files.remove_stale_temporaries(manager.directory)
    reason = (model_io.op_error_text(error)
              if isinstance(error, tf.errors.OpError) else
              cli.first_line(error))
    raise TrainingError(
        f'could not write a checkpoint at episode {episode} in '
        f'{manager.directory} ({reason}); earlier checkpoints are intact '
        '(free space or fix the folder, then rerun the same command to '
        'resume)') from error


@gin.configurable(module='pixelrl_tf.jobs')
def initialise_network(network, init_checkpoint=None, init_caffemodel=None,
                       init_npz=None, init_npz_layers=None,
                       missing_ok=False):
  """Initialises a new network before training (not used when resuming).

  The files are paths or names of `data.known_files` (e.g.
  `'ircnn_denoise_15_gray'`, `'salt_pepper_init'`, `'color_init'`), which
  resolve to a local data root (`PIXELRL_DATA_ROOT`), the cache or a
  download.

  Args:
    network: the `FcnActorCritic`.
    init_checkpoint: a run directory or checkpoint prefix whose network
      weights are loaded (stepwise training: an RMC model starts from a GRU
      run; its reward map, optimizer and counters are not taken).
    init_caffemodel: IRCNN `.caffemodel` for trunk and branches (the
      paper's initialisation; GRU and policy head keep their own).
    init_npz: a released Chainer `.npz` to start from.
    init_npz_layers: the layers taken from `init_npz` (None: all).
    missing_ok: when the file cannot be had (absent, offline), start from
      random weights and say so, instead of failing. Only the quick configs
      choose this.

  Returns:
    A one-line description of what was loaded, or None.

  Raises:
    known_files.KnownFileError, FileNotFoundError: the file cannot be had
      (one line naming it and how to get it), without `missing_ok`.
  """
  # pylint: disable=g-import-not-at-top
  if init_checkpoint:
    _, prefix = model_io.resolve_checkpoint(init_checkpoint)
    model_io.restore_checkpoint(tf.train.Checkpoint(network=network), prefix,
                                'the network of this run')
    model_io.check_finite_variables(prefix, [network])
    return f'network initialised from {prefix}'
  source = init_caffemodel or init_npz
  if not source:
    return None
  try:
    path = str(known_files.resolve_path_or_name(source))
  except (known_files.KnownFileError, FileNotFoundError) as error:
    if not missing_ok:
      raise
    return (f'note: {cli.first_line(error)}; starting from random weights '
            '(initialise_network.missing_ok)')
  if init_caffemodel:
    from pixelrl_tf.weights import caffemodel
    caffemodel.load_ircnn_into_network(path, network)
    return f'trunk and branches initialised from {source} ({path})'
  from pixelrl_tf.weights import chainer_npz
  chainer_npz.load_into_network(path, network, layers=init_npz_layers)
  return f'network initialised from {source} ({path})'


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
    bindings = gin.get_bindings('pixelrl_tf.jobs.initialise_network')
    if not bindings.get('missing_ok', False):
      names += _known_names([bindings.get('init_caffemodel'),
                             bindings.get('init_npz')])
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


def _task_settings(task):
  values = dataclasses.asdict(task)
  if not isinstance(values['action_set'], str):
    values['action_set'] = list(values['action_set'])
  return values


def _setting_differences(key, stored, current):
  """`(name, stored, current)` for each difference; a task field by field.

  A field the stored settings do not hold (a run recorded before the field
  existed) is not compared.
  """
  if isinstance(stored, dict) and isinstance(current, dict):
    return [(f'{key}.{field}', stored.get(field), current.get(field))
            for field in sorted(stored)
            if stored.get(field) != current.get(field)]
  return [(key, stored, current)] if stored != current else []


def _check_resume(root_dir, settings, allow_changes, model, stored_model):
  """Refuses a resume whose model or settings differ from the run's.

  Args:
    root_dir: the run directory.
    settings: this start's guarded settings (`GUARDED_SETTINGS`).
    allow_changes: the guarded settings this start may change.
    model: this start's `ModelConfig`.
    stored_model: the run's (`model.json`), or None for a new run.

  Returns:
    The stored settings (`run.json`), or None for a new run.

  Raises:
    TrainingError: one line naming every difference (a task's or a
      model's fields one by one, e.g. `task.noise`, `model.filters`) and
      how to proceed.
  """
  details = []
  if stored_model is not None and stored_model != model:
    details.extend(
        f'model.{name} {old!r} -> {new!r}' for name, old, new in
        _setting_differences('model', dataclasses.asdict(stored_model),
                             dataclasses.asdict(model)))
  model_changed = bool(details)
  stored, refused = None, []
  path = os.path.join(root_dir, RUN_SETTINGS_FILE)
  if tf.io.gfile.exists(path):
    try:
      with tf.io.gfile.GFile(path) as f:
        stored = json.load(f)
      if not isinstance(stored, dict):
        raise ValueError('not a JSON object')
    except (ValueError, tf.errors.OpError) as error:
      raise TrainingError(f'cannot read {path} ({cli.first_line(error)}); '
                          'use a new --root_dir') from None
    for key in GUARDED_SETTINGS:
      if key not in stored or key in allow_changes:
        continue
      differences = _setting_differences(key, stored[key], settings.get(key))
      if differences:
        refused.append(key)
        details.extend(f'{name} {old!r} -> {new!r}'
                       for name, old, new in differences)
  if model_changed:
    raise TrainingError(
        f'{root_dir} holds a different model, trained with other settings '
        f'({"; ".join(details)}); use a new --root_dir, or the same '
        'configuration to resume')
  if refused:
    raise TrainingError(
        f'{root_dir} was trained with other settings ({"; ".join(details)}); '
        'use a new --root_dir, or allow the change with train.allow_changes '
        f'= {refused!r}')
  return stored


def _write_operative_config(root_dir, episode, text):
  """Keeps the configuration of this start beside those of earlier starts.

  A start at an episode where another start began writes
  `operative_config-<episode>-<k>.gin`, unless one of those files already
  holds the same text (a rerun after a kill).
  """
  k = 1
  while True:
    name = (OPERATIVE_CONFIG_PATTERN.format(episode=episode) if k == 1 else
            OPERATIVE_CONFIG_AGAIN_PATTERN.format(episode=episode, k=k))
    path = os.path.join(root_dir, name)
    if not tf.io.gfile.exists(path):
      files.write_text_atomically(path, text)
      return path
    with tf.io.gfile.GFile(path) as f:
      if f.read() == text:
        return path
    k += 1


def _run_checkpoints(train_dir):
  """The checkpoints the `checkpoint` file of `train_dir` names, oldest first."""
  state = tf.train.get_checkpoint_state(train_dir)
  if state is None:
    return []
  paths = list(state.all_model_checkpoint_paths) or [
      state.model_checkpoint_path]
  return [path if os.path.isabs(path) else os.path.join(train_dir, path)
          for path in paths if path]


def _latest_checkpoint(train_dir):
  """`(newest checkpoint whose files exist or None, the ones before it)`.

  The `checkpoint` file decides which checkpoints belong to the run; one
  whose files were removed (e.g. moved aside because they were damaged) is
  passed over for the one before it; a run whose named checkpoints are all
  gone is refused rather than trained over from scratch. (Checkpoint files
  that no `checkpoint` file names are what a first save killed before it
  was recorded left: the run starts again and overwrites them.)
  """
  named = _run_checkpoints(train_dir)
  present = [p for p in named if tf.io.gfile.exists(p + '.index')]
  if present:
    return present[-1], present[:-1]
  if named:
    raise TrainingError(
        f'{train_dir} has no checkpoint that can be resumed from (its '
        f'`checkpoint` file names {", ".join(named)}, and their files are '
        'gone); restore them or use a new --root_dir')
  return None, []


class Validator:
  """Greedy restoration of fixed, seeded validation images."""

  def __init__(self, network, action_set, pairs, task):
    """Creates the validator.

    Args:
      network: the network being trained.
      action_set: its `ActionSet`.
      pairs: `(name, corrupted [H,W,C], target [H,W,C])` triples.
      task: the `Task` (its `t_max` and validation metric).
    """
    module = restoration_module.RestorationModule(network, action_set,
                                                  task.t_max)
    self._restorer = restoration_module.restorer_from_module(module)
    self._action_set = action_set
    self._pairs = list(pairs)
    self._task = task
    self._lab = task.validation_metric == tasks_lib.LAB_DISTANCE

  def __len__(self):
    return len(self._pairs)

  @property
  def metric_name(self):
    return 'lab_distance' if self._lab else 'psnr'

  @property
  def higher_is_better(self):
    return not self._lab

  def score(self, clean, image):
    if self._lab:
      return metrics.mean_lab_distance(clean, image)
    return metrics.psnr(clean, image)

  def input_score(self):
    return float(np.mean([self.score(clean, noisy)
                          for _, noisy, clean in self._pairs]))

  def evaluate(self, every_step=False):
    """Returns `(metric [T] or [1], (images [T+1,1,H,W,C], actions [T,1,H,W]))`.

    Args:
      every_step: the mean metric after each of the `T` steps (else only
        after the last one).

    The images and actions are those of the first validation image, laid
    out for `summaries.write_episode_images`.
    """
    values, example = [], None
    for _, noisy, clean in self._pairs:
      outputs, actions = eval_lib.greedy(self._restorer, noisy)
      values.append([self.score(clean, image)
                     for image in (outputs if every_step else outputs[-1:])])
      if example is None:
        example = (np.concatenate([noisy[None], outputs])[:, None],
                   actions[:, None])
    return [float(v) for v in np.mean(values, axis=0)], example

  def best_step(self, per_step):
    """The step count (1..T) with the best of the `[T]` metrics."""
    values = np.asarray(per_step)
    return int(np.argmax(values) if self.higher_is_better
               else np.argmin(values)) + 1

  def final_report(self, inference_steps=None):
    """Input, best fixed action schedule and model on the validation set.

    Args:
      inference_steps: the model's restoration step count when it was chosen
        on validation (its `model` entry is then the metric after that many
        steps); None: `t_max`.
    """
    schedules = eval_lib.FixedSchedules(
        self._action_set, self._task.t_max, self._pairs[0][1].shape[-1])
    report = eval_lib.evaluate_images(
        self._restorer, self._pairs, include_random=False,
        lab_metric=self._lab, fixed_schedules=schedules)
    key = eval_lib.LAB if self._lab else 'psnr'
    rows = report['rows']
    per_step = [s[key] for s in rows[eval_lib.MODEL]['per_step']]
    steps = inference_steps or self._task.t_max
    return {'metric': self.metric_name,
            'input': rows[eval_lib.ORIGINAL][key],
            'best_fixed_schedule': rows[eval_lib.BEST_FIXED][key],
            'best_fixed_schedule_label': report[eval_lib.BEST_FIXED],
            'model': per_step[steps - 1],
            'inference_steps': steps,
            't_max': self._task.t_max,
            'model_per_step': per_step}


def final_report_line(report):
  """One line comparing the model with the input and the best schedule."""
  better = eval_lib.learned_gain(report['model'],
                                 report['best_fixed_schedule'],
                                 report['metric'] == 'psnr')
  if report['metric'] == 'psnr':
    unit = ' dB'
    text = (f'final validation PSNR {report["model"]:.2f} dB (input '
            f'{report["input"]:.2f} dB, best fixed schedule '
            f'{report["best_fixed_schedule_label"]} '
            f'{report["best_fixed_schedule"]:.2f} dB): ')
  else:
    unit = ''
    text = (f'final validation mean Lab distance {report["model"]:.2f} '
            f'(input {report["input"]:.2f}, best fixed schedule '
            f'{report["best_fixed_schedule_label"]} '
            f'{report["best_fixed_schedule"]:.2f}): ')
  verdict = 'better' if better > 0 else 'WORSE'
  text += f'{abs(better):.2f}{unit} {verdict} than the best fixed schedule'
  steps, t_max = report.get('inference_steps'), report.get('t_max')
  if steps is not None and steps != t_max:
    text += (f', after {steps} of {t_max} steps (the count chosen on '
             'validation)')
  return text


class _Watchdog:
  """Warns when validation is worse than the input or the loss explodes."""

  def __init__(self, stream, loss_growth_factor, baseline_episodes=10):
    self._stream = stream
    self._factor = loss_growth_factor
    self._baseline_episodes = baseline_episodes
    self._losses = []
    self._recent = None
    self.loss_growth = 1.0
    self._warned_loss = False

  def loss(self, value):
    magnitude = abs(value)
    if len(self._losses) < self._baseline_episodes:
      self._losses.append(magnitude)
      return
    self._recent = (magnitude if self._recent is None
                    else 0.9 * self._recent + 0.1 * magnitude)
    baseline = max(float(np.mean(self._losses)), 1e-8)
    self.loss_growth = self._recent / baseline
    if (self._factor and self.loss_growth > self._factor and
        not self._warned_loss):
      self._warned_loss = True
      print(f'warning: the loss has grown {self.loss_growth:.1f}x over its '
            f'first {self._baseline_episodes} episodes (threshold '
            f'{self._factor}x); training may be diverging (see '
            'Metrics/loss_growth; lower the learning rate or use the '
            'stabilisers of docs/design.md)', file=self._stream)

  def validation(self, episode, value, input_value, higher_is_better, name):
    worse = value < input_value if higher_is_better else value > input_value
    if worse:
      print(f'warning: at episode {episode} validation {name} {value:.4g} is '
            f'worse than the untouched input ({input_value:.4g})',
            file=self._stream)
    return worse


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


@gin.configurable(module='pixelrl_tf.jobs',
                  denylist=['root_dir', 'episode_hooks'])
def train(root_dir,
          # Task and data.
          task=None,
          data_source=datasets.DEFAULT_SOURCE,
          list_file=None,
          validation_source=None,
          validation_fraction=None,
          max_validation_images=None,
          batch_size=64,
          crop_size=70,
          # Model.
          filters=64,
          use_conv_gru=True,
          use_reward_map_conv=False,
          reward_map_size=33,
          # Optimizer and schedule.
          learning_rate=1e-3,
          learning_rate_power=0.9,
          adam_epsilon=1e-8,
          num_episodes=30000,
          # Scale.
          strategy='default',
          update_recompute='auto',
          jit_compile=False,
          mixed_precision=None,
          worker_timeout_seconds=300.0,
          virtual_cpu_devices=None,
          # Logging and checkpoints.
          checkpoint_interval=500,
          summary_interval=50,
          image_summary_interval=500,
          eval_interval=500,
          choose_inference_steps=False,
          keep_checkpoints=3,
          loss_growth_warning_factor=10.0,
          final_report=True,
          # Run control.
          seed=0,
          allow_changes=(),
          stop_after_episodes=None,
          progress_stream=None,
          episode_hooks: Sequence[EpisodeHook] = ()):
  """Trains (or resumes training) a PixelRL agent in `root_dir`.

  Agent hyper-parameters (discount, entropy and value weights, RMC policy
  gradient, stabilisers) are bindings of `PixelA2CAgent` (e.g.
  `PixelA2CAgent.gamma = 0.95`); the task's fields are bindings of
  `make_task`.

  Args:
    root_dir: run directory; an existing run is resumed from its latest
      checkpoint.
    task: None (the task `make_task` builds from its gin bindings:
      `make_task.name = 'denoise'`, ...), a registered task name (also
      through `make_task`, so its field bindings apply) or a `Task`.
    data_source: `'default'` (scikit-image's photographs), a folder, or a
      known data set (`'bsd432'`, see `data.known_files`).
    list_file: optional list of training files in `data_source` (all of
      them train), a path or a known name (`'bsd432_list'`).
    validation_source: `'default'` (the default photographs' held-out
      split) or a folder of validation images.
    validation_fraction: share of the source held out for validation
      instead (the colour configs).
    max_validation_images: cap on validation images (None: all).
    batch_size: crops per episode over all replicas (64 in the paper).
    crop_size: crop side (70 in the paper).
    filters: network channels (64).
    use_conv_gru: the "+convGRU" variant.
    use_reward_map_conv: the "+RMC" variant.
    reward_map_size: RMC kernel size (33).
    learning_rate: initial Adam learning rate (1e-3).
    learning_rate_power: poly decay power over `num_episodes` (0.9).
    adam_epsilon: Adam epsilon (Chainer's default 1e-8).
    num_episodes: episode budget (30000 in the paper).
    strategy: `'default'` (one device), `'mirrored'` (every local GPU, or
      every logical CPU device without GPUs) or `'multi_worker'` (every
      worker of the `TF_CONFIG` cluster).
    update_recompute: True recomputes every forward pass in the update
      (least memory), False keeps the rollout's activations (fastest),
      `'auto'` keeps them when they are estimated to fit.
    jit_compile: compile the training episode with XLA.
    mixed_precision: None (float32), `'mixed_bfloat16'` or
      `'mixed_float16'`: the network's arithmetic (filters, rewards, returns
      and the loss stay float32); `'auto'`: `'mixed_bfloat16'` where
      bfloat16 is native (a CPU with AMX or AVX512_BF16, or a GPU of compute
      capability 8.0 or later; `hardware.native_bfloat16`), else float32.
      The choice is printed and recorded in `run.json`.
    worker_timeout_seconds: a multi-worker run stops with an error when a
      peer has not answered for this long.
    virtual_cpu_devices: split the CPU into this many logical devices (for
      trying `'mirrored'` without GPUs; must be set before TensorFlow
      starts, i.e. from the command line).
    checkpoint_interval: episodes between checkpoints.
    summary_interval: episodes between scalar summaries.
    image_summary_interval: episodes between image summaries.
    eval_interval: episodes between validations (and best checkpoints).
    choose_inference_steps: each validation also picks the restoration step
      count (1..t_max) with the best metric; the checkpoints store it and
      `eval`, `restore` and `export` restore for that many steps (the
      paper's configs leave this off and always run `t_max` steps). The
      validation metric, the best checkpoint and the final report are then
      those of the chosen count.
    keep_checkpoints: checkpoints kept.
    loss_growth_warning_factor: warn when the loss grows past this factor
      of its first episodes (None: never).
    final_report: at the end of the budget, compare the model with the
      input and the best fixed action schedule on the validation images.
    seed: seed of everything random in the run.
    allow_changes: settings of `GUARDED_SETTINGS` a resume may change
      (e.g. `['num_episodes']` to extend the budget).
    stop_after_episodes: stop (with a checkpoint) after this many episodes
      of this invocation, for tests and time-boxed runs.
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
    `agent_hyperparameters` and `record_gradients`.

  Raises:
    TrainingError: a one-line reason the run cannot go on.
  """
  train_started = time.monotonic()
  progress_stream = progress_stream or sys.stderr
  task = _resolve_task(task)
  if mixed_precision not in MIXED_PRECISION_POLICIES:
    raise ValueError(f'unknown mixed_precision {mixed_precision!r}; use one '
                     f'of {MIXED_PRECISION_POLICIES}')
  if mixed_precision == 'auto':
    mixed_precision = resolve_auto_precision(progress_stream)
  strategy = make_strategy(strategy, worker_timeout_seconds,
                           virtual_cpu_devices)
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise ValueError(f'batch_size ({batch_size}) must be a multiple of the '
                     f'{replicas} replicas')
  local_batch = batch_size // replicas
  chief = _is_chief(strategy)
  # Seeds the initial weights too, so a seed names one whole run.
  tf.keras.utils.set_random_seed(seed)
  action_set = task.get_action_set()
  config = model_io.ModelConfig(
      channels=task.channels, action_set=task.action_set, filters=filters,
      use_conv_gru=use_conv_gru, use_reward_map_conv=use_reward_map_conv,
      reward_map_size=reward_map_size, t_max=task.t_max,
      input_transform=task.input_transform, task=task.name,
      imports=_imports_of(task), extra_channels=task.extra_channels)
  optional_path = lambda p: None if p is None else os.fspath(p)
  settings = dict(task=_task_settings(task),
                  data_source=os.fspath(data_source),
                  list_file=optional_path(list_file),
                  seed=seed, batch_size=batch_size, crop_size=crop_size,
                  num_episodes=num_episodes, learning_rate=learning_rate,
                  learning_rate_power=learning_rate_power,
                  adam_epsilon=adam_epsilon, mixed_precision=mixed_precision,
                  validation_source=optional_path(validation_source),
                  validation_fraction=validation_fraction,
                  max_validation_images=max_validation_images,
                  choose_inference_steps=bool(choose_inference_steps))
  try:
    tf.io.gfile.makedirs(root_dir)
  except (tf.errors.OpError, OSError) as error:
    raise TrainingError(f'cannot create the run directory {root_dir} '
                        f'({cli.first_line(error)})') from None
  config_path = os.path.join(root_dir, model_io.MODEL_CONFIG_FILE)
  new_run = not tf.io.gfile.exists(config_path)

  record_gradients = choose_record_gradients(
      update_recompute, local_batch, crop_size, filters, task.window)
  dtype_policy = (tf.keras.mixed_precision.Policy(mixed_precision)
                  if mixed_precision else None)

  # Model, agent and checkpoint. The episode counter is host bookkeeping, so
  # it lives outside the strategy (a mirrored variable has no int()).
  episode = tf.Variable(0, dtype=tf.int64, name='episode')
  inference_steps = tf.Variable(task.t_max, dtype=tf.int64,
                                name=model_io.INFERENCE_STEPS)
  with strategy.scope():
    network = model_io.build_network(config, dtype_policy=dtype_policy)
    optimizer = tf.keras.optimizers.Adam(learning_rate, epsilon=adam_epsilon)
    if mixed_precision == 'mixed_float16':
      optimizer = tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
    environment = tf_pixel_env.PixelTFEnvironment(
        action_set, task.get_reward_fn(), channels=task.channels,
        extra_channels=task.extra_channels,
        image_size=(crop_size, crop_size), batch_size=local_batch,
        t_max=task.t_max)
    agent = pixel_a2c_agent.PixelA2CAgent(
        environment.time_step_spec(), environment.action_spec(), network,
        optimizer, use_reward_map_conv=use_reward_map_conv,
        reward_map_size=reward_map_size,
        train_step_counter=tf.Variable(0, dtype=tf.int64, name='train_step'))
    # Slots exist before a restore, so every one of them is restored now
    # rather than through deferred restoration.
    optimizer.build(agent.trainable_variables_for_update())
  if agent.writes_summaries and replicas > 1:
    raise ValueError(
        'PixelA2CAgent.summarize_grads_and_vars and debug_summaries write '
        f'from one replica only; this run has {replicas} (use the default '
        'strategy to record them)')
  settings['agent'] = {key: agent.hyperparameters[key]
                       for key in GUARDED_AGENT_HYPERPARAMETERS}
  stored_settings = _check_resume(
      root_dir, settings, set(allow_changes), config,
      None if new_run else model_io.read_model_config(root_dir))
  checkpoint = model_io.model_checkpoint(
      network, agent.reward_map, optimizer=optimizer, episode=episode,
      train_step=agent.train_step_counter,
      **{model_io.INFERENCE_STEPS: inference_steps})
  train_dir = os.path.join(root_dir, model_io.TRAIN_DIR)
  # Only the chief's checkpoints count; the other workers write theirs (the
  # collective writes need every worker) into a temporary folder.
  checkpoint_dir = train_dir if chief else tempfile.mkdtemp(
      prefix='pixelrl_worker_checkpoint_')
  manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir,
                                       max_to_keep=keep_checkpoints)
  latest, older = _latest_checkpoint(train_dir)
  if latest:
    try:
      model_io.restore_checkpoint(checkpoint, latest, f'the run in {root_dir}',
                                  partial=False)
    except model_io.CheckpointError as error:
      how = (f'move {latest}.* out of {train_dir} to resume from {older[-1]}'
             if older else 'use a new --root_dir')
      raise TrainingError(f'{error}; {how}') from None
    print(f'resuming from {latest} at episode {int(episode)}',
          file=progress_stream)
  start_episode = int(episode)

  resolved = _require_known_files(
      [data_source, list_file, validation_source], initialising=not latest)
  source = episode_sources.make_episode_source(
      task, _data_path(data_source, resolved), batch_size, crop_size, seed,
      start_batch=start_episode, list_file=_data_path(list_file, resolved),
      validation_source=_data_path(validation_source, resolved),
      validation_fraction=validation_fraction,
      max_validation_images=max_validation_images)
  if not latest:
    note = initialise_network(network)
    if note:
      print(note, file=progress_stream)
  if chief:
    # What a killed start was writing (never read: the files it was about to
    # replace and the checkpoints it had finished are kept).
    for directory in (root_dir, train_dir, os.path.join(root_dir, BEST_DIR)):
      files.remove_stale_temporaries(directory)
    if new_run:
      model_io.write_model_config(root_dir, config)
    if stored_settings is None or stored_settings != settings:
      files.write_text_atomically(
          os.path.join(root_dir, RUN_SETTINGS_FILE),
          json.dumps(settings, indent=2, sort_keys=True))
    _write_operative_config(root_dir, start_episode,
                            gin.operative_config_str())

  learner = learner_lib.EpisodeLearner(
      agent, environment, task.t_max, task.window, seed,
      noise_model=source.noise_model, record_gradients=record_gradients,
      reward_log_scale=task.reward_log_scale)
  run_episode = _distributed_episode_fn(
      strategy, learner, [batch_size, crop_size, crop_size, task.channels],
      jit_compile)
  validator = Validator(network, action_set, source.validation, task)
  best_manager = tf.train.CheckpointManager(
      model_io.model_checkpoint(
          network, agent.reward_map,
          **{model_io.INFERENCE_STEPS: inference_steps}),
      os.path.join(root_dir, BEST_DIR) if chief else checkpoint_dir + '_best',
      max_to_keep=1)
  best = _read_best(root_dir)

  writers = _summary_writers(root_dir, chief)
  histograms = _HistogramSummaries(writers, agent)
  bar = progress.ProgressBar(num_episodes, initial=start_episode,
                             stream=progress_stream)
  watchdog = _Watchdog(progress_stream, loss_growth_warning_factor)
  val_metric = None
  input_metric = validator.input_score() if len(validator) else None
  if input_metric is not None and start_episode == 0 and writers:
    with writers[EVAL_DIR].as_default(step=0):
      tf.summary.scalar(f'Metrics/val_{validator.metric_name}_input',
                        input_metric)
  last_saved = start_episode
  episodes_this_run = 0
  batches = iter(source.dataset)
  report = None
  try:
    with progress.StopRequest() as stop:
      while int(episode) < num_episodes:
        current = int(episode)
        rate = pixel_a2c_agent.poly_learning_rate(
            learning_rate, current, num_episodes, learning_rate_power)
        optimizer.learning_rate.assign(rate)
        start, target = next(batches)
        started = time.monotonic()
        try:
          with histograms.during(current + 1, (current + 1) % summary_interval
                                 == 0 or current + 1 == num_episodes):
            result = run_episode(start, target,
                                 tf.constant(current, tf.int64))
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                tf.errors.CancelledError) as error:
          raise TrainingError(
              f'a worker stopped answering at episode {current} '
              f'({cli.first_line(error)}); rerun the same commands on every '
              'worker to resume from the last checkpoint') from error
        scalars = {k: float(result[k]) for k in learner_lib.SCALARS + (
            learner_lib.GRADIENT_NORM, learner_lib.APPLIED)}
        _check_finite(scalars, current, last_saved)
        episode.assign_add(1)
        done = current + 1
        episodes_this_run += 1
        watchdog.loss(scalars['loss'])
        if writers and (done % summary_interval == 0 or done == num_episodes):
          _write_scalars(writers['train'], done, scalars,
                         float(optimizer.learning_rate.numpy()),
                         time.monotonic() - started, watchdog.loss_growth,
                         agent.reward_map)
        if writers and (done % image_summary_interval == 0 or done == 1):
          with writers['train'].as_default(step=done):
            images = np.concatenate([result['start'].numpy()[None],
                                     np.swapaxes(result['outputs'].numpy(),
                                                 0, 1)])
            summaries.write_episode_images(
                'train', images, np.swapaxes(result['actions'].numpy(), 0, 1),
                action_set, done, bgr=task.bgr)
            if agent.reward_map is not None:
              summaries.write_reward_map_kernel(
                  agent.reward_map.kernel.numpy(), done)
        if len(validator) and (done % eval_interval == 0 or
                               done == num_episodes):
          per_step, (images, action_maps) = validator.evaluate(
              every_step=choose_inference_steps)
          if choose_inference_steps:
            inference_steps.assign(validator.best_step(per_step))
          val_metric = per_step[int(inference_steps) - 1 if
                                choose_inference_steps else -1]
          worse = watchdog.validation(done, val_metric, input_metric,
                                      validator.higher_is_better,
                                      validator.metric_name)
          if writers:
            with writers[EVAL_DIR].as_default(step=done):
              tf.summary.scalar(f'Metrics/val_{validator.metric_name}',
                                val_metric)
              tf.summary.scalar('Metrics/val_worse_than_input', float(worse))
              if choose_inference_steps:
                tf.summary.scalar('Metrics/val_inference_steps',
                                  int(inference_steps))
                tf.summary.scalar(
                    f'Metrics/val_{validator.metric_name}_at_t_max',
                    per_step[-1])
              summaries.write_episode_images(
                  'validation', images, action_maps, action_set, done,
                  max_outputs=1, bgr=task.bgr)
          if _improves(best, val_metric, validator.higher_is_better):
            best = _save_best(best_manager, root_dir, done,
                              validator.metric_name, val_metric, chief,
                              int(inference_steps))
        bar_metrics = {'reward': scalars['episode_reward'],
                       'loss': scalars['loss']}
        if val_metric is not None:
          bar_metrics[f'val_{validator.metric_name}'] = val_metric
        bar.update(done, bar_metrics)
        if done % checkpoint_interval == 0 or done == num_episodes:
          _save_checkpoint(manager, done)
          last_saved = done
        end = EpisodeEnd(done, num_episodes, time.monotonic() - train_started,
                         network, int(inference_steps), scalars)
        hooks_stop = [bool(hook(end)) for hook in episode_hooks]
        if stop or any(hooks_stop) or (
            stop_after_episodes is not None and
            episodes_this_run >= stop_after_episodes):
          break
      if int(episode) != last_saved:
        _save_checkpoint(manager, int(episode))
  finally:
    # A live `from_generator` iterator can hang the interpreter's exit.
    del batches
  bar.update(int(episode), force=True)
  report_path = os.path.join(root_dir, 'final_report.json')
  # A start that trained no episode still writes a report a killed start
  # did not get to write.
  if (final_report and len(validator) and int(episode) == num_episodes and
      not stop and (episodes_this_run or not tf.io.gfile.exists(report_path))):
    report = validator.final_report(int(inference_steps))
    print(final_report_line(report), file=progress_stream)
    if chief:
      files.write_text_atomically(report_path, json.dumps(report, indent=2))
  for writer in writers.values():
    writer.flush()
  if stop:
    print(f'stopped by {stop.signal_name} at episode {int(episode)}; '
          f'checkpoint saved in {manager.directory}; run the same command '
          'to resume', file=progress_stream)
  return {'episode': int(episode), 'val_metric': val_metric,
          'input_metric': input_metric, 'metric': validator.metric_name,
          'best': best, 'final_report': report,
          'inference_steps': int(inference_steps),
          'interrupted': stop.signal_name,
          'task': task, 'model_config': config,
          'mixed_precision': mixed_precision,
          'agent_hyperparameters': agent.hyperparameters,
          'record_gradients': record_gradients}


def _resolve_task(task):
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


def _imports_of(task) -> Sequence[str]:
  from pixelrl_tf.filters import action_set as action_set_lib  # pylint: disable=g-import-not-at-top
  modules = set(action_set_lib.action_modules(task.action_set))
  if tasks_lib.task_module(task.name):
    modules.add(tasks_lib.task_module(task.name))
  return tuple(sorted(modules))


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


def _check_finite(scalars, episode, last_saved):
  bad = [key for key in ('loss', 'policy_loss', 'value_loss',
                         learner_lib.GRADIENT_NORM)
         if not math.isfinite(scalars[key])]
  if bad or scalars[learner_lib.APPLIED] < 1.0:
    what = ', '.join(f'{k} {scalars[k]}' for k in bad) or 'gradients'
    raise TrainingError(
        f'non-finite {what} at episode {episode}; that update was not saved '
        f'and the last good checkpoint (episode {last_saved}) is kept (lower '
        'the learning rate, set PixelA2CAgent.gradient_clip_norm, or check '
        'the data)')


class _HistogramSummaries:
  """The agent's histograms, written from inside the episode function.

  `PixelA2CAgent.summarize_grads_and_vars` and `debug_summaries` write
  summaries inside the update; the traced episode holds those ops with
  the training writer, a step variable and a recording switch, so they
  write at the scalar-summary episodes and nowhere else.
  """

  def __init__(self, writers, agent):
    self._writer = writers.get(model_io.TRAIN_DIR) if writers else None
    self._enabled = agent.writes_summaries and self._writer is not None
    self._step = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._record = tf.Variable(False, trainable=False)

  def during(self, step, record):
    """A context for one episode call, recording at `step` if `record`."""
    if not self._enabled:
      return contextlib.nullcontext()
    self._step.assign(step)
    self._record.assign(bool(record))
    stack = contextlib.ExitStack()
    stack.enter_context(self._writer.as_default(step=self._step))
    stack.enter_context(tf.summary.record_if(lambda: self._record))
    return stack


def _summary_writers(root_dir, chief) -> Dict[str, tf.summary.SummaryWriter]:
  if not chief:
    return {}
  return {name: tf.summary.create_file_writer(os.path.join(root_dir, name))
          for name in (model_io.TRAIN_DIR, EVAL_DIR)}


def _write_scalars(writer, step, scalars, learning_rate, seconds,
                   loss_growth, reward_map=None):
  with writer.as_default(step=step):
    if reward_map is not None:
      summaries.write_reward_map_scalars(reward_map.kernel.numpy(), step)
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
    tf.summary.scalar('Metrics/learning_rate', learning_rate)
    tf.summary.scalar('Metrics/loss_growth', loss_growth)
    tf.summary.scalar('Metrics/episode_seconds', seconds)


def _read_best(root_dir):
  path = os.path.join(root_dir, BEST_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _improves(best, value, higher_is_better):
  if best is None:
    return True
  return value > best['value'] if higher_is_better else value < best['value']


def _save_best(manager, root_dir, episode, metric, value, chief,
               inference_steps):
  path = _save_checkpoint(manager, episode)
  best = {'episode': episode, 'metric': metric, 'value': value,
          'inference_steps': inference_steps,
          'checkpoint': os.path.relpath(path, root_dir)}
  if chief:
    files.write_text_atomically(os.path.join(root_dir, BEST_FILE),
                                json.dumps(best, indent=2))
  return best

"""What a trained model is on disk, and how to rebuild it.

A run directory (`--root_dir`) holds:

    model.json               ModelConfig: everything needed to rebuild the
                             network without gin (variant, channels, actions)
    train/ckpt-N.*           tf.train checkpoints (network, reward map,
                             optimizer, episode counter, RNG state)
    train/checkpoint         index of the checkpoints, written atomically
    operative_config.gin     the gin bindings the run used

Checkpoints written by `import_weights` have the same layout (no optimizer),
so `train`, `eval`, `export` and `restore` load them like any other.
"""

import dataclasses
import gc
import importlib
import json
import logging
import os
import re
import traceback
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from pixelrl_tf import cli
from pixelrl_tf.agents import pixel_a2c_agent
from pixelrl_tf.agents import reward_map as reward_map_lib
from pixelrl_tf.environments import tf_pixel_env
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.filters import color_ops
from pixelrl_tf.io import files
from pixelrl_tf.networks import fcn_actor_critic
from pixelrl_tf.tasks import tasks as tasks_lib

MODEL_CONFIG_FILE = 'model.json'
TRAIN_DIR = 'train'
# Checkpoint key of the restoration step count chosen on validation (see
# `train_lib.train`'s `choose_inference_steps`).
INFERENCE_STEPS = 'inference_steps'
# Checkpoint key of the training episode counter.
EPISODE = 'episode'

# Transforms of the observation inside the network, before conv1: 'lab' is
# the colour models' input (BGR -> (L/100, a/127, b/127); further channels,
# e.g. a mask, pass unchanged).
INPUT_TRANSFORMS = {'none': None, 'lab': color_ops.bgr_to_scaled_lab}


class CheckpointError(ValueError):
  """A checkpoint cannot be loaded into its model; the message is one line."""


def _one_line(error):
  text = ' '.join(str(error).split())
  return text or type(error).__name__


_OP_NODE_PREFIX = re.compile(r'^\{\{[^}]*\}\}\s*')
_OP_NAME_SUFFIX = re.compile(r'\s*\[Op:[^\]]*\]$')


def op_error_text(error: tf.errors.OpError) -> str:
  """The first line of a TensorFlow error without its op decorations."""
  lines = (getattr(error, 'message', None) or str(error)).strip().splitlines()
  text = lines[0] if lines else type(error).__name__
  return _OP_NAME_SUFFIX.sub('', _OP_NODE_PREFIX.sub('', text))


_UNMATCHED = re.compile(r'Found (\d+) Python objects that were not bound')
_MAX_REASON = 240


def _mismatch_text(error):
  """A short reason why a checkpoint does not fit a model."""
  unmatched = _UNMATCHED.search(str(error))
  if unmatched:
    return (f'{unmatched.group(1)} of the model\'s variables are not in it '
            '(a checkpoint of another model?)')
  text = cli.first_line(error)
  return text if len(text) <= _MAX_REASON else text[:_MAX_REASON] + '...'


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The architecture of a PixelRL model.

  Attributes:
    channels: `C` of the images the model takes (1 gray, 3 colour).
    action_set: name of a registered action table (`'denoise'`, ...) or
      the list of its action names.
    filters: feature channels of the network.
    use_conv_gru: the "+convGRU" variant.
    use_reward_map_conv: the "+RMC" variant (a reward map kernel exists).
    reward_map_size: size of the RMC kernel.
    t_max: steps of one episode (restoration loop length at test time).
    input_transform: what the network does to its input before conv1, a
      key of `INPUT_TRANSFORMS` (`'none'`, or `'lab'` for colour models).
    task: name of the task the model was trained for (None in run
      directories written before tasks were recorded: inferred from the
      action set).
    imports: modules to import before the model is rebuilt (those that
      register its actions or task, when they are not built in).
    extra_channels: observation channels besides the image (a mask).
  """
  channels: int = 1
  action_set: Union[str, Tuple[str, ...]] = 'denoise'
  filters: int = 64
  use_conv_gru: bool = True
  use_reward_map_conv: bool = False
  reward_map_size: int = 33
  t_max: int = 5
  input_transform: str = 'none'
  task: Optional[str] = None
  imports: Tuple[str, ...] = ()
  extra_channels: int = 0

  def __post_init__(self):
    for name, smallest in (('channels', 1), ('filters', 1), ('t_max', 1),
                           ('reward_map_size', 1), ('extra_channels', 0)):
      value = getattr(self, name)
      if (not isinstance(value, (int, np.integer)) or
          isinstance(value, bool) or value < smallest):
        raise ValueError(f'model config {name} must be an integer >= '
                         f'{smallest}, got {value!r}')
      object.__setattr__(self, name, int(value))
    if self.input_transform not in INPUT_TRANSFORMS:
      raise ValueError(
          f'unknown input_transform {self.input_transform!r}; use one of '
          f'{", ".join(sorted(INPUT_TRANSFORMS))}')
    if not isinstance(self.action_set, str):
      if (not isinstance(self.action_set, (list, tuple)) or
          not all(isinstance(name, str) for name in self.action_set)):
        raise ValueError(f'model config action_set must be a name or a list '
                         f'of action names, got {self.action_set!r}')
      object.__setattr__(self, 'action_set', tuple(self.action_set))
    if isinstance(self.imports, str) or not all(
        isinstance(name, str) for name in self.imports):
      raise ValueError(f'model config imports must be a list of module '
                       f'names, got {self.imports!r}')
    object.__setattr__(self, 'imports', tuple(self.imports))

  @classmethod
  def for_task(cls, task: tasks_lib.Task, filters: int = 64,
               use_conv_gru: bool = True, use_reward_map_conv: bool = False,
               reward_map_size: int = 33) -> 'ModelConfig':
    """The model of `task`: its channels, actions, `t_max` and input.

    Args:
      task: the `Task`, the source of everything but the architecture.
      filters: feature channels of the network.
      use_conv_gru: the "+convGRU" variant.
      use_reward_map_conv: the "+RMC" variant.
      reward_map_size: size of the RMC kernel.
    """
    modules = set(action_set_lib.action_modules(task.action_set))
    if tasks_lib.task_module(task.name):
      modules.add(tasks_lib.task_module(task.name))
    return cls(channels=task.channels, action_set=task.action_set,
               filters=filters, use_conv_gru=use_conv_gru,
               use_reward_map_conv=use_reward_map_conv,
               reward_map_size=reward_map_size, t_max=task.t_max,
               input_transform=task.input_transform, task=task.name,
               imports=tuple(sorted(modules)),
               extra_channels=task.extra_channels)

  def import_modules(self):
    """Imports `imports` (one-line error if one is missing)."""
    for module in self.imports:
      try:
        importlib.import_module(module)
      except ImportError as error:
        raise ValueError(f'the model needs module {module!r} (it registers '
                         f'its actions or task): {error}') from None

  def get_task(self):
    """The `Task` of the model (see `task`)."""
    self.import_modules()
    return tasks_lib.task_for_model(self.task, self.action_set)

  @property
  def variant(self):
    if not self.use_conv_gru:
      return 'fcn'
    return 'gru_rmc' if self.use_reward_map_conv else 'gru'

  def get_action_set(self):
    self.import_modules()
    return action_set_lib.get_action_set(self.action_set)

  def to_json(self):
    values = dataclasses.asdict(self)
    for key in ('task', 'imports', 'extra_channels'):
      # Written only when set, so older readers keep loading new files of
      # the built-in tasks.
      if not values[key]:
        del values[key]
    return json.dumps(values, indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text):
    """Parses `to_json`'s text.

    Raises:
      ValueError: (one line) the text is not a JSON object of known keys.
    """
    try:
      values = json.loads(text)
    except ValueError as error:
      raise ValueError(f'not a model config (invalid JSON: {error})') from None
    if not isinstance(values, dict):
      raise ValueError(f'not a model config (a JSON {type(values).__name__}, '
                       'not an object)')
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError(f'unknown model config keys: {", ".join(unknown)}')
    return cls(**values)


def build_network(config, dtype_policy=None):
  """Returns the `FcnActorCritic` of `config`, variables created.

  Args:
    config: the `ModelConfig`.
    dtype_policy: Keras dtype policy of the network's layers (e.g.
      `'mixed_bfloat16'`); None: float32.
  """
  network = fcn_actor_critic.FcnActorCritic(
      tf.TensorSpec([None, None, config.channels + config.extra_channels],
                    tf.float32),
      config.get_action_set().num_actions, filters=config.filters,
      use_conv_gru=config.use_conv_gru,
      preprocessing_fn=INPUT_TRANSFORMS[config.input_transform],
      dtype_policy=dtype_policy)
  network.create_variables()
  return network


def build_agent(config, network, optimizer=None, train_step_counter=None):
  """The `PixelA2CAgent` of a model, for images of any size.

  Its `policy` is the greedy policy that `export` saves; `optimizer` is only
  needed to train.
  """
  environment = tf_pixel_env.PixelTFEnvironment(
      config.get_action_set(), channels=config.channels,
      extra_channels=config.extra_channels)
  return pixel_a2c_agent.PixelA2CAgent(
      environment.time_step_spec(), environment.action_spec(), network,
      optimizer, use_reward_map_conv=config.use_reward_map_conv,
      reward_map_size=config.reward_map_size,
      train_step_counter=train_step_counter)


def build_reward_map(config):
  """Returns the `RewardMapConv` of `config`, or None without RMC."""
  if not config.use_reward_map_conv:
    return None
  return reward_map_lib.RewardMapConv(config.reward_map_size)


def model_checkpoint(network, reward_map=None, **extra):
  """The checkpoint object graph shared by training, import and loading."""
  objects = dict(network=network, **extra)
  if reward_map is not None:
    objects['reward_map'] = reward_map
  return tf.train.Checkpoint(**objects)


def write_model_config(run_dir, config):
  """Writes `model.json` atomically."""
  files.write_text_atomically(os.path.join(run_dir, MODEL_CONFIG_FILE),
                              config.to_json())


def read_model_config(run_dir):
  """Reads `RUN/model.json`.

  Raises:
    FileNotFoundError: `run_dir` holds no `model.json`.
    ValueError: (one line, naming the file) it is not a valid config.
  """
  path = os.path.join(run_dir, MODEL_CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'{run_dir} is not a pixelrl_tf run directory '
                            f'(no {MODEL_CONFIG_FILE})')
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      text = f.read().decode('utf-8')
    return ModelConfig.from_json(text)
  except (ValueError, TypeError) as error:  # UnicodeDecodeError included.
    raise ValueError(f'{path}: {_one_line(error)}') from None
  except tf.errors.OpError as error:
    raise ValueError(f'cannot read {path}: {op_error_text(error)}') from None


def save_model(run_dir, config, network, reward_map=None, step=0):
  """Writes `model.json` and a checkpoint `train/ckpt-<step>`; returns it."""
  write_model_config(run_dir, config)
  checkpoint = model_checkpoint(network, reward_map)
  manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(run_dir, TRAIN_DIR), max_to_keep=None)
  return manager.save(checkpoint_number=step)


def resolve_checkpoint(path):
  """Returns `(run_dir, checkpoint_prefix)` for a run dir or a checkpoint.

  `path` is a run directory (its latest checkpoint), its `best` folder
  (`RUN/best`: the checkpoint with the best validation metric, see
  `train_lib`) or a checkpoint prefix (`RUN/train/ckpt-500`).
  """
  if tf.io.gfile.isdir(path):
    if tf.io.gfile.exists(os.path.join(path, MODEL_CONFIG_FILE)):
      run_dir = path
      prefix = tf.train.latest_checkpoint(os.path.join(path, TRAIN_DIR))
      if prefix is None:
        raise FileNotFoundError(f'no checkpoint under {path}/{TRAIN_DIR}')
      return run_dir, prefix
    parent = os.path.dirname(os.path.abspath(path))
    prefix = tf.train.latest_checkpoint(path)
    if prefix is not None and tf.io.gfile.exists(
        os.path.join(parent, MODEL_CONFIG_FILE)):
      return parent, prefix
    raise FileNotFoundError(f'{path} is not a pixelrl_tf run directory (no '
                            f'{MODEL_CONFIG_FILE})')
  if tf.io.gfile.exists(path + '.index'):
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    return run_dir, path
  raise FileNotFoundError(f'{path} is neither a run directory nor a '
                          'checkpoint prefix')


def restore_checkpoint(checkpoint: tf.train.Checkpoint, prefix: str,
                       target: str, partial: bool = True) -> None:
  """Restores `prefix` into `checkpoint`; failures as one-line errors.

  Args:
    checkpoint: the objects to restore (every one of them must be in the
      checkpoint).
    prefix: the checkpoint prefix (`.../ckpt-N`).
    target: what the objects are, for the message (e.g. `the model of
      RUN/model.json`).
    partial: whether the checkpoint may hold more than `checkpoint` takes
      (an optimizer, counters).

  Raises:
    CheckpointError: the files are truncated, corrupt or not a checkpoint
      (`cannot read checkpoint ...`), or belong to another model (`...
      does not fit ...`).
  """
  failure = cause = None
  logger = tf.get_logger()
  level = logger.level
  try:
    try:
      status = checkpoint.restore(prefix)
      if partial:
        status = status.expect_partial()
      status.assert_existing_objects_matched()
    except tf.errors.OpError as error:
      cause = error
      failure = CheckpointError(
          f'cannot read checkpoint {prefix} (truncated or corrupt?): '
          f'{op_error_text(error)}')
    except (ValueError, AssertionError) as error:
      cause = error
      failure = CheckpointError(
          f'checkpoint {prefix} does not fit {target}: '
          f'{_mismatch_text(error)}')
    except Exception as error:  # pylint: disable=broad-except
      # The checkpoint reader fails on truncated files with IndexError and
      # other exceptions it does not document.
      cause = error
      failure = CheckpointError(
          f'cannot read checkpoint {prefix} (truncated or corrupt?): '
          f'{type(error).__name__}: {cli.first_line(error)}')
    if cause is not None:
      # A restore that failed half-way leaves objects that log warnings about
      # unrestored values when they are deleted, which would follow the
      # one-line error; delete them now, quietly.
      logger.setLevel(logging.ERROR)
      del checkpoint
      traceback.clear_frames(cause.__traceback__)
      gc.collect()
  finally:
    logger.setLevel(level)
  if failure is not None:
    raise failure from cause


def _restore_checkpoint(network, reward_map, prefix, config_path):
  """Restores `prefix` into the model; failures as `CheckpointError`."""
  restore_checkpoint(model_checkpoint(network, reward_map), prefix,
                     f'the model of {config_path}')


def read_inference_steps(prefix: str) -> Optional[int]:
  """The restoration step count stored with a checkpoint, or None.

  Training stores it in every checkpoint: the task's `t_max`, or with
  `choose_inference_steps` the count that was best on validation. Imported
  weights and older runs have none.
  """
  return _read_counter(prefix, INFERENCE_STEPS)


def read_episode(prefix: Optional[str]) -> Optional[int]:
  """The episode counter of a training checkpoint, or None.

  None also for no checkpoint (`prefix` None) and for imported weights,
  which have no counter.
  """
  return None if prefix is None else _read_counter(prefix, EPISODE)


def _read_counter(prefix, name):
  key = f'{name}/.ATTRIBUTES/VARIABLE_VALUE'
  try:
    reader = tf.train.load_checkpoint(prefix)
  except (tf.errors.OpError, ValueError) as error:
    raise CheckpointError(f'cannot read checkpoint {prefix}: '
                          f'{op_error_text(error)}') from None
  if not reader.has_tensor(key):
    return None
  return int(reader.get_tensor(key))


def check_finite_variables(prefix: str,
                           modules: Sequence[tf.Module]) -> None:
  """Refuses restored weights that hold NaN or infinite values.

  Args:
    prefix: the checkpoint the weights came from (for the message).
    modules: Keras layers or `tf.Module`s whose `variables` to check.

  Raises:
    CheckpointError: (one line) naming the first variable with a NaN or
      infinite value.
  """
  for module in modules:
    for variable in module.variables:
      if not np.all(np.isfinite(variable.numpy())):
        raise CheckpointError(
            f'checkpoint {prefix} holds NaN or infinite values in '
            f'{variable.name}; refusing to load it')


def load_model(path, dtype_policy=None):
  """Loads `(config, network, reward_map)` from a run dir or checkpoint.

  Args:
    path: a run directory (its latest checkpoint), `RUN/best` (its best
      validated checkpoint) or a checkpoint prefix.
    dtype_policy: Keras dtype policy of the network (see `build_network`).

  Returns:
    `(ModelConfig, FcnActorCritic, RewardMapConv or None)`. The config's
    `t_max` is the restoration step count stored with the checkpoint when
    it differs from `model.json`'s (a count chosen on validation, see
    `read_inference_steps`).

  Raises:
    FileNotFoundError: `path` is neither a run directory nor a checkpoint.
    ValueError: (one line, naming the file) `model.json` is not a valid
      config.
    CheckpointError: (a `ValueError`; one line naming the checkpoint) the
      checkpoint files are truncated or corrupt, belong to another model,
      or hold NaN or infinite weights (the message names the variable).
  """
  run_dir, prefix = resolve_checkpoint(path)
  config = read_model_config(run_dir)
  network = build_network(config, dtype_policy=dtype_policy)
  reward_map = build_reward_map(config)
  _restore_checkpoint(network, reward_map, prefix,
                      os.path.join(run_dir, MODEL_CONFIG_FILE))
  check_finite_variables(prefix, [network] + (
      [reward_map] if reward_map is not None else []))
  steps = read_inference_steps(prefix)
  if steps is not None and steps != config.t_max:
    if not 1 <= steps <= config.t_max:
      raise CheckpointError(
          f'checkpoint {prefix} stores {steps} restoration steps, outside '
          f'1..{config.t_max} (the t_max of its model.json)')
    config = dataclasses.replace(config, t_max=steps)
  return config, network, reward_map


def _run_checkpoints(train_dir):
  """The checkpoints the `checkpoint` file of `train_dir` names, oldest first."""
  state = tf.train.get_checkpoint_state(train_dir)
  if state is None:
    return []
  paths = list(state.all_model_checkpoint_paths) or [
      state.model_checkpoint_path]
  return [path if os.path.isabs(path) else os.path.join(train_dir, path)
          for path in paths if path]


def latest_resumable_checkpoint(train_dir: str
                                ) -> Tuple[Optional[str], List[str]]:
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
    raise CheckpointError(
        f'{train_dir} has no checkpoint that can be resumed from (its '
        f'`checkpoint` file names {", ".join(named)}, and their files are '
        'gone); restore them or use a new --root_dir')
  return None, []

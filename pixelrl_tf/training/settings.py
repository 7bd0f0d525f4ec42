"""The settings of a training run, in the parts gin configures.

Each part is a frozen dataclass that gin configures by its own name, so a
binding names the part it sets and every binding sets one field:

    TrainingData.batch_size = 8
    Architecture.use_reward_map_conv = True
    Optimization.num_episodes = 150
    Scale.mixed_precision = 'auto'
    Cadence.eval_interval = 50
    RunControl.seed = 1

`jobs.train_lib.train` builds every part it is not given from its bindings.
The task (`make_task`) and the agent (`PixelA2CAgent`) have their own
bindings. A run's `run.json` records the fields by name
(`training.run_settings`), so `train.allow_changes` names them the same way
(`RunControl.allow_changes = ['num_episodes']`).
"""

import dataclasses
import os
from typing import Optional, Sequence, Union

import gin

PathLike = Union[str, os.PathLike]


@gin.configurable(module='pixelrl_tf.training')
@dataclasses.dataclass(frozen=True)
class TrainingData:
  """Where episodes and validation images come from.

  Attributes:
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
  """
  data_source: PathLike = 'default'
  list_file: Optional[PathLike] = None
  validation_source: Optional[PathLike] = None
  validation_fraction: Optional[float] = None
  max_validation_images: Optional[int] = None
  batch_size: int = 64
  crop_size: int = 70


@gin.configurable(module='pixelrl_tf.training')
@dataclasses.dataclass(frozen=True)
class Architecture:
  """The network's variant and width (the task gives channels and actions).

  Attributes:
    filters: network channels (64).
    use_conv_gru: the "+convGRU" variant.
    use_reward_map_conv: the "+RMC" variant.
    reward_map_size: RMC kernel size (33).
  """
  filters: int = 64
  use_conv_gru: bool = True
  use_reward_map_conv: bool = False
  reward_map_size: int = 33


@gin.configurable(module='pixelrl_tf.training')
@dataclasses.dataclass(frozen=True)
class Optimization:
  """Adam and the reference's poly learning-rate schedule.

  Attributes:
    learning_rate: initial Adam learning rate (1e-3).
    learning_rate_power: poly decay power over `num_episodes` (0.9).
    adam_epsilon: Adam epsilon (Chainer's default 1e-8).
    num_episodes: episode budget (30000 in the paper).
  """
  learning_rate: float = 1e-3
  learning_rate_power: float = 0.9
  adam_epsilon: float = 1e-8
  num_episodes: int = 30000


@gin.configurable(module='pixelrl_tf.training')
@dataclasses.dataclass(frozen=True)
class Scale:
  """Devices, precision and memory: how the same episodes are computed.

  Attributes:
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
  """
  strategy: str = 'default'
  update_recompute: Union[bool, str] = 'auto'
  jit_compile: bool = False
  mixed_precision: Optional[str] = None
  worker_timeout_seconds: float = 300.0
  virtual_cpu_devices: Optional[int] = None


@gin.configurable(module='pixelrl_tf.training')
@dataclasses.dataclass(frozen=True)
class Cadence:
  """When to write checkpoints and summaries, and to validate.

  Attributes:
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
  """
  checkpoint_interval: int = 500
  summary_interval: int = 50
  image_summary_interval: int = 500
  eval_interval: int = 500
  choose_inference_steps: bool = False
  keep_checkpoints: int = 3
  loss_growth_warning_factor: Optional[float] = 10.0
  final_report: bool = True


@gin.configurable(module='pixelrl_tf.training')
@dataclasses.dataclass(frozen=True)
class RunControl:
  """The run's seed, what a resume may change, and when to stop early.

  Attributes:
    seed: seed of everything random in the run.
    allow_changes: settings of `run_settings.GUARDED_SETTINGS` a resume may
      change (e.g. `['num_episodes']` to extend the budget).
    stop_after_episodes: stop (with a checkpoint) after this many episodes
      of this invocation, for tests and time-boxed runs.
  """
  seed: int = 0
  allow_changes: Sequence[str] = ()
  stop_after_episodes: Optional[int] = None


PARTS = (TrainingData, Architecture, Optimization, Scale, Cadence,
         RunControl)
# Field name -> the part that holds it.
PART_OF = {field.name: part for part in PARTS
           for field in dataclasses.fields(part)}


def binding(field: str, value) -> str:
  """The gin binding that sets `field` of its part to `value`.

  >>> binding('batch_size', 8)
  'TrainingData.batch_size = 8'
  """
  return f'{PART_OF[field].__name__}.{field} = {value!r}'


def moved_binding_hint(message: str) -> Optional[str]:
  """For gin's error about `train.<field>`: where that setting lives now."""
  for field, part in PART_OF.items():
    if (f"named '{field}'" in message and "'train'" in message) or (
        f'train.{field}' in message):
      return (f'train.{field} is now {part.__name__}.{field} (the run '
              'settings are in parts: '
              f'{", ".join(p.__name__ for p in PARTS)})')
  return None

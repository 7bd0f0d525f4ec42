"""A PixelRL task in one place: actions, reward, episodes, input, cadence.

Shapes: `B` batch, `H, W` height and width, `C` channels.

A `Task` says everything that differs between the paper's applications:
which action table the pixels choose from, which reward they get, where
episodes come from (clean crops plus noise, text overlays, or input/target
pairs), what the network sees (the image, or its Lab conversion), the
channel order of colour images, the episode length and update cadence, and
how validation is measured. The built-in tasks:

| name            | actions | reward        | episodes | t_max / update | metric |
|-----------------|---------|---------------|----------|----------------|--------|
| `denoise`       | denoise | squared_error | noise gaussian:25 | 5 / 5 | PSNR |
| `poisson`       | denoise | squared_error | noise poisson:30 | 5 / 5 | PSNR |
| `salt_pepper`   | denoise | squared_error | noise salt_pepper:0.5 | 5 / 5 | PSNR |
| `text_removal`  | denoise | squared_error | text overlays | 15 / 5 | PSNR |
| `color_enhance` | color   | lab_distance  | paired, BGR, Lab input | 10 / 5 | Lab |
| `saliency_edit` | color   | saliency      | one image + mask, Lab input | 10 / 5 | CC |

A gin file selects a task by name and changes any field through
`make_task`:

    train.task = @make_task()
    make_task.name = 'denoise'
    make_task.noise = 'poisson:10'

A user's own task is `register_task(Task(...))` from their module (imported
by the gin file), with their own actions (`action_set.register_action`) and
rewards (`rewards.register_reward`).
"""

import dataclasses
import sys
from typing import Optional, Sequence, Tuple, Union

import gin

from pixelrl_tf.environments import rewards
from pixelrl_tf.filters import action_set as action_set_lib

NOISE = 'noise'
TEXT = 'text'
PAIRED = 'paired'
SINGLE_IMAGE = 'single_image'
EPISODE_SOURCES = (NOISE, TEXT, PAIRED, SINGLE_IMAGE)

PSNR = 'psnr'
LAB_DISTANCE = 'lab_distance'
SALIENCY_CC = 'saliency_cc'


@dataclasses.dataclass(frozen=True)
class Metric:
  """A task's quality measure: its name and which way is better.

  Attributes:
    name: `'psnr'`, `'lab_distance'` or `'saliency_cc'`.
    higher_is_better: whether a larger value is better.
  """
  name: str
  higher_is_better: bool

  def better(self, value: float, than: Optional[float]) -> bool:
    """Whether `value` is strictly better than `than` (None: anything is)."""
    if than is None:
      return True
    return value > than if self.higher_is_better else value < than

  def best_index(self, values: Sequence[float]) -> int:
    """The index of the best of `values` (the first, on ties)."""
    values = list(values)
    return values.index(max(values) if self.higher_is_better
                        else min(values))


# Validation metrics by name (`register_metric` adds one).
METRICS = {}


def register_metric(metric: Metric, overwrite: bool = False) -> Metric:
  """Makes `metric` a task's `validation_metric` by its name."""
  if metric.name in METRICS and not overwrite:
    raise ValueError(f'a metric called {metric.name!r} is already '
                     'registered')
  METRICS[metric.name] = metric
  return metric


for _metric in (Metric(PSNR, True), Metric(LAB_DISTANCE, False),
                Metric(SALIENCY_CC, True)):
  register_metric(_metric)

INPUT_TRANSFORMS = ('none', 'lab')


@dataclasses.dataclass(frozen=True)
class Task:
  """One PixelRL application.

  Attributes:
    name: the task's name.
    action_set: a registered action table name or a tuple of action names.
    reward: a registered reward name (`environments.rewards`).
    episode_source: `'noise'` (clean crops, corrupted in-graph by `noise`),
      `'text'` (crops covered by random text), `'paired'` (aligned
      input/target folders) or `'single_image'` (one image and mask).
    noise: noise spec for `'noise'` episodes (`data.noise.parse_noise`).
    channels: `C` of the images the actions change (1 gray, 3 colour).
    extra_channels: channels appended to the observation (a mask).
    bgr: colour images are in OpenCV's BGR order (the colour code's).
    input_transform: `'none'`, or `'lab'` (BGR -> L/100, a/127, b/127).
    t_max: steps per episode.
    update_interval: steps per update (None: `t_max`).
    max_rotation_degrees: augmentation rotation of the training crops.
    validation_metric: `'psnr'`, `'lab_distance'` or `'saliency_cc'`.
    reward_log_scale: factor of the logged episode reward (255 for the
      squared-error tasks, as the reference logs it).
  """
  name: str
  action_set: Union[str, Tuple[str, ...]] = action_set_lib.DENOISE
  reward: str = rewards.SQUARED_ERROR
  episode_source: str = NOISE
  noise: Optional[str] = 'gaussian:25'
  channels: int = 1
  extra_channels: int = 0
  bgr: bool = False
  input_transform: str = 'none'
  t_max: int = 5
  update_interval: Optional[int] = None
  max_rotation_degrees: float = 10.0
  validation_metric: str = PSNR
  reward_log_scale: float = 255.0

  def __post_init__(self):
    if self.episode_source not in EPISODE_SOURCES:
      raise ValueError(f'task {self.name!r}: unknown episode source '
                       f'{self.episode_source!r}; use one of '
                       f'{EPISODE_SOURCES}')
    if self.input_transform not in INPUT_TRANSFORMS:
      raise ValueError(f'task {self.name!r}: unknown input transform '
                       f'{self.input_transform!r}; use one of '
                       f'{INPUT_TRANSFORMS}')
    if self.validation_metric not in METRICS:
      raise ValueError(f'task {self.name!r}: unknown validation metric '
                       f'{self.validation_metric!r}')
    if self.channels not in (1, 3):
      raise ValueError(f'task {self.name!r}: channels must be 1 or 3')
    if self.t_max < 1:
      raise ValueError(f'task {self.name!r}: t_max must be >= 1')
    if self.t_max % self.window:
      raise ValueError(f'task {self.name!r}: t_max ({self.t_max}) must be '
                       f'a multiple of update_interval ({self.window})')
    if self.episode_source == NOISE and not self.noise:
      raise ValueError(f'task {self.name!r}: noise episodes need a noise')
    if not isinstance(self.action_set, str):
      object.__setattr__(self, 'action_set', tuple(self.action_set))

  @property
  def window(self) -> int:
    """Steps per update."""
    return self.update_interval or self.t_max

  @property
  def metric(self) -> Metric:
    """The validation metric, with its direction."""
    return METRICS[self.validation_metric]

  @property
  def lab_metric(self) -> bool:
    """Whether results are measured by the mean Lab distance (colour)."""
    return self.validation_metric == LAB_DISTANCE

  def get_action_set(self):
    return action_set_lib.get_action_set(self.action_set)

  def get_reward_fn(self):
    return rewards.get_reward_fn(self.reward)


_TASKS = {}
# Task name -> the module that registered it.
_REGISTERED_BY = {}


def register_task(task: Task, overwrite: bool = False) -> Task:
  """Makes `task` selectable by name (`train.task = 'NAME'`)."""
  if task.name in _TASKS and not overwrite:
    raise ValueError(f'a task called {task.name!r} is already registered')
  _TASKS[task.name] = task
  _REGISTERED_BY[task.name] = sys._getframe(1).f_globals.get('__name__')  # pylint: disable=protected-access
  return task


def task_module(name: str) -> Optional[str]:
  """The module outside this package that registered task `name`, if any."""
  module = _REGISTERED_BY.get(name)
  if module is None or module == '__main__' or module.startswith(
      'pixelrl_tf.'):
    return None
  return module


def get_task(name_or_task) -> Task:
  """The registered task `name` (a `Task` is returned as it is)."""
  if isinstance(name_or_task, Task):
    return name_or_task
  try:
    return _TASKS[name_or_task]
  except KeyError:
    raise ValueError(f'unknown task {name_or_task!r}; known: '
                     f'{", ".join(sorted(_TASKS))}') from None


def task_names() -> Sequence[str]:
  return sorted(_TASKS)


@gin.configurable(module='pixelrl_tf.tasks')
def make_task(name: str = 'denoise',
              action_set=None,
              reward: Optional[str] = None,
              noise: Optional[str] = None,
              t_max: Optional[int] = None,
              update_interval: Optional[int] = None,
              max_rotation_degrees: Optional[float] = None,
              reference_code_actions: Optional[bool] = None) -> Task:
  """The registered task `name` with the fields given replaced.

  Args:
    name: a registered task.
    action_set: a registered table name or a list of action names.
    reward: a registered reward name.
    noise: noise spec (noise episodes).
    t_max: steps per episode.
    update_interval: steps per update; 0 means one update per episode.
    max_rotation_degrees: augmentation rotation.
    reference_code_actions: colour tasks only: True takes the released
      code's colour actions (`'color_reference'`), False the paper's.

  Returns:
    The `Task`.
  """
  task = get_task(name)
  changes = dict(action_set=action_set, reward=reward, noise=noise,
                 t_max=t_max, max_rotation_degrees=max_rotation_degrees)
  changes = {k: v for k, v in changes.items() if v is not None}
  if update_interval is not None:
    changes['update_interval'] = update_interval or None
  if reference_code_actions is not None:
    if task.action_set not in (action_set_lib.COLOR,
                               action_set_lib.COLOR_REFERENCE):
      raise ValueError(f'reference_code_actions applies to the colour '
                       f'tasks, not {name!r}')
    changes['action_set'] = action_set_lib.color_action_set(
        reference_code_actions)
  return dataclasses.replace(task, **changes)


DENOISE = register_task(Task('denoise'))
POISSON = register_task(Task('poisson', noise='poisson:30'))
SALT_PEPPER = register_task(Task('salt_pepper', noise='salt_pepper:0.5'))
TEXT_REMOVAL = register_task(Task(
    'text_removal', episode_source=TEXT, noise=None, t_max=15,
    update_interval=5))
COLOR_ENHANCE = register_task(Task(
    'color_enhance', action_set=action_set_lib.COLOR,
    reward=rewards.LAB_DISTANCE, episode_source=PAIRED, noise=None,
    channels=3, bgr=True, input_transform='lab', t_max=10,
    update_interval=5, max_rotation_degrees=45.0,
    validation_metric=LAB_DISTANCE, reward_log_scale=1.0))
SALIENCY_EDIT = register_task(Task(
    'saliency_edit', action_set=action_set_lib.COLOR,
    reward=rewards.SALIENCY, episode_source=SINGLE_IMAGE, noise=None,
    channels=3, extra_channels=1, bgr=True, input_transform='lab', t_max=10,
    update_interval=5, max_rotation_degrees=0.0,
    validation_metric=SALIENCY_CC, reward_log_scale=1.0))


def task_for_model(task_name: Optional[str], action_set) -> Task:
  """The task of a saved model (older run directories record no task)."""
  if task_name:
    return get_task(task_name)
  if isinstance(action_set, str) and action_set in (
      action_set_lib.COLOR, action_set_lib.COLOR_REFERENCE):
    return COLOR_ENHANCE
  return DENOISE

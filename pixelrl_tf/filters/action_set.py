"""Ordered, named tables of per-pixel actions and their application.

An `ActionSet` maps action indices (what the policy outputs per pixel) to image
operations. `apply_action_map` runs every action on the image before the step
and lets each pixel take the result of its own action, as the reference
`State.step` does.

Shapes: `B` batch, `H, W` height and width, `C` channels, `A` number of
actions. Images are float32 `[B, H, W, C]`; action maps are integer
`[B, H, W]` (all channels of a pixel take the same action). Nothing is clipped.
"""

import dataclasses
import functools
import sys
from typing import Callable, Iterator, Sequence, Tuple

import gin
import numpy as np
import tensorflow as tf

from pixelrl_tf.filters import color_ops
from pixelrl_tf.filters import image_ops

ImageFn = Callable[[tf.Tensor], tf.Tensor]
Rgb = Tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Action:
  """One entry of an action table.

  Attributes:
    name: unique name within its table, e.g. `'gaussian_0.5'`.
    fn: maps float32 `[B, H, W, C]` to float32 `[B, H, W, C]`; must be
      traceable (TF ops only) with unknown `H` and `W`.
    color: RGB display colour of the action in action-map images.
  """
  name: str
  fn: ImageFn
  color: Rgb


class ActionSet:
  """An ordered table of actions; the position of an action is its index."""

  def __init__(self, actions: Sequence[Action]):
    """Builds the table.

    Args:
      actions: the actions, in index order.

    Raises:
      ValueError: if `actions` is empty, a name repeats, or a colour is not
        three integers in 0..255.
    """
    actions = tuple(actions)
    if not actions:
      raise ValueError('An action set needs at least one action.')
    names = [action.name for action in actions]
    if len(set(names)) != len(names):
      raise ValueError(f'Action names must be unique, got {names}.')
    for action in actions:
      color = tuple(action.color)
      if len(color) != 3 or not all(
          isinstance(value, (int, np.integer)) and 0 <= value <= 255
          for value in color):
        raise ValueError(
            f'Colour of {action.name!r} must be 3 ints in 0..255, got '
            f'{action.color}.')
    self._actions = actions
    self._index_by_name = {name: index for index, name in enumerate(names)}
    # One traced function per table and channel count: every graph that
    # steps the image (training episodes, validation, evaluation, export)
    # calls it instead of building the filters' ops again, which was most
    # of the time spent tracing an episode. Its signature leaves batch,
    # height and width open, so one trace serves every size, whatever was
    # called first (a trace per size could differ in float rounding).
    self._traced_apply = {}

  @property
  def actions(self) -> Tuple[Action, ...]:
    """The actions, in index order."""
    return self._actions

  @property
  def names(self) -> Tuple[str, ...]:
    """The action names, in index order."""
    return tuple(action.name for action in self._actions)

  @property
  def num_actions(self) -> int:
    """`A`, the number of actions."""
    return len(self._actions)

  @property
  def colors(self) -> np.ndarray:
    """uint8 `[A, 3]`: the RGB colour of each action (`colors[action_map]`)."""
    return np.array([action.color for action in self._actions], np.uint8)

  def __len__(self) -> int:
    return len(self._actions)

  def __iter__(self) -> Iterator[Action]:
    return iter(self._actions)

  def __getitem__(self, index: int) -> Action:
    return self._actions[index]

  def __repr__(self) -> str:
    return f'ActionSet({list(self.names)})'

  def index(self, name: str) -> int:
    """Returns the index of the action called `name`.

    Raises:
      KeyError: if there is no such action.
    """
    try:
      return self._index_by_name[name]
    except KeyError:
      raise KeyError(
          f'No action {name!r}; the actions are {list(self.names)}.') from None

  def subset(self, names: Sequence[str]) -> 'ActionSet':
    """Returns a new table holding only `names`, in the order given.

    Used for action-set ablations (Table III of the paper); the indices of the
    new table are positions in `names`.

    Raises:
      KeyError: if a name is not in this table.
      ValueError: if `names` is empty or repeats a name.
    """
    return ActionSet([self._actions[self.index(name)] for name in names])

  def apply(self, images: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
    """Applies each pixel's action to the image before the step.

    Every action is computed on the whole of `images`; each output pixel (all
    its channels) is then taken from the result of its own action.

    Args:
      images: float32 `[B, H, W, C]`.
      actions: integer `[B, H, W]` with values in `[0, A)`. A value outside
        that range yields the result of action 0.

    Returns:
      float32 `[B, H, W, C]`.
    """
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    channels = images.shape[-1]
    if channels not in self._traced_apply:
      self._traced_apply[channels] = tf.function(
          self._apply, autograph=False, input_signature=[
              tf.TensorSpec([None, None, None, channels], tf.float32),
              tf.TensorSpec([None, None, None], tf.int32)])
    return self._traced_apply[channels](
        images, tf.cast(tf.convert_to_tensor(actions), tf.int32))

  def outputs(self, images: tf.Tensor) -> tf.Tensor:
    """Every action's result on the whole image.

    Args:
      images: float32 `[B, H, W, C]`.

    Returns:
      float32 `[A, B, H, W, C]`: item `a` is the image after every pixel
      took action `a` (what `apply` selects from, pixel by pixel).
    """
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    channels = images.shape[-1]
    key = ('outputs', channels)
    if key not in self._traced_apply:
      self._traced_apply[key] = tf.function(
          self._outputs, autograph=False, input_signature=[
              tf.TensorSpec([None, None, None, channels], tf.float32)])
    return self._traced_apply[key](images)

  def _outputs(self, images):
    with tf.name_scope('action_outputs'):
      return tf.stack([action.fn(images) for action in self._actions])

  def _apply(self, images, actions):
    with tf.name_scope('apply_action_map'):
      actions = tf.expand_dims(actions, axis=-1)
      # A chain of selects reads each filtered image once and builds no
      # [B, H, W, C, A] stack; it was the fastest selection measured on CPU.
      result = self._actions[0].fn(images)
      for index in range(1, len(self._actions)):
        result = tf.where(
            tf.equal(actions, tf.cast(index, actions.dtype)),
            self._actions[index].fn(images), result)
      return result


# The denoising / restoration actions of the reference code, in its order (the
# paper's Table I lists them in another order; these indices are those of the
# released code and weights). Windows are 5x5, the bilateral sigma_space is 5
# and sigma_color is on the 0..1 scale.
DENOISE_ACTIONS = ActionSet([
    Action('subtract_one', functools.partial(image_ops.shift, delta=-1 / 255),
           (31, 119, 180)),
    Action('do_nothing', tf.identity, (0, 0, 0)),
    Action('add_one', functools.partial(image_ops.shift, delta=1 / 255),
           (255, 127, 14)),
    Action('gaussian_0.5',
           functools.partial(image_ops.gaussian_filter, sigma=0.5),
           (44, 160, 44)),
    Action('bilateral_0.1',
           functools.partial(image_ops.bilateral_filter, sigma_color=0.1),
           (214, 39, 40)),
    Action('median_5', functools.partial(image_ops.median_filter, size=5),
           (148, 103, 189)),
    Action('gaussian_1.5',
           functools.partial(image_ops.gaussian_filter, sigma=1.5),
           (140, 86, 75)),
    Action('bilateral_1.0',
           functools.partial(image_ops.bilateral_filter, sigma_color=1.0),
           (227, 119, 194)),
    Action('box_5', functools.partial(image_ops.box_filter, size=5),
           (23, 190, 207)),
])


def apply_action_map(images: tf.Tensor, actions: tf.Tensor,
                     action_set: ActionSet = DENOISE_ACTIONS) -> tf.Tensor:
  """Applies a per-pixel action map; see `ActionSet.apply`.

  Args:
    images: float32 `[B, H, W, C]`, the image before the step.
    actions: integer `[B, H, W]`, indices into `action_set`.
    action_set: the action table.

  Returns:
    float32 `[B, H, W, C]`, the image after the step.
  """
  return action_set.apply(images, actions)


def _color_actions(saturation_fn, brightness_fns, saturation_name,
                   brightness_names):
  """The 13 colour actions of Table VII, in the released code's order."""
  down, up = color_ops.FACTOR_DOWN, color_ops.FACTOR_UP

  def scaled(name, fn, factor, color):
    return Action(name, functools.partial(fn, factor=factor), color)

  def channels(name, pair, factor, color):
    return Action(name, functools.partial(
        color_ops.scale_channels, channels=pair, factor=factor), color)

  return ActionSet([
      Action('do_nothing', tf.identity, (0, 0, 0)),
      scaled('contrast_x0.95', color_ops.contrast, down, (31, 119, 180)),
      scaled('contrast_x1.05', color_ops.contrast, up, (174, 199, 232)),
      scaled(f'{saturation_name}_x0.95', saturation_fn, down,
             (148, 103, 189)),
      scaled(f'{saturation_name}_x1.05', saturation_fn, up, (197, 176, 213)),
      Action(brightness_names[0], brightness_fns[0], (255, 127, 14)),
      Action(brightness_names[1], brightness_fns[1], (255, 187, 120)),
      channels('red_green_x0.95', color_ops.RED_AND_GREEN, down,
               (214, 39, 40)),
      channels('red_green_x1.05', color_ops.RED_AND_GREEN, up,
               (255, 152, 150)),
      channels('green_blue_x0.95', color_ops.GREEN_AND_BLUE, down,
               (44, 160, 44)),
      channels('green_blue_x1.05', color_ops.GREEN_AND_BLUE, up,
               (152, 223, 138)),
      channels('red_blue_x0.95', color_ops.RED_AND_BLUE, down,
               (188, 189, 34)),
      channels('red_blue_x1.05', color_ops.RED_AND_BLUE, up,
               (219, 219, 141)),
  ])


# Local colour enhancement (Table VII) on float BGR images, as the paper
# defines the actions: contrast about mid grey, HSV saturation and
# multiplicative brightness (see `color_ops`).
COLOR_ACTIONS = _color_actions(
    color_ops.saturation,
    (functools.partial(color_ops.brightness, factor=color_ops.FACTOR_DOWN),
     functools.partial(color_ops.brightness, factor=color_ops.FACTOR_UP)),
    'saturation', ('brightness_x0.95', 'brightness_x1.05'))

# The same table as the released colour code computes it: saturation scales
# HSV image row 1 (a near no-op) and brightness adds -/+0.025.
COLOR_REFERENCE_ACTIONS = _color_actions(
    color_ops.reference_saturation,
    (functools.partial(color_ops.reference_brightness,
                       step=-color_ops.REFERENCE_BRIGHTNESS_STEP),
     functools.partial(color_ops.reference_brightness,
                       step=color_ops.REFERENCE_BRIGHTNESS_STEP)),
    'saturation_row1', ('brightness_-0.025', 'brightness_+0.025'))

COLOR = 'color'
COLOR_REFERENCE = 'color_reference'
DENOISE = 'denoise'

# Named actions, for tables given as lists of names (model.json, gin).
_ACTIONS = {}
# Named tables: name -> tuple of action names, in index order.
_ACTION_SETS = {}
# Action name -> the module that registered it.
_REGISTERED_BY = {}


def register_action(action: Action, overwrite: bool = False) -> Action:
  """Makes `action` available by name to `get_action_set` and `model.json`.

  A user's action is any traceable TF function of `[B, H, W, C]` images,
  registered from their own module (see `examples/guided_filter_action.py`):

      action_set.register_action(action_set.Action(
          'guided_2_0.01', my_guided_filter, (255, 255, 0)))

  and then named in a task's action list (`make_task.action_set = [...]`).
  A model records the names and the modules that registered them, so that
  `eval`, `export` and `restore` rebuild the same table.

  Args:
    action: the `Action`.
    overwrite: replace an action already registered under the same name.

  Returns:
    `action`.

  Raises:
    ValueError: the name is taken by another function.
  """
  existing = _ACTIONS.get(action.name)
  if existing is not None and existing is not action and not overwrite:
    raise ValueError(f'an action called {action.name!r} is already '
                     'registered; choose another name')
  _ACTIONS[action.name] = action
  # The module to import before the name resolves in another process.
  _REGISTERED_BY[action.name] = sys._getframe(1).f_globals.get('__name__')  # pylint: disable=protected-access
  return action


def register_action_set(name: str, action_names: Sequence[str],
                        overwrite: bool = False) -> None:
  """Registers a named table of registered actions (in index order)."""
  if name in _ACTION_SETS and not overwrite:
    raise ValueError(f'an action set called {name!r} is already registered')
  for action_name in action_names:
    _get_action(action_name)
  _ACTION_SETS[name] = tuple(action_names)


def _get_action(name: str) -> Action:
  try:
    return _ACTIONS[name]
  except KeyError:
    raise ValueError(
        f'unknown action {name!r}; import the module that registers it '
        f'(known: {", ".join(sorted(_ACTIONS))})') from None


def action_names(spec) -> Tuple[str, ...]:
  """The action names of `spec`: a registered table name or a name list."""
  if isinstance(spec, ActionSet):
    return spec.names
  if isinstance(spec, str):
    try:
      return _ACTION_SETS[spec]
    except KeyError:
      raise ValueError(f'unknown action set {spec!r}; known: '
                       f'{", ".join(sorted(_ACTION_SETS))}') from None
  return tuple(spec)


def action_modules(spec) -> Tuple[str, ...]:
  """Modules outside this package that define the actions of `spec`."""
  modules = {_REGISTERED_BY.get(name) for name in action_names(spec)}
  return tuple(sorted(m for m in modules
                      if m and m != '__main__' and
                      not m.startswith('pixelrl_tf.')))


def get_action_set(spec) -> ActionSet:
  """The `ActionSet` of a table name (e.g. `'denoise'`) or a name list."""
  if isinstance(spec, ActionSet):
    return spec
  names = action_names(spec)
  if isinstance(spec, str) and spec in _BUILTIN_TABLES:
    return _BUILTIN_TABLES[spec]
  return ActionSet([_get_action(name) for name in names])


@gin.configurable(module='pixelrl_tf.filters')
def color_action_set(reference_code_actions=False):
  """Name of the colour action set: the paper's or the released code's.

  Args:
    reference_code_actions: True for `'color_reference'` (the released
      code's saturation and brightness), False for `'color'`.

  Returns:
    `'color'` or `'color_reference'`.
  """
  return COLOR_REFERENCE if reference_code_actions else COLOR


_BUILTIN_TABLES = {DENOISE: DENOISE_ACTIONS, COLOR: COLOR_ACTIONS,
                   COLOR_REFERENCE: COLOR_REFERENCE_ACTIONS}
for _table in _BUILTIN_TABLES.values():
  for _action in _table:
    if _ACTIONS.get(_action.name) is None:
      _ACTIONS[_action.name] = _action
for _name, _table in _BUILTIN_TABLES.items():
  _ACTION_SETS[_name] = _table.names

# The action-set ablation of Table III (denoising): basic filters; plus
# bilateral sigma_c 1.0; plus the +-1 moves; the full table is 'denoise'.
DENOISE_BASIC = ('box_5', 'median_5', 'gaussian_1.5', 'do_nothing')
register_action_set('denoise_basic', DENOISE_BASIC)
register_action_set('denoise_basic_bilateral',
                    DENOISE_BASIC + ('bilateral_1.0',))
register_action_set('denoise_basic_bilateral_moves',
                    DENOISE_BASIC + ('bilateral_1.0', 'subtract_one',
                                     'add_one'))

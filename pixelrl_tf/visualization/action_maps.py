"""Pictures of per-pixel action maps: colouring, strips, charts and files.

Every pixel of a PixelRL image is an agent that picks one action per step.
This module draws what they picked, as in the paper's figures:

  * `colorize_actions`: an action map as an RGB image, one colour per action;
  * `count_actions`: pixels per action at each step, `[T, A]`;
  * `legend`: coloured swatches with the action names;
  * `action_strip` (Fig. 4): the input and the output after each step on top,
    the colour-coded action map of each step below, and a legend;
  * `action_count_chart` (Fig. 2): a grouped bar chart of the fraction of
    pixels choosing each action at each step;
  * `write_gif` and `save_png`: atomic image-file writers.

Only numpy, OpenCV and Pillow are used (no TensorFlow), so the functions work
in notebooks and command-line tools alike. Drawings are deterministic.

Shapes: `T` steps of an episode, `H, W` height and width, `C` channels (1 gray,
3 colour), `A` number of actions. Images are float `[H, W, C]` (or `[H, W]`)
on the 0..1 scale and are clipped only for display; action maps are integer
`[H, W]` with values in `[0, A)`; palettes are uint8 `[A, 3]` RGB (such as
`ActionSet.colors`). Every picture returned is uint8 `[h, w, 3]` RGB.
"""

import io
import math
import os
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

from pixelrl_tf.io import files
from pixelrl_tf.io import images as image_io

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_TEXT_THICKNESS = 1
_WHITE = (255, 255, 255)
_TEXT_COLOR = (20, 20, 20)
_FRAME_COLOR = (190, 190, 190)
_GRID_COLOR = (225, 225, 225)
_AXIS_COLOR = (60, 60, 60)

_LEGEND_FONT_SCALE = 0.4
_LEGEND_SWATCH_SIZE = 12
_LEGEND_MARGIN = 8
_LEGEND_COLUMN_GAP = 16

_STRIP_MARGIN = 8
_STRIP_PANEL_GAP = 6
_STRIP_FONT_SCALE = 0.45
_STRIP_MIN_FONT_SCALE = 0.3
_STRIP_MIN_PANEL_WIDTH = 96
_STRIP_MIN_PANEL_HEIGHT = 32

_CHART_FONT_SCALE = 0.4
_CHART_MIN_WIDTH = 360
_CHART_MAX_BAR_WIDTH = 24


# --------------------------------------------------------------------------
# Small drawing helpers.


def _text_size(text: str, font_scale: float) -> Tuple[int, int, int]:
  """Returns `(width, height, baseline)` of `text` drawn with `_FONT`."""
  (width, height), baseline = cv2.getTextSize(
      text, _FONT, font_scale, _TEXT_THICKNESS)
  return width, height, baseline


def _put_text(canvas: np.ndarray, text: str, left: int, baseline_y: int,
              font_scale: float, color=_TEXT_COLOR) -> None:
  """Draws anti-aliased `text` in place with its baseline at `baseline_y`."""
  cv2.putText(canvas, text, (int(left), int(baseline_y)), _FONT, font_scale,
              color, _TEXT_THICKNESS, cv2.LINE_AA)


def _white_canvas(height: int, width: int) -> np.ndarray:
  return np.full((height, width, 3), 255, np.uint8)


def _check_palette(colors, num_names: Optional[int] = None) -> np.ndarray:
  """Returns `colors` as uint8 `[A, 3]`, checking its shape."""
  colors = np.asarray(colors)
  if colors.ndim != 2 or colors.shape[1] != 3 or not colors.shape[0]:
    raise ValueError(f'colors must be [A, 3] RGB, got shape {colors.shape}.')
  if num_names is not None and colors.shape[0] != num_names:
    raise ValueError(
        f'Got {num_names} action names but {colors.shape[0]} colours.')
  return colors.astype(np.uint8)


def _to_display_rgb(image, bgr: bool = False) -> np.ndarray:
  """Float 0..1 `[H, W]`, `[H, W, 1]` or `[H, W, 3]` -> uint8 `[H, W, 3]` RGB.

  Values are clipped to [0, 1] and rounded to the nearest 1/255.
  """
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  if image.ndim == 2:
    image = np.repeat(image[..., np.newaxis], 3, axis=-1)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(
        f'Expected an image [H, W], [H, W, 1] or [H, W, 3], got shape '
        f'{image.shape}.')
  if image.dtype == np.uint8:
    rgb = image.copy()
  else:
    rgb = image_io.quantize_uint8(image.astype(np.float32))
  return rgb[..., ::-1].copy() if bgr else rgb


def _upscale_nearest(image: np.ndarray, factor: int) -> np.ndarray:
  if factor == 1:
    return image
  return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def _paste(canvas: np.ndarray, image: np.ndarray, top: int, left: int) -> None:
  """Copies `image` into `canvas` with a one-pixel frame around it."""
  height, width = image.shape[:2]
  cv2.rectangle(canvas, (left - 1, top - 1), (left + width, top + height),
                _FRAME_COLOR, 1)
  canvas[top:top + height, left:left + width] = image


def _fit_font_scale(texts: Sequence[str], max_width: int, font_scale: float,
                    min_font_scale: float) -> float:
  """Shrinks `font_scale` until the widest of `texts` fits `max_width`."""
  widest = max(_text_size(text, font_scale)[0] for text in texts)
  if widest <= max_width:
    return font_scale
  return max(min_font_scale, font_scale * max_width / widest)


# --------------------------------------------------------------------------
# Public API.


def colorize_actions(actions, colors) -> np.ndarray:
  """Colours an action map with one palette entry per action.

  Args:
    actions: integer `[H, W]` (any leading dimensions are kept) with values in
      `[0, A)`.
    colors: uint8 `[A, 3]` RGB palette, e.g. `ActionSet.colors`.

  Returns:
    uint8 `[H, W, 3]` RGB: pixel `(i, j)` is `colors[actions[i, j]]`.

  Raises:
    ValueError: on a non-integer map, a bad palette or a value outside
      `[0, A)`.
  """
  colors = _check_palette(colors)
  actions = np.asarray(actions)
  if not np.issubdtype(actions.dtype, np.integer):
    raise ValueError(f'Action maps must be integer, got {actions.dtype}.')
  if actions.size and (actions.min() < 0 or actions.max() >= len(colors)):
    raise ValueError(
        f'Action values must be in [0, {len(colors)}), got '
        f'{actions.min()}..{actions.max()}.')
  return colors[actions]


def count_actions(action_maps, num_actions: int) -> np.ndarray:
  """Counts how many pixels chose each action at each step.

  Args:
    action_maps: integer `[T, ...]` (e.g. `[T, H, W]` or `[T, B, H, W]`) with
      values in `[0, A)`.
    num_actions: `A`.

  Returns:
    int64 `[T, A]`: entry `(t, a)` is the number of pixels of step `t` that
    chose action `a`.

  Raises:
    ValueError: on a non-integer map or a value outside `[0, A)`.
  """
  action_maps = np.asarray(action_maps)
  if not np.issubdtype(action_maps.dtype, np.integer):
    raise ValueError(f'Action maps must be integer, got {action_maps.dtype}.')
  if action_maps.ndim < 1:
    raise ValueError('Action maps need a leading step dimension T.')
  if action_maps.size and (action_maps.min() < 0 or
                           action_maps.max() >= num_actions):
    raise ValueError(
        f'Action values must be in [0, {num_actions}), got '
        f'{action_maps.min()}..{action_maps.max()}.')
  per_step = action_maps.reshape(
      action_maps.shape[0], int(np.prod(action_maps.shape[1:]))).astype(
          np.int64)
  counts = np.zeros((len(per_step), num_actions), np.int64)
  for step, step_actions in enumerate(per_step):
    counts[step] = np.bincount(step_actions, minlength=num_actions)
  return counts


def legend(action_names: Sequence[str], colors,
           width: Optional[int] = None) -> np.ndarray:
  """Draws coloured swatches with the action names on a white background.

  Entries are laid out on a grid of equal columns, in index order along the
  rows, as many columns as fit `width`.

  Args:
    action_names: the `A` names, e.g. `ActionSet.names`.
    colors: uint8 `[A, 3]` RGB palette.
    width: width of the picture in pixels; `None` puts every entry on one
      row. A name wider than `width` is cut at the right edge.

  Returns:
    uint8 `[h, width, 3]` RGB.
  """
  action_names = [str(name) for name in action_names]
  colors = _check_palette(colors, len(action_names))
  font_scale = _LEGEND_FONT_SCALE
  swatch = _LEGEND_SWATCH_SIZE
  text_sizes = [_text_size(name, font_scale) for name in action_names]
  text_height = max(size[1] for size in text_sizes)
  text_depth = max(size[2] for size in text_sizes)
  entry_width = swatch + 5 + max(size[0] for size in text_sizes)
  row_height = max(swatch, text_height + text_depth) + 6
  num_entries = len(action_names)

  if width is None:
    num_columns = num_entries
    width = (2 * _LEGEND_MARGIN + num_columns * entry_width +
             (num_columns - 1) * _LEGEND_COLUMN_GAP)
  else:
    width = int(width)
    if width < 1:
      raise ValueError(f'width must be positive, got {width}.')
    num_columns = (width - 2 * _LEGEND_MARGIN + _LEGEND_COLUMN_GAP) // (
        entry_width + _LEGEND_COLUMN_GAP)
    num_columns = int(min(num_entries, max(1, num_columns)))
  num_rows = math.ceil(num_entries / num_columns)
  height = 2 * _LEGEND_MARGIN + num_rows * row_height - 6
  canvas = _white_canvas(height, width)

  # Centre the grid when it is narrower than the picture.
  grid_width = (num_columns * entry_width +
                (num_columns - 1) * _LEGEND_COLUMN_GAP)
  grid_left = max(_LEGEND_MARGIN, (width - grid_width) // 2)
  for index, (name, color) in enumerate(zip(action_names, colors)):
    row, column = divmod(index, num_columns)
    left = grid_left + column * (entry_width + _LEGEND_COLUMN_GAP)
    top = _LEGEND_MARGIN + row * row_height
    centre_y = top + (row_height - 6) // 2
    swatch_top = centre_y - swatch // 2
    canvas[swatch_top:swatch_top + swatch, left:left + swatch] = color
    cv2.rectangle(canvas, (left, swatch_top),
                  (left + swatch - 1, swatch_top + swatch - 1),
                  _FRAME_COLOR, 1)
    _put_text(canvas, name, left + swatch + 5, centre_y + text_height // 2,
              font_scale)
  return canvas


def action_strip(images, action_maps, action_names: Sequence[str], colors,
                 titles: Optional[Sequence[str]] = None, *,
                 bgr: bool = False) -> np.ndarray:
  """Draws an episode as the paper's Fig. 4: images on top, actions below.

  The top row holds the input image and then the output after each step;
  under the output of step `t` is the colour-coded action map that produced
  it. Captions ("input", "t=1", ...) sit above the top row, a legend of the
  actions below everything. Small images are enlarged by an integer factor
  with nearest-neighbour sampling so that captions fit (panels at least 96
  pixels wide and 32 high); large ones are kept at their size.

  Args:
    images: `T + 1` float images `[H, W, C]` (or `[H, W]`) on 0..1, the input
      then the output after each step; a `[T + 1, H, W, C]` array works too.
      Values are clipped for display.
    action_maps: `T` integer maps `[H, W]` (or a `[T, H, W]` array), the
      actions of each step.
    action_names: the `A` action names.
    colors: uint8 `[A, 3]` RGB palette.
    titles: `T + 1` captions for the columns; default `input, t=1, ..., t=T`.
    bgr: colour images are in OpenCV's BGR order (the picture is RGB).

  Returns:
    uint8 `[h, w, 3]` RGB.

  Raises:
    ValueError: if the counts or sizes of images and maps do not match.
  """
  colors = _check_palette(colors, len(action_names))
  images = [_to_display_rgb(image, bgr) for image in images]
  action_maps = [np.asarray(action_map) for action_map in action_maps]
  num_steps = len(action_maps)
  if len(images) != num_steps + 1:
    raise ValueError(
        f'Need T + 1 images (input and one output per step) for T = '
        f'{num_steps} action maps, got {len(images)} images.')
  height, width = images[0].shape[:2]
  for image in images:
    if image.shape[:2] != (height, width):
      raise ValueError(
          f'All images must be {height}x{width}, got {image.shape[:2]}.')
  for action_map in action_maps:
    if action_map.shape != (height, width):
      raise ValueError(
          f'Action maps must be [H, W] = {(height, width)}, got '
          f'{action_map.shape}.')
  if titles is None:
    titles = ['input'] + [f't={step}' for step in range(1, num_steps + 1)]
  titles = [str(title) for title in titles]
  if len(titles) != num_steps + 1:
    raise ValueError(f'Need {num_steps + 1} titles, got {len(titles)}.')

  factor = max(1, math.ceil(_STRIP_MIN_PANEL_WIDTH / width),
               math.ceil(_STRIP_MIN_PANEL_HEIGHT / height))
  panel_height, panel_width = height * factor, width * factor
  map_label = 'actions'
  font_scale = _fit_font_scale(titles + [map_label], panel_width,
                               _STRIP_FONT_SCALE, _STRIP_MIN_FONT_SCALE)
  text_height = max(_text_size(title, font_scale)[1] for title in titles)
  caption_height = text_height + 10

  num_columns = num_steps + 1
  strip_width = (2 * _STRIP_MARGIN + num_columns * panel_width +
                 (num_columns - 1) * _STRIP_PANEL_GAP)
  top_row_y = _STRIP_MARGIN + caption_height
  bottom_row_y = top_row_y + panel_height + _STRIP_PANEL_GAP
  strip_height = bottom_row_y + panel_height + _STRIP_MARGIN
  canvas = _white_canvas(strip_height, strip_width)

  def column_left(column):
    return _STRIP_MARGIN + column * (panel_width + _STRIP_PANEL_GAP)

  for column, (image, title) in enumerate(zip(images, titles)):
    left = column_left(column)
    _paste(canvas, _upscale_nearest(image, factor), top_row_y, left)
    title_width = _text_size(title, font_scale)[0]
    _put_text(canvas, title, left + max(0, (panel_width - title_width) // 2),
              top_row_y - 6, font_scale)
  for step, action_map in enumerate(action_maps, start=1):
    colored = colorize_actions(action_map, colors)
    _paste(canvas, _upscale_nearest(colored, factor), bottom_row_y,
           column_left(step))
  # The cell under the input names the row.
  label_width, label_height, _ = _text_size(map_label, font_scale)
  _put_text(canvas, map_label,
            column_left(0) + max(0, (panel_width - label_width) // 2),
            bottom_row_y + (panel_height + label_height) // 2, font_scale)

  return np.concatenate(
      [canvas, legend(action_names, colors, width=strip_width)], axis=0)


def _nice_axis_top(max_fraction: float) -> Tuple[float, float]:
  """Returns `(axis_top, tick_step)` for fractions up to `max_fraction`."""
  tick_step = 0.1 if max_fraction <= 0.5 + 1e-9 else 0.2
  axis_top = tick_step * max(1, math.ceil(max_fraction / tick_step - 1e-9))
  return min(axis_top, 1.0), tick_step


def action_count_chart(action_counts, action_names: Sequence[str], colors,
                       height: int = 240) -> np.ndarray:
  """Draws the paper's Fig. 2: fraction of pixels per action at each step.

  One group of bars per step, one bar per action (coloured by action) whose
  height is the fraction of that step's pixels choosing the action. The y
  axis runs from 0 to the largest fraction rounded up to a tick (0.1 steps up
  to 0.5, then 0.2 steps), with light grid lines at the ticks. A legend sits
  below the chart.

  Args:
    action_counts: `[T, A]` counts (or fractions) of pixels per action at each
      step; each row is normalised by its sum (an all-zero row draws no bars).
    action_names: the `A` action names.
    colors: uint8 `[A, 3]` RGB palette.
    height: height in pixels of the chart above the legend (title, bars and
      axis labels), at least 120.

  Returns:
    uint8 `[h, w, 3]` RGB.

  Raises:
    ValueError: on mismatched shapes, negative counts or a too small height.
  """
  colors = _check_palette(colors, len(action_names))
  action_counts = np.asarray(action_counts, np.float64)
  if action_counts.ndim != 2 or action_counts.shape[1] != len(action_names):
    raise ValueError(
        f'action_counts must be [T, A] with A = {len(action_names)}, got '
        f'shape {action_counts.shape}.')
  if (action_counts < 0).any():
    raise ValueError('action_counts must not be negative.')
  height = int(height)
  if height < 120:
    raise ValueError(f'height must be at least 120, got {height}.')
  num_steps, num_actions = action_counts.shape
  totals = action_counts.sum(axis=1, keepdims=True)
  fractions = np.divide(action_counts, totals,
                        out=np.zeros_like(action_counts), where=totals > 0)
  axis_top, tick_step = _nice_axis_top(
      float(fractions.max()) if fractions.size else 0.0)
  num_ticks = int(round(axis_top / tick_step))

  font_scale = _CHART_FONT_SCALE
  _, text_height, text_depth = _text_size('0.0', font_scale)
  title = 'fraction of pixels choosing each action'
  y_label = 'fraction of pixels'
  tick_labels = [f'{tick * tick_step:.1f}' for tick in range(num_ticks + 1)]
  step_labels = [f't={step}' for step in range(1, num_steps + 1)]
  tick_label_width = max(_text_size(label, font_scale)[0]
                         for label in tick_labels)

  # Horizontal layout: y label (rotated), tick labels, plot, right margin.
  y_label_band = text_height + text_depth + 8
  plot_left = 8 + y_label_band + tick_label_width + 8
  group_gap = 14
  bar_width = max(4, min(14, 96 // num_actions))
  step_label_width = max([_text_size(label, font_scale)[0]
                          for label in step_labels] + [0])
  bar_width = max(bar_width,
                  math.ceil((step_label_width + 2 - group_gap) /
                            max(1, num_actions)))
  min_plot_width = _CHART_MIN_WIDTH - plot_left - 12
  stretched = (min_plot_width - (num_steps + 1) * group_gap) // max(
      1, num_steps * num_actions)
  bar_width = int(min(max(bar_width, stretched), _CHART_MAX_BAR_WIDTH))
  group_width = num_actions * bar_width
  plot_width = num_steps * group_width + (num_steps + 1) * group_gap
  chart_width = max(_CHART_MIN_WIDTH, plot_left + plot_width + 12)
  # Centre the axes when the minimum width leaves room.
  left_shift = (chart_width - (plot_left + plot_width + 12)) // 2
  plot_left += left_shift

  # Vertical layout: title, plot, step labels.
  plot_top = 8 + text_height + text_depth + 12
  plot_bottom = height - (text_height + text_depth + 14)  # The x axis row.
  plot_height = plot_bottom - plot_top
  canvas = _white_canvas(height, chart_width)

  title_width = _text_size(title, font_scale)[0]
  _put_text(canvas, title, max(8, (chart_width - title_width) // 2),
            8 + text_height, font_scale)

  for tick, label in enumerate(tick_labels):
    y = plot_bottom - int(round(tick * tick_step / axis_top * plot_height))
    if tick:
      cv2.line(canvas, (plot_left + 1, y), (plot_left + plot_width, y),
               _GRID_COLOR, 1)
    cv2.line(canvas, (plot_left - 4, y), (plot_left, y), _AXIS_COLOR, 1)
    label_width = _text_size(label, font_scale)[0]
    _put_text(canvas, label, plot_left - 6 - label_width,
              y + text_height // 2, font_scale)

  for step in range(num_steps):
    group_left = plot_left + group_gap + step * (group_width + group_gap)
    for action in range(num_actions):
      bar_height = int(round(
          fractions[step, action] / axis_top * plot_height))
      if bar_height <= 0:
        continue
      left = group_left + action * bar_width
      # A one-pixel white gap keeps neighbouring bars apart.
      canvas[plot_bottom - bar_height:plot_bottom,
             left:left + bar_width - 1] = colors[action]
    label = step_labels[step]
    label_width = _text_size(label, font_scale)[0]
    _put_text(canvas, label, group_left + (group_width - label_width) // 2,
              plot_bottom + 8 + text_height, font_scale)

  # Axes.
  cv2.line(canvas, (plot_left, plot_top - 4), (plot_left, plot_bottom),
           _AXIS_COLOR, 1)
  cv2.line(canvas, (plot_left, plot_bottom),
           (plot_left + plot_width, plot_bottom), _AXIS_COLOR, 1)

  # The y label, drawn horizontally then turned a quarter anticlockwise.
  y_label_width = _text_size(y_label, font_scale)[0]
  label_image = _white_canvas(y_label_band, y_label_width + 2)
  _put_text(label_image, y_label, 1, text_height + 4, font_scale)
  label_image = np.rot90(label_image)
  label_top = plot_top + max(0, (plot_height - label_image.shape[0]) // 2)
  label_rows = min(label_image.shape[0], height - label_top)
  label_left = 8 + left_shift
  canvas[label_top:label_top + label_rows,
         label_left:label_left + y_label_band] = (
      label_image[:label_rows])

  return np.concatenate(
      [canvas, legend(action_names, colors, width=chart_width)], axis=0)


def _check_uint8_frame(frame) -> np.ndarray:
  frame = np.asarray(frame)
  if frame.dtype != np.uint8:
    raise ValueError(f'Frames must be uint8, got {frame.dtype}.')
  if frame.ndim == 3 and frame.shape[-1] == 1:
    frame = frame[..., 0]
  if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[-1] != 3):
    raise ValueError(
        f'Frames must be [H, W], [H, W, 1] or [H, W, 3], got {frame.shape}.')
  return frame


def write_gif(frames, path, duration_ms: int = 600) -> None:
  """Writes an animated GIF that loops forever, atomically.

  Identical consecutive frames are merged by Pillow into one longer frame.

  Args:
    frames: uint8 `[H, W, 3]` RGB (or `[H, W]` gray) frames of one size.
    path: the `.gif` file to write; parent folders are created.
    duration_ms: display time of each frame in milliseconds.

  Raises:
    ValueError: on no frames, non-uint8 frames or frames of different sizes.
    OSError: (one line) the file cannot be written; a previous file is
      unchanged.
  """
  frames = [_check_uint8_frame(frame) for frame in frames]
  if not frames:
    raise ValueError('write_gif needs at least one frame.')
  size = frames[0].shape[:2]
  if any(frame.shape[:2] != size for frame in frames):
    raise ValueError('All GIF frames must have the same height and width.')
  pictures = [Image.fromarray(frame).convert('RGB') for frame in frames]
  buffer = io.BytesIO()
  pictures[0].save(buffer, format='GIF', save_all=True,
                   append_images=pictures[1:], duration=int(duration_ms),
                   loop=0)
  files.write_bytes_atomically(path, buffer.getvalue())


def save_png(image, path) -> None:
  """Writes a uint8 RGB (or gray) image as a PNG file, atomically.

  Args:
    image: uint8 `[H, W, 3]` RGB, or `[H, W]` / `[H, W, 1]` gray. Float images
      on 0..1 are clipped and rounded to 8 bits first.
    path: the `.png` file to write; parent folders are created.

  Raises:
    ValueError: on an unsupported shape, or if encoding fails.
    OSError: (one line) the file cannot be written; a previous file is
      unchanged.
  """
  # Always a PNG, whatever the suffix of `path`.
  files.write_bytes_atomically(path, png_bytes(image, name=os.fspath(path)))


def png_bytes(image, name: Optional[str] = None) -> bytes:
  """The PNG file `save_png` writes, as bytes (see `save_png`).

  Args:
    image: as `save_png`.
    name: how messages name the target.
  """
  image = np.asarray(image)
  if image.dtype != np.uint8:
    image = _to_display_rgb(image)
  image = _check_uint8_frame(image)
  return image_io.encode_image(image, '.png', name=name)

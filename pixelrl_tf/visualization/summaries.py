"""TensorBoard summaries of PixelRL episodes and of the reward map kernel.

The functions write TF2 `tf.summary` records to the default writer (wrap the
calls in `with writer.as_default():`) at an explicit `step`, and run eagerly:
pictures are drawn with numpy and OpenCV (`action_maps`). `read_scalars`
reads the scalars of a run back from its event files (for notebooks and
reports).

Tags:
  * `Images/<prefix>/input`, `Images/<prefix>/output_t<k>`: the input (noisy)
    image and the output after each step `k`;
  * `Images/<prefix>/action_strip`: per example, the paper's Fig. 4 layout
    (images, colour-coded action maps, legend);
  * `Images/<prefix>/action_counts`: the paper's Fig. 2 bar chart of the
    fraction of pixels choosing each action at each step (whole batch);
  * `Images/reward_map_kernel`, `Metrics/reward_map_centre`,
    `Metrics/reward_map_sum`: the learnt reward map kernel.
With an empty prefix the tags are `Images/input`, ..., `Images/action_counts`.

Shapes: `T` steps, `B` batch, `H, W` height and width, `C` channels, `A`
number of actions. Episodes are time-major: images `[T + 1, B, H, W, C]`
(the input then the output after each step), action maps `[T, B, H, W]`.
"""

import os
from typing import Dict, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import tensorflow as tf

from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.visualization import action_maps as action_maps_lib

_IMAGES = 'Images'
_KERNEL_SCALE = 8


def write_scalars(scalars: Mapping[str, float], step: int,
                  prefix: str = '') -> None:
  """Writes one scalar summary per entry.

  Args:
    scalars: tag -> value, e.g. `{'Metrics/psnr': 29.1}`.
    step: the global step.
    prefix: prepended to every tag, e.g. `'Metrics/'`.
  """
  for tag, value in scalars.items():
    tf.summary.scalar(f'{prefix}{tag}', float(value), step=step)


def read_scalars(log_dir) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
  """Reads back the scalar summaries of a TensorBoard log folder.

  Reads every `events.out.tfevents.*` file directly in `log_dir` (e.g. a
  run's `train/` or `eval/` folder) in name order, that is in the order they
  were written; when a step was written twice (a resumed run) the later
  value wins. Image and other non-scalar summaries are skipped.

  Args:
    log_dir: the folder of the event files.

  Returns:
    tag -> `(steps, values)`: int64 `[N]` steps in increasing order and their
    float64 `[N]` values. Empty if the folder holds no event file.
  """
  by_tag = {}
  pattern = os.path.join(os.fspath(log_dir), 'events.out.tfevents.*')
  for path in sorted(tf.io.gfile.glob(pattern)):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        if value.HasField('simple_value'):
          number = value.simple_value
        elif value.metadata.plugin_data.plugin_name == 'scalars':
          number = tf.make_ndarray(value.tensor)
        else:
          continue
        by_tag.setdefault(value.tag, {})[int(event.step)] = float(number)
  return {tag: (np.array(sorted(steps), np.int64),
                np.array([steps[s] for s in sorted(steps)], np.float64))
          for tag, steps in by_tag.items()}


def action_fractions(action_maps, num_actions: int) -> np.ndarray:
  """Fraction of pixels choosing each action at each step.

  Args:
    action_maps: integer `[T, ...]`, e.g. `[T, B, H, W]` or `[T, H, W]`, with
      values in `[0, A)`.
    num_actions: `A`.

  Returns:
    float64 `[T, A]`; each row sums to 1 (0 for a step without pixels).
  """
  counts = action_maps_lib.count_actions(action_maps, num_actions)
  totals = counts.sum(axis=1, keepdims=True)
  return np.divide(counts, totals, out=np.zeros(counts.shape),
                   where=totals > 0)


def format_action_fractions(fractions, action_names: Sequence[str]) -> str:
  """Formats `[T, A]` fractions as one text line per step, for logs.

  Example line: `t=1: subtract_one 4.2%, do_nothing 41.0%, ...` (actions in
  index order, as percentages of the step's pixels).
  """
  fractions = np.asarray(fractions)
  lines = []
  for step, row in enumerate(fractions, start=1):
    entries = ', '.join(f'{name} {100.0 * value:.1f}%'
                        for name, value in zip(action_names, row))
    lines.append(f't={step}: {entries}')
  return '\n'.join(lines)


def _image_tag(tag_prefix: str, name: str) -> str:
  parts = [part for part in str(tag_prefix).split('/') if part]
  if parts and parts[0] == _IMAGES:
    parts = parts[1:]
  return '/'.join([_IMAGES] + parts + [name])


def write_episode_images(tag_prefix: str, images_per_step, action_maps,
                         action_set: action_set_lib.ActionSet, step: int,
                         max_outputs: int = 3, *, bgr: bool = False) -> None:
  """Writes an episode's images, action maps and action counts.

  Writes, under `Images/<tag_prefix>/` (see the module docstring): `input`,
  `output_t1` .. `output_tT` and `action_strip` for the first `max_outputs`
  examples, and `action_counts` computed from the whole batch.

  Args:
    tag_prefix: distinguishes episodes, e.g. `'train'` or `'eval'`; may be
      empty. A leading `Images/` is not repeated.
    images_per_step: float `[T + 1, B, H, W, C]` on 0..1 (or a sequence of
      `T + 1` arrays `[B, H, W, C]`): the input, then the output after each
      step. Clipped for display.
    action_maps: integer `[T, B, H, W]`, the actions of each step.
    action_set: the action table (names and colours).
    step: the global step.
    max_outputs: how many examples to draw.
    bgr: colour images are in OpenCV's BGR order.

  Raises:
    ValueError: if the shapes of images and maps do not match.
  """
  images_per_step = np.stack(
      [np.asarray(images, np.float32) for images in images_per_step])
  action_maps = np.asarray(action_maps)
  if images_per_step.ndim != 5:
    raise ValueError(
        f'images_per_step must be [T + 1, B, H, W, C], got shape '
        f'{images_per_step.shape}.')
  num_steps = images_per_step.shape[0] - 1
  if action_maps.shape != (num_steps,) + images_per_step.shape[1:4]:
    raise ValueError(
        f'action_maps must be [T, B, H, W] = '
        f'{(num_steps,) + images_per_step.shape[1:4]}, got '
        f'{action_maps.shape}.')
  num_examples = min(max(0, int(max_outputs)), images_per_step.shape[1])

  if num_examples:
    display = np.clip(images_per_step[:, :num_examples], 0.0, 1.0)
    if bgr and display.shape[-1] == 3:
      display = display[..., ::-1]
    tf.summary.image(_image_tag(tag_prefix, 'input'), display[0], step=step,
                     max_outputs=num_examples)
    for time in range(1, num_steps + 1):
      tf.summary.image(_image_tag(tag_prefix, f'output_t{time}'),
                       display[time], step=step, max_outputs=num_examples)
  if not num_steps:
    return
  if num_examples:
    strips = np.stack([
        action_maps_lib.action_strip(
            images_per_step[:, example], action_maps[:, example],
            action_set.names, action_set.colors, bgr=bgr)
        for example in range(num_examples)
    ])
    tf.summary.image(_image_tag(tag_prefix, 'action_strip'), strips,
                     step=step, max_outputs=num_examples)
  counts = action_maps_lib.count_actions(action_maps, action_set.num_actions)
  chart = action_maps_lib.action_count_chart(counts, action_set.names,
                                             action_set.colors)
  tf.summary.image(_image_tag(tag_prefix, 'action_counts'), chart[np.newaxis],
                   step=step, max_outputs=1)


def kernel_heat_map(kernel, scale: int = _KERNEL_SCALE,
                    value_range: Optional[float] = None) -> np.ndarray:
  """Draws a 2-D kernel as a blue-white-red heat map with a colour bar.

  The colour scale is symmetric around 0: white is 0, full red `+v`, full
  blue `-v`, with `v` the largest absolute weight (or `value_range`). Each
  weight becomes a `scale x scale` block. Below the map a colour bar is
  labelled `-v`, `0` and `+v`.

  Args:
    kernel: float `[kh, kw]` (size-1 dimensions, e.g. of a `[kh, kw, 1, 1]`
      convolution kernel, are dropped).
    scale: enlargement factor (nearest neighbour).
    value_range: `v`; default the largest absolute weight (1 if all are 0).

  Returns:
    uint8 `[h, w, 3]` RGB.
  """
  kernel = np.asarray(kernel, np.float64)
  kernel = kernel.reshape([size for size in kernel.shape if size != 1] or [1])
  if kernel.ndim == 1:
    kernel = kernel[np.newaxis]
  if kernel.ndim != 2:
    raise ValueError(f'Expected a 2-D kernel, got shape {kernel.shape}.')
  if value_range is None:
    value_range = float(np.abs(kernel).max()) if kernel.size else 0.0
  value_range = value_range if value_range > 0 else 1.0

  def to_rgb(values):
    values = np.clip(values / value_range, -1.0, 1.0)[..., np.newaxis]
    white = np.array([255.0, 255.0, 255.0])
    red = np.array([178.0, 24.0, 43.0])
    blue = np.array([33.0, 102.0, 172.0])
    rgb = np.where(values >= 0, white + values * (red - white),
                   white - values * (blue - white))
    return np.round(rgb).astype(np.uint8)

  scale = max(1, int(scale))
  heat = np.repeat(np.repeat(to_rgb(kernel), scale, axis=0), scale, axis=1)
  height, width = heat.shape[:2]
  margin, bar_height = 8, 10
  font_scale = 0.4
  (_, text_height), _ = cv2.getTextSize('0', cv2.FONT_HERSHEY_SIMPLEX,
                                        font_scale, 1)
  canvas_width = max(width, 160) + 2 * margin
  canvas_height = (margin + height + 8 + bar_height + 6 + text_height +
                   margin)
  canvas = np.full((canvas_height, canvas_width, 3), 255, np.uint8)
  left = (canvas_width - width) // 2
  canvas[margin:margin + height, left:left + width] = heat
  cv2.rectangle(canvas, (left - 1, margin - 1), (left + width, margin + height),
                (190, 190, 190), 1)

  bar_top = margin + height + 8
  bar_width = canvas_width - 2 * margin
  ramp = np.linspace(-value_range, value_range, bar_width)
  canvas[bar_top:bar_top + bar_height, margin:margin + bar_width] = (
      to_rgb(ramp)[np.newaxis])
  labels = [(f'{-value_range:.3g}', 0.0), ('0', 0.5),
            (f'{value_range:.3g}', 1.0)]
  for text, position in labels:
    (text_width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX,
                                         font_scale, 1)
    x = margin + int(position * (bar_width - 1)) - int(position * text_width)
    cv2.putText(canvas, text, (x, bar_top + bar_height + 6 + text_height),
                cv2.FONT_HERSHEY_SIMPLEX, font_scale, (20, 20, 20), 1,
                cv2.LINE_AA)
  return canvas


def write_reward_map_kernel(kernel, step: int) -> None:
  """Writes the reward map kernel as a heat map and two scalars.

  Writes `Images/reward_map_kernel` (see `kernel_heat_map`; symmetric colour
  scale around 0), `Metrics/reward_map_centre` (the centre weight; 1 at the
  identity initialisation) and `Metrics/reward_map_sum` (sum of the weights).

  Args:
    kernel: float `[kh, kw]` (e.g. 33x33), or a `[kh, kw, 1, 1]` convolution
      kernel; a variable or tensor works too.
    step: the global step.
  """
  kernel = np.asarray(kernel, np.float64)
  kernel = kernel.reshape(kernel.shape[:2]) if kernel.ndim > 2 else kernel
  if kernel.ndim != 2:
    raise ValueError(f'Expected a 2-D kernel, got shape {kernel.shape}.')
  tf.summary.image('Images/reward_map_kernel',
                   kernel_heat_map(kernel)[np.newaxis], step=step,
                   max_outputs=1)
  write_reward_map_scalars(kernel, step)


def write_reward_map_scalars(kernel, step: int) -> None:
  """Writes `Metrics/reward_map_centre` and `Metrics/reward_map_sum`.

  Args:
    kernel: as for `write_reward_map_kernel`.
    step: the global step.
  """
  kernel = np.asarray(kernel, np.float64)
  kernel = kernel.reshape(kernel.shape[:2]) if kernel.ndim > 2 else kernel
  height, width = kernel.shape
  tf.summary.scalar('Metrics/reward_map_centre',
                    float(kernel[height // 2, width // 2]), step=step)
  tf.summary.scalar('Metrics/reward_map_sum', float(kernel.sum()), step=step)

"""Applies a PixelRL model to image files of any size.

Shapes: `T` steps, `H, W` height and width, `C` channels of the model, `A`
actions.

The model is an exported SavedModel (`EXPORT_BASE/NAME/VERSION`, or
`EXPORT_BASE/NAME` for its latest version) or a run directory / checkpoint,
which is wrapped in the same `RestorationModule` in process. Images are read
with OpenCV (colour in BGR order, as the reference code), scaled to 0..1
(8-bit by 255, 16-bit by 65535) and converted to the model's channels when
needed (colour -> gray with `cv2.cvtColor`, gray -> colour by repetition,
alpha dropped), with a printed note. Large images are restored in overlapping
tiles with exactly the untiled result (`serving.tiling`).

For every input `DIR/x.ext` the output folder gets `x.png`, the restored
image (clipped and rounded with the official protocol), and with
`save_actions` also `x_actions.png` (the paper's Fig. 4: the image after
each step above the colour-coded action map of that step, and a legend) and
`x_actions.gif` (one frame per step: image before, image after, action
map).
"""

import os
from typing import Callable, List, Optional

import cv2
import numpy as np
import tensorflow as tf

from pixelrl_tf.serving import restoration_module
from pixelrl_tf.serving import tiling
from pixelrl_tf.jobs import model_io
from pixelrl_tf.visualization import action_maps

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp',
                    '.pgm', '.ppm', '.pbm')
DEFAULT_TILE_SIZE = 512
ACTIONS_SUFFIX = '_actions'


class RestoreError(Exception):
  """A problem with the inputs of `restore_files`, with a one-line message."""


def _is_saved_model(path):
  return os.path.isfile(os.path.join(path, 'saved_model.pb'))


def _latest_version_dir(path):
  versions = [name for name in os.listdir(path) if name.isdigit() and
              _is_saved_model(os.path.join(path, name))]
  if not versions:
    return None
  return os.path.join(path, max(versions, key=int))


def _restorer_from_saved_model(path):
  try:
    return restoration_module.restorer_from_saved_model(path)
  except ValueError as error:
    raise RestoreError(str(error)) from None


def restorer_from_run(path, t_max=None, jit_compile=False,
                      dtype_policy=None):
  """The `Restorer` of a run directory or checkpoint (in process).

  Args:
    path: run directory, checkpoint prefix or `RUN/best`.
    t_max: restoration steps (None: the model's).
    jit_compile: compile the restoration loop with XLA.
    dtype_policy: Keras dtype policy of the network (e.g.
      `'mixed_bfloat16'`).

  Returns:
    `(config, Restorer)`.
  """
  config, network, _ = model_io.load_model(path, dtype_policy=dtype_policy)
  module = restoration_module.RestorationModule(
      network, config.get_action_set(), t_max or config.t_max,
      jit_compile=jit_compile)
  return config, restoration_module.restorer_from_module(
      module, description=f'{config.variant} model of {path}')


def _restorer_from_run(path):
  return restorer_from_run(path)[1]


def load_restorer(path):
  """Loads a SavedModel, a served model's folder, a run dir or a checkpoint.

  Args:
    path: `EXPORT_BASE/NAME/VERSION` (a SavedModel), `EXPORT_BASE/NAME`
      (its largest version), a run directory or a checkpoint prefix.

  Returns:
    A `Restorer`.

  Raises:
    RestoreError: if nothing loadable is at `path`.
  """
  if os.path.isdir(path):
    if _is_saved_model(path):
      return _restorer_from_saved_model(path)
    if os.path.isfile(os.path.join(path, model_io.MODEL_CONFIG_FILE)):
      return _restorer_from_run(path)
    latest = _latest_version_dir(path)
    if latest is not None:
      return _restorer_from_saved_model(latest)
    raise RestoreError(
        f'{path} holds no SavedModel (saved_model.pb), no version folder '
        f'and no run ({model_io.MODEL_CONFIG_FILE})')
  if os.path.isfile(path + '.index'):
    return _restorer_from_run(path)
  raise RestoreError(f'model {path} does not exist')


def find_images(input_path):
  """The image files to restore: `input_path` itself or those in a folder.

  Raises:
    RestoreError: if the path is missing, or a folder holds no image.
  """
  if os.path.isfile(input_path):
    return [input_path]
  if not os.path.isdir(input_path):
    raise RestoreError(f'input {input_path} does not exist')
  paths = sorted(
      os.path.join(input_path, name) for name in os.listdir(input_path)
      if name.lower().endswith(IMAGE_EXTENSIONS) and
      os.path.isfile(os.path.join(input_path, name)))
  if not paths:
    raise RestoreError(f'no image files ({", ".join(IMAGE_EXTENSIONS)}) in '
                       f'{input_path}')
  return paths


def read_image(path):
  """Reads an image file as float32 `[H,W,C]` on 0..1 (BGR for colour).

  Returns:
    `(image, notes)`: `C` is 1 or 3 (an alpha channel is dropped, with a
    note).

  Raises:
    RestoreError: if the file cannot be decoded.
  """
  image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
  if image is None or image.size == 0:
    raise RestoreError(f'cannot read {path} as an image (missing, corrupt or '
                       'an unsupported format)')
  notes = []
  if image.dtype == np.uint8:
    scale = 255.0
  elif image.dtype == np.uint16:
    scale = 65535.0
  else:
    raise RestoreError(f'{path}: unsupported pixel type {image.dtype} '
                       '(8- or 16-bit images only)')
  if image.ndim == 2:
    image = image[..., None]
  if image.shape[-1] == 4:
    image = image[..., :3]
    notes.append('dropped the alpha channel')
  elif image.shape[-1] == 2:
    image = image[..., :1]
    notes.append('dropped the alpha channel')
  return image.astype(np.float32) / np.float32(scale), notes


def convert_channels(image, channels):
  """Converts `[H,W,C]` BGR/gray to the model's `channels`.

  Returns:
    `(image [H,W,channels], note or None)`.
  """
  if image.shape[-1] == channels:
    return image, None
  if channels == 1 and image.shape[-1] == 3:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return gray[..., None], 'colour image converted to gray for a gray model'
  if channels == 3 and image.shape[-1] == 1:
    colour = cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2BGR)
    return colour, 'gray image converted to colour for a colour model'
  raise RestoreError(f'cannot convert a {image.shape[-1]}-channel image to '
                     f'{channels} channels')


def restore_image(restorer, image, tile_size=DEFAULT_TILE_SIZE,
                  with_steps=False):
  """Restores one `[H,W,C]` float32 image, in tiles if it is large.

  Args:
    restorer: a `Restorer`.
    image: `[H,W,C]` float32 with the model's `C`.
    tile_size: side of the tile cores; None or <= 0 never tiles.
    with_steps: also return the image after every step.

  Returns:
    dict `restored_uint8 [H,W,C]`, `actions [T,H,W]` and, with `with_steps`,
    `images [T+1,H,W,C]` float32; else `restored [H,W,C]` float32.
  """
  restore_fn = (restorer.restore_steps_fn if with_steps
                else restorer.restore_fn)
  outputs = tiling.restore_tiled(restore_fn, image, tile_size,
                                 restorer.dependency_radius)
  if with_steps:
    outputs['restored_uint8'] = np.floor(
        np.clip(outputs['images'][-1], 0.0, 1.0) * np.float32(255.0) +
        np.float32(0.5)).astype(np.uint8)
  return outputs


def _gif_frames(step_images, actions, restorer, bgr):
  """One frame per step: before, after, and the action map between them."""
  frames = []
  for step in range(len(actions)):
    titles = ['input' if step == 0 else f't={step}', f't={step + 1}']
    frames.append(action_maps.action_strip(
        step_images[step:step + 2], actions[step:step + 1],
        restorer.action_names, restorer.action_colors, titles=titles,
        bgr=bgr))
  return frames


def _output_paths(paths, output_dir):
  stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
  seen = {}
  for stem, path in zip(stems, paths):
    if stem in seen:
      raise RestoreError(f'{seen[stem]} and {path} would both be written to '
                         f'{stem}.png; rename one')
    seen[stem] = path
  return [os.path.join(output_dir, stem) for stem in stems]


def restore_files(model, input_path, output_dir, save_actions=False,
                  tile_size=DEFAULT_TILE_SIZE,
                  log_fn: Optional[Callable[[str], None]] = print) -> List[str]:
  """Restores image files and writes the results.

  Every input is decoded once before anything is written (and again when
  restored, so that only one image is in memory), so a bad file stops the
  run with nothing written.

  Args:
    model: what `load_restorer` loads.
    input_path: an image file or a folder of images (not recursive).
    output_dir: folder for the results (created).
    save_actions: also write the action strip PNG and GIF.
    tile_size: side of the tile cores; None or <= 0 never tiles.
    log_fn: called with one line per image and per note.

  Returns:
    The paths written.

  Raises:
    RestoreError: on a missing or unreadable input or model.
  """
  log_fn = log_fn or (lambda line: None)
  paths = find_images(input_path)
  stems = _output_paths(paths, output_dir)
  for path in paths:
    read_image(path)
  restorer = load_restorer(model)
  log_fn(f'model: {restorer.description} ({restorer.channels} channel(s), '
         f'{restorer.t_max} steps, tile margin {restorer.dependency_radius})')
  os.makedirs(output_dir, exist_ok=True)
  written = []
  for path, stem in zip(paths, stems):
    image, notes = read_image(path)
    image, note = convert_channels(image, restorer.channels)
    for line in notes + ([note] if note else []):
      log_fn(f'note: {os.path.basename(path)}: {line}')
    outputs = restore_image(restorer, image, tile_size,
                            with_steps=save_actions)
    bgr = restorer.channels == 3
    restored = outputs['restored_uint8']
    if bgr:
      restored = restored[..., ::-1]
    action_maps.save_png(restored, stem + '.png')
    written.append(stem + '.png')
    if save_actions:
      strip = action_maps.action_strip(
          outputs['images'], outputs['actions'], restorer.action_names,
          restorer.action_colors, bgr=bgr)
      action_maps.save_png(strip, stem + ACTIONS_SUFFIX + '.png')
      action_maps.write_gif(
          _gif_frames(outputs['images'], outputs['actions'], restorer, bgr),
          stem + ACTIONS_SUFFIX + '.gif')
      written += [stem + ACTIONS_SUFFIX + '.png',
                  stem + ACTIONS_SUFFIX + '.gif']
    log_fn(f'{path} ({image.shape[1]}x{image.shape[0]}) -> {stem}.png')
  return written

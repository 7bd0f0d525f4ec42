"""Applies a PixelRL model to image files of any size.

Shapes: `T` steps, `H, W` height and width, `C` channels of the model, `A`
actions.

The model is an exported SavedModel (`EXPORT_BASE/NAME/VERSION`, or
`EXPORT_BASE/NAME` for its latest version) or a run directory / checkpoint,
which is wrapped in the same `RestorationModule` in process. Images are read
with `pixelrl_tf.io.images` (colour in BGR order, as the reference code;
8-bit scaled by 1/255, 16-bit by 1/65535, float images kept if finite and
within 0..1) and converted to the model's channels when needed (colour ->
gray with `cv2.cvtColor` on the stored values, gray -> colour by repetition,
alpha dropped), with a printed note. Every input is checked before the model
is loaded, so a bad file (missing, empty, truncated, corrupt, NaN or
out-of-range values) stops the run with one line naming it and nothing
written. Large images are restored in overlapping tiles with exactly the
untiled result (`serving.tiling`).

For every input `DIR/x.ext` the output folder gets `x.png`, the restored
image (clipped and rounded with the official protocol), and with
`save_actions` also `x_actions.png` (the paper's Fig. 4: the image after
each step above the colour-coded action map of that step, and a legend) and
`x_actions.gif` (one frame per step: image before, image after, action
map).
"""

import os
from typing import Callable, List, Optional

from pixelrl_tf.data import known_files
from pixelrl_tf.io import images as image_io
from pixelrl_tf.models import restorers
from pixelrl_tf.serving import tiling
from pixelrl_tf.visualization import action_maps

DEFAULT_TILE_SIZE = 512
ACTIONS_SUFFIX = '_actions'
_CONVERSION_NOTES = {
    image_io.GRAY_TO_COLOUR: ' for a colour model',
    image_io.COLOUR_TO_GRAY: ' for a gray model',
}


# Nothing loadable at the model path, a corrupt SavedModel, or outputs that
# would overwrite each other.
RestoreError = restorers.RestoreError


def find_images(input_path: str) -> List[str]:
  """The image files to restore: `input_path` itself or those in a folder.

  Args:
    input_path: an image file (any suffix; the contents tell the format), a
      folder (its files with one of `io.images.IMAGE_SUFFIXES`) or the name
      of a known data set (`'bsd68'`, see `data.known_files`).

  Returns:
    The file paths, as strings, sorted by name.

  Raises:
    FileNotFoundError: the path does not exist.
    known_files.KnownFileError: (a ValueError, one line) neither an existing
      path nor a known name, or the named data set cannot be had.
    ValueError: a folder holds no image file.
  """
  if os.path.isfile(input_path):
    return [input_path]
  folder = known_files.resolve_path_or_name(input_path, what='input')
  if folder.is_file():
    return [str(folder)]
  return [str(path) for path in image_io.list_image_files(folder)]


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
    outputs['restored_uint8'] = image_io.quantize_uint8(
        outputs['images'][-1])
  return outputs


def gif_frames(step_images, actions, restorer, bgr):
  """One frame per step: before, after, and the action map between them.

  Args:
    step_images: `[T+1,H,W,C]` float32, the input and the image after each
      step.
    actions: `[T,H,W]` int32 action maps.
    restorer: the `Restorer` (its action names and colours).
    bgr: colour images are in BGR order.

  Returns:
    `T` uint8 `[h,w,3]` RGB frames (`x_actions.gif`).
  """
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


def _conversion_line(note):
  return note + _CONVERSION_NOTES.get(note, '')


def restore_files(model, input_path, output_dir, save_actions=False,
                  tile_size=DEFAULT_TILE_SIZE,
                  log_fn: Optional[Callable[[str], None]] = print) -> List[str]:
  """Restores image files and writes the results.

  Every input is decoded once before the model is loaded and anything is
  written (and again when restored, so that only one image is in memory),
  so a bad file stops the run with nothing written. Each file is written
  atomically, and the output folder is created with the first one.

  Args:
    model: what `models.restorers.load` loads.
    input_path: an image file, a folder of images (not recursive) or a known
      data set's name (`find_images`).
    output_dir: folder for the results.
    save_actions: also write the action strip PNG and GIF.
    tile_size: side of the tile cores; None or <= 0 never tiles.
    log_fn: called with one line per image and per note.

  Returns:
    The paths written.

  Raises:
    FileNotFoundError: the input or the model does not exist.
    ValueError: (one line, naming the file) an input is not a usable image
      (`io.images.ImageReadError`), a folder holds none, or the model's
      checkpoint cannot be loaded (`model_io.CheckpointError`).
    RestoreError: nothing loadable at `model`, or two inputs would write
      the same output.
    OSError: (one line) an output cannot be written (full or read-only
      disk); files written before are complete, none is half-written.
  """
  log_fn = log_fn or (lambda line: None)
  paths = find_images(input_path)
  stems = _output_paths(paths, output_dir)
  for path in paths:
    image_io.read_image(path)
  restorer = restorers.load_restorer(model)
  log_fn(f'model: {restorer.description} ({restorer.channels} channel(s), '
         f'{restorer.t_max} steps, tile margin {restorer.dependency_radius})')
  bgr = restorer.channels == 3
  written = []
  for path, stem in zip(paths, stems):
    image, notes = image_io.read_image_with_notes(
        path, channels=restorer.channels, bgr=True)
    for note in notes:
      log_fn(f'note: {os.path.basename(path)}: {_conversion_line(note)}')
    outputs = restore_image(restorer, image, tile_size,
                            with_steps=save_actions)
    image_io.write_image(stem + '.png', outputs['restored_uint8'], bgr=bgr)
    written.append(stem + '.png')
    if save_actions:
      strip = action_maps.action_strip(
          outputs['images'], outputs['actions'], restorer.action_names,
          restorer.action_colors, bgr=bgr)
      action_maps.save_png(strip, stem + ACTIONS_SUFFIX + '.png')
      action_maps.write_gif(
          gif_frames(outputs['images'], outputs['actions'], restorer, bgr),
          stem + ACTIONS_SUFFIX + '.gif')
      written += [stem + ACTIONS_SUFFIX + '.png',
                  stem + ACTIONS_SUFFIX + '.gif']
    log_fn(f'{path} ({image.shape[1]}x{image.shape[0]}) -> {stem}.png')
  return written

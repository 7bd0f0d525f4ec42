"""Writes a fixed test set for blind text removal from a folder of images.

Shapes: `H, W` height and width, `C` channels.

Layout of the output folder:

  input/<stem>.png    the corrupted image (8-bit, lossless PNG)
  target/<stem>.png   the clean image (8-bit)
  mask/<stem>.png     the text mask (255 on text, 0 elsewhere)
  manifest.json       seed, channels, package version and, per image, its
                      source file, size, text value and coverage

The images of the input folder are taken in sorted file-name order and image
`i` is corrupted with `text_overlay.corrupt_with_text(clean, (seed, i))`, so
the same folder and seed give the same set, byte for byte. The clean image is
first rounded to 8 bits (`io.images.quantize_uint8`), so input and target
agree exactly outside the mask. Every input is read (`pixelrl_tf.io.images`)
before anything is written or removed, so a bad file leaves an existing set
as it was. Every file is written atomically (`pixelrl_tf.io.files`); the
manifest is written last and marks a complete set.
"""

import json
import pathlib

import numpy as np

import pixelrl_tf
from pixelrl_tf.data import known_files
from pixelrl_tf.data import text_overlay
from pixelrl_tf.io import files
from pixelrl_tf.io import images as image_io

INPUT_DIR = 'input'
TARGET_DIR = 'target'
MASK_DIR = 'mask'
MANIFEST_FILE = 'manifest.json'
MANIFEST_FORMAT = 'pixelrl_tf.text_restoration_set/1'


class RestorationSetError(Exception):
  """The set cannot be written; the message is one line for the user."""


def _check_output_dir(output_dir, overwrite):
  if output_dir.exists() and not output_dir.is_dir():
    raise RestorationSetError(f'output {str(output_dir)!r} is not a folder')
  if (output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite):
    raise RestorationSetError(
        f'output folder {str(output_dir)!r} is not empty (pass --overwrite '
        f'to replace its set)')


def _list_inputs(input_dir):
  try:
    paths = image_io.list_image_files(known_files.resolve_path_or_name(
        input_dir, what='image folder'))
  except (FileNotFoundError, NotADirectoryError, ValueError) as error:
    raise RestorationSetError(str(error)) from None
  stems = {}
  for path in paths:
    if path.stem in stems:
      raise RestorationSetError(
          f'{path.name!r} and {stems[path.stem].name!r} in '
          f'{str(input_dir)!r} would both be written as {path.stem}.png')
    stems[path.stem] = path
  return paths


def corrupt_image(clean, seed, index):
  """Corrupts image `index` of a set the way `make_restoration_set` does.

  Args:
    clean: float32 `[H, W, C]` on 0..1.
    seed: the set's seed (non-negative int).
    index: the image's position in sorted file-name order.

  Returns:
    `(corrupted, target, mask, value)`: uint8 `[H, W, C]`, uint8
    `[H, W, C]`, bool `[H, W]` and the text value (0.0 or 1.0).
  """
  target = image_io.quantize_uint8(clean)
  mask, value = text_overlay.draw_text_corruption(
      target.shape[0], target.shape[1], (seed, index))
  corrupted = target.copy()
  corrupted[mask] = 255 if value else 0
  return corrupted, target, mask, value


def _read_clean(path, channels):
  """`(float32 [H, W, C] BGR, notes)`; read errors as `RestorationSetError`."""
  try:
    return image_io.read_image_with_notes(path, channels=channels, bgr=True)
  except (FileNotFoundError, ValueError) as error:
    raise RestorationSetError(str(error)) from None


def _note_lines(notes_by_path):
  """One line per kind of conversion, naming the first files."""
  kinds = {}
  for path, notes in notes_by_path:
    for note in notes:
      kinds.setdefault(note, []).append(path.name)
  for note, names in kinds.items():
    more = ', ...' if len(names) > 3 else ''
    yield (f'{note} in {len(names)} of {len(notes_by_path)} images '
           f'({", ".join(names[:3])}{more})')


def make_restoration_set(input_dir, output_dir, seed, channels=1,
                         overwrite=False, progress_fn=None, note_fn=None):
  """Writes the corrupted / clean / mask set of a folder of images.

  Args:
    input_dir: folder of clean images (any of `io.images.IMAGE_SUFFIXES`),
      or the name of a known data set (`'bsd68'`, see `data.known_files`).
    output_dir: folder to write (created if missing).
    seed: non-negative int seeding every image's corruption.
    channels: 1 (gray, OpenCV's luminance) or 3 (colour).
    overwrite: allow a non-empty `output_dir`; its `input/`, `target/` and
      `mask/` PNGs that are not part of the new set are removed.
    progress_fn: optional `fn(index, name)` called before each image.
    note_fn: optional `fn(line)` given one line per kind of conversion of
      the inputs (alpha dropped, colour to gray, gray to colour).

  Returns:
    The manifest (a dict, also written to `manifest.json`).

  Raises:
    RestorationSetError: a missing or empty input folder (or a known data set
      that cannot be had), a non-empty output folder without `overwrite`, a
      bad seed or channel count, or an image that cannot be read (named;
      nothing is written then).
    OSError: (one line) a file cannot be written (full or read-only disk);
      no file is left half-written and the set has no manifest.
  """
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise RestorationSetError(f'seed must be a non-negative integer, got '
                              f'{seed!r}')
  if channels not in (1, 3):
    raise RestorationSetError(f'channels must be 1 or 3, got {channels!r}')
  output_dir = pathlib.Path(output_dir)
  paths = _list_inputs(input_dir)
  # Every input is decoded before the output is touched (and again when it
  # is written, so that only one image is in memory).
  notes_by_path = [(path, _read_clean(path, channels)[1]) for path in paths]
  _check_output_dir(output_dir, overwrite)
  if note_fn is not None:
    for line in _note_lines(notes_by_path):
      note_fn(line)
  folders = [output_dir / name for name in (INPUT_DIR, TARGET_DIR, MASK_DIR)]
  manifest_path = output_dir / MANIFEST_FILE
  if manifest_path.exists():
    manifest_path.unlink()  # The set is incomplete until it is rewritten.

  entries = []
  for index, path in enumerate(paths):
    name = path.stem + '.png'
    if progress_fn is not None:
      progress_fn(index, name)
    clean, _ = _read_clean(path, channels)
    corrupted, target, mask, value = corrupt_image(clean, int(seed), index)
    mask_image = mask.astype(np.uint8) * 255
    for folder, image in zip(folders, (corrupted, target, mask_image)):
      image_io.write_image(folder / name, image, bgr=True)
    entries.append({
        'name': name,
        'source': path.name,
        'index': index,
        'height': int(mask.shape[0]),
        'width': int(mask.shape[1]),
        'text_value': int(value * 255),
        'coverage': round(float(mask.mean()), 6),
    })

  written = {entry['name'] for entry in entries}
  for folder in folders:
    for stale in folder.glob('*.png'):
      if stale.name not in written:
        stale.unlink()
  coverages = [entry['coverage'] for entry in entries]
  manifest = {
      'format': MANIFEST_FORMAT,
      'pixelrl_tf_version': pixelrl_tf.__version__,
      'seed': int(seed),
      'channels': channels,
      'corruption': 'text_overlay.draw_text_corruption(height, width, '
                    '(seed, index)) painted on the 8-bit target',
      'image_count': len(entries),
      'mean_coverage': round(float(np.mean(coverages)), 6),
      'images': entries,
  }
  files.write_text_atomically(manifest_path,
                              json.dumps(manifest, indent=2) + '\n')
  return manifest

"""Image files and `tf.data` pipelines of clean training crops.

Images are float32 numpy arrays `[H, W, C]` on the 0..1 scale (C = 1 gray,
3 colour); named images are `(name, image)` pairs. The training pipelines
turn a list of images of any sizes into an endless, shuffled stream of
batches `[B, crop, crop, C]`, augmented as the reference loaders do:

  1. flip left-right with probability 0.5;
  2. with probability 0.5 rotate by U(0, 10) degrees of random sign about the
     image centre (bilinear, constant 0 fill, so black corners do enter the
     crops);
  3. take a uniform random `crop x crop` window.

The three steps are fused into one projective transform that samples only the
crop's pixels (`tf.raw_ops.ImageProjectiveTransformV3`; the Keras / KerasCV
rotation layers would rotate the whole image and draw from stateful
generators). Every random draw is a stateless op seeded from the pipeline seed
and the element index, so a seed fixes the whole stream. Unlike the reference,
which rotates the 8-bit image, rotated values are not rounded to 1/255.

Where training images come from (`image_source`): the natural photographs in
scikit-image's wheel (`default_images`, no download needed), or a folder of
image files, optionally restricted by a list file such as the official
`training_BSD68.txt`. Files are listed and read with `pixelrl_tf.io.images`
(`list_image_files`, `read_image`), the project's one image reader, so a bad
file is a one-line error naming it.
"""

import collections
import math
import os
import pathlib
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import gin
import numpy as np
import tensorflow as tf
from skimage import data as skimage_data

from pixelrl_tf.io import images as image_io

# The natural photographs shipped inside scikit-image's wheel, in a fixed
# order. Synthetic, microscopy, medical, astronomical and binary images are
# left out, and so is the right view of the motorcycle stereo pair (nearly a
# copy of the left one).
DEFAULT_IMAGE_NAMES = (
    'astronaut', 'brick', 'camera', 'chelsea', 'clock', 'coffee', 'coins',
    'grass', 'gravel', 'moon', 'motorcycle_left', 'page', 'rocket', 'text')

DEFAULT_VALIDATION_FRACTION = 0.2
DEFAULT_SPLIT_SEED = 0
DEFAULT_SOURCE = 'default'

TRAIN = 'train'
VALIDATION = 'validation'


# ---------------------------------------------------------------------------
# Files.


def resolve_list_file(list_file, directory):
  """Maps the entries of a list file onto files in `directory`.

  Each non-blank line names an image; only its basename is used (so the
  official `BSD68/gray/train/100007.jpg` entries resolve against any folder
  holding `100007.jpg`). An entry without an image suffix (e.g. the colour
  split's `3124621920_4ac3d9ea81_z`) matches the image file with that stem.
  CRLF and LF line endings are both accepted.

  Args:
    list_file: path of the text file.
    directory: folder the names are resolved against.

  Returns:
    List of `pathlib.Path`, in the order of the list file.

  Raises:
    FileNotFoundError: the list file or an entry's image is missing.
    ValueError: the list file has no entries.
  """
  list_file = pathlib.Path(list_file)
  directory = pathlib.Path(directory)
  if not list_file.is_file():
    raise FileNotFoundError(f'list file {str(list_file)!r} does not exist')
  entries = [
      line.strip().replace('\\', '/').rsplit('/', 1)[-1]
      for line in list_file.read_text().splitlines()
  ]
  entries = [entry for entry in entries if entry]
  if not entries:
    raise ValueError(f'list file {str(list_file)!r} has no entries')
  files_by_stem = None
  paths = []
  missing = []
  for entry in entries:
    path = directory / entry
    if path.is_file():
      paths.append(path)
      continue
    if pathlib.PurePath(entry).suffix.lower() not in image_io.IMAGE_SUFFIXES:
      if files_by_stem is None:
        files_by_stem = {
            p.stem: p for p in image_io.list_image_files(directory)}
      if entry in files_by_stem:
        paths.append(files_by_stem[entry])
        continue
    missing.append(entry)
  if missing:
    raise FileNotFoundError(
        f'{len(missing)} of the {len(entries)} images of list file '
        f'{str(list_file)!r} are not in {str(directory)!r} (first: '
        f'{missing[0]!r})')
  return paths


def list_image_pairs(input_directory, target_directory, list_file=None):
  """Pairs each input image with the target image of the same stem.

  Args:
    input_directory: folder of input images.
    target_directory: folder of target images (any image suffix).
    list_file: optional list of the inputs to use (see `resolve_list_file`);
      all images of `input_directory` otherwise.

  Returns:
    List of `(input_path, target_path)` pairs of `pathlib.Path`.

  Raises:
    FileNotFoundError: a folder, the list file or an input's target is
      missing.
    ValueError: a folder holds no image.
  """
  if list_file is None:
    input_paths = image_io.list_image_files(input_directory)
  else:
    input_paths = resolve_list_file(list_file, input_directory)
  targets_by_stem = {
      path.stem: path for path in image_io.list_image_files(target_directory)}
  missing = [path.name for path in input_paths
             if path.stem not in targets_by_stem]
  if missing:
    raise FileNotFoundError(
        f'{len(missing)} inputs have no target of the same name in '
        f'{str(target_directory)!r} (first: {missing[0]!r})')
  return [(path, targets_by_stem[path.stem]) for path in input_paths]


def _check_channels(channels):
  if channels not in (1, 3):
    raise ValueError(f'channels must be 1 (gray) or 3 (colour), got '
                     f'{channels!r}')


NoteFn = Callable[[str], None]
_NOTE_EXAMPLES = 3


def _report_notes(notes_by_kind, total, note_fn):
  """Calls `note_fn` once per kind of conversion, naming a few files."""
  for note, names in notes_by_kind.items():
    shown = ', '.join(names[:_NOTE_EXAMPLES])
    more = ', ...' if len(names) > _NOTE_EXAMPLES else ''
    note_fn(f'{note} in {len(names)} of {total} images ({shown}{more})')


def load_images(paths: Sequence[os.PathLike],
                channels: int,
                bgr: bool = False,
                min_size: Optional[image_io.MinSize] = None,
                note_fn: Optional[NoteFn] = None
               ) -> List[Tuple[str, np.ndarray]]:
  """Reads image files with `pixelrl_tf.io.images.read_image`.

  8-bit values are divided by 255, 16-bit values by 65535, float images
  (finite, within 0..1) are kept; an alpha channel is dropped; colour images
  become gray with `cv2.cvtColor` on the stored values (as the PixelRL
  authors converted the BSD images), gray images become colour by repeating
  the channel.

  Args:
    paths: iterable of image file paths.
    channels: 1 (gray) or 3 (colour).
    bgr: colour images in BGR order instead of RGB.
    min_size: optional smallest size of every image (e.g. the training
      crop), an int or `(height, width)`.
    note_fn: optional callable given one line per kind of conversion (alpha
      dropped, colour to gray, gray to colour) with the number of images
      and the first names.

  Returns:
    List of `(file name, float32 [H, W, channels])` pairs.

  Raises:
    FileNotFoundError: a file does not exist.
    ValueError: (one line, naming the file) a file is not a usable image
      (`io.images.ImageReadError`), is smaller than `min_size`, or
      `channels` is not 1 or 3.
  """
  _check_channels(channels)
  named_images = []
  notes_by_kind = collections.defaultdict(list)
  for path in paths:
    path = pathlib.Path(path)
    image, notes = image_io.read_image_with_notes(
        path, channels=channels, bgr=bgr, min_size=min_size)
    for note in notes:
      notes_by_kind[note].append(path.name)
    named_images.append((path.name, image))
  if note_fn is not None:
    _report_notes(notes_by_kind, len(named_images), note_fn)
  return named_images


# ---------------------------------------------------------------------------
# The default dataset and splits.


def _load_skimage_photo(name):
  if name == 'motorcycle_left':
    return skimage_data.stereo_motorcycle()[0]
  return getattr(skimage_data, name)()


def default_images(channels=1, bgr=False):
  """Returns the natural photographs bundled with scikit-image.

  The images ship inside the scikit-image wheel, so no download is needed.
  Colour photographs become gray with OpenCV's luminance formula
  (`cv2.cvtColor` on the 8-bit values, as `load_images` does).

  Args:
    channels: 1 (gray) or 3 (colour; gray photographs are repeated).
    bgr: colour images in BGR order instead of RGB.

  Returns:
    List of `(name, float32 [H, W, channels])` pairs in the order of
    `DEFAULT_IMAGE_NAMES`.
  """
  _check_channels(channels)
  named_images = []
  for name in DEFAULT_IMAGE_NAMES:
    image = np.ascontiguousarray(_load_skimage_photo(name))
    if image.ndim == 3:
      if channels == 1:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, np.newaxis]
      elif bgr:
        image = np.ascontiguousarray(image[:, :, ::-1])
    else:
      image = image[:, :, np.newaxis]
      if channels == 3:
        image = np.repeat(image, 3, axis=2)
    named_images.append((name, image.astype(np.float32) / 255.0))
  return named_images


def split_train_validation(items, validation_fraction,
                           seed=DEFAULT_SPLIT_SEED):
  """Splits `items` deterministically into training and validation parts.

  `round(len(items) * validation_fraction)` items, chosen by a permutation
  seeded with `seed`, go to validation; when the fraction is positive each
  part keeps at least one item (given two or more). Both parts keep the
  input order.

  Args:
    items: a sequence (file paths, named images, ...).
    validation_fraction: fraction in [0, 1) held out for validation.
    seed: seed of the permutation.

  Returns:
    `(training_items, validation_items)` lists.

  Raises:
    ValueError: the fraction is outside [0, 1), or a positive fraction is
      asked of fewer than two items.
  """
  items = list(items)
  if not 0.0 <= validation_fraction < 1.0:
    raise ValueError(f'validation_fraction must be in [0, 1), got '
                     f'{validation_fraction!r}')
  if validation_fraction == 0.0:
    return items, []
  if len(items) < 2:
    raise ValueError(f'cannot hold out a validation part of {len(items)} '
                     f'image(s); need at least 2')
  validation_count = int(round(len(items) * validation_fraction))
  validation_count = min(max(validation_count, 1), len(items) - 1)
  permutation = np.random.default_rng(seed).permutation(len(items))
  held_out = set(permutation[:validation_count].tolist())
  training_items = [item for i, item in enumerate(items) if i not in held_out]
  validation_items = [item for i, item in enumerate(items) if i in held_out]
  return training_items, validation_items


@gin.configurable(module='pixelrl_tf.data')
def image_source(source=DEFAULT_SOURCE,
                 subset=TRAIN,
                 channels=1,
                 list_file=None,
                 validation_source=None,
                 validation_fraction=None,
                 split_seed=DEFAULT_SPLIT_SEED,
                 bgr=False,
                 min_size=None,
                 note_fn=None):
  """Returns the training or validation images of a data source.

  Sources and their validation images:

    * `'default'`: scikit-image's photographs (`default_images`), split by
      `split_train_validation` with `validation_fraction` (0.2 when None and
      no `validation_source` is given);
    * a folder path: its image files, or those named by `list_file` (all
      of them train, as the reference trains on its whole list).
      Validation images come from `validation_source` when given: a folder
      (used whole) or `'default'` (the default photographs' held-out
      split); else from a held-out `validation_fraction` of the files
      (which then also leaves the training part); with neither, asking for
      the validation subset is an error.

  Args:
    source: `'default'` or a folder of images.
    subset: `'train'` or `'validation'`.
    channels: 1 (gray) or 3 (colour).
    list_file: optional list of the training files of a folder `source`
      (e.g. `BSD432_train_list.txt`; see `resolve_list_file`).
    validation_source: optional folder of validation images.
    validation_fraction: fraction of the source held out for validation.
    split_seed: seed of the held-out split.
    bgr: colour images in BGR order instead of RGB.
    min_size: optional smallest size of the image files read (e.g. the
      training crop); a smaller file is an error naming it and both sizes.
    note_fn: optional callable given one line per kind of conversion of
      the files read (see `load_images`).

  Returns:
    List of `(name, float32 [H, W, channels])` pairs.

  Raises:
    ValueError: bad `subset`, a list file with the default source, no way
      to get validation images, or an image file that cannot be read or is
      smaller than `min_size` (one line, naming the file).
    FileNotFoundError: a missing folder or file.
  """
  if subset not in (TRAIN, VALIDATION):
    raise ValueError(f'subset must be {TRAIN!r} or {VALIDATION!r}, got '
                     f'{subset!r}')
  source = os.fspath(source)
  if subset == VALIDATION and validation_source is not None:
    if os.fspath(validation_source) == DEFAULT_SOURCE:
      return image_source(DEFAULT_SOURCE, VALIDATION, channels=channels,
                          split_seed=split_seed, bgr=bgr)
    return load_images(image_io.list_image_files(validation_source),
                       channels, bgr=bgr, min_size=min_size, note_fn=note_fn)
  if validation_fraction is None:
    holds_out = source == DEFAULT_SOURCE and (
        validation_source is None or
        os.fspath(validation_source) == DEFAULT_SOURCE)
    validation_fraction = DEFAULT_VALIDATION_FRACTION if holds_out else 0.0
  if source == DEFAULT_SOURCE:
    if list_file is not None:
      raise ValueError('list_file needs a folder source, not the default '
                       'images')
    items = default_images(channels, bgr=bgr)
  else:
    if list_file is None:
      items = image_io.list_image_files(source)
    else:
      items = resolve_list_file(list_file, source)
  if subset == VALIDATION and not validation_fraction:
    raise ValueError(f'no validation images for source {source!r}: set '
                     f'validation_source or validation_fraction')
  training_items, validation_items = split_train_validation(
      items, validation_fraction, seed=split_seed)
  chosen = training_items if subset == TRAIN else validation_items
  if source == DEFAULT_SOURCE:
    return chosen
  return load_images(chosen, channels, bgr=bgr, min_size=min_size,
                     note_fn=note_fn)


# ---------------------------------------------------------------------------
# Training pipelines.


def _named_arrays(images, what):
  """Returns `(names, float32 [H, W, C] arrays)` of images or named images."""
  images = list(images)
  if not images:
    raise ValueError(f'no {what} images given')
  names = []
  arrays = []
  for index, item in enumerate(images):
    if isinstance(item, tuple) and len(item) == 2:
      name, image = item
    else:
      name, image = f'{what} image {index}', item
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
      image = image[:, :, np.newaxis]
    if image.ndim != 3:
      raise ValueError(f'{name}: expected an [H, W, C] image, got shape '
                       f'{image.shape}')
    names.append(str(name))
    arrays.append(image)
  channel_counts = sorted({array.shape[2] for array in arrays})
  if len(channel_counts) != 1:
    raise ValueError(f'{what} images mix channel counts {channel_counts}')
  return names, arrays


def _check_crop_fits(names, arrays, crop_size):
  for name, array in zip(names, arrays):
    height, width = array.shape[:2]
    if height < crop_size or width < crop_size:
      raise ValueError(f'image {name!r} is {height}x{width}, smaller than the '
                       f'{crop_size}x{crop_size} crop')


def _resolve_seed(seed):
  if seed is None:
    return int(np.random.SeedSequence().generate_state(1, np.uint32)[0])
  return int(seed)


def transformed_crop(image, crop_size, flip, angle_degrees, offset_y,
                     offset_x):
  """Crops `image` after an optional left-right flip and a rotation.

  Equals, up to interpolation rounding, the reference augmentation:
  `np.fliplr` (if `flip`), then `cv2.warpAffine` with
  `cv2.getRotationMatrix2D((W / 2, H / 2), angle_degrees, 1)` (bilinear,
  constant 0 border; positive angles turn the picture counter-clockwise),
  then the window at `(offset_y, offset_x)`. Only the crop's pixels are
  computed, with one projective transform.

  Args:
    image: float32 `[H, W, C]`.
    crop_size: side of the square crop.
    flip: bool scalar, flip left-right first.
    angle_degrees: float32 scalar rotation angle (0 for none).
    offset_y: int scalar, top row of the window in the rotated image.
    offset_x: int scalar, left column of the window in the rotated image.

  Returns:
    float32 `[crop, crop, C]`.
  """
  image = tf.convert_to_tensor(image, tf.float32)
  height = tf.cast(tf.shape(image)[0], tf.float32)
  width = tf.cast(tf.shape(image)[1], tf.float32)
  angle = tf.cast(angle_degrees, tf.float32) * (math.pi / 180.0)
  cos, sin = tf.cos(angle), tf.sin(angle)
  center_x = width / 2.0
  center_y = height / 2.0
  shift_x = tf.cast(offset_x, tf.float32) - center_x
  shift_y = tf.cast(offset_y, tf.float32) - center_y
  # Crop pixel (u, v) (column, row) is pixel (u + offset_x, v + offset_y) of
  # the rotated image; rotate that back (inverse rotation about the centre)
  # to find it in the flipped image.
  flipped_x = [cos, -sin, cos * shift_x - sin * shift_y + center_x]
  flipped_y = [sin, cos, sin * shift_x + cos * shift_y + center_y]
  # Undo the flip: x_image = (width - 1) - x_flipped.
  flip = tf.convert_to_tensor(flip, tf.bool)
  sign = tf.where(flip, -1.0, 1.0)
  flip_shift = tf.where(flip, width - 1.0, 0.0)
  transform = tf.stack([
      sign * flipped_x[0], sign * flipped_x[1],
      sign * flipped_x[2] + flip_shift, flipped_y[0], flipped_y[1],
      flipped_y[2], 0.0, 0.0
  ])
  crop = tf.raw_ops.ImageProjectiveTransformV3(
      images=image[tf.newaxis],
      transforms=transform[tf.newaxis],
      output_shape=[crop_size, crop_size],
      fill_value=0.0,
      interpolation='BILINEAR',
      fill_mode='CONSTANT')
  return crop[0]


def _random_crop(image, element_seed, crop_size, augment,
                 max_rotation_degrees, flip_probability,
                 rotation_probability):
  """One randomly augmented crop `[crop, crop, C]` of `image` `[H, W, C]`."""
  seeds = tf.random.experimental.stateless_split(element_seed, num=4)
  height = tf.shape(image)[0]
  width = tf.shape(image)[1]
  if augment:
    flip_draw, rotate_draw, sign_draw = tf.unstack(
        tf.random.stateless_uniform([3], seeds[0]))
    flip = flip_draw < flip_probability
    magnitude = tf.random.stateless_uniform(
        [], seeds[1], maxval=max_rotation_degrees)
    angle = tf.where(sign_draw < 0.5, -magnitude, magnitude)
    angle = tf.where(rotate_draw < rotation_probability, angle, 0.0)
  else:
    flip = tf.constant(False)
    angle = tf.constant(0.0)
  # Every window that fits is equally likely (the reference's randint also
  # excludes the last offset; that difference is immaterial).
  offset_y = tf.random.stateless_uniform(
      [], seeds[2], maxval=height - crop_size + 1, dtype=tf.int32)
  offset_x = tf.random.stateless_uniform(
      [], seeds[3], maxval=width - crop_size + 1, dtype=tf.int32)
  return transformed_crop(image, crop_size, flip, angle, offset_y, offset_x)


def _crop_dataset(arrays, batch_size, crop_size, seed, augment,
                  max_rotation_degrees, flip_probability,
                  rotation_probability, start_batch=0):
  """Endless batches `[B, crop, crop, C]` of augmented crops of `arrays`."""
  if batch_size < 1 or crop_size < 1:
    raise ValueError(f'batch_size and crop_size must be positive, got '
                     f'{batch_size} and {crop_size}')
  base_seed = _resolve_seed(seed)
  channels = arrays[0].shape[2]

  first_element = int(start_batch) * batch_size

  def shuffled_images():
    # Each pass visits every image once, in a fresh seeded order, like the
    # reference loader's permuted indices. Starting at `start_batch` only
    # draws the skipped passes' permutations, so resuming is immediate.
    rng = np.random.default_rng(base_seed)
    skipped_passes, position = divmod(first_element, len(arrays))
    for _ in range(skipped_passes):
      rng.permutation(len(arrays))
    while True:
      for index in rng.permutation(len(arrays))[position:]:
        yield arrays[index]
      position = 0

  images = tf.data.Dataset.from_generator(
      shuffled_images,
      output_signature=tf.TensorSpec([None, None, channels], tf.float32))

  def crop_element(index, image):
    element_seed = tf.stack([tf.constant(base_seed, tf.int64), index])
    crop = _random_crop(image, element_seed, crop_size, augment,
                        float(max_rotation_degrees), float(flip_probability),
                        float(rotation_probability))
    crop.set_shape([crop_size, crop_size, channels])
    return crop

  crops = images.enumerate(start=first_element).map(
      crop_element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return crops.batch(batch_size, drop_remainder=True)


def make_training_dataset(images,
                          batch_size=64,
                          crop_size=70,
                          seed=None,
                          augment=True,
                          max_rotation_degrees=10.0,
                          flip_probability=0.5,
                          rotation_probability=0.5,
                          start_batch=0):
  """An endless, shuffled `tf.data.Dataset` of clean training crops.

  Args:
    images: list of float32 `[H, W, C]` (or `[H, W]`) arrays on 0..1, or of
      `(name, image)` pairs; sizes may differ, channels may not.
    batch_size: crops per batch `B`.
    crop_size: side of the square crops.
    seed: integer fixing the whole stream (order, augmentation, crop
      positions); None draws a fresh one.
    augment: apply the flip and rotation (the crop position is always
      random).
    max_rotation_degrees: largest rotation angle (10 in the reference
      denoising and restoration loaders).
    flip_probability: probability of the left-right flip.
    rotation_probability: probability of rotating.
    start_batch: index of the first batch of the seeded stream; a resumed
      run passes its episode counter and gets exactly the batches it would
      have seen.

  Returns:
    `tf.data.Dataset` of float32 `[B, crop, crop, C]` batches (static
    shape).

  Raises:
    ValueError: no images, mixed channel counts, or an image smaller than
      the crop (named in the message).
  """
  names, arrays = _named_arrays(images, 'training')
  _check_crop_fits(names, arrays, crop_size)
  crops = _crop_dataset(arrays, batch_size, crop_size, seed, augment,
                        max_rotation_degrees, flip_probability,
                        rotation_probability, start_batch)
  return crops.prefetch(tf.data.AUTOTUNE)


def make_paired_dataset(inputs,
                        targets,
                        batch_size=64,
                        crop_size=70,
                        seed=None,
                        augment=True,
                        max_rotation_degrees=10.0,
                        flip_probability=0.5,
                        rotation_probability=0.5,
                        start_batch=0):
  """Like `make_training_dataset` for aligned (input, target) image pairs.

  Each pair gets the same flip, rotation and crop. The reference colour
  enhancement loader rotates by up to 45 degrees (`max_rotation_degrees=45`).

  Args:
    inputs: list of float32 `[H, W, Ci]` arrays or `(name, image)` pairs.
    targets: list of float32 `[H, W, Ct]` arrays (or pairs), the same sizes
      as `inputs`, in the same order.
    batch_size: pairs per batch `B`.
    crop_size: side of the square crops.
    seed: integer fixing the whole stream; None draws a fresh one.
    augment: apply the flip and rotation.
    max_rotation_degrees: largest rotation angle.
    flip_probability: probability of the left-right flip.
    rotation_probability: probability of rotating.
    start_batch: index of the first batch of the seeded stream.

  Returns:
    `tf.data.Dataset` of `(input [B, crop, crop, Ci], target
    [B, crop, crop, Ct])` float32 batches.

  Raises:
    ValueError: different counts or sizes of inputs and targets, or the cases
      of `make_training_dataset`.
  """
  input_names, input_arrays = _named_arrays(inputs, 'input')
  _, target_arrays = _named_arrays(targets, 'target')
  if len(input_arrays) != len(target_arrays):
    raise ValueError(f'{len(input_arrays)} inputs but {len(target_arrays)} '
                     f'targets')
  for name, input_array, target_array in zip(input_names, input_arrays,
                                             target_arrays):
    if input_array.shape[:2] != target_array.shape[:2]:
      raise ValueError(f'input {name!r} is {input_array.shape[:2]} but its '
                       f'target is {target_array.shape[:2]}')
  _check_crop_fits(input_names, input_arrays, crop_size)
  input_channels = input_arrays[0].shape[2]
  stacked = [np.concatenate([input_array, target_array], axis=2)
             for input_array, target_array in zip(input_arrays, target_arrays)]
  crops = _crop_dataset(stacked, batch_size, crop_size, seed, augment,
                        max_rotation_degrees, flip_probability,
                        rotation_probability, start_batch)
  pairs = crops.map(
      lambda both: (both[..., :input_channels], both[..., input_channels:]))
  return pairs.prefetch(tf.data.AUTOTUNE)

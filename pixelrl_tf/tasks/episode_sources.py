"""Where episodes come from: clean crops + noise, text overlays, or pairs.

Shapes: `B` batch, `H, W` height and width, `C` channels.

An `EpisodeSource` gives the training stream of `(start, target)` batches
`[B,crop,crop,C]` (positioned at a start batch, for exact resume), an
optional noise model the episode applies in-graph with its own seed, and
the fixed `(name, corrupted, target)` validation triples.

Kinds (`Task.episode_source`):
  * `'noise'`: clean crops of `data_source`; the episode adds the task's
    noise (denoising; Gaussian, Poisson or salt-and-pepper);
  * `'text'`: clean crops covered by random text (blind restoration);
  * `'paired'`: aligned input/target images from `data_source/input` and
    `data_source/target` (colour enhancement), rotated together.

Validation images are a separate, named set: `validation_source` is
`'default'` (the held-out photographs of the offline default data) or a
folder (for `'paired'`, a folder with `input/` and `target/`); with the
default data as the training source they are its held-out split; with
`validation_fraction` a seeded share of the source is held out instead.
Without any of these there is no validation. Any unreadable image, and any
training image smaller than the crop, is a one-line error naming the file
(and both sizes). Conversions of the files read (alpha dropped, colour to
gray, gray to colour) are reported in one note line per kind.
"""

import dataclasses
import os
import sys
from typing import Callable, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from pixelrl_tf.data import datasets
from pixelrl_tf.data import noise as noise_lib
from pixelrl_tf.data import text_overlay
from pixelrl_tf.tasks import tasks as tasks_lib

# Validation corruption is seeded independently of the run's seed, so that
# validation PSNRs of different runs are comparable.
VALIDATION_SEED = 0


@dataclasses.dataclass
class EpisodeSource:
  dataset: tf.data.Dataset
  noise_model: Optional[noise_lib.NoiseModel]
  validation: List[Tuple[str, np.ndarray, np.ndarray]]


def _print_note(line):
  print(f'note: {line}', file=sys.stderr)


def _paired_images(folder, channels, bgr, min_size, note_fn, list_file=None):
  """`(name, input, target)` of `folder/input` and `folder/target`.

  With `list_file`, only the pairs whose inputs it lists (names relative to
  `folder/input`).
  """
  pairs = datasets.list_image_pairs(os.path.join(folder, 'input'),
                                    os.path.join(folder, 'target'),
                                    list_file=list_file)
  inputs = datasets.load_images([path for path, _ in pairs], channels,
                                bgr=bgr, min_size=min_size, note_fn=note_fn)
  targets = datasets.load_images([path for _, path in pairs], channels,
                                 bgr=bgr, min_size=min_size, note_fn=note_fn)
  return [(name, image, target)
          for (name, image), (_, target) in zip(inputs, targets)]


def make_episode_source(task, data_source, batch_size, crop_size, seed,
                        start_batch=0, list_file=None, validation_source=None,
                        validation_fraction=None, max_validation_images=None,
                        note_fn: Optional[Callable[[str], None]] = None):
  """Builds the `EpisodeSource` of a training run.

  Args:
    task: the `Task` (its episode source, noise, channels, channel order
      and augmentation rotation).
    data_source: `'default'` or a folder (for `'paired'`: a folder with
      `input/` and `target/`).
    batch_size: `B`.
    crop_size: crop side.
    seed: seed of the stream.
    start_batch: first batch of the seeded stream (the episode to resume).
    list_file: optional list of the training files of a folder source (for
      `'paired'`: of the inputs in `data_source/input`; the pairs it lists
      are the ones trained on, or split with `validation_fraction`).
    validation_source: `'default'` or a folder of validation images.
    validation_fraction: held-out fraction of the source for validation.
    max_validation_images: keep at most this many validation images.
    note_fn: called with one line per kind of conversion of the image files
      read; None prints `note: ...` lines to stderr.

  Returns:
    An `EpisodeSource`.

  Raises:
    FileNotFoundError: a missing folder or file.
    ValueError: (one line, naming the file) an image file that cannot be
      read, or a training image smaller than `crop_size`; or bad settings.
  """
  task = tasks_lib.get_task(task)
  channels, bgr = task.channels, task.bgr
  note_fn = note_fn or _print_note
  if validation_source is not None and validation_fraction is not None:
    raise ValueError(
        'set validation_source or validation_fraction, not both '
        f'(validation_source {os.fspath(validation_source)!r} is the '
        f'validation set; validation_fraction {validation_fraction!r} would '
        'hold out a share of the training data instead)')
  if task.episode_source == tasks_lib.PAIRED:
    if validation_source is not None:
      train_pairs = _paired_images(data_source, channels, bgr, crop_size,
                                   note_fn, list_file)
      validation = _paired_images(validation_source, channels, bgr, None,
                                  note_fn)
    else:
      # The held-out pairs need not fit the crop (they are restored whole);
      # `make_paired_dataset` checks the training ones. With a list file,
      # the listed pairs are the ones split.
      pairs = _paired_images(data_source, channels, bgr, None, note_fn,
                             list_file)
      train_pairs, validation = datasets.split_train_validation(
          pairs, validation_fraction or 0.0)
    dataset = datasets.make_paired_dataset(
        [(n, i) for n, i, _ in train_pairs],
        [(n, t) for n, _, t in train_pairs], batch_size=batch_size,
        crop_size=crop_size, seed=seed, start_batch=start_batch,
        max_rotation_degrees=task.max_rotation_degrees)
    return EpisodeSource(dataset, None, validation[:max_validation_images])
  if task.episode_source not in (tasks_lib.NOISE, tasks_lib.TEXT):
    raise ValueError(f'task {task.name!r} has no training episodes from '
                     f'images ({task.episode_source!r})')

  def images(subset):
    return datasets.image_source(
        data_source, subset, channels=channels, list_file=list_file,
        validation_source=validation_source,
        validation_fraction=validation_fraction, bgr=bgr,
        min_size=crop_size if subset == datasets.TRAIN else None,
        note_fn=note_fn)

  train_images = images(datasets.TRAIN)
  has_validation = (validation_source is not None or bool(validation_fraction)
                    or os.fspath(data_source) == datasets.DEFAULT_SOURCE)
  validation_images = (images(datasets.VALIDATION) if has_validation
                       else [])[:max_validation_images]
  if task.episode_source == tasks_lib.NOISE:
    noise_model = noise_lib.parse_noise(task.noise)
    crops = datasets.make_training_dataset(
        train_images, batch_size=batch_size, crop_size=crop_size, seed=seed,
        max_rotation_degrees=task.max_rotation_degrees,
        start_batch=start_batch)
    validation = list(noise_lib.noisy_pairs(validation_images, noise_model,
                                            VALIDATION_SEED))
    return EpisodeSource(crops.map(lambda c: (c, c)), noise_model,
                         validation)
  dataset = text_overlay.make_text_restoration_dataset(
      train_images, batch_size=batch_size, crop_size=crop_size, seed=seed,
      start_batch=start_batch, max_rotation_degrees=task.max_rotation_degrees)
  validation = [
      (name, text_overlay.corrupt_with_text(image, (VALIDATION_SEED, i))[0],
       image) for i, (name, image) in enumerate(validation_images)]
  return EpisodeSource(dataset, None, validation)


def single_image_source(image: np.ndarray, mask: np.ndarray) -> EpisodeSource:
  """Every episode on one image and its mask (saliency editing).

  Args:
    image: float32 `[H, W, C]`, the first state of every episode.
    mask: float32 `[H, W, 1]`, the reward's target and the extra
      observation channel.

  Returns:
    An `EpisodeSource` whose batches are `(image [1,H,W,C], mask
    [1,H,W,1])`, without noise or validation images.
  """
  dataset = tf.data.Dataset.from_tensors(
      (tf.constant(image[None], tf.float32),
       tf.constant(mask[None], tf.float32))).repeat()
  return EpisodeSource(dataset, None, [])

"""Where episodes come from: clean crops + noise, text overlays, or pairs.

Shapes: `B` batch, `H, W` height and width, `C` channels.

An `EpisodeSource` gives the training stream of `(start, target)` batches
`[B,crop,crop,C]` (positioned at a start batch, for exact resume), an
optional noise model the episode applies in-graph with its own seed, and
the fixed `(name, corrupted, target)` validation triples.

Kinds:
  * `'noise'`: clean crops of `data_source`; the episode adds `noise`
    (denoising; Gaussian, Poisson or salt-and-pepper);
  * `'text'`: clean crops covered by random text (blind restoration);
  * `'paired'`: aligned input/target images from `data_source/input` and
    `data_source/target` (colour enhancement), rotated up to
    `max_rotation_degrees` together.
"""

import dataclasses
import os
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

from pixelrl_tf.data import datasets
from pixelrl_tf.data import noise as noise_lib
from pixelrl_tf.data import text_overlay
from pixelrl_tf.training import eval_lib

NOISE = 'noise'
TEXT = 'text'
PAIRED = 'paired'
KINDS = (NOISE, TEXT, PAIRED)

# Validation corruption is seeded independently of the run's seed, so that
# validation PSNRs of different runs are comparable.
VALIDATION_SEED = 0


@dataclasses.dataclass
class EpisodeSource:
  dataset: tf.data.Dataset
  noise_model: Optional[noise_lib.NoiseModel]
  validation: List[Tuple[str, np.ndarray, np.ndarray]]


def _paired_images(folder, channels, bgr):
  pairs = datasets.list_image_pairs(os.path.join(folder, 'input'),
                                    os.path.join(folder, 'target'))
  return [(path_in.name, datasets.load_image(path_in, channels, bgr=bgr),
           datasets.load_image(path_out, channels, bgr=bgr))
          for path_in, path_out in pairs]


def make_episode_source(kind, data_source, channels, batch_size, crop_size,
                        seed, start_batch=0, noise='gaussian:25',
                        list_file=None, validation_source=None,
                        validation_fraction=None, max_rotation_degrees=10.0,
                        max_validation_images=None, bgr=False):
  """Builds the `EpisodeSource` of a training run.

  Args:
    kind: `'noise'`, `'text'` or `'paired'`.
    data_source: `'default'` or a folder (for `'paired'`: a folder with
      `input/` and `target/`).
    channels: 1 or 3.
    batch_size: `B`.
    crop_size: crop side.
    seed: seed of the stream.
    start_batch: first batch of the seeded stream (the episode to resume).
    noise: noise spec for `'noise'`.
    list_file: optional list of the training files of a folder source.
    validation_source: optional folder of validation images.
    validation_fraction: held-out fraction of the source for validation.
    max_rotation_degrees: augmentation rotation.
    max_validation_images: keep at most this many validation images.
    bgr: load colour images in BGR order (the reference colour code's).

  Returns:
    An `EpisodeSource`.
  """
  if kind not in KINDS:
    raise ValueError(f'unknown episode source {kind!r}; use one of {KINDS}')
  if kind == PAIRED:
    pairs = _paired_images(data_source, channels, bgr)
    fraction = (datasets.DEFAULT_VALIDATION_FRACTION
                if validation_fraction is None else validation_fraction)
    train_pairs, validation = datasets.split_train_validation(pairs, fraction)
    dataset = datasets.make_paired_dataset(
        [(n, i) for n, i, _ in train_pairs],
        [(n, t) for n, _, t in train_pairs], batch_size=batch_size,
        crop_size=crop_size, seed=seed, start_batch=start_batch,
        max_rotation_degrees=max_rotation_degrees)
    return EpisodeSource(dataset, None,
                         validation[:max_validation_images])

  def images(subset):
    return datasets.image_source(
        data_source, subset, channels=channels, list_file=list_file,
        validation_source=validation_source,
        validation_fraction=validation_fraction, bgr=bgr)

  train_images = images(datasets.TRAIN)
  try:
    validation_images = images(datasets.VALIDATION)
  except ValueError:
    validation_images = []
  validation_images = validation_images[:max_validation_images]
  if kind == NOISE:
    noise_model = noise_lib.parse_noise(noise)
    crops = datasets.make_training_dataset(
        train_images, batch_size=batch_size, crop_size=crop_size, seed=seed,
        max_rotation_degrees=max_rotation_degrees, start_batch=start_batch)
    validation = list(eval_lib.noisy_pairs(validation_images, noise_model,
                                           VALIDATION_SEED))
    return EpisodeSource(crops.map(lambda c: (c, c)), noise_model,
                         validation)
  dataset = text_overlay.make_text_restoration_dataset(
      train_images, batch_size=batch_size, crop_size=crop_size, seed=seed,
      start_batch=start_batch, max_rotation_degrees=max_rotation_degrees)
  validation = [
      (name, text_overlay.corrupt_with_text(image, (VALIDATION_SEED, i))[0],
       image) for i, (name, image) in enumerate(validation_images)]
  return EpisodeSource(dataset, None, validation)

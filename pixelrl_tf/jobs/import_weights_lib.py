"""Turns a released Chainer model into a pixelrl_tf run directory.

The run directory has the layout of `model_io` (`model.json` and
`train/ckpt-0`), so `model_io.load_model`, evaluation, export and restoration
use an imported model like a trained one. The architecture is read from the
file: the variant from its keys, the image channels `C` and the feature
channels `F` from `conv1/W` (`(F, C, 3, 3)`; F is 64 in every released
model) and the RMC kernel size from `conv_R/W`; the action set is the
denoising one. The file is a path or the name of a released model in
`data.known_files` (`gru_rmc_sigma25`, ...).
"""

import os
import shutil

import tensorflow as tf

from pixelrl_tf import cli
from pixelrl_tf.data import known_files
from pixelrl_tf.io import files
from pixelrl_tf.models import model_io
from pixelrl_tf.weights import chainer_npz


def config_for_arrays(arrays, variant, t_max=5, source='<arrays>'):
  """Returns the `ModelConfig` that a released model's arrays describe.

  Args:
    arrays: `{key: array}` of a released npz.
    variant: its kind, 'fcn', 'gru' or 'gru_rmc' (see
      `chainer_npz.check_variant`).
    t_max: episode length to record in the config.
    source: file name used in error messages.

  Raises:
    ValueError: if `conv1/W` is missing or not a 4-d kernel, or t_max < 1.
  """
  conv1 = arrays.get('conv1/W')
  if conv1 is None or conv1.ndim != 4:
    raise ValueError(f"{source}: missing key 'conv1/W' (or it is not a "
                     '4-d kernel)')
  if t_max < 1:
    raise ValueError(f't_max must be at least 1, got {t_max}')
  reward_map_size = model_io.ModelConfig.reward_map_size
  if variant == 'gru_rmc':
    reward_map_size = int(arrays[chainer_npz.REWARD_MAP_KEY].shape[-1])
  return model_io.ModelConfig(
      channels=int(conv1.shape[1]), action_set='denoise',
      filters=int(conv1.shape[0]), use_conv_gru=variant != 'fcn',
      use_reward_map_conv=variant == 'gru_rmc',
      reward_map_size=reward_map_size, t_max=t_max)


def import_npz(npz_path, output_dir, variant=None, t_max=5):
  """Converts a released `.npz` into a run directory.

  Args:
    npz_path: the Chainer `.npz`, e.g. `denoise_with_convGRU/pretrained_25.npz`,
      or the name of a released model (`gru_rmc_sigma25`, see
      `data.known_files`), resolved to a local data root, the cache or a
      download.
    output_dir: the run directory to create; it must not already hold a model.
    variant: optional 'fcn', 'gru' or 'gru_rmc'; detected from the keys when
      None, and it must match the file when given.
    t_max: episode length recorded in `model.json`.

  Returns:
    `(config, checkpoint_path)`.

  Raises:
    FileNotFoundError: if `npz_path` is a path that does not exist.
    known_files.KnownFileError: (a ValueError, one line) `npz_path` is
      neither an existing path nor a known name, or the named file cannot be
      had (offline and not cached: the line says how to get it).
    ValueError: (one line) if the file is not a released PixelRL model
      (corrupt, truncated, foreign, NaN or infinite values), is of another
      variant, has missing, extra or misshapen arrays, or `output_dir`
      already holds a model. Nothing is written then.
    OSError: (one line) the run directory cannot be written (full or
      read-only disk); nothing of it is left.
  """
  if variant is not None and variant not in chainer_npz.VARIANTS:
    raise ValueError(f'unknown variant {variant!r}; expected one of '
                     f'{", ".join(chainer_npz.VARIANTS)}')
  npz_path = str(known_files.resolve_path_or_name(npz_path,
                                                  what='weights file'))
  arrays = chainer_npz.read_npz(npz_path)
  source = str(npz_path)
  # Re-reads the (small) file so that messages name it.
  detected = chainer_npz.check_variant(npz_path, variant)
  if detected == chainer_npz.REGRESSION:
    raise ValueError(f'{source}: holds the 7-layer regression FCN, an '
                     'initialisation, not a policy; it cannot be imported '
                     'as a model')
  config = config_for_arrays(arrays, detected, t_max, source)
  if tf.io.gfile.exists(os.path.join(output_dir,
                                     model_io.MODEL_CONFIG_FILE)):
    raise ValueError(f'{output_dir} already holds a model; choose a new '
                     'output directory')
  network = model_io.build_network(config)
  reward_map = model_io.build_reward_map(config)
  chainer_npz.load_into_network(npz_path, network, reward_map,
                                variant=detected)
  return config, _save_run(output_dir, config, network, reward_map)


def _save_model_or_raise(run_dir, config, network, reward_map):
  try:
    return model_io.save_model(run_dir, config, network, reward_map, step=0)
  except tf.errors.OpError as error:
    raise OSError(f'cannot write a checkpoint in {run_dir}: '
                  f'{cli.first_line(error)}') from error


def _save_run(output_dir, config, network, reward_map):
  """Writes the run directory whole or not at all; returns the checkpoint."""
  output_dir = os.fspath(output_dir)
  if not os.path.lexists(output_dir):
    with files.atomic_directory(output_dir) as temp_dir:
      temp_path = _save_model_or_raise(temp_dir, config, network, reward_map)
    return os.path.join(output_dir, os.path.relpath(temp_path, temp_dir))
  # An existing folder without a model: what this writes is removed again
  # if the writing fails.
  train_dir = os.path.join(output_dir, model_io.TRAIN_DIR)
  new_train_dir = not os.path.lexists(train_dir)
  try:
    return _save_model_or_raise(output_dir, config, network, reward_map)
  except BaseException:
    config_path = os.path.join(output_dir, model_io.MODEL_CONFIG_FILE)
    if os.path.lexists(config_path):
      os.remove(config_path)
    if new_train_dir:
      shutil.rmtree(train_dir, ignore_errors=True)
    raise

"""The initial weights of a new network: IRCNN, Chainer, a run's checkpoint.

`initialise_network` (gin-configurable) starts a training run's network
from the configured file; `copy_layers` takes chosen layers of another model
into a network with more input channels (saliency editing starts from a
colour model with a mask channel added).
"""

import dataclasses
import os
from typing import Optional, Sequence

import gin
import numpy as np
import tensorflow as tf

from pixelrl_tf import cli
from pixelrl_tf.data import known_files
from pixelrl_tf.models import model_io


@gin.configurable(module='pixelrl_tf.models')
def initialise_network(network, init_checkpoint=None, init_caffemodel=None,
                       init_npz=None, init_npz_layers=None,
                       missing_ok=False) -> Optional[str]:
  """Initialises a new network before training (not used when resuming).

  The files are paths or names of `data.known_files` (e.g.
  `'ircnn_denoise_15_gray'`, `'salt_pepper_init'`, `'color_init'`), which
  resolve to a local data root (`PIXELRL_DATA_ROOT`), the cache or a
  download.

  Args:
    network: the `FcnActorCritic`.
    init_checkpoint: a run directory or checkpoint prefix whose network
      weights are loaded (stepwise training: an RMC model starts from a GRU
      run; its reward map, optimizer and counters are not taken).
    init_caffemodel: IRCNN `.caffemodel` for trunk and branches (the
      paper's initialisation; GRU and policy head keep their own).
    init_npz: a released Chainer `.npz` to start from.
    init_npz_layers: the layers taken from `init_npz` (None: all).
    missing_ok: when the file cannot be had (absent, offline), start from
      random weights and say so, instead of failing. Only the quick configs
      choose this.

  Returns:
    A one-line description of what was loaded, or None.

  Raises:
    known_files.KnownFileError, FileNotFoundError: the file cannot be had
      (one line naming it and how to get it), without `missing_ok`.
  """
  # pylint: disable=g-import-not-at-top
  if init_checkpoint:
    _, prefix = model_io.resolve_checkpoint(init_checkpoint)
    model_io.restore_checkpoint(tf.train.Checkpoint(network=network), prefix,
                                'the network of this run')
    model_io.check_finite_variables(prefix, [network])
    return f'network initialised from {prefix}'
  source = init_caffemodel or init_npz
  if not source:
    return None
  try:
    path = str(known_files.resolve_path_or_name(source))
  except (known_files.KnownFileError, FileNotFoundError) as error:
    if not missing_ok:
      raise
    return (f'note: {cli.first_line(error)}; starting from random weights '
            '(initialise_network.missing_ok)')
  if init_caffemodel:
    from pixelrl_tf.weights import caffemodel
    caffemodel.load_ircnn_into_network(path, network)
    return f'trunk and branches initialised from {source} ({path})'
  from pixelrl_tf.weights import chainer_npz
  chainer_npz.load_into_network(path, network, layers=init_npz_layers)
  return f'network initialised from {source} ({path})'


def required_files() -> Sequence[str]:
  """The files `initialise_network` is bound to that a new run needs.

  Returns:
    The bound `init_caffemodel` and `init_npz` values (paths, names or
    None), or nothing under `missing_ok`.
  """
  bindings = gin.get_bindings('pixelrl_tf.models.initialise_network')
  if bindings.get('missing_ok', False):
    return []
  return [bindings.get('init_caffemodel'), bindings.get('init_npz')]


def copy_layers(network, init, layers: Sequence[str],
                npz_config: model_io.ModelConfig) -> str:
  """Copies `layers` of another model into `network`.

  Input channels that `network`'s first layer has beyond the source's (a
  mask) get zero weights, so it starts as the source model sees the image.

  Args:
    network: the `FcnActorCritic` to initialise.
    init: a run directory or checkpoint prefix, a Chainer `.npz`, or the
      name of a known `.npz` (`data.known_files`).
    layers: the layer names to copy.
    npz_config: the model an `.npz` holds (its width is `network`'s); a
      run's model must have its image channels.

  Returns:
    A one-line note of what was loaded.

  Raises:
    model_io.CheckpointError: the source has other image channels, another
      width or not those layers (one line naming it).
    FileNotFoundError, ValueError: missing or unreadable sources, an unknown
      name, or a known file that cannot be had
      (`known_files.KnownFileError`).
  """
  # pylint: disable=g-import-not-at-top
  from pixelrl_tf.weights import chainer_npz
  path = str(init)
  # A checkpoint prefix (`RUN/train/ckpt-5`) names no file of its own.
  if not tf.io.gfile.exists(path + '.index'):
    path = str(known_files.resolve_path_or_name(init, what='init'))
  if path.endswith('.npz'):
    source = model_io.build_network(
        dataclasses.replace(npz_config, filters=network.filters))
    chainer_npz.load_into_network(path, source, layers=layers)
  else:
    config, source, _ = model_io.load_model(path)
    if config.channels != npz_config.channels:
      raise model_io.CheckpointError(
          f'{init} is a {config.channels}-channel model; this network '
          f'starts from a {npz_config.channels}-channel model')
  if source.filters != network.filters:
    raise model_io.CheckpointError(
        f'{init} has {source.filters} filters but this network has '
        f'{network.filters}')
  for name in layers:
    kernel, bias = source.layer_by_name(name).get_weights()
    target = network.layer_by_name(name)
    extra = target.kernel.shape[2] - kernel.shape[2]
    if extra:
      kernel = np.concatenate(
          [kernel, np.zeros(kernel.shape[:2] + (extra,) + kernel.shape[3:],
                            kernel.dtype)], axis=2)
    target.set_weights([kernel, bias])
  where = init
  if os.path.normpath(path) != os.path.normpath(str(init)):
    where = f'{init} ({path})'  # a known name
  return f'trunk and branches initialised from {where} (not the GRU or heads)'

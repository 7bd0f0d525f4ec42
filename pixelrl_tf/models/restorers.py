"""A model as a `Restorer`: from a run, a checkpoint or an exported model.

Shapes: `T` steps, `H, W` height and width, `C` channels.

`restorer_from_run` wraps a run's network in a `RestorationModule` in
process; `load_restorer` also takes an exported SavedModel
(`EXPORT_BASE/NAME/VERSION`, or `EXPORT_BASE/NAME` for its largest
version), whose `ModelConfig` travels with it (`MODEL_CONFIG_ASSET`).
`eval`, `restore`, `export`, the viewer and the benchmarks all load models
through this module.
"""

import os
from typing import List, Optional, Tuple

import tensorflow as tf

from pixelrl_tf import cli
from pixelrl_tf.models import model_io
from pixelrl_tf.serving import restoration_module

# The `ModelConfig` an export keeps beside its SavedModel.
MODEL_CONFIG_ASSET = os.path.join('assets.extra', model_io.MODEL_CONFIG_FILE)


class RestoreError(Exception):
  """Nothing loadable at a path, or a corrupt SavedModel; one line."""


def existing_versions(model_base: str) -> List[int]:
  """Integer version folders under `model_base` (empty if it is absent)."""
  if not os.path.isdir(model_base):
    return []
  return sorted(int(name) for name in os.listdir(model_base)
                if name.isdigit() and
                os.path.isdir(os.path.join(model_base, name)))


def saved_model_folder(path: str) -> Optional[str]:
  """The SavedModel folder of `path`: itself or its largest version."""
  candidates = [path] + [os.path.join(path, str(version))
                         for version in reversed(existing_versions(path))]
  for folder in candidates:
    if os.path.isfile(os.path.join(folder, 'saved_model.pb')):
      return folder
  return None


def exported_config(folder: str) -> Optional[model_io.ModelConfig]:
  """The `ModelConfig` an export keeps beside its SavedModel, or None.

  Raises:
    ValueError: (one line, naming the file) it is not a valid config.
  """
  path = os.path.join(folder, MODEL_CONFIG_ASSET)
  if not os.path.isfile(path):
    return None
  with open(path, encoding='utf-8') as f:
    text = f.read()
  try:
    return model_io.ModelConfig.from_json(text)
  except ValueError as error:
    raise ValueError(f'{path}: {cli.first_line(error)}') from None


def restoration_module_for(config: model_io.ModelConfig, network,
                           t_max: Optional[int] = None,
                           jit_compile: bool = False
                           ) -> restoration_module.RestorationModule:
  """The `RestorationModule` of a model (its action set and `t_max`)."""
  return restoration_module.RestorationModule(
      network, config.get_action_set(), t_max or config.t_max,
      jit_compile=jit_compile)


def restorer_from_run(path: str, t_max: Optional[int] = None,
                      jit_compile: bool = False, dtype_policy=None
                      ) -> Tuple[model_io.ModelConfig,
                                 restoration_module.Restorer]:
  """The `Restorer` of a run directory or checkpoint (in process).

  Args:
    path: run directory, checkpoint prefix or `RUN/best`.
    t_max: restoration steps (None: the model's).
    jit_compile: compile the restoration loop with XLA.
    dtype_policy: Keras dtype policy of the network (e.g.
      `'mixed_bfloat16'`).

  Returns:
    `(config, Restorer)`.

  Raises:
    FileNotFoundError, ValueError: see `model_io.load_model`.
  """
  config, network, _ = model_io.load_model(path, dtype_policy=dtype_policy)
  module = restoration_module_for(config, network, t_max, jit_compile)
  return config, restoration_module.restorer_from_module(
      module, description=f'{config.variant} model of {path}')


def _restorer_from_saved_model(path):
  try:
    return restoration_module.restorer_from_saved_model(path)
  except ValueError as error:
    raise RestoreError(cli.first_line(error)) from error
  except (OSError, tf.errors.OpError) as error:
    raise RestoreError(f'cannot load the SavedModel {path} (corrupt or '
                       f'incomplete?): {cli.first_line(error)}') from error


def load(path: str) -> Tuple[Optional[model_io.ModelConfig],
                             restoration_module.Restorer, str]:
  """Loads a SavedModel, a served model's folder, a run dir or a checkpoint.

  Args:
    path: `EXPORT_BASE/NAME/VERSION` (a SavedModel), `EXPORT_BASE/NAME`
      (its largest version), a run directory, `RUN/best` or a checkpoint
      prefix.

  Returns:
    `(config or None, Restorer, description)`; an export made before
    exports kept their config has none.

  Raises:
    RestoreError: if nothing loadable is at `path`, or a SavedModel there
      is corrupt or not a restoration model.
    ValueError: (one line) a run's `model.json` or checkpoint cannot be
      loaded (`model_io.CheckpointError` names the checkpoint), or an
      export's config is damaged.
  """
  if os.path.isdir(path):
    folder = saved_model_folder(path)
    if folder is not None:
      return (exported_config(folder), _restorer_from_saved_model(folder),
              f'SavedModel {folder}')
    try:
      config, restorer = restorer_from_run(path)
    except FileNotFoundError:
      if os.path.isfile(os.path.join(path, model_io.MODEL_CONFIG_FILE)):
        raise
      raise RestoreError(
          f'{path} holds no SavedModel (saved_model.pb), no version folder '
          f'and no run ({model_io.MODEL_CONFIG_FILE})') from None
    return config, restorer, restorer.description
  if os.path.isfile(path + '.index'):
    config, restorer = restorer_from_run(path)
    return config, restorer, f'{config.variant} checkpoint {path}'
  raise RestoreError(f'model {path} does not exist')


def load_restorer(path: str) -> restoration_module.Restorer:
  """The `Restorer` of what `load` loads."""
  return load(path)[1]

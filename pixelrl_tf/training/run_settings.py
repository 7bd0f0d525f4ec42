"""What a run records about its settings, and what a resume may change.

`run.json` holds the settings that shape the training trajectory or the
validation split (`GUARDED_SETTINGS`, with the agent's
`GUARDED_AGENT_HYPERPARAMETERS`); a start in an existing run directory is
refused when its settings or its model differ, naming every difference,
unless `RunControl.allow_changes` lists them. Every start's gin configuration is
kept beside the earlier ones (`operative_config-<episode>.gin`).
"""

import dataclasses
import json
import os
from typing import Any, Dict, Iterable, Optional

import tensorflow as tf

from pixelrl_tf import cli
from pixelrl_tf.io import files
from pixelrl_tf.models import model_io
from pixelrl_tf.training import triggers

RUN_SETTINGS_FILE = 'run.json'
OPERATIVE_CONFIG_PATTERN = 'operative_config-{episode}.gin'
# A later start at the same episode with another configuration (k = 2, 3...).
OPERATIVE_CONFIG_AGAIN_PATTERN = 'operative_config-{episode}-{k}.gin'

# Settings of a run that a resume may not change silently (`run.json`):
# everything that changes the training trajectory or the validation split.
# Settings a resume may change freely change neither, or only the order of
# float32 sums: strategy, update_recompute, jit_compile,
# PixelA2CAgent.max_update_batch, the logging, checkpoint and validation
# intervals (docs/design.md, "What a resume may change").
GUARDED_SETTINGS = ('task', 'data_source', 'list_file', 'seed', 'batch_size',
                    'crop_size', 'num_episodes', 'learning_rate',
                    'learning_rate_power', 'adam_epsilon', 'agent',
                    'mixed_precision', 'validation_source',
                    'validation_fraction', 'max_validation_images',
                    'choose_inference_steps')
# Agent hyper-parameters that change the result of an update (the others,
# e.g. `max_update_batch`, change only how it is computed).
GUARDED_AGENT_HYPERPARAMETERS = ('gamma', 'entropy_coef', 'value_loss_coef',
                                 'reward_map_policy_gradient', 'reward_scale',
                                 'gradient_clip_norm',
                                 'all_actions_policy_gradient',
                                 'imitation_coef', 'imitation_temperature',
                                 'imitation_updates')


def task_settings(task) -> Dict[str, Any]:
  """A `Task` as JSON-able values (its fields)."""
  values = dataclasses.asdict(task)
  if not isinstance(values['action_set'], str):
    values['action_set'] = list(values['action_set'])
  return values


def _setting_differences(key, stored, current):
  """`(name, stored, current)` for each difference; a task field by field.

  A field the stored settings do not hold (a run recorded before the field
  existed) is not compared.
  """
  if isinstance(stored, dict) and isinstance(current, dict):
    return [(f'{key}.{field}', stored.get(field), current.get(field))
            for field in sorted(stored)
            if stored.get(field) != current.get(field)]
  return [(key, stored, current)] if stored != current else []


def check_resume(root_dir: str, settings: Dict[str, Any],
                 allow_changes: Iterable[str], model: model_io.ModelConfig,
                 stored_model: Optional[model_io.ModelConfig]
                 ) -> Optional[Dict[str, Any]]:
  """Refuses a resume whose model or settings differ from the run's.

  Args:
    root_dir: the run directory.
    settings: this start's guarded settings (`GUARDED_SETTINGS`).
    allow_changes: the guarded settings this start may change.
    model: this start's `ModelConfig`.
    stored_model: the run's (`model.json`), or None for a new run.

  Returns:
    The stored settings (`run.json`), or None for a new run.

  Raises:
    triggers.TrainingError: one line naming every difference (a task's or a
      model's fields one by one, e.g. `task.noise`, `model.filters`) and
      how to proceed.
  """
  details = []
  if stored_model is not None and stored_model != model:
    details.extend(
        f'model.{name} {old!r} -> {new!r}' for name, old, new in
        _setting_differences('model', dataclasses.asdict(stored_model),
                             dataclasses.asdict(model)))
  model_changed = bool(details)
  stored, refused = None, []
  path = os.path.join(root_dir, RUN_SETTINGS_FILE)
  if tf.io.gfile.exists(path):
    try:
      with tf.io.gfile.GFile(path) as f:
        stored = json.load(f)
      if not isinstance(stored, dict):
        raise ValueError('not a JSON object')
    except (ValueError, tf.errors.OpError) as error:
      raise triggers.TrainingError(f'cannot read {path} ({cli.first_line(error)}); '
                          'use a new --root_dir') from None
    for key in GUARDED_SETTINGS:
      if key not in stored or key in allow_changes:
        continue
      differences = _setting_differences(key, stored[key], settings.get(key))
      if differences:
        refused.append(key)
        details.extend(f'{name} {old!r} -> {new!r}'
                       for name, old, new in differences)
  if model_changed:
    raise triggers.TrainingError(
        f'{root_dir} holds a different model, trained with other settings '
        f'({"; ".join(details)}); use a new --root_dir, or the same '
        'configuration to resume')
  if refused:
    raise triggers.TrainingError(
        f'{root_dir} was trained with other settings ({"; ".join(details)}); '
        'use a new --root_dir, or allow the change with '
        f'RunControl.allow_changes = {refused!r}')
  return stored


def write_run_settings(root_dir: str, settings: Dict[str, Any]) -> None:
  """Writes `run.json` atomically."""
  files.write_text_atomically(os.path.join(root_dir, RUN_SETTINGS_FILE),
                              json.dumps(settings, indent=2, sort_keys=True))


def write_operative_config(root_dir: str, episode: int, text: str) -> str:
  """Keeps the configuration of this start beside those of earlier starts.

  A start at an episode where another start began writes
  `operative_config-<episode>-<k>.gin`, unless one of those files already
  holds the same text (a rerun after a kill).
  """
  k = 1
  while True:
    name = (OPERATIVE_CONFIG_PATTERN.format(episode=episode) if k == 1 else
            OPERATIVE_CONFIG_AGAIN_PATTERN.format(episode=episode, k=k))
    path = os.path.join(root_dir, name)
    if not tf.io.gfile.exists(path):
      files.write_text_atomically(path, text)
      return path
    with tf.io.gfile.GFile(path) as f:
      if f.read() == text:
        return path
    k += 1

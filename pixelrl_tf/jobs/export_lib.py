"""Exports a trained PixelRL model as SavedModels in the TF Serving layout.

Shapes: `B` batch, `T` steps, `H, W` height and width (any), `C` channels of
the model, `F` GRU feature channels.

From a run directory (trained or imported), `export_model` writes two
servables with the same integer version:

    EXPORT_BASE/NAME/VERSION/              the restoration model
        saved_model.pb, variables/         signatures (see docs/serving.md):
                                             serving_default  float32 images
                                             restore_uint8    uint8 images
                                             restore_steps    every step
                                             metadata         t_max, actions
        assets.extra/model.json            the ModelConfig, for provenance
    EXPORT_BASE/NAME_policy/VERSION/       the greedy TF-Agents policy
        saved_model.pb, variables/,        (PolicySaver: action,
        policy_specs.pbtxt                  get_initial_state, ...)

`NAME` is what TF Serving serves with `--model_base_path=EXPORT_BASE/NAME`;
the policy is a sibling model rather than a subfolder so that both can be
served from one model config file and versioned alike. The restoration model
runs the whole `t_max`-step greedy episode in one call; the policy is one
step (actions and the next GRU state) for clients that run the loop
themselves.

The policy's observation spec is `[None, None, C]`: PolicySaver accepts
unknown height and width (its signatures take `[B,H,W,C]` observations of any
size), so no fixed policy image size is needed.

Versions count up from 1: without an explicit version the next one is one
more than the largest integer folder under either `NAME` or `NAME_policy`.
An existing version is never overwritten, and two exports running at once
take different versions (each claims its version with an atomic `mkdir`
first). Both SavedModels are written into hidden temporary folders beside
their final places and renamed only when both are complete, the policy
first: a server polling `NAME` never sees a half-written version, nor a
version without its policy.
"""

import dataclasses
import os
import re
import shutil
import tempfile
import warnings

import tensorflow as tf
from tf_agents.policies import policy_saver

from pixelrl_tf import cli
from pixelrl_tf.io import files
from pixelrl_tf.jobs import model_io
from pixelrl_tf.serving import restoration_module

POLICY_SUFFIX = '_policy'
MODEL_CONFIG_ASSET = os.path.join('assets.extra', model_io.MODEL_CONFIG_FILE)
_MODEL_NAME_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')


@dataclasses.dataclass(frozen=True)
class ExportResult:
  """Where `export_model` wrote.

  Attributes:
    version: the integer version.
    model_dir: `EXPORT_BASE/NAME/VERSION`, the restoration SavedModel.
    policy_dir: `EXPORT_BASE/NAME_policy/VERSION`, the policy SavedModel.
  """
  version: int
  model_dir: str
  policy_dir: str


def existing_versions(model_base):
  """Integer version folders under `model_base` (empty if it is absent)."""
  if not os.path.isdir(model_base):
    return []
  return sorted(int(name) for name in os.listdir(model_base)
                if name.isdigit() and
                os.path.isdir(os.path.join(model_base, name)))


def next_version(*model_bases):
  """One more than the largest version under any of `model_bases`, or 1."""
  versions = [v for base in model_bases for v in existing_versions(base)]
  return max(versions, default=0) + 1


def greedy_policy(config, network):
  """The agent's greedy `policy` over `network` (any image size).

  Args:
    config: the `ModelConfig`.
    network: its `FcnActorCritic`.

  Returns:
    `agent.policy`: observation `[H,W,C]` float32, reward `[H,W]`, action
    `[H,W]` int32 in `[0, A-1]`, state the GRU map `[H,W,F]` (or none).
  """
  return model_io.build_agent(config, network).policy


def restoration_module_for(config, network):
  """The `RestorationModule` of a model (its action set and `t_max`)."""
  return restoration_module.RestorationModule(
      network, config.get_action_set(), config.t_max)


def _reserve_version(model_base, policy_base, version):
  """Claims `version` for this export (atomic `mkdir`); False if taken."""
  for base in (model_base, policy_base):
    if os.path.exists(os.path.join(base, str(version))):
      return False
  os.makedirs(model_base, exist_ok=True)
  try:
    os.mkdir(os.path.join(model_base, f'.{version}.reserved'))
  except FileExistsError:
    return False
  return True


def _save_atomically(saves):
  """Writes SavedModels beside their final folders, then renames them.

  Args:
    saves: `(save_fn, final_dir)` pairs, renamed in this order;
      `save_fn(temp_dir)` writes one SavedModel. Nothing is renamed into
      place unless every save succeeds, and the last folder (the served
      restoration model) appears only after the others are in place.
  """
  temp_dirs = []
  try:
    for save_fn, final_dir in saves:
      parent = os.path.dirname(final_dir)
      os.makedirs(parent, exist_ok=True)
      temp_dirs.append(tempfile.mkdtemp(
          dir=parent, prefix=f'.{os.path.basename(final_dir)}.',
          suffix='.tmp'))
      try:
        save_fn(temp_dirs[-1])
      except tf.errors.OpError as error:
        # TensorFlow's file writes (a full or read-only disk) fail this way.
        raise OSError(f'cannot write {final_dir}: '
                      f'{cli.first_line(error)}') from error
    for temp_dir, (_, final_dir) in zip(temp_dirs, saves):
      if os.path.exists(final_dir):
        raise FileExistsError(f'{final_dir} appeared while exporting; '
                              'not overwriting it')
      os.rename(temp_dir, final_dir)
  finally:
    for temp_dir in temp_dirs:
      shutil.rmtree(temp_dir, ignore_errors=True)


def _save_restoration_model(config, network, path):
  module = restoration_module_for(config, network)
  tf.saved_model.save(module, path, signatures=module.signatures())
  files.write_text_atomically(os.path.join(path, MODEL_CONFIG_ASSET),
                              config.to_json())


def _save_policy(config, network, path):
  saver = policy_saver.PolicySaver(greedy_policy(config, network),
                                   batch_size=None)
  with warnings.catch_warnings():
    # The policy's `distribution` attribute is a TFP type spec, which
    # loaders must import TFP for; the serving signatures do not use it.
    warnings.filterwarnings('ignore', message='Encoding a StructuredValue')
    saver.save(path)


def export_model(root_dir, export_base, model_name, version=None):
  """Exports the model of a run directory for TF Serving.

  Args:
    root_dir: run directory (or checkpoint prefix) that
      `model_io.load_model` reads; imported weights work alike.
    export_base: the folder holding the served models.
    model_name: `NAME` (letters, digits, `.`, `_`, `-`).
    version: the version to write; None takes the next free one.

  Returns:
    An `ExportResult`.

  Raises:
    ValueError: on a bad model name or version, or a `model.json` or
      checkpoint that cannot be loaded (`model_io.CheckpointError`: one
      line naming the checkpoint); nothing is written then.
    FileExistsError: if the version already exists.
    FileNotFoundError: if `root_dir` holds no model.
    OSError: (one line) the export cannot be written (full or read-only
      disk); no partial version is left.
  """
  if not _MODEL_NAME_PATTERN.match(model_name or ''):
    raise ValueError(f'bad model name {model_name!r}: use letters, digits, '
                     '".", "_" and "-"')
  model_base = os.path.join(export_base, model_name)
  policy_base = os.path.join(export_base, model_name + POLICY_SUFFIX)
  if version is not None and version < 1:
    raise ValueError(f'version must be a positive integer, got {version}')
  config, network, _ = model_io.load_model(root_dir)
  explicit = version is not None
  if not explicit:
    version = next_version(model_base, policy_base)
  # Two exports at once take different versions: each claims its version
  # with an atomic mkdir before writing.
  while not _reserve_version(model_base, policy_base, version):
    if explicit:
      raise FileExistsError(
          f'{os.path.join(model_base, str(version))} already exists (or is '
          'being exported); refusing to overwrite it (omit --version to '
          'take the next one)')
    version += 1
  model_dir = os.path.join(model_base, str(version))
  policy_dir = os.path.join(policy_base, str(version))
  try:
    # The policy first: the restoration model, what a server polls, appears
    # last, so it never exists without its policy.
    _save_atomically([
        (lambda path: _save_policy(config, network, path), policy_dir),
        (lambda path: _save_restoration_model(config, network, path),
         model_dir),
    ])
  finally:
    os.rmdir(os.path.join(model_base, f'.{version}.reserved'))
  return ExportResult(version=version, model_dir=model_dir,
                      policy_dir=policy_dir)

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
take different versions: each first claims its version with a reservation,
the folder `NAME/.VERSION.reserved`, which appears atomically together with
its owner (host name, process id and process start time). Both SavedModels
are written into hidden temporary folders beside their final places
(`.VERSION.*.tmp`) and renamed only when both are complete, the policy
first: a server polling `NAME` never sees a half-written version, nor a
version without its policy. When an export fails, a policy it already
renamed into place is taken back, so that no version is left without its
restoration model.

An export killed outright (`kill -9`, power loss) leaves its reservation
behind. Every export first sweeps the reservations of this host whose
process no longer runs, together with their temporary folders and a policy
renamed into place without its restoration model, so the version becomes
free again. Reservations of other hosts are left alone, since their
processes cannot be checked from here; deleting the `owner.json` file of
one marks it stale for the next export on any host.
"""

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import tempfile
import warnings

import tensorflow as tf
from tf_agents.policies import policy_saver

from pixelrl_tf import cli
from pixelrl_tf.io import files
from pixelrl_tf.models import model_io
from pixelrl_tf.models import restorers

POLICY_SUFFIX = '_policy'
_MODEL_NAME_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')
_OWNER_FILE = 'owner.json'
_RESERVED = re.compile(r'^\.(\d+)\.reserved$')
_RESERVING = re.compile(r'^\.\d+\..+\.reserving$')


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


def next_version(*model_bases):
  """One more than the largest version under any of `model_bases`, or 1."""
  versions = [v for base in model_bases
              for v in restorers.existing_versions(base)]
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


def _process_stat(pid):
  """`(state, start time)` of a process from `/proc`, or None if unreadable."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      # The command name, in parentheses, may hold spaces.
      fields = f.read().rsplit(')', 1)[1].split()
    return fields[0], fields[19]
  except (OSError, IndexError):
    return None


def _this_process():
  """The owner recorded in this export's reservation."""
  stat = _process_stat(os.getpid())
  return {'host': socket.gethostname(), 'pid': os.getpid(),
          'start': stat[1] if stat else None}


def _read_owner(reservation):
  """The owner a reservation folder records, or None if it records none."""
  try:
    with open(os.path.join(reservation, _OWNER_FILE)) as f:
      owner = json.load(f)
  except (OSError, ValueError):
    return None
  if (not isinstance(owner, dict) or not isinstance(owner.get('host'), str)
      or not isinstance(owner.get('pid'), int)
      or not 0 < owner['pid'] < 2**31):
    return None
  return owner


def _is_stale(owner):
  """Whether the export that holds a reservation no longer runs.

  Args:
    owner: what `_read_owner` returned.

  Returns:
    True for a reservation without an owner (reservations appear with theirs,
    so its owner file was deleted or it was left by an older export), and
    for one of this host whose process has ended (or whose process id now
    belongs to a process started at another time). False for other hosts.
  """
  if owner is None:
    return True
  if owner['host'] != socket.gethostname():
    return False
  try:
    os.kill(owner['pid'], 0)
  except ProcessLookupError:
    return True
  except PermissionError:
    pass  # The process runs under another user.
  stat = _process_stat(owner['pid'])
  if stat is None:
    return False
  state, start = stat
  return state == 'Z' or owner.get('start') not in (None, start)


@contextlib.contextmanager
def _exports_locked(model_base):
  """Serializes the sweeps and reservations of this host's exports.

  Without it, a sweep could remove the temporary folders of an export that
  reserved a version just swept by another sweep. The lock is on the `NAME`
  folder itself, so no lock file is left; where the file system has no
  locks, reservations still keep the versions of exports apart.
  """
  fd = os.open(model_base, os.O_RDONLY)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
      pass
    yield
  finally:
    os.close(fd)  # Releases the lock.


def _sweep_stale_reservations(model_base, policy_base):
  """Removes what killed exports left (see `_is_stale`); under the lock.

  While a stale `NAME/.V.reserved` exists no other export can hold version
  `V`, so its `.V.*.tmp` folders and a `NAME_policy/V` without `NAME/V` are
  leftovers of the killed export. The reservation goes last, so that a sweep
  cut short is finished by the next one.
  """
  for name in os.listdir(model_base):
    path = os.path.join(model_base, name)
    reserved = _RESERVED.match(name)
    if reserved and _is_stale(_read_owner(path)):
      version = reserved.group(1)
      for base in (model_base, policy_base):
        if os.path.isdir(base):
          for temp in os.listdir(base):
            if temp.startswith(f'.{version}.') and temp.endswith('.tmp'):
              shutil.rmtree(os.path.join(base, temp), ignore_errors=True)
      if not os.path.exists(os.path.join(model_base, version)):
        shutil.rmtree(os.path.join(policy_base, version), ignore_errors=True)
      shutil.rmtree(path, ignore_errors=True)
    elif _RESERVING.match(name) and _is_stale(_read_owner(path)):
      shutil.rmtree(path, ignore_errors=True)


def _raise_if_exported(model_base, policy_base, version):
  """Raises FileExistsError (one line) if either folder of `version` exists."""
  for base in (model_base, policy_base):
    path = os.path.join(base, str(version))
    if os.path.lexists(path):
      raise FileExistsError(f'{path} already exists; refusing to overwrite '
                            'it (omit --version to take the next one)')


def _held_error(model_base, version):
  """The one-line error for a version that another export holds."""
  reservation = os.path.join(model_base, f'.{version}.reserved')
  target = os.path.join(model_base, str(version))
  owner = _read_owner(reservation)
  if owner is None:
    held_by = 'another process'
  elif owner['host'] == socket.gethostname():
    held_by = f'process {owner["pid"]} on this host'
  else:
    return FileExistsError(
        f'{target} is being exported by process {owner["pid"]} on host '
        f'{owner["host"]}; if that export no longer runs, delete '
        f'{os.path.join(reservation, _OWNER_FILE)} and the next export '
        'removes what it left (or omit --version to take the next one)')
  return FileExistsError(f'{target} is being exported by {held_by} (omit '
                         '--version to take the next one)')


def _reserve_version(model_base, policy_base, version):
  """Claims `version` for this export; call it under `_exports_locked`.

  The reservation is written with its owner in a hidden folder that is then
  renamed to `NAME/.VERSION.reserved`, so no export ever sees a reservation
  without its owner.

  Returns:
    The reservation folder, to delete when the export ends.

  Raises:
    FileExistsError: (one line) the version exists, or another export
      holds it.
  """
  _raise_if_exported(model_base, policy_base, version)
  reservation = os.path.join(model_base, f'.{version}.reserved')
  temp = tempfile.mkdtemp(dir=model_base, prefix=f'.{version}.',
                          suffix='.reserving')
  try:
    os.chmod(temp, 0o755)  # Exports of other users read the owner too.
    with open(os.path.join(temp, _OWNER_FILE), 'w') as f:
      json.dump(_this_process(), f)
    os.rename(temp, reservation)
  except OSError as error:
    shutil.rmtree(temp, ignore_errors=True)
    if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
      raise _held_error(model_base, version) from None
    raise
  try:
    # An export that held the version may have finished just before.
    _raise_if_exported(model_base, policy_base, version)
  except FileExistsError:
    shutil.rmtree(reservation, ignore_errors=True)
    raise
  return reservation


def _save_atomically(saves):
  """Writes SavedModels beside their final folders, then renames them.

  Args:
    saves: `(save_fn, final_dir)` pairs, renamed in this order;
      `save_fn(temp_dir)` writes one SavedModel. Nothing is renamed into
      place unless every save succeeds, and the last folder (the served
      restoration model) appears only after the others are in place.

  Raises:
    OSError: a save or rename failed. The folders already renamed into
      place are taken back, so none of `saves` is left.
  """
  temp_dirs = []
  renamed = []
  try:
    for save_fn, final_dir in saves:
      parent = os.path.dirname(final_dir)
      os.makedirs(parent, exist_ok=True)
      temp_dirs.append(tempfile.mkdtemp(
          dir=parent, prefix=f'.{os.path.basename(final_dir)}.',
          suffix='.tmp'))
      # mkdtemp makes the folder private (0700); a server running as another
      # user must read the version.
      os.chmod(temp_dirs[-1], 0o777 & ~files.umask())
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
      renamed.append((temp_dir, final_dir))
  except BaseException:
    if len(renamed) < len(saves):
      for temp_dir, final_dir in reversed(renamed):
        # Back under its hidden name first, so that it vanishes at once.
        try:
          os.rename(final_dir, temp_dir)
        except OSError:
          shutil.rmtree(final_dir, ignore_errors=True)
    raise
  finally:
    for temp_dir in temp_dirs:
      shutil.rmtree(temp_dir, ignore_errors=True)


def _save_restoration_model(config, network, path):
  module = restorers.restoration_module_for(config, network)
  tf.saved_model.save(module, path, signatures=module.signatures())
  files.write_text_atomically(
      os.path.join(path, restorers.MODEL_CONFIG_ASSET), config.to_json())


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
    FileExistsError: (one line) the version already exists, or another
      export holds it (naming its process and host).
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
  os.makedirs(model_base, exist_ok=True)
  with _exports_locked(model_base):
    _sweep_stale_reservations(model_base, policy_base)
    explicit = version is not None
    if not explicit:
      version = next_version(model_base, policy_base)
    while True:
      try:
        reservation = _reserve_version(model_base, policy_base, version)
        break
      except FileExistsError:
        if explicit:
          raise
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
    shutil.rmtree(reservation, ignore_errors=True)
  return ExportResult(version=version, model_dir=model_dir,
                      policy_dir=policy_dir)

"""Reads the authors' released Chainer `.npz` models into `FcnActorCritic`.

A released model is a flat npz of Chainer link paths (`conv1/W`,
`diconv2/diconv/b`, `conv7_Wz/W`, `conv8_pi/model/W`, `conv_R/W`, ...).
Kernels are stored `(out, in, kh, kw)`; TensorFlow wants `(kh, kw, in, out)`,
i.e. `W.transpose(2, 3, 1, 0)` (both frameworks cross-correlate). Every key
maps to one `FcnActorCritic` layer (see docs/design.md) or to the RMC kernel.

File kinds (`detect_variant`):

    'fcn'         plain FCN: policy head conv7_pi/model, no ConvGRU.
    'gru'         +convGRU: conv7_{Wz,Uz,Wr,Ur,W,U} and conv8_pi/model.
    'gru_rmc'     +convGRU+RMC: as 'gru' plus the 33x33 conv_R/W.
    'regression'  the 7-layer supervised FCN of the colour package
                  (`200model.npz`: conv1, diconv2..6, conv7); it is an
                  initialisation only and loads with `layers=`.

`load_into_network` loads a whole file (the file and the network must match
exactly) or, with `layers=`, only the named network layers, which is how the
restoration and colour trainings are initialised.

`read_npz` unpacks the archive itself, member by member, and unpickles
nothing: a file that is empty, truncated, corrupt, not a zip of `.npy`
arrays, or holds object, string or complex arrays or NaN/Inf values is
refused with a one-line `ValueError` naming the file (and the key).
"""

import io
import math
import os
import zipfile
from typing import Mapping, NamedTuple

import numpy as np

from pixelrl_tf.networks import conv_gru

VARIANTS = ('fcn', 'gru', 'gru_rmc')
REGRESSION = 'regression'
REWARD_MAP_LAYER = 'reward_map_conv'
REWARD_MAP_KEY = 'conv_R/W'
# The released models are a few MB; anything this large is not one (and
# would only be unpacked into memory).
MAX_NPZ_BYTES = 1 << 30

# Network layers of the trunk and of both dilated branches.
TRUNK_AND_BRANCH_LAYERS = ('conv1', 'diconv2', 'diconv3', 'diconv4',
                           'diconv5_pi', 'diconv6_pi', 'diconv5_v',
                           'diconv6_v')
# What the colour training takes from `200model.npz` (facts s.1): the trunk
# and both branches; the ConvGRU and both heads keep their initialisation.
COLOR_INIT_LAYERS = TRUNK_AND_BRANCH_LAYERS

_TRUNK_AND_BRANCH_LINKS = (
    ('conv1', 'conv1'),
    ('diconv2/diconv', 'diconv2'),
    ('diconv3/diconv', 'diconv3'),
    ('diconv4/diconv', 'diconv4'),
    ('diconv5_pi/diconv', 'diconv5_pi'),
    ('diconv6_pi/diconv', 'diconv6_pi'),
    ('diconv5_V/diconv', 'diconv5_v'),
    ('diconv6_V/diconv', 'diconv6_v'),
)
_GRU_LINKS = (('conv7_Wz', 'wz'), ('conv7_Uz', 'uz'), ('conv7_Wr', 'wr'),
              ('conv7_Ur', 'ur'), ('conv7_W', 'w'), ('conv7_U', 'u'))
# The 7-layer regression FCN: its two dilated layers 5 and 6 initialise the
# policy and the value branch alike; its output conv7 (64 -> C) has no
# counterpart and is never loaded.
_REGRESSION_LINKS = (
    ('conv1', ('conv1',)),
    ('diconv2/diconv', ('diconv2',)),
    ('diconv3/diconv', ('diconv3',)),
    ('diconv4/diconv', ('diconv4',)),
    ('diconv5/diconv', ('diconv5_pi', 'diconv5_v')),
    ('diconv6/diconv', ('diconv6_pi', 'diconv6_v')),
)
_REGRESSION_UNUSED_KEYS = ('conv7/W', 'conv7/b')


class Assignment(NamedTuple):
  """One npz array and where it goes.

  Attributes:
    key: the npz key, e.g. `'diconv2/diconv/W'`.
    layer: the network layer name (or `REWARD_MAP_LAYER`).
    variable: `'kernel'`, `'bias'`, a ConvGRU kernel name (`'wz'`, ...) or
      `'kernel'` of the reward map.
  """
  key: str
  layer: str
  variable: str


def _conv_assignments(link, layer, bias=True):
  result = [Assignment(f'{link}/W', layer, 'kernel')]
  if bias:
    result.append(Assignment(f'{link}/b', layer, 'bias'))
  return result


def assignments(kind):
  """Returns the `Assignment`s of a file kind (`VARIANTS` or 'regression')."""
  if kind == REGRESSION:
    return [a for link, layers in _REGRESSION_LINKS for layer in layers
            for a in _conv_assignments(link, layer)]
  if kind not in VARIANTS:
    raise ValueError(f'unknown variant {kind!r}; expected one of '
                     f'{", ".join(VARIANTS)}')
  result = []
  for link, layer in _TRUNK_AND_BRANCH_LINKS:
    result.extend(_conv_assignments(link, layer))
  if kind == 'fcn':
    result.extend(_conv_assignments('conv7_pi/model', 'conv7_pi'))
  else:
    result.extend(Assignment(f'{link}/W', 'conv_gru', name)
                  for link, name in _GRU_LINKS)
    result.extend(_conv_assignments('conv8_pi/model', 'conv8_pi'))
  result.extend(_conv_assignments('conv7_V', 'conv7_v'))
  if kind == 'gru_rmc':
    result.append(Assignment(REWARD_MAP_KEY, REWARD_MAP_LAYER, 'kernel'))
  return result


def expected_keys(kind):
  """The exact key set of a released file of this kind."""
  keys = {a.key for a in assignments(kind)}
  if kind == REGRESSION:
    keys.update(_REGRESSION_UNUSED_KEYS)
  return keys


class _NpzError(ValueError):
  """A finished one-line message about an npz file."""


def _one_line(text):
  return ' '.join(str(text).split())


def _read_npy_member(data, key, source):
  """Decodes one `.npy` member of an npz without unpickling anything.

  Args:
    data: the member's bytes.
    key: its key (the member name without `.npy`), for messages.
    source: the file, for messages.

  Returns:
    The array, writable and owning its memory.

  Raises:
    ValueError: (one line) the member is not a numeric `.npy` array, its
      data is truncated or too long, or it holds NaN or infinite values.
  """
  stream = io.BytesIO(data)
  try:
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
      shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(
          stream)
    elif version == (2, 0):
      shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(
          stream)
    else:
      raise ValueError(f'unsupported .npy format version {version}')
  except ValueError as error:
    raise _NpzError(f'{source}: member {key!r} is not a .npy array '
                    f'({_one_line(error)})') from None
  if dtype.hasobject:
    raise _NpzError(f'{source}: array {key!r} holds Python objects (dtype '
                    f'{dtype}); pickled data is refused')
  if dtype.fields is not None or dtype.kind not in 'iuf':
    raise _NpzError(f'{source}: array {key!r} has dtype {dtype}, expected a '
                    'numeric (integer or float) array')
  if any(dim < 0 for dim in shape):
    raise _NpzError(f'{source}: array {key!r} has a negative dimension in '
                    f'its shape {shape}')
  count = math.prod(shape)
  expected = count * dtype.itemsize
  stored = len(data) - stream.tell()
  if stored != expected:
    raise _NpzError(f'{source}: array {key!r} of shape {shape} and dtype '
                    f'{dtype} needs {expected} bytes, the file holds '
                    f'{stored}')
  array = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
  array = array.reshape(shape, order='F' if fortran_order else 'C').copy(
      order='K')
  if dtype.kind == 'f' and not np.all(np.isfinite(array)):
    raise _NpzError(f'{source}: array {key!r} holds NaN or infinite values')
  return array


def _read_members(archive, source):
  arrays = {}
  total = 0
  for info in archive.infolist():
    name = info.filename
    if not name.endswith('.npy') or info.is_dir():
      raise _NpzError(f'{source}: not an .npz file of arrays (member '
                      f'{name!r} is not a .npy array)')
    key = name[:-len('.npy')]
    total += info.file_size
    if total > MAX_NPZ_BYTES:
      raise _NpzError(f'{source}: the arrays unpack to more than '
                      f'{MAX_NPZ_BYTES} bytes; not a PixelRL model')
    arrays[key] = _read_npy_member(archive.read(info), key, source)
  if not arrays:
    raise _NpzError(f'{source}: the .npz file holds no arrays')
  return arrays


def read_npz(path):
  """Reads every array of an npz file.

  Nothing is unpickled: object arrays are refused. The archive is read
  member by member, each `.npy` header checked against its data, so a
  corrupt, truncated or foreign file fails quickly.

  Args:
    path: the `.npz` file.

  Returns:
    Dict key -> numpy array (integer or float).

  Raises:
    FileNotFoundError: if `path` does not exist.
    ValueError: (one line, naming the file) if it is empty, not a zip
      archive, or not an npz of numeric arrays (or of none): a member is not
      a `.npy` array, is corrupt or truncated, holds Python objects or
      non-numeric data, or holds NaN or infinite values (the message names
      the key).
  """
  source = str(path)
  try:
    f = open(path, 'rb')
  except FileNotFoundError:
    raise FileNotFoundError(f'{source}: no such file') from None
  except OSError as error:
    raise ValueError(f'{source}: cannot read the file '
                     f'({_one_line(error.strerror or error)})') from None
  with f:
    try:
      if os.fstat(f.fileno()).st_size == 0:
        raise _NpzError(f'{source}: empty file, not an .npz file')
      if not zipfile.is_zipfile(f):
        raise _NpzError(f'{source}: not an .npz file (not a zip archive)')
      f.seek(0)
      with zipfile.ZipFile(f) as archive:
        arrays = _read_members(archive, source)
    except _NpzError as error:
      raise ValueError(_one_line(error)) from None
    except Exception as error:  # pylint: disable=broad-except
      # zipfile and zlib raise BadZipFile, OSError, EOFError, zlib.error,
      # NotImplementedError (compression), RuntimeError (encryption), ...
      raise ValueError(f'{source}: unreadable .npz file '
                       f'({type(error).__name__}: {_one_line(error)})'
                       ) from None
  return arrays


def _as_arrays(npz):
  """Accepts a path or an already loaded mapping of arrays."""
  if isinstance(npz, Mapping):
    return dict(npz), '<arrays>'
  return read_npz(npz), str(npz)


def _detect(arrays, source):
  keys = set(arrays)
  if 'conv7_pi/model/W' in keys:
    return 'fcn'
  if 'conv8_pi/model/W' in keys:
    return 'gru_rmc' if REWARD_MAP_KEY in keys else 'gru'
  if 'conv7/W' in keys and 'diconv5/diconv/W' in keys:
    return REGRESSION
  listed = sorted(keys)
  if len(listed) > 6:
    listed = listed[:6] + ['...']
  raise ValueError(
      f'{source}: not a PixelRL model: no policy head key '
      "('conv7_pi/model/W' or 'conv8_pi/model/W') and no regression "
      f"output 'conv7/W'; keys are {listed}")


def detect_variant(npz):
  """Returns the kind of a file: 'fcn', 'gru', 'gru_rmc' or 'regression'.

  Args:
    npz: a path to an `.npz` file or a mapping key -> array.

  Raises:
    ValueError: if the keys match no known kind (or the file is unreadable).
  """
  arrays, source = _as_arrays(npz)
  return _detect(arrays, source)


def check_variant(npz, variant=None):
  """Detects the kind of a file and checks it against `variant`.

  Args:
    npz: a path to an `.npz` file or a mapping key -> array.
    variant: None, or the expected kind ('fcn', 'gru', 'gru_rmc' or
      'regression').

  Returns:
    The detected kind.

  Raises:
    ValueError: if `variant` is unknown or does not match the file, or the
      file is unreadable or of no known kind.
  """
  arrays, source = _as_arrays(npz)
  return _check_variant(arrays, source, variant)


def _check_variant(arrays, source, variant):
  detected = _detect(arrays, source)
  if variant is None or variant == detected:
    return detected
  kinds = VARIANTS + (REGRESSION,)
  if variant not in kinds:
    raise ValueError(f'unknown variant {variant!r}; expected one of '
                     f'{", ".join(kinds)}')
  raise _variant_mismatch(source, variant, detected, set(arrays))


def _variant_mismatch(source, variant, detected, keys):
  reason = {
      'fcn': "it has the plain-FCN policy head 'conv7_pi/model/W'",
      'gru': ("it has 'conv8_pi/model/W' and the ConvGRU keys but no "
              f"'{REWARD_MAP_KEY}'"),
      'gru_rmc': ("it has 'conv8_pi/model/W', the ConvGRU keys and "
                  f"'{REWARD_MAP_KEY}'"),
      REGRESSION: "it is the 7-layer regression FCN ('conv7/W')",
  }[detected]
  if variant == 'gru_rmc' and REWARD_MAP_KEY not in keys:
    reason = f"it has no '{REWARD_MAP_KEY}'"
  return ValueError(f'{source}: variant {variant!r} does not match the file, '
                    f'which holds a {detected!r} model ({reason})')


def _tf_value(key, array):
  """Converts a Chainer array to the TF layout of its variable."""
  array = np.asarray(array, dtype=np.float32)
  if key.endswith('/W') and array.ndim == 4:
    return np.ascontiguousarray(array.transpose(2, 3, 1, 0))
  return array


def _target_variable(network, reward_map, assignment):
  if assignment.layer == REWARD_MAP_LAYER:
    return reward_map.kernel
  return getattr(network.layer_by_name(assignment.layer),
                 assignment.variable)


def _chainer_shape(key, tf_shape):
  """The Chainer shape whose transpose gives `tf_shape`."""
  if key.endswith('/W') and len(tf_shape) == 4:
    kh, kw, c_in, c_out = tf_shape
    return (c_out, c_in, kh, kw)
  return tuple(tf_shape)


def _network_layer_names(network):
  names = list(TRUNK_AND_BRANCH_LAYERS) + ['conv7_v']
  if network.use_conv_gru:
    names += ['conv_gru', 'conv8_pi']
  else:
    names.append('conv7_pi')
  return names


def load_into_network(npz_path, network, reward_map=None, variant=None,
                      layers=None):
  """Copies the arrays of a released npz into `network` (in place).

  Every shape is checked before anything is written, so a failed load leaves
  the network unchanged.

  Args:
    npz_path: path of the `.npz` file (or a mapping key -> array).
    network: an `FcnActorCritic`; its variables are created if needed.
    reward_map: the agent's `RewardMapConv`; required to load a 'gru_rmc'
      file in full, otherwise ignored unless `layers` names it.
    variant: optional expected kind ('fcn', 'gru', 'gru_rmc' or
      'regression'); it must match the file.
    layers: None loads the whole file, which must match the network exactly
      (no missing or unexpected key). A sequence of network layer names
      (e.g. `COLOR_INIT_LAYERS`, or `REWARD_MAP_LAYER` for the RMC kernel)
      loads only those layers; other keys of the file are ignored.

  Returns:
    The list of `Assignment`s that were written.

  Raises:
    FileNotFoundError: if the file does not exist.
    ValueError: (one line, naming the file and the offending key or layer) if
      the file is unreadable, of another variant than `variant`, lacks or
      has extra keys, or an array's shape differs from its variable's.
  """
  arrays, source = _as_arrays(npz_path)
  detected = _check_variant(arrays, source, variant)
  table = assignments(detected)
  if not network.built:
    network.create_variables()

  if layers is None:
    chosen = _check_full_load(source, detected, arrays, table, network,
                              reward_map)
  else:
    chosen = _select_layers(source, detected, table, network, reward_map,
                            layers)

  values = []
  for assignment in chosen:
    variable = _target_variable(network, reward_map, assignment)
    array = arrays[assignment.key]
    value = _tf_value(assignment.key, array)
    if tuple(value.shape) != tuple(variable.shape):
      raise ValueError(
          f'{source}: shape mismatch for {assignment.key!r} -> '
          f'{assignment.layer}.{assignment.variable}: expected '
          f'{_chainer_shape(assignment.key, tuple(variable.shape))}, got '
          f'{tuple(array.shape)}')
    if not np.all(np.isfinite(value)):
      raise ValueError(f'{source}: array {assignment.key!r} holds NaN or '
                       'infinite values')
    values.append((variable, value))
  for variable, value in values:
    variable.assign(value)
  return chosen


def _check_full_load(source, detected, arrays, table, network, reward_map):
  """Checks keys and the network's variant for a whole-file load."""
  if detected == REGRESSION:
    raise ValueError(
        f'{source}: holds the 7-layer regression FCN, an initialisation '
        'only; load it with layers=COLOR_INIT_LAYERS')
  expected = expected_keys(detected)
  missing = sorted(expected - set(arrays))
  if missing:
    raise ValueError(f'{source}: missing key {missing[0]!r} for a '
                     f'{detected!r} model ({len(missing)} missing)')
  unexpected = sorted(set(arrays) - expected)
  if unexpected:
    raise ValueError(f'{source}: unexpected key {unexpected[0]!r} in a '
                     f'{detected!r} model ({len(unexpected)} unexpected)')
  wants_gru = detected != 'fcn'
  if network.use_conv_gru != wants_gru:
    raise ValueError(
        f'{source}: a {detected!r} model needs a network with '
        f'use_conv_gru={wants_gru}, got use_conv_gru={network.use_conv_gru}')
  if detected == 'gru_rmc' and reward_map is None:
    raise ValueError(f'{source}: has {REWARD_MAP_KEY!r} but no reward map '
                     'was given to load it into')
  return table


def _select_layers(source, detected, table, network, reward_map, layers):
  """Returns the assignments of the named layers, checking every name."""
  if isinstance(layers, str):
    layers = [layers]
  known = set(_network_layer_names(network)) | {REWARD_MAP_LAYER}
  chosen = []
  for layer in layers:
    if layer not in known:
      raise ValueError(f'{source}: the network has no layer {layer!r}; '
                       f'layers are {sorted(known)}')
    if layer == REWARD_MAP_LAYER and reward_map is None:
      raise ValueError(f'{source}: layer {REWARD_MAP_LAYER!r} requested but '
                       'no reward map was given')
    found = [a for a in table if a.layer == layer]
    if not found:
      raise ValueError(f'{source}: a {detected!r} model has no weights for '
                       f'layer {layer!r}')
    chosen.extend(a for a in found if a not in chosen)
  return chosen


def network_weights(network, reward_map=None):
  """Returns `{layer: {variable: array}}` of a network, for comparisons."""
  result = {}
  for name in _network_layer_names(network):
    layer = network.layer_by_name(name)
    if name == 'conv_gru':
      result[name] = {k: getattr(layer, k).numpy()
                      for k in conv_gru.KERNEL_NAMES}
    else:
      result[name] = {'kernel': layer.kernel.numpy(),
                      'bias': layer.bias.numpy()}
  if reward_map is not None:
    result[REWARD_MAP_LAYER] = {'kernel': reward_map.kernel.numpy()}
  return result


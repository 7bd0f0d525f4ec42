"""Reads Caffe `.caffemodel` files and the IRCNN initialisation of PixelRL.

A `.caffemodel` is a serialised Caffe `NetParameter` protocol buffer. This
module decodes the protobuf wire format directly (no Caffe, no compiled
schema), keeping only what weight import needs: every layer's name, type and
parameter blobs, and the geometry of convolution layers. Empty, truncated,
corrupt or foreign files, and blobs holding NaN or infinite values, are
refused with a one-line `ValueError` naming the file (and the layer).

Fields read (numbers from Caffe's `caffe.proto`):

    NetParameter       layer 100 (LayerParameter), layers 2 (V1LayerParameter)
    LayerParameter     name 1, type 2 (string), blobs 7, convolution_param 106
    V1LayerParameter   name 4, type 5 (enum), blobs 6, convolution_param 10
    BlobProto          num 1, channels 2, height 3, width 4 (legacy shape),
                       data 5 (float), shape 7, double_data 8
    BlobShape          dim 1 (int64)
    ConvolutionParam   num_output 1, pad 3, kernel_size 4, stride 6,
                       pad_h/_w 9/10, kernel_h/_w 11/12, stride_h/_w 13/14,
                       dilation 18

PixelRL starts its denoising networks from the 7-convolution IRCNN denoiser of
Zhang et al. (CVPR 2017), layers `layer1, 3, 6, 9, 12, 15, 18` with dilations
1, 2, 3, 4, 3, 2, 1. `ircnn_initialisation` maps them onto the `FcnActorCritic`
layers: the trunk, both dilated branches (layers 12 and 15 initialise the
policy and the value copies alike) and the value head (layer 18, 64 -> 1, the
residual output of IRCNN). The ConvGRU and the policy head keep their own
initialisation.
"""

import dataclasses
import math
import struct
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

# Wire types of the protobuf encoding.
_VARINT = 0
_FIXED64 = 1
_LENGTH_DELIMITED = 2
_FIXED32 = 5

# Type names of the legacy V1LayerParameter.LayerType enum.
_V1_LAYER_TYPES = {
    1: 'Accuracy', 3: 'Concat', 4: 'Convolution', 5: 'Data', 6: 'Dropout',
    8: 'Flatten', 12: 'ImageData', 14: 'InnerProduct', 15: 'LRN',
    17: 'Pooling', 18: 'ReLU', 19: 'Sigmoid', 20: 'Softmax',
    21: 'SoftmaxWithLoss', 22: 'Split', 23: 'TanH', 25: 'Eltwise',
    26: 'Power', 33: 'Slice', 39: 'Deconvolution',
}

# IRCNN convolution -> FcnActorCritic layers it initialises.
IRCNN_LAYER_MAP = (
    ('layer1', ('conv1',)),
    ('layer3', ('diconv2',)),
    ('layer6', ('diconv3',)),
    ('layer9', ('diconv4',)),
    ('layer12', ('diconv5_pi', 'diconv5_v')),
    ('layer15', ('diconv6_pi', 'diconv6_v')),
    ('layer18', ('conv7_v',)),
)
IRCNN_DILATIONS = (1, 2, 3, 4, 3, 2, 1)


class CaffeLayer(NamedTuple):
  """One layer of a Caffe net: its name, type and parameter blobs."""
  name: str
  type: str
  blobs: List[np.ndarray]


@dataclasses.dataclass(frozen=True)
class ConvolutionGeometry:
  """The `convolution_param` of a layer (empty tuples when not stored)."""
  num_output: Optional[int]
  kernel_size: Tuple[int, ...]
  pad: Tuple[int, ...]
  stride: Tuple[int, ...]
  dilation: Tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class CaffeNet:
  """The decoded parts of a `NetParameter`.

  Attributes:
    layers: the layers in file order.
    convolution_geometry: layer name -> `ConvolutionGeometry`, for every
      layer that stores a `convolution_param`.
  """
  layers: List[CaffeLayer]
  convolution_geometry: Dict[str, ConvolutionGeometry]


# Blob shapes beyond these are corrupt data, not weights (numpy allows at
# most 32 dimensions).
_MAX_BLOB_DIMS = 32
_MAX_BLOB_DIM = 1 << 31


class _DecodeError(ValueError):
  """The bytes are not a well-formed `NetParameter`."""


class _NonFiniteError(ValueError):
  """A blob holds NaN or infinite values."""


def _read_varint(data, pos):
  result = 0
  shift = 0
  while True:
    if pos >= len(data):
      raise _DecodeError('truncated varint')
    byte = data[pos]
    pos += 1
    result |= (byte & 0x7F) << shift
    if not byte & 0x80:
      return result, pos
    shift += 7
    if shift > 63:
      raise _DecodeError('varint longer than 10 bytes')


def _fields(data):
  """Yields `(field_number, wire_type, value)` of one message.

  `value` is an int for varint and fixed-width fields and a `memoryview` for
  length-delimited ones.
  """
  data = memoryview(data)
  pos = 0
  while pos < len(data):
    key, pos = _read_varint(data, pos)
    number, wire_type = key >> 3, key & 7
    if number == 0:
      raise _DecodeError('field number 0')
    if wire_type == _VARINT:
      value, pos = _read_varint(data, pos)
    elif wire_type == _FIXED64:
      value, pos = bytes(data[pos:pos + 8]), pos + 8
    elif wire_type == _FIXED32:
      value, pos = bytes(data[pos:pos + 4]), pos + 4
    elif wire_type == _LENGTH_DELIMITED:
      length, pos = _read_varint(data, pos)
      value, pos = data[pos:pos + length], pos + length
    else:
      raise _DecodeError(f'unsupported wire type {wire_type}')
    if pos > len(data):
      raise _DecodeError(f'field {number} runs past the end of its message')
    yield number, wire_type, value


def _unsigned_values(wire_type, value):
  """The integers of a repeated varint field, packed or not."""
  if wire_type == _VARINT:
    return [value]
  if wire_type != _LENGTH_DELIMITED:
    raise _DecodeError(f'integer field with wire type {wire_type}')
  values, pos = [], 0
  while pos < len(value):
    item, pos = _read_varint(value, pos)
    values.append(item)
  return values


def _signed64(value):
  return value - (1 << 64) if value >= 1 << 63 else value


def _float_values(wire_type, value, fmt):
  """The numbers of a repeated float (`fmt` '<f') or double ('<d') field."""
  size = struct.calcsize(fmt)
  if wire_type == _LENGTH_DELIMITED:
    if len(value) % size:
      raise _DecodeError('packed float data of odd length')
    return np.frombuffer(bytes(value), dtype=fmt)
  if wire_type in (_FIXED32, _FIXED64) and len(value) == size:
    return np.frombuffer(value, dtype=fmt)
  raise _DecodeError(f'float field with wire type {wire_type}')


def _parse_blob(data):
  """Decodes a `BlobProto` into a float32 array of its stored shape."""
  shape = None
  legacy = {}
  chunks = []
  for number, wire_type, value in _fields(data):
    if number == 7 and wire_type == _LENGTH_DELIMITED:  # shape: BlobShape
      shape = []
      for sub_number, sub_wire, sub_value in _fields(value):
        if sub_number == 1:
          shape.extend(_signed64(v)
                       for v in _unsigned_values(sub_wire, sub_value))
    elif number in (1, 2, 3, 4) and wire_type == _VARINT:
      legacy[number] = value
    elif number == 5:
      chunks.append(_float_values(wire_type, value, '<f'))
    elif number == 8:
      chunks.append(_float_values(wire_type, value, '<d'))
  # Doubles beyond float32 become inf (and NaN stays NaN); both are refused
  # by the layer.
  with np.errstate(over='ignore', invalid='ignore'):
    values = (np.concatenate(chunks).astype(np.float32) if chunks
              else np.zeros([0], np.float32))
  if shape is None:
    shape = [legacy.get(n, 1) for n in (1, 2, 3, 4)] if legacy else [
        values.size]
  if len(shape) > _MAX_BLOB_DIMS or not all(
      0 <= dim < _MAX_BLOB_DIM for dim in shape):
    raise _DecodeError(f'blob of invalid shape {tuple(shape)[:8]}')
  if math.prod(shape) != values.size:
    raise _DecodeError(
        f'blob of shape {tuple(shape)} holds {values.size} values')
  return values.reshape(shape)


def _parse_convolution_param(data):
  """Decodes a `ConvolutionParameter` (square or `_h`/`_w` geometry)."""
  fields = {number: [] for number in (1, 3, 4, 6, 9, 10, 11, 12, 13, 14, 18)}
  for number, wire_type, value in _fields(data):
    if number in fields:
      fields[number].extend(_unsigned_values(wire_type, value))

  def either(square, height, width):
    return tuple(fields[square] or fields[height] + fields[width])

  return ConvolutionGeometry(
      num_output=fields[1][-1] if fields[1] else None,
      kernel_size=either(4, 11, 12), pad=either(3, 9, 10),
      stride=either(6, 13, 14), dilation=tuple(fields[18]))


def _parse_layer(data, legacy):
  """Decodes a `LayerParameter` (or a legacy `V1LayerParameter`)."""
  name_field, type_field, blobs_field, conv_field = (
      (4, 5, 6, 10) if legacy else (1, 2, 7, 106))
  name, layer_type, blobs, geometry = '', '', [], None
  for number, wire_type, value in _fields(data):
    if number == name_field and wire_type == _LENGTH_DELIMITED:
      name = bytes(value).decode('utf-8', errors='replace')
    elif number == type_field:
      if legacy and wire_type == _VARINT:
        layer_type = _V1_LAYER_TYPES.get(value, f'V1LayerType{value}')
      elif not legacy and wire_type == _LENGTH_DELIMITED:
        layer_type = bytes(value).decode('utf-8', errors='replace')
    elif number == blobs_field and wire_type == _LENGTH_DELIMITED:
      blobs.append(_parse_blob(value))
    elif number == conv_field and wire_type == _LENGTH_DELIMITED:
      geometry = _parse_convolution_param(value)
  for index, blob in enumerate(blobs):
    if not np.all(np.isfinite(blob)):
      raise _NonFiniteError(f'layer {name!r} blob {index} holds NaN or '
                            'infinite values')
  return CaffeLayer(name, layer_type, blobs), geometry


def parse_net(data):
  """Decodes the layers of a serialised `NetParameter`.

  Args:
    data: the bytes of a `.caffemodel` file.

  Returns:
    A `CaffeNet`. Layers come in file order; a file holding both V2 `layer`
    and legacy V1 `layers` entries lists them as they appear.

  Raises:
    ValueError: (one line) if the bytes are not a well-formed
      `NetParameter` ('not a Caffe model (...)'), or a layer's blob holds
      NaN or infinite values (the message names the layer and blob).
  """
  try:
    return _parse_net(data)
  except _NonFiniteError as error:
    raise ValueError(str(error)) from None
  except _DecodeError as error:
    raise ValueError(f'not a Caffe model ({error})') from None
  except Exception as error:  # pylint: disable=broad-except
    # Corrupt input must not surface as another exception type.
    raise ValueError(f'not a Caffe model ({type(error).__name__}: '
                     f'{" ".join(str(error).split())})') from None


def _parse_net(data):
  layers = []
  geometry_by_name = {}
  for number, wire_type, value in _fields(data):
    if wire_type == _LENGTH_DELIMITED and number in (100, 2):
      layer, geometry = _parse_layer(value, legacy=(number == 2))
      layers.append(layer)
      if geometry is not None:
        geometry_by_name[layer.name] = geometry
  return CaffeNet(layers, geometry_by_name)


def read_net(path):
  """Reads a `.caffemodel` file into a `CaffeNet`.

  Raises:
    FileNotFoundError: if `path` does not exist.
    ValueError: (one line, naming the file) if it cannot be read, is empty,
      is not a decodable Caffe model, has no layers, or a blob holds NaN or
      infinite values.
  """
  try:
    if not tf.io.gfile.exists(path):
      raise FileNotFoundError(f'{path}: no such file')
    if tf.io.gfile.isdir(path):
      raise ValueError(f'{path}: is a folder, not a Caffe model')
    with tf.io.gfile.GFile(path, 'rb') as f:
      data = f.read()
  except tf.errors.OpError as error:
    reason = ' '.join(str(error.message).split())
    raise ValueError(f'{path}: cannot read the file ({reason})') from None
  if not data:
    raise ValueError(f'{path}: empty file, not a Caffe model')
  try:
    net = parse_net(data)
  except ValueError as error:
    raise ValueError(f'{path}: {error}') from None
  if not net.layers:
    raise ValueError(f'{path}: not a Caffe model (no layers)')
  return net


def read_layers(path):
  """Returns the ordered `[CaffeLayer(name, type, blobs)]` of a model file."""
  return read_net(path).layers


def _check_ircnn_blobs(path, layer, first, last):
  """Checks `[weight (out,in,3,3), bias (out,)]`; in is free on the first."""
  shapes = [blob.shape for blob in layer.blobs]
  out_channels = 1 if last else 64
  valid = (len(shapes) == 2 and len(shapes[0]) == 4 and
           shapes[0][0] == out_channels and shapes[0][2:] == (3, 3) and
           (first or shapes[0][1] == 64) and shapes[1] == (out_channels,))
  if not valid:
    in_channels = 'C' if first else 64
    raise ValueError(
        f'{path}: layer {layer.name} blobs have shapes {shapes}, expected '
        f'[({out_channels}, {in_channels}, 3, 3), ({out_channels},)]')


def _check_ircnn_geometry(path, name, geometry, dilation):
  """Checks the stored dilation, padding, kernel size and stride."""
  expected = (('dilation', geometry.dilation or (1,), dilation),
              ('padding', geometry.pad or (0,), dilation),
              ('kernel size', geometry.kernel_size or (3,), 3),
              ('stride', geometry.stride or (1,), 1))
  for what, stored, want in expected:
    if set(stored) != {want}:
      raise ValueError(f'{path}: layer {name} has {what} {stored}, '
                       f'expected {want}')


def ircnn_initialisation(path):
  """Maps the IRCNN denoiser's convolutions onto `FcnActorCritic` layers.

  Args:
    path: an IRCNN gray denoiser (`zhang_cvpr17_denoise_15_gray.caffemodel`).

  Returns:
    Dict layer name -> `(kernel [3,3,in,out], bias [out])`, float32, for
    conv1, diconv2..4, diconv5_pi/_v, diconv6_pi/_v (shared weights) and
    conv7_v.

  Raises:
    ValueError: if the file does not hold the 7 IRCNN convolutions with the
      expected names, blob shapes or (where stored) dilations and padding.
  """
  net = read_net(path)
  convolutions = [layer for layer in net.layers
                  if layer.type == 'Convolution']
  names = [layer.name for layer in convolutions]
  expected_names = [caffe_name for caffe_name, _ in IRCNN_LAYER_MAP]
  if names != expected_names:
    raise ValueError(f'{path}: expected the IRCNN convolutions '
                     f'{expected_names}, found {names}')
  result = {}
  for index, (layer, (_, targets), dilation) in enumerate(
      zip(convolutions, IRCNN_LAYER_MAP, IRCNN_DILATIONS)):
    _check_ircnn_blobs(path, layer, first=(index == 0),
                       last=(index == len(convolutions) - 1))
    geometry = net.convolution_geometry.get(layer.name)
    if geometry is not None:
      _check_ircnn_geometry(path, layer.name, geometry, dilation)
    kernel = np.ascontiguousarray(layer.blobs[0].transpose(2, 3, 1, 0))
    for target in targets:
      result[target] = (kernel, layer.blobs[1].copy())
  return result


def load_ircnn_into_network(path, network):
  """Initialises an `FcnActorCritic` from an IRCNN denoiser (in place).

  Only the layers of `ircnn_initialisation` are written; the ConvGRU and the
  policy head keep their current weights.

  Args:
    path: the IRCNN `.caffemodel`.
    network: an `FcnActorCritic`; its variables are created if needed.

  Raises:
    ValueError: if the file is not an IRCNN denoiser or a layer's shape
      differs from the network's (e.g. a colour network or filters != 64).
  """
  weights = ircnn_initialisation(path)
  if not network.built:
    network.create_variables()
  for name, (kernel, bias) in weights.items():
    layer = network.layer_by_name(name)
    for variable, value in ((layer.kernel, kernel), (layer.bias, bias)):
      if tuple(variable.shape) != value.shape:
        raise ValueError(
            f'{path}: IRCNN weights for {name} have shape {value.shape}, '
            f'the network expects {tuple(variable.shape)}')
  for name, (kernel, bias) in weights.items():
    layer = network.layer_by_name(name)
    layer.kernel.assign(kernel)
    layer.bias.assign(bias)

"""A hand encoder of the protobuf wire format, for Caffe test files.

Enough of the format to write `NetParameter` messages by hand: varints,
tagged fields and `BlobProto`s (the V2 layout with a packed `BlobShape`, and
the legacy num/channels/height/width layout with unpacked floats).
"""

import struct

import numpy as np


def varint(value: int) -> bytes:
  """Base-128 varint, least significant group first."""
  out = bytearray()
  while True:
    byte, value = value & 0x7F, value >> 7
    out.append(byte | (0x80 if value else 0))
    if not value:
      return bytes(out)


def field(number: int, wire_type: int, payload: bytes) -> bytes:
  """A tagged field; length-delimited (wire type 2) payloads get a length."""
  key = varint(number << 3 | wire_type)
  if wire_type == 2:
    return key + varint(len(payload)) + payload
  return key + payload


def uint(number: int, value: int) -> bytes:
  """A varint field."""
  return field(number, 0, varint(value))


def string(number: int, text: str) -> bytes:
  return field(number, 2, text.encode())


def blob(array, legacy: bool = False) -> bytes:
  """A `BlobProto` of float32 `array` (`legacy`: the 4-D header layout)."""
  array = np.asarray(array, np.float32)
  if legacy:
    header = b''.join(uint(n, d)
                      for n, d in zip((1, 2, 3, 4), array.shape))
    return header + b''.join(field(5, 5, struct.pack('<f', v))
                             for v in array.ravel())
  shape = field(1, 2, b''.join(varint(d) for d in array.shape))
  return field(7, 2, shape) + field(5, 2, array.astype('<f4').tobytes())

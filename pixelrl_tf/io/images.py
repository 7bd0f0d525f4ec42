"""Reads and writes image files with OpenCV: the project's one image reader.

Images are float32 numpy arrays `[H, W, C]` on the 0..1 scale, where H is the
height, W the width and C the channels: 1 (gray) or 3 (colour, RGB unless
`bgr=True`).

Reading (`read_image`, `read_image_with_notes`, `decode_image`) decodes the
file's bytes with `cv2.imdecode(..., IMREAD_UNCHANGED)`, then:

  * scales 8-bit values by 1/255 and 16-bit values by 1/65535; 32/64-bit
    float images are kept as they are and must be finite and within [0, 1];
    other pixel types (signed integers, ...) are refused;
  * drops an alpha channel (with a note): 4-channel BGRA becomes BGR, a
    gray+alpha PNG (which OpenCV expands to BGRA) and any 2-channel image
    become gray; palette PNGs arrive expanded to BGR(A);
  * converts the channels on request: gray to colour by repeating the
    channel, colour to gray with `cv2.cvtColor(..., COLOR_BGR2GRAY)` on the
    stored 8/16-bit values (as the PixelRL authors converted the BSD
    images), with a note; `channels=None` keeps the file's 1 or 3 channels.

Every problem with the file itself (missing, empty, truncated, corrupt, not
an image, unsupported pixel type, NaN/Inf or out-of-range floats, no pixels,
more than 4 channels, smaller than `min_size`) raises a one-line exception
naming the file: `FileNotFoundError` for a missing file, `ImageReadError` (a
`ValueError`) for everything else.

Writing (`write_image`) quantises float images with `quantize_uint8` (the
official protocol, `floor(clip(v, 0, 1) * 255 + 0.5)`), encodes them with
OpenCV by the file's suffix and writes the file atomically
(`pixelrl_tf.io.files`).
"""

import os
import pathlib
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

# Standard library only: importing it pulls in no TensorFlow.
from pixelrl_tf.io import files

PathLike = Union[str, os.PathLike]
MinSize = Union[int, Sequence[int]]

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp',
                  '.pgm', '.ppm', '.pbm')

ALPHA_DROPPED = 'dropped the alpha channel'
GRAY_TO_COLOUR = 'gray image converted to colour'
COLOUR_TO_GRAY = 'colour image converted to gray'

_UNIT_SCALE_DIVISORS = {
    np.dtype(np.uint8): 255.0,
    np.dtype(np.uint16): 65535.0,
    np.dtype(np.float32): 1.0,
    np.dtype(np.float64): 1.0,
}
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_PNG_GRAY_ALPHA = 4
# Suffixes whose OpenCV encoder takes only gray or only colour images.
_GRAY_ONLY_SUFFIXES = ('.pgm', '.pbm')
_COLOUR_ONLY_SUFFIXES = ('.ppm',)


class ImageReadError(ValueError):
  """An image file (or buffer) cannot be read; the message is one line."""


class ImageWriteError(ValueError):
  """An image cannot be encoded for its file; the message is one line."""


# ---------------------------------------------------------------------------
# Files.


def is_image_file(path: PathLike) -> bool:
  """Whether `path` is an existing file with one of `IMAGE_SUFFIXES`.

  The suffix is compared case-insensitively; the contents are not looked at.
  """
  path = pathlib.Path(path)
  return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def list_image_files(folder: PathLike) -> List[pathlib.Path]:
  """Lists the image files directly inside `folder`, sorted by name.

  Args:
    folder: a folder path.

  Returns:
    Sorted list of `pathlib.Path` whose suffix is one of `IMAGE_SUFFIXES`
    (case-insensitive); sub-folders are not searched.

  Raises:
    FileNotFoundError: `folder` does not exist.
    NotADirectoryError: `folder` is not a folder.
    ValueError: the folder holds no image file.
  """
  folder = pathlib.Path(folder)
  if not folder.exists():
    raise FileNotFoundError(f'image folder {str(folder)!r} does not exist')
  if not folder.is_dir():
    raise NotADirectoryError(f'{str(folder)!r} is not a folder')
  paths = sorted(path for path in folder.iterdir() if is_image_file(path))
  if not paths:
    raise ValueError(f'no image files ({", ".join(IMAGE_SUFFIXES)}) in '
                     f'{str(folder)!r}')
  return paths


# ---------------------------------------------------------------------------
# Reading.


def _check_channels(channels):
  if channels not in (None, 1, 3):
    raise ValueError(f'channels must be None (as stored), 1 (gray) or 3 '
                     f'(colour), got {channels!r}')


def _min_height_width(min_size):
  """`(height, width)` of a `min_size` argument, or None."""
  if min_size is None:
    return None
  if isinstance(min_size, (int, np.integer)):
    sizes = (min_size, min_size)
  elif isinstance(min_size, (tuple, list)):
    sizes = tuple(min_size)
  else:
    sizes = ()
  if (len(sizes) != 2 or
      not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
              and s >= 1 for s in sizes)):
    raise ValueError(f'min_size must be a positive int or a (height, width) '
                     f'pair of them, got {min_size!r}')
  return int(sizes[0]), int(sizes[1])


def _png_chunks_fit(data):
  """Whether every chunk of a PNG, up to IEND, lies inside `data`.

  OpenCV's PNG reader sizes its buffers by the declared chunk lengths before
  it looks at how much data there is, so a corrupt length would cost seconds
  and gigabytes before the file is refused.
  """
  position = len(_PNG_SIGNATURE)
  while position + 8 <= len(data):
    length = int.from_bytes(data[position:position + 4], 'big')
    end = position + 12 + length  # Length, type, data, CRC.
    if end > len(data):
      return False
    if bytes(data[position + 4:position + 8]) == b'IEND':
      return True
    position = end
  return position == len(data)


def _is_gray_alpha_png(data):
  """Whether `data` is a PNG of colour type 4 (gray + alpha)."""
  return (len(data) > 25 and bytes(data[:8]) == _PNG_SIGNATURE and
          bytes(data[12:16]) == b'IHDR' and data[25] == _PNG_GRAY_ALPHA)


def _check_float_values(image, source):
  if not np.all(np.isfinite(image)):
    raise ImageReadError(f'{source} holds NaN or infinite float pixel values')
  low, high = float(image.min()), float(image.max())
  if low < 0.0 or high > 1.0:
    raise ImageReadError(f'{source} has float pixel values in '
                         f'[{low:.6g}, {high:.6g}], outside 0..1')


def decode_image(
    data: Union[bytes, bytearray, memoryview, np.ndarray],
    channels: Optional[int] = None,
    bgr: bool = False,
    min_size: Optional[MinSize] = None,
    source: str = 'image data',
) -> Tuple[np.ndarray, List[str]]:
  """Decodes the bytes of an image file (see the module docstring).

  Args:
    data: the encoded file, as bytes or a uint8 array.
    channels: None keeps the stored channels (gray stays gray, colour stays
      colour); 1 (gray) or 3 (colour) converts to that many.
    bgr: return colour images in OpenCV's BGR order instead of RGB.
    min_size: optional smallest size, an int (square) or `(height, width)`;
      smaller images are refused.
    source: how messages name the data, e.g. "image file 'a.png'".

  Returns:
    `(image, notes)`: float32 `[H, W, C]` on 0..1, and a list of one-line
    notes on what was changed (`ALPHA_DROPPED`, `GRAY_TO_COLOUR`,
    `COLOUR_TO_GRAY`).

  Raises:
    ImageReadError: (one line, naming `source`) the data is empty, cannot
      be decoded (truncated, corrupt, not an image), has an unsupported
      pixel type, NaN/Inf or out-of-range float values, no pixels, more than
      4 channels, or is smaller than `min_size`.
    ValueError: `channels` or `min_size` is invalid.
  """
  _check_channels(channels)
  min_height_width = _min_height_width(min_size)
  encoded = np.frombuffer(data, dtype=np.uint8) if not isinstance(
      data, np.ndarray) else np.ascontiguousarray(data).view(np.uint8).ravel()
  if encoded.size == 0:
    raise ImageReadError(f'{source} is empty')
  if (bytes(encoded[:len(_PNG_SIGNATURE)]) == _PNG_SIGNATURE and
      not _png_chunks_fit(memoryview(encoded))):
    raise ImageReadError(f'cannot decode {source} (truncated or corrupt PNG: '
                         'a chunk runs past the end of the data)')
  try:
    image = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
  except cv2.error:
    image = None
  if image is None:
    raise ImageReadError(f'cannot decode {source} (truncated, corrupt or not '
                         'an image)')
  if image.dtype not in _UNIT_SCALE_DIVISORS:
    raise ImageReadError(f'{source} has unsupported pixel type {image.dtype} '
                         '(expected 8/16-bit unsigned or 32/64-bit float)')
  if image.ndim == 2:
    image = image[:, :, np.newaxis]
  if image.ndim != 3 or not 1 <= image.shape[2] <= 4:
    stored = image.shape[2] if image.ndim == 3 else image.shape
    raise ImageReadError(f'{source} has {stored} channels (expected 1 to 4)')
  height, width = image.shape[:2]
  if image.size == 0:
    raise ImageReadError(f'{source} has no pixels ({height}x{width})')

  notes = []
  stored_channels = image.shape[2]
  if stored_channels == 2 or (stored_channels == 4 and
                              _is_gray_alpha_png(encoded)):
    # OpenCV expands gray + alpha PNGs to BGRA with B = G = R.
    image = image[:, :, :1]
    notes.append(ALPHA_DROPPED)
  elif stored_channels == 4:
    image = image[:, :, :3]
    notes.append(ALPHA_DROPPED)
  if image.dtype.kind == 'f':
    _check_float_values(image, source)
  if min_height_width is not None:
    min_height, min_width = min_height_width
    if height < min_height or width < min_width:
      raise ImageReadError(f'{source} is {height}x{width}, smaller than the '
                           f'{min_height}x{min_width} crop')

  if channels is None:
    channels = image.shape[2]
  if image.shape[2] == 1 and channels == 3:
    image = np.repeat(image, 3, axis=2)
    notes.append(GRAY_TO_COLOUR)
  elif image.shape[2] == 3 and channels == 1:
    colour = np.ascontiguousarray(image)
    if colour.dtype == np.float64:
      colour = colour.astype(np.float32)  # cvtColor takes 8U, 16U, 32F.
    image = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)[:, :, np.newaxis]
    notes.append(COLOUR_TO_GRAY)
  elif channels == 3 and not bgr:
    image = image[:, :, ::-1]
  divisor = _UNIT_SCALE_DIVISORS[image.dtype]
  return np.ascontiguousarray(image.astype(np.float32) / divisor), notes


def read_image_with_notes(
    path: PathLike,
    channels: Optional[int] = None,
    bgr: bool = False,
    min_size: Optional[MinSize] = None,
) -> Tuple[np.ndarray, List[str]]:
  """Reads an image file; returns the image and notes on what was changed.

  Args:
    path: image file path (any suffix: the format is told by the contents).
    channels: None keeps the stored channels; 1 (gray) or 3 (colour)
      converts.
    bgr: return colour images in OpenCV's BGR order instead of RGB.
    min_size: optional smallest size, an int (square) or `(height, width)`.

  Returns:
    `(image, notes)`: float32 `[H, W, C]` on 0..1 and a list of one-line
    notes (see `decode_image`).

  Raises:
    FileNotFoundError: the file does not exist.
    ImageReadError: (one line, naming the file) the path is not a readable
      file, or the file is not a usable image (see `decode_image`).
    ValueError: `channels` or `min_size` is invalid.
  """
  _check_channels(channels)
  _min_height_width(min_size)
  source = f'image file {os.fspath(path)!r}'
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except FileNotFoundError:
    raise FileNotFoundError(f'{source} does not exist') from None
  except IsADirectoryError:
    raise ImageReadError(f'{source} is a folder, not a file') from None
  except OSError as error:
    reason = ' '.join(str(error.strerror or error).split())
    raise ImageReadError(f'cannot read {source}: {reason}') from None
  return decode_image(data, channels=channels, bgr=bgr, min_size=min_size,
                      source=source)


def read_image(
    path: PathLike,
    channels: Optional[int] = None,
    bgr: bool = False,
    min_size: Optional[MinSize] = None,
) -> np.ndarray:
  """Reads an image file as float32 `[H, W, C]` on 0..1.

  Same as `read_image_with_notes` without the notes.

  Args:
    path: image file path.
    channels: None keeps the stored channels; 1 (gray) or 3 (colour)
      converts.
    bgr: return colour images in OpenCV's BGR order instead of RGB.
    min_size: optional smallest size, an int (square) or `(height, width)`.

  Returns:
    float32 numpy `[H, W, C]`.

  Raises:
    FileNotFoundError: the file does not exist.
    ImageReadError: (one line, naming the file) see `read_image_with_notes`.
    ValueError: `channels` or `min_size` is invalid.
  """
  return read_image_with_notes(path, channels=channels, bgr=bgr,
                               min_size=min_size)[0]


# ---------------------------------------------------------------------------
# Quantisation and writing.


def quantize_uint8(image: np.ndarray) -> np.ndarray:
  """`floor(clip(v, 0, 1) * 255 + 0.5)` as uint8, the official protocol.

  The project's one numpy quantiser (metrics, written images, pictures).
  Computed in float32, so it matches the TensorFlow `quantize_uint8` of the
  serving module bit for bit. NaN becomes 0, +Inf 255 and -Inf 0.

  Args:
    image: float array of any shape (e.g. `[H, W, C]`) on the 0..1 scale.

  Returns:
    uint8 array of the same shape.

  Raises:
    ValueError: `image` is not a float array (an integer image is probably
      quantised already).
  """
  image = np.asarray(image)
  if image.dtype.kind != 'f':
    raise ValueError(f'quantize_uint8 expects a float image on 0..1, got '
                     f'dtype {image.dtype}')
  values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0,
                         neginf=0.0)
  clipped = np.clip(values, np.float32(0.0), np.float32(1.0))
  return np.floor(clipped * np.float32(255.0) +
                  np.float32(0.5)).astype(np.uint8)


def encode_image(image: np.ndarray, suffix: str, bgr: bool = False,
                 name: Optional[str] = None) -> bytes:
  """Encodes an image as the bytes of a file with `suffix`.

  Args:
    image: `[H, W]` or `[H, W, C]` with C 1 or 3; uint8 (written as is) or
      float on 0..1 (quantised with `quantize_uint8`; NaN is refused, values
      outside 0..1 are clipped).
    suffix: one of `IMAGE_SUFFIXES`, e.g. '.png' (case-insensitive). '.pgm'
      and '.pbm' take gray images only (.pbm keeps 1 bit: 0 stays black,
      anything else becomes white), '.ppm' colour images only.
    bgr: `image` is in OpenCV's BGR order rather than RGB.
    name: how messages name the target (default: the suffix).

  Returns:
    The encoded bytes.

  Raises:
    ImageWriteError: (one line) unknown suffix, unsupported pixel type or
      shape, NaN values, or the encoder fails.
  """
  what = f'cannot write {name!r}' if name else f'cannot encode a {suffix} image'
  suffix = suffix.lower()
  if suffix not in IMAGE_SUFFIXES:
    raise ImageWriteError(f'{what}: unknown image suffix {suffix!r} '
                          f'(expected one of {", ".join(IMAGE_SUFFIXES)})')
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[:, :, np.newaxis]
  if image.ndim != 3 or image.shape[2] not in (1, 3):
    raise ImageWriteError(f'{what}: expected an [H, W, C] image with C 1 or '
                          f'3, got shape {image.shape}')
  if image.size == 0:
    raise ImageWriteError(f'{what}: the image has no pixels (shape '
                          f'{image.shape})')
  if image.dtype.kind == 'f':
    if np.any(np.isnan(image)):
      raise ImageWriteError(f'{what}: the image holds NaN values')
    image = quantize_uint8(image)
  elif image.dtype != np.uint8:
    raise ImageWriteError(f'{what}: unsupported pixel type {image.dtype} '
                          '(expected uint8 or float on 0..1)')
  channels = image.shape[2]
  if suffix in _GRAY_ONLY_SUFFIXES and channels != 1:
    raise ImageWriteError(f'{what}: {suffix} holds gray images only, got '
                          f'{channels} channels')
  if suffix in _COLOUR_ONLY_SUFFIXES and channels != 3:
    raise ImageWriteError(f'{what}: {suffix} holds colour images only, got '
                          f'{channels} channels')
  if channels == 3 and not bgr:
    image = image[:, :, ::-1]
  try:
    ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(image))
  except cv2.error as error:
    reason = ' '.join(str(error).split())[-200:]
    raise ImageWriteError(f'{what}: OpenCV cannot encode it ({reason})'
                          ) from None
  if not ok:
    raise ImageWriteError(f'{what}: OpenCV cannot encode it as {suffix}')
  return encoded.tobytes()


def write_image(path: PathLike, image: np.ndarray, bgr: bool = False) -> None:
  """Writes an image file atomically, in the format its suffix names.

  Args:
    path: target file; its suffix (one of `IMAGE_SUFFIXES`) picks the
      format. Parent folders are created.
    image: `[H, W]` or `[H, W, C]` (C 1 or 3), uint8 or float on 0..1 (see
      `encode_image`).
    bgr: `image` is in OpenCV's BGR order rather than RGB.

  Raises:
    ImageWriteError: (one line, naming the file) see `encode_image`.
    OSError: (one line, naming the file) the file cannot be written; the
      previous file, if any, is unchanged.
  """
  path = os.fspath(path)
  data = encode_image(image, os.path.splitext(path)[1], bgr=bgr, name=path)
  files.write_bytes_atomically(path, data)

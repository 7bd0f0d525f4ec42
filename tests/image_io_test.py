"""Tests of pixelrl_tf.io.images: the image reader, writer and quantiser.

Every file is made here, in pytest's tmp_path, with OpenCV or by writing
PNG / TIFF bytes by hand (palette, gray + alpha, 2 and 5 samples).
"""

import errno
import importlib
import os
import struct
import time
import zlib

import cv2
import numpy as np
import pytest

from pixelrl_tf import metrics
from pixelrl_tf.io import images

ImageReadError = images.ImageReadError


# ---------------------------------------------------------------------------
# Hand-written files.


def _png_chunk(kind, data):
  crc = zlib.crc32(kind + data) & 0xffffffff
  return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', crc)


def png_bytes(pixels, colour_type, bit_depth=8, palette=None, trns=None):
  """A PNG of `pixels` `[H, W]` or `[H, W, samples]`, filter 0, no interlace.

  colour_type: 0 gray, 2 RGB, 3 palette (pixels are indices), 4 gray+alpha,
  6 RGBA.
  """
  pixels = np.asarray(pixels)
  height, width = pixels.shape[:2]
  sample = '>u2' if bit_depth == 16 else 'u1'
  raw = b''.join(b'\x00' + pixels[row].astype(sample).tobytes()
                 for row in range(height))
  header = struct.pack('>IIBBBBB', width, height, bit_depth, colour_type, 0,
                       0, 0)
  data = b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', header)
  if palette is not None:
    data += _png_chunk(b'PLTE', np.asarray(palette, np.uint8).tobytes())
  if trns is not None:
    data += _png_chunk(b'tRNS', bytes(trns))
  return data + _png_chunk(b'IDAT', zlib.compress(raw)) + _png_chunk(
      b'IEND', b'')


def tiff_bytes(pixels):
  """A baseline little-endian uncompressed 8-bit TIFF of `[H, W, samples]`.

  Samples past the colour ones are declared as unassociated alpha / extra
  samples, which is how 2-sample (gray + alpha) and 5-sample files look.
  """
  pixels = np.asarray(pixels, np.uint8)
  height, width, samples = pixels.shape
  photometric = 2 if samples >= 3 else 1
  extra = samples - (3 if samples >= 3 else 1)
  entries = 11 + (1 if extra else 0)
  ifd_end = 8 + 2 + 12 * entries + 4
  bits_offset = ifd_end
  extra_offset = bits_offset + 2 * samples
  data_offset = extra_offset + 2 * extra
  pixel_data = pixels.tobytes()

  def short_values(values):
    """An IFD value field: inline when it fits in 4 bytes."""
    packed = struct.pack(f'<{len(values)}H', *values)
    return packed.ljust(4, b'\x00') if len(packed) <= 4 else None

  tags = []

  def tag(number, kind, count, value):
    tags.append((number, kind, count, value))

  tag(256, 4, 1, struct.pack('<I', width))
  tag(257, 4, 1, struct.pack('<I', height))
  bits = short_values([8] * samples)
  tag(258, 3, samples, bits or struct.pack('<I', bits_offset))
  tag(259, 3, 1, short_values([1]))
  tag(262, 3, 1, short_values([photometric]))
  tag(273, 4, 1, struct.pack('<I', data_offset))
  tag(277, 3, 1, short_values([samples]))
  tag(278, 4, 1, struct.pack('<I', height))
  tag(279, 4, 1, struct.pack('<I', len(pixel_data)))
  tag(284, 3, 1, short_values([1]))
  tag(296, 3, 1, short_values([1]))
  if extra:
    values = short_values([2] * extra)
    tag(338, 3, extra, values or struct.pack('<I', extra_offset))
  tags.sort()
  assert len(tags) == entries
  data = b'II*\x00' + struct.pack('<I', 8) + struct.pack('<H', entries)
  for number, kind, count, value in tags:
    data += struct.pack('<HHI', number, kind, count) + value
  data += struct.pack('<I', 0)
  data += struct.pack(f'<{samples}H', *([8] * samples))
  data += struct.pack(f'<{max(extra, 0)}H', *([2] * extra))
  assert len(data) == data_offset
  return data + pixel_data


def _gradient(height, width, channels=1, dtype=np.uint8, scale=1):
  rows, columns = np.mgrid[0:height, 0:width]
  planes = [(rows * 7 + columns * (3 + 2 * channel)) % 256 * scale
            for channel in range(channels)]
  return np.stack(planes, axis=2).astype(dtype)


def _write(path, data):
  path.write_bytes(data)
  return path


def _encode(suffix, image):
  params = []
  if suffix in ('.tif', '.tiff') and np.asarray(image).dtype.kind == 'f':
    # OpenCV stores colour float32 TIFFs with lossy SGILOG by default.
    params = [cv2.IMWRITE_TIFF_COMPRESSION, 1]
  ok, encoded = cv2.imencode(suffix, image, params)
  assert ok
  return encoded.tobytes()


def expect_read_error(path, *fragments, error=ImageReadError, **kwargs):
  """Reads `path`, expects a one-line `error` naming it and `fragments`."""
  with pytest.raises(error) as info:
    images.read_image(path, **kwargs)
  message = str(info.value)
  assert '\n' not in message, message
  assert os.fspath(path) in message, message
  for fragment in fragments:
    assert fragment in message, message
  return message


# ---------------------------------------------------------------------------
# Files and folders.


def test_suffixes_and_is_image_file(tmp_path):
  assert images.IMAGE_SUFFIXES == ('.png', '.jpg', '.jpeg', '.bmp', '.tif',
                                   '.tiff', '.webp', '.pgm', '.ppm', '.pbm')
  (tmp_path / 'a.PNG').write_bytes(b'x')
  (tmp_path / 'b.txt').write_bytes(b'x')
  (tmp_path / 'c.png').mkdir()
  assert images.is_image_file(tmp_path / 'a.PNG')
  assert images.is_image_file(str(tmp_path / 'a.PNG'))
  assert not images.is_image_file(tmp_path / 'b.txt')
  assert not images.is_image_file(tmp_path / 'c.png')  # A folder.
  assert not images.is_image_file(tmp_path / 'missing.png')


def test_list_image_files(tmp_path):
  for name in ('b.png', 'A.JPG', 'c.webp', 'd.pgm', 'e.tiff', 'notes.txt'):
    (tmp_path / name).write_bytes(b'x')
  (tmp_path / 'sub').mkdir()
  (tmp_path / 'sub' / 'f.png').write_bytes(b'x')
  names = [path.name for path in images.list_image_files(tmp_path)]
  assert names == ['A.JPG', 'b.png', 'c.webp', 'd.pgm', 'e.tiff']
  assert names == [path.name for path in images.list_image_files(
      str(tmp_path))]


def test_list_image_files_errors(tmp_path):
  cases = [
      (tmp_path / 'missing', FileNotFoundError, 'does not exist'),
      (tmp_path / 'notes.txt', NotADirectoryError, 'not a folder'),
      (tmp_path / 'empty', ValueError, 'no image files'),
  ]
  (tmp_path / 'notes.txt').write_text('x')
  (tmp_path / 'empty').mkdir()
  for path, error, fragment in cases:
    with pytest.raises(error) as info:
      images.list_image_files(path)
    assert '\n' not in str(info.value)
    assert fragment in str(info.value) and str(path) in str(info.value)


# ---------------------------------------------------------------------------
# Scaling, alpha, palettes and channels.


@pytest.mark.parametrize('suffix', ['.png', '.bmp', '.tiff', '.pgm'])
def test_8bit_gray(tmp_path, suffix):
  stored = _gradient(9, 13)
  path = _write(tmp_path / f'gray{suffix}', _encode(suffix, stored))
  image, notes = images.read_image_with_notes(path)
  assert image.dtype == np.float32 and image.shape == (9, 13, 1)
  np.testing.assert_array_equal(image, stored / np.float32(255.0))
  assert notes == []


@pytest.mark.parametrize('suffix', ['.png', '.bmp', '.tiff', '.ppm'])
def test_8bit_colour_rgb_and_bgr(tmp_path, suffix):
  stored = _gradient(9, 13, 3)  # As OpenCV stores it: BGR.
  path = _write(tmp_path / f'colour{suffix}', _encode(suffix, stored))
  bgr = images.read_image(path, bgr=True)
  rgb = images.read_image(path)
  assert rgb.shape == (9, 13, 3) and rgb.dtype == np.float32
  np.testing.assert_array_equal(bgr, stored / np.float32(255.0))
  np.testing.assert_array_equal(rgb, bgr[:, :, ::-1])
  assert rgb.flags['C_CONTIGUOUS']


@pytest.mark.parametrize('suffix', ['.png', '.tiff'])
@pytest.mark.parametrize('channels', [1, 3])
def test_16bit(tmp_path, suffix, channels):
  stored = _gradient(8, 11, channels, np.uint16, scale=257)
  stored[0, 0] = 65535
  stored[0, 1] = 1
  path = _write(tmp_path / f'deep{suffix}', _encode(suffix, stored))
  image = images.read_image(path, bgr=True)
  np.testing.assert_array_equal(image, stored / np.float32(65535.0))
  assert image[0, 0, 0] == 1.0


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_float_tiff_values_are_kept(tmp_path, dtype):
  rng = np.random.default_rng(0)
  stored = rng.random((6, 7, 3)).astype(dtype)
  stored[0, 0] = [0.0, 1.0, 0.5]
  path = _write(tmp_path / 'float.tiff', _encode('.tiff', stored))
  image = images.read_image(path, bgr=True)
  assert image.dtype == np.float32
  np.testing.assert_array_equal(image, stored.astype(np.float32))
  gray = images.read_image(path, channels=1)
  np.testing.assert_array_equal(
      gray[:, :, 0], cv2.cvtColor(stored.astype(np.float32),
                                  cv2.COLOR_BGR2GRAY))


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_float_nan_and_inf_are_refused(tmp_path, bad):
  stored = np.full((4, 5), 0.5, np.float32)
  stored[2, 3] = bad
  path = _write(tmp_path / 'bad_float.tiff', _encode('.tiff', stored))
  expect_read_error(path, 'NaN or infinite')


@pytest.mark.parametrize('low, high', [(-0.25, 0.5), (0.0, 1.5),
                                       (0.0, 255.0)])
def test_float_outside_0_1_is_refused(tmp_path, low, high):
  stored = np.full((4, 5, 3), 0.5, np.float32)
  stored[0, 0, 0] = low
  stored[1, 1, 2] = high
  path = _write(tmp_path / 'range.tiff', _encode('.tiff', stored))
  expect_read_error(path, 'outside 0..1', f'[{low:g}, {high:g}]')


@pytest.mark.parametrize('dtype', [np.int8, np.int16, np.int32])
def test_unsupported_pixel_types(tmp_path, dtype):
  stored = np.ones((4, 5), dtype)
  path = _write(tmp_path / 'signed.tiff', _encode('.tiff', stored))
  expect_read_error(path, 'unsupported pixel type', np.dtype(dtype).name)


@pytest.mark.parametrize('dtype, scale', [(np.uint8, 1), (np.uint16, 257)])
def test_bgra_drops_alpha(tmp_path, dtype, scale):
  stored = _gradient(5, 6, 4, dtype, scale)
  path = _write(tmp_path / 'bgra.png', _encode('.png', stored))
  image, notes = images.read_image_with_notes(path, bgr=True)
  np.testing.assert_array_equal(
      image, stored[:, :, :3] / np.float32(np.iinfo(dtype).max))
  assert notes == [images.ALPHA_DROPPED]
  gray, notes = images.read_image_with_notes(path, channels=1)
  np.testing.assert_array_equal(
      gray[:, :, 0],
      cv2.cvtColor(np.ascontiguousarray(stored[:, :, :3]), cv2.COLOR_BGR2GRAY)
      / np.float32(np.iinfo(dtype).max))
  assert notes == [images.ALPHA_DROPPED, images.COLOUR_TO_GRAY]


@pytest.mark.parametrize('bit_depth', [8, 16])
def test_gray_alpha_png_stays_gray(tmp_path, bit_depth):
  rng = np.random.default_rng(1)
  top = 255 if bit_depth == 8 else 65535
  stored = rng.integers(0, top + 1, (5, 6, 2)).astype(
      np.uint8 if bit_depth == 8 else np.uint16)
  path = _write(tmp_path / 'gray_alpha.png', png_bytes(stored, 4, bit_depth))
  image, notes = images.read_image_with_notes(path)
  assert image.shape == (5, 6, 1)
  np.testing.assert_array_equal(image[:, :, 0],
                                stored[:, :, 0] / np.float32(top))
  assert notes == [images.ALPHA_DROPPED]
  colour, notes = images.read_image_with_notes(path, channels=3)
  np.testing.assert_array_equal(colour, np.repeat(image, 3, axis=2))
  assert notes == [images.ALPHA_DROPPED, images.GRAY_TO_COLOUR]


@pytest.mark.parametrize('trns', [None, [255, 0, 128, 255]])
def test_palette_png_is_expanded(tmp_path, trns):
  rng = np.random.default_rng(2)
  palette = rng.integers(0, 256, (4, 3), dtype=np.uint8)  # RGB entries.
  indices = rng.integers(0, 4, (5, 7), dtype=np.uint8)
  path = _write(tmp_path / 'palette.png',
                png_bytes(indices, 3, palette=palette, trns=trns))
  image, notes = images.read_image_with_notes(path)
  np.testing.assert_array_equal(image, palette[indices] / np.float32(255.0))
  assert notes == ([] if trns is None else [images.ALPHA_DROPPED])


def test_two_sample_tiff_reads_as_gray(tmp_path):
  stored = _gradient(4, 5, 2)
  path = _write(tmp_path / 'gray_alpha.tiff', tiff_bytes(stored))
  image = images.read_image(path)
  np.testing.assert_array_equal(image[:, :, 0],
                                stored[:, :, 0] / np.float32(255.0))


def test_five_sample_tiff_is_refused(tmp_path):
  path = _write(tmp_path / 'five.tiff', tiff_bytes(_gradient(4, 5, 5)))
  expect_read_error(path, 'cannot decode')


def test_decoded_two_and_five_channel_arrays(tmp_path, monkeypatch):
  """Channel counts that the OpenCV build at hand may or may not produce."""
  path = _write(tmp_path / 'any.png', _encode('.png', _gradient(4, 5)))
  decoded = {}
  monkeypatch.setattr(cv2, 'imdecode', lambda data, flags: decoded['image'])
  decoded['image'] = _gradient(4, 5, 2)
  image, notes = images.read_image_with_notes(path)
  np.testing.assert_array_equal(image[:, :, 0],
                                decoded['image'][:, :, 0] / np.float32(255))
  assert notes == [images.ALPHA_DROPPED]
  decoded['image'] = _gradient(4, 5, 5)
  expect_read_error(path, '5 channels', 'expected 1 to 4')
  decoded['image'] = np.zeros((0, 4), np.uint8)
  expect_read_error(path, 'no pixels', '0x4')
  decoded['image'] = np.zeros((3, 0, 3), np.uint8)
  expect_read_error(path, 'no pixels', '3x0')


def test_channel_conversions(tmp_path):
  gray_stored = _gradient(6, 8)
  colour_stored = _gradient(6, 8, 3)
  gray_path = _write(tmp_path / 'g.png', _encode('.png', gray_stored))
  colour_path = _write(tmp_path / 'c.png', _encode('.png', colour_stored))
  gray = images.read_image(gray_path, channels=1)
  colour, notes = images.read_image_with_notes(gray_path, channels=3)
  assert colour.shape == (6, 8, 3) and notes == [images.GRAY_TO_COLOUR]
  np.testing.assert_array_equal(colour, np.repeat(gray, 3, axis=2))
  np.testing.assert_array_equal(
      images.read_image(gray_path, channels=3, bgr=True), colour)
  # Colour to gray on the stored 8-bit values (rounded by OpenCV), not on
  # the 0..1 floats.
  as_gray, notes = images.read_image_with_notes(colour_path, channels=1)
  assert notes == [images.COLOUR_TO_GRAY]
  want = cv2.cvtColor(colour_stored, cv2.COLOR_BGR2GRAY) / np.float32(255.0)
  np.testing.assert_array_equal(as_gray[:, :, 0], want)
  np.testing.assert_array_equal(
      images.read_image(colour_path, channels=1, bgr=True), as_gray)
  assert images.read_image(colour_path, channels=3).shape == (6, 8, 3)


@pytest.mark.parametrize('channels', [1, 3])
def test_jpeg(tmp_path, channels):
  stored = _gradient(16, 16, channels)
  path = _write(tmp_path / 'photo.jpeg', _encode('.jpg', stored))
  decoded = cv2.imdecode(np.fromfile(str(path), np.uint8),
                         cv2.IMREAD_UNCHANGED).reshape(16, 16, channels)
  np.testing.assert_array_equal(images.read_image(path, bgr=True),
                                decoded / np.float32(255.0))


def test_the_suffix_does_not_matter(tmp_path):
  stored = _gradient(4, 5, 3)
  path = _write(tmp_path / 'really_a_png.jpg', _encode('.png', stored))
  np.testing.assert_array_equal(images.read_image(path, bgr=True),
                                stored / np.float32(255.0))


def test_decode_image_matches_read_image(tmp_path):
  data = _encode('.png', _gradient(5, 7, 3))
  path = _write(tmp_path / 'a.png', data)
  for channels in (None, 1, 3):
    image, notes = images.decode_image(data, channels=channels)
    np.testing.assert_array_equal(image, images.read_image(path, channels))
    decoded, _ = images.decode_image(np.frombuffer(data, np.uint8),
                                     channels=channels)
    np.testing.assert_array_equal(decoded, image)
  with pytest.raises(ImageReadError, match="^upload 'x' is empty$"):
    images.decode_image(b'', source="upload 'x'")


# ---------------------------------------------------------------------------
# Files that are not usable images.


def test_missing_file_and_folder(tmp_path):
  expect_read_error(tmp_path / 'missing.png', 'does not exist',
                    error=FileNotFoundError)
  (tmp_path / 'folder.png').mkdir()
  expect_read_error(tmp_path / 'folder.png', 'folder')


def test_empty_file(tmp_path):
  expect_read_error(_write(tmp_path / 'empty.png', b''), 'is empty')


@pytest.mark.parametrize('suffix', ['.png', '.jpg', '.tiff', '.webp', '.bmp',
                                    '.ppm'])
def test_truncated_files(tmp_path, suffix):
  rng = np.random.default_rng(3)
  stored = cv2.GaussianBlur(
      rng.integers(0, 256, (48, 40, 3), dtype=np.uint8), (5, 5), 2)
  data = _encode(suffix, stored)
  for keep in (1, 8, len(data) // 3, len(data) // 2, len(data) - 2):
    path = _write(tmp_path / f'cut_{keep}{suffix}', data[:keep])
    expect_read_error(path, 'cannot decode', 'truncated')


def test_not_images(tmp_path):
  rng = np.random.default_rng(4)
  cases = {
      'random.png': rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
      'text.jpg': b'Hello, this is not an image.\n' * 10,
      'zip.png': b'PK\x03\x04' + bytes(100),
      'zero_width.png': png_bytes(np.zeros((3, 0), np.uint8), 0),
      'png_signature_only.png': b'\x89PNG\r\n\x1a\n',
  }
  for name, data in cases.items():
    expect_read_error(_write(tmp_path / name, data), 'cannot decode')


def test_png_chunk_longer_than_the_file(tmp_path):
  # OpenCV would size a buffer by the declared length (seconds, gigabytes).
  data = bytearray(_encode('.png', _gradient(8, 8)))
  idat = data.index(b'IDAT') - 4
  data[idat:idat + 4] = struct.pack('>I', 0x7ffffff0)
  start = time.perf_counter()
  expect_read_error(_write(tmp_path / 'long_chunk.png', bytes(data)),
                    'cannot decode', 'truncated or corrupt PNG')
  assert time.perf_counter() - start < 1.0
  # Data after IEND is allowed, as libpng allows it.
  trailing = _encode('.png', _gradient(8, 8)) + b'trailing bytes'
  assert images.read_image(_write(tmp_path / 'trailing.png',
                                  trailing)).shape == (8, 8, 1)


def test_corrupt_png_crc(tmp_path):
  data = bytearray(_encode('.png', _gradient(8, 8)))
  data[-20] ^= 0xFF  # Inside IDAT: the chunk's CRC no longer matches.
  expect_read_error(_write(tmp_path / 'crc.png', bytes(data)),
                    'cannot decode')


def test_min_size(tmp_path):
  path = _write(tmp_path / 'small.png', _encode('.png', _gradient(20, 30)))
  assert images.read_image(path, min_size=20).shape == (20, 30, 1)
  assert images.read_image(path, min_size=(20, 30)).shape == (20, 30, 1)
  message = expect_read_error(path, min_size=70)
  assert message.endswith('is 20x30, smaller than the 70x70 crop'), message
  expect_read_error(path, 'is 20x30, smaller than the 10x31 crop',
                    min_size=(10, 31))


def test_invalid_arguments(tmp_path):
  path = _write(tmp_path / 'a.png', _encode('.png', _gradient(4, 4)))
  for channels in (0, 2, 4, '3'):
    with pytest.raises(ValueError, match='channels must be'):
      images.read_image(path, channels=channels)
  for min_size in (0, -1, (1, 2, 3), (5, 0), 2.5, 'x'):
    with pytest.raises(ValueError, match='min_size must be'):
      images.read_image(path, min_size=min_size)
  # Argument errors are the caller's, not the file's.
  with pytest.raises(ValueError) as info:
    images.read_image(path, channels=2)
  assert not isinstance(info.value, ImageReadError)


# ---------------------------------------------------------------------------
# Quantisation.


def _tf_quantizer():
  """The TensorFlow `quantize_uint8` of the serving module."""
  for name in ('pixelrl_tf.serving.restoration_module',
               'pixelrl_tf.export.restoration_module'):
    try:
      return importlib.import_module(name).quantize_uint8
    except ImportError:
      continue
  pytest.skip('no TensorFlow quantize_uint8 module in this tree')


def _quantizer_inputs():
  # Every 97th float32 between 0 and 1, the rounding boundaries
  # (k + 0.5) / 255 and k / 255 with their float32 neighbours, and values
  # outside [0, 1].
  low, high = np.array([0.0, 1.0], np.float32).view(np.uint32)
  dense = np.arange(low, high + 1, 97, dtype=np.uint32).view(np.float32)
  k = np.arange(256, dtype=np.float64)
  centres = np.concatenate([(k + 0.5) / 255.0, k / 255.0]).astype(np.float32)
  neighbours = [np.nextafter(centres, np.float32(-1)), centres,
                np.nextafter(centres, np.float32(2))]
  outside = np.array([-1e30, -1.0, -1e-7, -0.0, 1.0000001, 2.0, 1e30],
                     np.float32)
  return np.concatenate([dense] + neighbours + [outside])


def test_quantize_matches_metrics_and_tensorflow():
  values = _quantizer_inputs()
  quantised = images.quantize_uint8(values)
  assert quantised.dtype == np.uint8
  np.testing.assert_array_equal(quantised, metrics.quantize_to_uint8(values))
  np.testing.assert_array_equal(quantised,
                                np.asarray(_tf_quantizer()(values)))
  # The float64 path rounds in float32 too.
  np.testing.assert_array_equal(
      images.quantize_uint8(values.astype(np.float64)), quantised)


def test_quantize_specials_and_shapes():
  values = np.array([np.nan, np.inf, -np.inf, 0.5 / 255, 127.5 / 255, 1.0],
                    np.float32)
  np.testing.assert_array_equal(images.quantize_uint8(values),
                                [0, 255, 0, 1, 128, 255])
  image = np.full((2, 3, 3), 0.5, np.float32)
  assert images.quantize_uint8(image).shape == (2, 3, 3)
  with pytest.raises(ValueError, match='float image'):
    images.quantize_uint8(np.zeros((2, 2), np.uint8))


# ---------------------------------------------------------------------------
# Writing.


@pytest.mark.parametrize('suffix', ['.png', '.bmp', '.tif', '.tiff', '.webp',
                                    '.ppm'])
def test_write_colour_round_trip(tmp_path, suffix):
  rng = np.random.default_rng(5)
  stored = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
  path = tmp_path / 'sub' / f'out{suffix}'
  images.write_image(path, stored / np.float32(255.0))
  back = images.read_image(path)
  if suffix == '.webp':
    # OpenCV's WebP quality 100 is near-lossless only.
    assert np.max(np.abs(back * 255.0 - stored)) < 16
  else:
    np.testing.assert_array_equal(back, stored / np.float32(255.0))
    images.write_image(path, stored, bgr=True)
    np.testing.assert_array_equal(images.read_image(path, bgr=True),
                                  stored / np.float32(255.0))
  assert sorted(os.listdir(path.parent)) == [path.name]


@pytest.mark.parametrize('suffix', ['.png', '.pgm', '.tiff', '.bmp'])
@pytest.mark.parametrize('shape', [(6, 5), (6, 5, 1)])
def test_write_gray_round_trip(tmp_path, suffix, shape):
  stored = _gradient(6, 5).reshape(shape)
  path = tmp_path / f'gray{suffix}'
  images.write_image(path, stored)
  back = images.read_image(path)
  assert back.shape == (6, 5, 1)
  np.testing.assert_array_equal(back.reshape(shape),
                                stored / np.float32(255.0))


def test_write_quantises_floats(tmp_path):
  values = np.array([[-0.5, 0.5 / 255, 1.5 / 255, 0.4999, 1.0, 3.0]],
                    np.float32)
  path = tmp_path / 'q.png'
  images.write_image(path, values)
  stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
  np.testing.assert_array_equal(stored, images.quantize_uint8(values))
  np.testing.assert_array_equal(stored, metrics.quantize_to_uint8(values))


def test_write_jpeg_and_pbm(tmp_path):
  stored = np.zeros((8, 8, 3), np.uint8)
  stored[:, 4:] = 200
  images.write_image(tmp_path / 'a.jpg', stored)
  back = images.read_image(tmp_path / 'a.jpg') * 255.0
  assert np.max(np.abs(back - stored)) < 8
  binary = np.zeros((8, 8), np.uint8)
  binary[2:5, 3:6] = 255
  images.write_image(tmp_path / 'b.pbm', binary)
  np.testing.assert_array_equal(images.read_image(tmp_path / 'b.pbm')[..., 0],
                                binary / np.float32(255.0))


def test_write_errors(tmp_path):
  colour = np.zeros((4, 4, 3), np.uint8)
  cases = [
      ('a.gif', colour, 'unknown image suffix'),
      ('no_suffix', colour, 'unknown image suffix'),
      ('a.pgm', colour, 'gray images only'),
      ('a.pbm', colour, 'gray images only'),
      ('a.ppm', colour[:, :, 0], 'colour images only'),
      ('a.png', np.full((4, 4), np.nan, np.float32), 'NaN'),
      ('a.png', np.zeros((4, 4, 2), np.uint8), 'got shape (4, 4, 2)'),
      ('a.png', np.zeros((4,), np.uint8), 'got shape (4,)'),
      ('a.png', np.zeros((0, 4, 3), np.uint8), 'no pixels'),
      ('a.png', np.zeros((4, 4), np.int16), 'unsupported pixel type int16'),
      ('a.png', np.zeros((4, 4), np.uint16), 'unsupported pixel type'),
  ]
  for name, image, fragment in cases:
    with pytest.raises(images.ImageWriteError) as info:
      images.write_image(tmp_path / name, image)
    message = str(info.value)
    assert '\n' not in message and fragment in message, message
    assert str(tmp_path / name) in message, message
  assert os.listdir(tmp_path) == []


def test_write_keeps_the_old_file_when_the_disk_is_full(tmp_path,
                                                        monkeypatch):
  path = tmp_path / 'keep.png'
  images.write_image(path, _gradient(4, 4))
  before = path.read_bytes()

  def full(*args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(os, 'replace', full)
  with pytest.raises(OSError) as info:
    images.write_image(path, np.zeros((4, 4), np.uint8))
  assert info.value.errno == errno.ENOSPC
  assert '\n' not in str(info.value) and str(path) in str(info.value)
  assert path.read_bytes() == before
  assert os.listdir(tmp_path) == ['keep.png']

"""Fuzz tests of the file readers: images, Chainer `.npz` and `.caffemodel`.

Random bytes, and valid PNG / JPEG / TIFF / BMP / WebP / PPM / npz /
caffemodel files with bit flips, truncations, insertions, deletions and
overwrites, are fed to `pixelrl_tf.io.images.read_image`,
`chainer_npz.read_npz` / `detect_variant` and `caffemodel.parse_net` /
`read_net`. The only allowed outcomes are a valid result or the documented
one-line exceptions (`ImageReadError` / `ValueError` naming the file), and
every call must return (a call that never does is caught by a watchdog that
ends the test process).

The run is reproducible (`derandomize=True`: the examples depend only on the
test code) and takes about half a minute. To search longer, or elsewhere:

    PIXELRL_FUZZ_EXAMPLES=20000 python -m pytest tests/fuzz_readers_test.py
    PIXELRL_FUZZ_EXAMPLES=20000 PIXELRL_FUZZ_SEED=7 python -m pytest \
        tests/fuzz_readers_test.py

`PIXELRL_FUZZ_EXAMPLES` sets the number of examples of every test;
`PIXELRL_FUZZ_SEED` switches to random search from that seed. A failure
prints the input that caused it (shrunk). Hypothesis keeps its files in
`$TMPDIR/pixelrl_tf_hypothesis` (or `$HYPOTHESIS_STORAGE_DIRECTORY`), not in
the work tree.

The end of the file checks known bad inputs of the weight readers one by one
(object arrays, NaN weights, foreign archives, empty files, ...).
"""

import faulthandler
import io
import os
import pathlib
import struct
import tempfile
import zipfile

import cv2
import hypothesis
import hypothesis.configuration
from hypothesis import strategies as st
import numpy as np
import pytest

import caffe_encoding as wire
from conftest import HANG_TIMEOUT_SECONDS
from pixelrl_tf.io import images
from pixelrl_tf.weights import caffemodel
from pixelrl_tf.weights import chainer_npz

_EXAMPLES = int(os.environ.get('PIXELRL_FUZZ_EXAMPLES', '0'))
_SEED = os.environ.get('PIXELRL_FUZZ_SEED')
if not os.environ.get('HYPOTHESIS_STORAGE_DIRECTORY'):
  # Keeps Hypothesis's cache and failure patches out of the work tree.
  hypothesis.configuration.set_hypothesis_home_dir(
      os.path.join(tempfile.gettempdir(), 'pixelrl_tf_hypothesis'))
# No per-call deadline: how long a call takes depends on the machine and
# its load, so a deadline would make the verdict depend on them. A reader
# that never returns is caught by the hang watchdog below.
_DEADLINE = None


def fuzz(default_examples):
  """Settings (and seed) of one fuzz test; see the module docstring."""
  configured = hypothesis.settings(
      max_examples=_EXAMPLES or default_examples,
      derandomize=_SEED is None,
      deadline=_DEADLINE,
      database=None,
      suppress_health_check=[hypothesis.HealthCheck.too_slow,
                             hypothesis.HealthCheck.data_too_large,
                             hypothesis.HealthCheck.large_base_example],
  )

  def decorate(test):
    test = configured(test)
    if _SEED is not None:
      test = hypothesis.seed(int(_SEED))(test)
    return test

  return decorate


# A reader call that never returns (a loop in C code that no Python deadline
# can interrupt) is caught by a watchdog thread: it prints every thread's
# stack and ends the test process, which fails the run.
_HANG_SECONDS = HANG_TIMEOUT_SECONDS


@pytest.fixture(autouse=True)
def _hang_watchdog():
  faulthandler.dump_traceback_later(_HANG_SECONDS, exit=True)
  yield
  faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope='module', name='fuzz_dir')
def fixture_fuzz_dir(tmp_path_factory):
  return tmp_path_factory.mktemp('fuzz')


@pytest.fixture(scope='module', autouse=True)
def _quiet_opencv():
  """OpenCV logs every undecodable buffer; thousands are expected here."""
  level = cv2.getLogLevel()
  cv2.setLogLevel(0)  # Silent.
  yield
  cv2.setLogLevel(level)


def _assert_one_line_naming(error, name):
  message = str(error)
  assert '\n' not in message, message
  assert name in message, message


# ---------------------------------------------------------------------------
# Seed files and mutations.


def _encode(suffix, image, params=()):
  ok, encoded = cv2.imencode(suffix, image, list(params))
  assert ok
  return encoded.tobytes()


def _image_corpus():
  rng = np.random.default_rng(0)
  colour = cv2.GaussianBlur(
      rng.integers(0, 256, (12, 10, 3), dtype=np.uint8), (3, 3), 1)
  gray = colour[:, :, 1].copy()
  bgra = np.dstack([colour, gray])
  deep = colour.astype(np.uint16) * 257
  floats = (colour / 255.0).astype(np.float32)
  no_compression = [cv2.IMWRITE_TIFF_COMPRESSION, 1]
  return [
      _encode('.png', gray),
      _encode('.png', colour),
      _encode('.png', bgra),
      _encode('.png', deep),
      _encode('.png', colour, [cv2.IMWRITE_PNG_COMPRESSION, 0]),
      _encode('.jpg', gray),
      _encode('.jpg', colour),
      _encode('.jpg', colour, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
      _encode('.tiff', colour),
      _encode('.tiff', colour, no_compression),
      _encode('.tiff', deep),
      _encode('.tiff', floats, no_compression),
      _encode('.tiff', floats[:, :, 0]),
      _encode('.bmp', colour),
      _encode('.webp', colour),
      _encode('.ppm', colour),
      _encode('.pgm', gray),
  ]


def _npz_bytes(arrays, compressed=False):
  buffer = io.BytesIO()
  (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
  return buffer.getvalue()


def _npz_corpus():
  rng = np.random.default_rng(1)
  arrays = {
      'conv1/W': rng.normal(size=(2, 1, 3, 3)).astype(np.float32),
      'conv1/b': rng.normal(size=2).astype(np.float32),
      'conv8_pi/model/W': rng.normal(size=(3, 2, 3, 3)).astype(np.float32),
      'conv_R/W': rng.normal(size=(1, 1, 3, 3)).astype(np.float32),
  }
  mixed = {
      'fortran': np.asfortranarray(rng.normal(size=(3, 4))),
      'big_endian': np.arange(6, dtype='>f4').reshape(2, 3),
      'ints': np.arange(5, dtype=np.int16),
      'scalar': np.float64(2.5),
  }
  return [_npz_bytes(arrays), _npz_bytes(arrays, compressed=True),
          _npz_bytes(mixed)]


def _caffe_corpus():
  rng = np.random.default_rng(2)
  weight = rng.normal(size=(2, 1, 3, 3))
  bias = rng.normal(size=2)
  geometry = (wire.uint(1, 2) + wire.uint(4, 3) + wire.uint(3, 2) +
              wire.uint(18, 2))
  layer = wire.field(100, 2, wire.string(1, 'conv_a') +
                     wire.string(2, 'Convolution') +
                     wire.field(7, 2, wire.blob(weight)) +
                     wire.field(7, 2, wire.blob(bias)) +
                     wire.field(106, 2, geometry))
  relu = wire.field(100, 2, wire.string(1, 'relu') + wire.string(2, 'ReLU'))
  legacy = wire.field(2, 2, wire.string(4, 'old') + wire.uint(5, 4) +
                      wire.field(6, 2, wire.blob(rng.normal(size=(1, 2, 1, 1)),
                                                 legacy=True)))
  doubles = wire.field(100, 2, wire.string(1, 'double') + wire.field(
      7, 2, wire.field(8, 2, np.array([0.5, -1.25], '<f8').tobytes())))
  return [wire.string(1, 'net') + layer + relu + legacy + doubles,
          layer, legacy]


IMAGE_CORPUS = _image_corpus()
NPZ_CORPUS = _npz_corpus()
CAFFE_CORPUS = _caffe_corpus()


@st.composite
def mutated(draw, corpus):
  """A corpus file with 1 to 4 random edits."""
  data = bytearray(draw(st.sampled_from(corpus)))
  for _ in range(draw(st.integers(1, 4))):
    edit = draw(st.sampled_from(
        ['flip', 'flip', 'truncate', 'insert', 'delete', 'overwrite']))
    if not data:
      break
    position = draw(st.integers(0, len(data) - 1))
    if edit == 'flip':
      data[position] ^= 1 << draw(st.integers(0, 7))
    elif edit == 'truncate':
      del data[position:]
    elif edit == 'insert':
      data[position:position] = draw(st.binary(min_size=1, max_size=16))
    elif edit == 'delete':
      del data[position:position + draw(st.integers(1, 16))]
    else:
      chunk = draw(st.sampled_from(
          [b'\x00' * 4, b'\xff' * 4, b'\x7f\xff\xff\xff', b'\x80' * 8]))
      data[position:position + len(chunk)] = chunk
  return bytes(data)


RANDOM_BYTES = st.binary(max_size=1024)


def _write(folder, name, data):
  path = pathlib.Path(folder) / name
  path.write_bytes(data)
  return path


# ---------------------------------------------------------------------------
# Images.


def _check_image_read(path, channels):
  try:
    image, notes = images.read_image_with_notes(path, channels=channels)
  except images.ImageReadError as error:
    _assert_one_line_naming(error, str(path))
    hypothesis.event('refused')
    return
  hypothesis.event('read')
  assert image.dtype == np.float32 and image.ndim == 3
  assert image.shape[2] == (channels or image.shape[2])
  assert image.shape[2] in (1, 3) and image.size > 0
  assert np.all(np.isfinite(image))
  assert image.min() >= 0.0 and image.max() <= 1.0
  assert all(isinstance(note, str) for note in notes)


@fuzz(800)
@hypothesis.given(data=mutated(IMAGE_CORPUS),
                  channels=st.sampled_from([None, 1, 3]))
def test_read_image_on_mutated_files(fuzz_dir, data, channels):
  _check_image_read(_write(fuzz_dir, 'mutated.png', data), channels)


@fuzz(200)
@hypothesis.given(data=RANDOM_BYTES)
def test_read_image_on_random_bytes(fuzz_dir, data):
  _check_image_read(_write(fuzz_dir, 'random.jpg', data), None)


def test_image_corpus_reads():
  for data in IMAGE_CORPUS:
    image, _ = images.decode_image(data)
    assert image.shape[:2] == (12, 10)


# ---------------------------------------------------------------------------
# Chainer npz.


def _check_npz_read(path):
  try:
    arrays = chainer_npz.read_npz(path)
  except ValueError as error:
    _assert_one_line_naming(error, str(path))
    hypothesis.event('refused')
    return
  hypothesis.event('read')
  assert arrays
  for key, array in arrays.items():
    assert isinstance(key, str)
    assert isinstance(array, np.ndarray) and array.dtype.kind in 'iuf'
    assert np.all(np.isfinite(array))
  try:
    kind = chainer_npz.detect_variant(path)
  except ValueError as error:
    _assert_one_line_naming(error, str(path))
  else:
    assert kind in chainer_npz.VARIANTS + (chainer_npz.REGRESSION,)


@fuzz(600)
@hypothesis.given(data=mutated(NPZ_CORPUS))
def test_read_npz_on_mutated_files(fuzz_dir, data):
  _check_npz_read(_write(fuzz_dir, 'mutated.npz', data))


@fuzz(200)
@hypothesis.given(data=RANDOM_BYTES, zip_magic=st.booleans())
def test_read_npz_on_random_bytes(fuzz_dir, data, zip_magic):
  if zip_magic:
    data = b'PK\x03\x04' + data + b'PK\x05\x06' + bytes(18)
  _check_npz_read(_write(fuzz_dir, 'random.npz', data))


def test_npz_corpus_reads(tmp_path):
  for index, data in enumerate(NPZ_CORPUS):
    path = _write(tmp_path, f'{index}.npz', data)
    arrays = chainer_npz.read_npz(path)
    with np.load(path, allow_pickle=False) as reference:
      assert sorted(arrays) == sorted(reference.files)
      for key in reference.files:
        assert arrays[key].dtype == reference[key].dtype
        np.testing.assert_array_equal(arrays[key], reference[key])


# ---------------------------------------------------------------------------
# Caffe models.


def _check_caffe_parse(data):
  try:
    net = caffemodel.parse_net(data)
  except ValueError as error:
    assert '\n' not in str(error), str(error)
    hypothesis.event('refused')
    return
  hypothesis.event('parsed')
  for layer in net.layers:
    assert isinstance(layer.name, str) and isinstance(layer.type, str)
    for blob in layer.blobs:
      assert blob.dtype == np.float32 and np.all(np.isfinite(blob))


@fuzz(600)
@hypothesis.given(data=mutated(CAFFE_CORPUS))
def test_parse_net_on_mutated_models(data):
  _check_caffe_parse(data)


@fuzz(200)
@hypothesis.given(data=RANDOM_BYTES)
def test_parse_net_on_random_bytes(data):
  _check_caffe_parse(data)


@fuzz(200)
@hypothesis.given(data=st.one_of(mutated(CAFFE_CORPUS), RANDOM_BYTES))
def test_read_net_on_mutated_files(fuzz_dir, data):
  path = _write(fuzz_dir, 'mutated.caffemodel', data)
  try:
    caffemodel.read_net(str(path))
  except ValueError as error:
    _assert_one_line_naming(error, str(path))


def test_caffe_corpus_parses():
  net = caffemodel.parse_net(CAFFE_CORPUS[0])
  assert [layer.name for layer in net.layers] == ['conv_a', 'relu', 'old',
                                                 'double']
  assert net.layers[0].blobs[0].shape == (2, 1, 3, 3)
  np.testing.assert_array_equal(net.layers[3].blobs[0], [0.5, -1.25])


# ---------------------------------------------------------------------------
# Known bad weight files, one by one.


def _expect_value_error(call, *fragments):
  with pytest.raises(ValueError) as info:
    call()
  message = str(info.value)
  assert '\n' not in message, message
  for fragment in fragments:
    assert fragment in message, message
  return message


def test_npz_refuses_objects_and_pickles(tmp_path):
  objects = tmp_path / 'objects.npz'
  np.savez(objects, **{'conv1/W': np.array([{'a': 1}, None], dtype=object)})
  _expect_value_error(lambda: chainer_npz.read_npz(objects), 'objects.npz',
                      "'conv1/W'", 'Python objects')
  pickled = tmp_path / 'pickled.npz'
  with zipfile.ZipFile(pickled, 'w') as archive:
    archive.writestr('conv1/W.npy', b'\x80\x04K\x01.')  # pickle of 1.
  _expect_value_error(lambda: chainer_npz.read_npz(pickled), 'pickled.npz',
                      "'conv1/W'", 'not a .npy array')


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_npz_refuses_non_finite_weights(tmp_path, bad):
  path = tmp_path / 'nan.npz'
  weights = np.zeros((2, 1, 3, 3), np.float32)
  weights[1, 0, 2, 2] = bad
  np.savez(path, **{'conv1/b': np.zeros(2, np.float32), 'conv1/W': weights})
  _expect_value_error(lambda: chainer_npz.read_npz(path), 'nan.npz',
                      "array 'conv1/W'", 'NaN or infinite')


def test_npz_refuses_foreign_and_empty_files(tmp_path):
  cases = {
      'empty.npz': (b'', 'empty file'),
      'text.npz': (b'hello\n', 'not a zip archive'),
      'npy.npz': (b'\x93NUMPY' + bytes(100), 'not a zip archive'),
  }
  for name, (data, fragment) in cases.items():
    path = _write(tmp_path, name, data)
    _expect_value_error(lambda: chainer_npz.read_npz(path), name, fragment)
  foreign = tmp_path / 'foreign.npz'
  with zipfile.ZipFile(foreign, 'w') as archive:
    archive.writestr('readme.txt', 'not an array')
  _expect_value_error(lambda: chainer_npz.read_npz(foreign), 'foreign.npz',
                      "'readme.txt' is not a .npy array")
  no_arrays = tmp_path / 'no_arrays.npz'
  np.savez(no_arrays)
  _expect_value_error(lambda: chainer_npz.read_npz(no_arrays),
                      'no_arrays.npz', 'holds no arrays')
  strings = tmp_path / 'strings.npz'
  np.savez(strings, names=np.array(['a', 'b']))
  _expect_value_error(lambda: chainer_npz.read_npz(strings), 'strings.npz',
                      "'names'", 'numeric')
  complex_values = tmp_path / 'complex.npz'
  np.savez(complex_values, w=np.ones(3, np.complex64))
  _expect_value_error(lambda: chainer_npz.read_npz(complex_values),
                      'complex.npz', "'w'", 'numeric')
  (tmp_path / 'folder.npz').mkdir()
  _expect_value_error(lambda: chainer_npz.read_npz(tmp_path / 'folder.npz'),
                      'folder.npz')
  with pytest.raises(FileNotFoundError, match='missing.npz'):
    chainer_npz.read_npz(tmp_path / 'missing.npz')


def test_npz_header_that_lies_about_the_size(tmp_path):
  buffer = io.BytesIO()
  np.lib.format.write_array(buffer, np.zeros(4, np.float32))
  original = buffer.getvalue()
  data = original.replace(b'(4,)', b'(9,)')  # Same header length.
  assert data != original
  path = tmp_path / 'lies.npz'
  with zipfile.ZipFile(path, 'w') as archive:
    archive.writestr('conv1/W.npy', data)
  _expect_value_error(lambda: chainer_npz.read_npz(path), 'lies.npz',
                      "'conv1/W'", 'needs 36 bytes', 'holds 16')


@pytest.mark.filterwarnings('error::RuntimeWarning')
def test_caffemodel_refuses_non_finite_blobs(tmp_path):
  blob = wire.blob(np.array([[1.0, np.nan]], np.float32))
  data = wire.field(100, 2, wire.string(1, 'conv_nan') + wire.field(7, 2, blob))
  _expect_value_error(lambda: caffemodel.parse_net(data), "'conv_nan'",
                      'blob 0', 'NaN or infinite')
  path = _write(tmp_path, 'nan.caffemodel', data)
  _expect_value_error(lambda: caffemodel.read_net(str(path)),
                      'nan.caffemodel', "'conv_nan'")
  # Doubles beyond the float32 range would become infinite weights.
  for value in (1e300, np.nan):
    doubles = wire.field(8, 2, np.array([0.5, value], '<f8').tobytes())
    data = wire.field(100, 2, wire.string(1, 'conv_big') + wire.field(
        7, 2, wire.blob(np.zeros(2))) + wire.field(7, 2, doubles))
    _expect_value_error(lambda: caffemodel.parse_net(data), "'conv_big'",
                        'blob 1', 'NaN or infinite')


def test_caffemodel_refuses_empty_foreign_and_odd_files(tmp_path):
  cases = {
      'empty.caffemodel': (b'', 'empty file'),
      'png.caffemodel': (IMAGE_CORPUS[0], 'not a Caffe model'),
      'npz.caffemodel': (NPZ_CORPUS[0], 'not a Caffe model'),
      'text.caffemodel': (b'name: "net"\n', 'not a Caffe model'),
  }
  for name, (data, fragment) in cases.items():
    path = _write(tmp_path, name, data)
    _expect_value_error(lambda: caffemodel.read_net(str(path)), name,
                        fragment)
  (tmp_path / 'folder.caffemodel').mkdir()
  _expect_value_error(
      lambda: caffemodel.read_net(str(tmp_path / 'folder.caffemodel')),
      'folder.caffemodel', 'folder')
  # A blob shape whose product overflows int64 to the stored size (0).
  huge = wire.field(7, 2, wire.field(
      1, 2, wire.varint(1 << 32) + wire.varint(1 << 32)))
  data = wire.field(100, 2, wire.string(1, 'huge') + wire.field(7, 2, huge))
  _expect_value_error(lambda: caffemodel.parse_net(data),
                      'not a Caffe model', 'shape')
  many_dims = (wire.field(7, 2, wire.field(1, 2, wire.varint(1) * 40)) +
               wire.field(5, 2, struct.pack('<f', 1.0)))
  data = wire.field(100, 2, wire.field(7, 2, many_dims))
  _expect_value_error(lambda: caffemodel.parse_net(data), 'not a Caffe model')

"""Tests of pixelrl_tf.data.datasets."""

import cv2
import gin
import numpy as np
import pytest
import tensorflow as tf
from skimage import data as skimage_data

from conftest import shared_data_path
from pixelrl_tf.data import datasets
from pixelrl_tf.io import images as image_io


def _gradient_image(height, width, channels=1, dtype=np.uint8):
  rows, columns = np.mgrid[0:height, 0:width]
  planes = [(rows * 3 + columns * (2 + channel)) % 256
            for channel in range(channels)]
  return np.stack(planes, axis=2).astype(dtype)


@pytest.fixture(name='image_folder')
def fixture_image_folder(tmp_path):
  """A folder of gray and colour images in several formats and odd sizes."""
  folder = tmp_path / 'images'
  folder.mkdir()
  cv2.imwrite(str(folder / 'b_gray.png'), _gradient_image(81, 97))
  cv2.imwrite(str(folder / 'a_colour.bmp'), _gradient_image(75, 103, 3))
  cv2.imwrite(str(folder / 'c_colour.jpg'), _gradient_image(99, 71, 3))
  cv2.imwrite(str(folder / 'd_colour16.tif'),
              _gradient_image(73, 77, 3, np.uint16) * 257)
  cv2.imwrite(str(folder / 'E_UPPER.PNG'), _gradient_image(72, 90))
  (folder / 'notes.txt').write_text('not an image')
  (folder / 'sub').mkdir()
  return folder


def test_folders_are_listed_by_the_io_reader(image_folder):
  names = [path.name for path in image_io.list_image_files(image_folder)]
  assert names == ['E_UPPER.PNG', 'a_colour.bmp', 'b_gray.png',
                   'c_colour.jpg', 'd_colour16.tif']
  assert not hasattr(datasets, 'list_image_files')
  assert not hasattr(datasets, 'load_image')


def test_load_images_gray_and_colour(image_folder):
  def load(name, channels, bgr=False):
    return datasets.load_images([image_folder / name], channels, bgr=bgr)[0][1]

  gray = load('b_gray.png', 1)
  assert gray.shape == (81, 97, 1) and gray.dtype == np.float32
  expected_gray = _gradient_image(81, 97)[:, :, 0] / np.float32(255.0)
  np.testing.assert_array_equal(gray[:, :, 0], expected_gray)
  gray_as_colour = load('b_gray.png', 3)
  assert gray_as_colour.shape == (81, 97, 3)
  for channel in range(3):
    np.testing.assert_array_equal(gray_as_colour[:, :, channel], gray[:, :, 0])

  stored_bgr = _gradient_image(75, 103, 3)
  rgb = load('a_colour.bmp', 3)
  bgr = load('a_colour.bmp', 3, bgr=True)
  np.testing.assert_array_equal(bgr, stored_bgr / np.float32(255.0))
  np.testing.assert_array_equal(rgb, bgr[:, :, ::-1])
  colour_as_gray = load('a_colour.bmp', 1)
  expected = cv2.cvtColor(stored_bgr, cv2.COLOR_BGR2GRAY) / np.float32(255.0)
  np.testing.assert_array_equal(colour_as_gray[:, :, 0], expected)


def test_load_images_16_bit_and_alpha(tmp_path, image_folder):
  colour16 = datasets.load_images([image_folder / 'd_colour16.tif'], 3,
                                  bgr=True)[0][1]
  np.testing.assert_allclose(colour16, _gradient_image(73, 77, 3) / 255.0,
                             atol=1e-6)
  bgra = np.concatenate(
      [_gradient_image(70, 70, 3), np.full((70, 70, 1), 9, np.uint8)], axis=2)
  cv2.imwrite(str(tmp_path / 'alpha.png'), bgra)
  notes = []
  loaded = datasets.load_images([tmp_path / 'alpha.png'], 3, bgr=True,
                                note_fn=notes.append)[0][1]
  np.testing.assert_array_equal(loaded, bgra[:, :, :3] / np.float32(255.0))
  assert notes == ['dropped the alpha channel in 1 of 1 images (alpha.png)']


def test_load_images_notes_one_line_per_kind(image_folder):
  notes = []
  datasets.load_images(image_io.list_image_files(image_folder), 1,
                       note_fn=notes.append)
  assert notes == ['colour image converted to gray in 3 of 5 images '
                   '(a_colour.bmp, c_colour.jpg, d_colour16.tif)']


def test_load_images_errors_name_the_file(tmp_path, image_folder):
  corrupt = tmp_path / 'corrupt.png'
  corrupt.write_bytes(b'\x89PNG this is not really a png')
  with pytest.raises(ValueError, match='corrupt.png') as error:
    datasets.load_images([corrupt], 1)
  assert '\n' not in str(error.value)
  empty = tmp_path / 'empty.jpg'
  empty.write_bytes(b'')
  with pytest.raises(ValueError, match='empty.jpg.* is empty'):
    datasets.load_images([empty], 1)
  with pytest.raises(FileNotFoundError, match='missing.png'):
    datasets.load_images([tmp_path / 'missing.png'], 1)
  with pytest.raises(ValueError, match='channels'):
    datasets.load_images([corrupt], 2)
  with pytest.raises(ValueError, match=r"b_gray.png' is 81x97, smaller than "
                     r'the 90x90 crop'):
    datasets.load_images([image_folder / 'b_gray.png'], 1, min_size=90)


def test_load_images_names(image_folder):
  named = datasets.load_images(image_io.list_image_files(image_folder), 1)
  assert [name for name, _ in named][:2] == ['E_UPPER.PNG', 'a_colour.bmp']
  assert all(image.shape[2] == 1 for _, image in named)


def test_default_images():
  named = datasets.default_images(channels=1)
  assert tuple(name for name, _ in named) == datasets.DEFAULT_IMAGE_NAMES
  for name, image in named:
    assert image.dtype == np.float32 and image.ndim == 3, name
    assert image.shape[2] == 1 and min(image.shape[:2]) >= 70, name
    assert 0.0 <= image.min() and image.max() <= 1.0, name
  images = dict(named)
  assert images['camera'].shape == (512, 512, 1)
  expected = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2GRAY)
  np.testing.assert_array_equal(images['astronaut'][:, :, 0],
                                expected / np.float32(255.0))
  colour = dict(datasets.default_images(channels=3))
  assert colour['coffee'].shape == (400, 600, 3)
  np.testing.assert_array_equal(colour['coffee'],
                                skimage_data.coffee() / np.float32(255.0))


def test_split_train_validation():
  items = list(range(20))
  train, validation = datasets.split_train_validation(items, 0.2, seed=1)
  assert len(validation) == 4 and len(train) == 16
  assert sorted(train + validation) == items
  assert train == sorted(train) and validation == sorted(validation)
  assert datasets.split_train_validation(items, 0.2, seed=1) == (train,
                                                                 validation)
  assert datasets.split_train_validation(items, 0.0) == (items, [])
  _, tiny = datasets.split_train_validation(items[:3], 0.01)
  assert len(tiny) == 1
  with pytest.raises(ValueError, match='validation_fraction'):
    datasets.split_train_validation(items, 1.0)
  with pytest.raises(ValueError, match='at least 2'):
    datasets.split_train_validation(items[:1], 0.5)


def test_image_source_default_split():
  train = datasets.image_source()
  validation = datasets.image_source(subset='validation')
  train_names = {name for name, _ in train}
  validation_names = {name for name, _ in validation}
  assert not train_names & validation_names
  assert train_names | validation_names == set(datasets.DEFAULT_IMAGE_NAMES)
  assert len(validation) == round(len(datasets.DEFAULT_IMAGE_NAMES) * 0.2)


def test_image_source_folder(image_folder, tmp_path):
  everything = datasets.image_source(str(image_folder), channels=3)
  assert len(everything) == 5
  assert all(image.shape[2] == 3 for _, image in everything)
  train = datasets.image_source(image_folder, validation_fraction=0.4)
  held_out = datasets.image_source(
      image_folder, subset='validation', validation_fraction=0.4)
  assert len(train) == 3 and len(held_out) == 2
  assert not {n for n, _ in train} & {n for n, _ in held_out}
  with pytest.raises(ValueError, match='no validation images'):
    datasets.image_source(image_folder, subset='validation')
  other = tmp_path / 'other'
  other.mkdir()
  cv2.imwrite(str(other / 'v.png'), _gradient_image(80, 80))
  validation = datasets.image_source(
      image_folder, subset='validation', validation_source=other)
  assert [name for name, _ in validation] == ['v.png']


def test_image_source_is_gin_configurable(image_folder):
  gin.parse_config(f"""
      image_source.source = '{image_folder}'
      image_source.channels = 3
  """)
  assert len(datasets.image_source()) == 5


def test_resolve_list_file_with_crlf_and_stems(image_folder, tmp_path):
  list_file = tmp_path / 'list.txt'
  list_file.write_bytes(b'some/dir/c_colour.jpg\r\nb_gray.png\r\n\r\n')
  paths = datasets.resolve_list_file(list_file, image_folder)
  assert [path.name for path in paths] == ['c_colour.jpg', 'b_gray.png']
  list_file.write_text('d_colour16\nE_UPPER\n')
  paths = datasets.resolve_list_file(list_file, image_folder)
  assert [path.name for path in paths] == ['d_colour16.tif', 'E_UPPER.PNG']
  list_file.write_text('b_gray.png\nnope.png\n')
  with pytest.raises(FileNotFoundError, match='nope.png'):
    datasets.resolve_list_file(list_file, image_folder)


def test_bsd432_list_file_resolves():
  folder = shared_data_path('BSD432_gray_train')
  list_file = shared_data_path('BSD432_train_list.txt')
  paths = datasets.resolve_list_file(list_file, folder)
  assert len(paths) == 432
  assert {path.name for path in paths} == {
      path.name for path in image_io.list_image_files(folder)}
  image = image_io.read_image(paths[0], channels=1)
  assert image.shape[:2] in ((321, 481), (481, 321))


def test_fpop_pairs_resolve():
  root = shared_data_path('fpop')
  pairs = datasets.list_image_pairs(root / 'train' / 'input',
                                    root / 'train' / 'target',
                                    root / 'uniform_set_train_id.txt')
  assert len(pairs) == 70
  assert all(source.name == target.name for source, target in pairs)


def _constant(height, width, channels=1, value=1.0):
  return np.full((height, width, channels), value, np.float32)


def test_training_dataset_shapes_range_and_determinism(image_folder):
  images = datasets.load_images(image_io.list_image_files(image_folder), 1)
  dataset = datasets.make_training_dataset(
      images, batch_size=8, crop_size=70, seed=5)
  assert dataset.element_spec.shape == (8, 70, 70, 1)
  first = [batch.numpy() for batch in dataset.take(3)]
  again = [batch.numpy() for batch in dataset.take(3)]
  other = [batch.numpy() for batch in datasets.make_training_dataset(
      images, batch_size=8, crop_size=70, seed=6).take(3)]
  for batch in first:
    assert batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 1.0
  np.testing.assert_array_equal(np.stack(first), np.stack(again))
  assert not np.array_equal(np.stack(first), np.stack(other))


def test_training_dataset_without_augmentation_gives_exact_windows():
  image = np.random.default_rng(0).random((75, 80, 1)).astype(np.float32)
  dataset = datasets.make_training_dataset(
      [image], batch_size=16, crop_size=70, seed=1, augment=False)
  batch = next(iter(dataset)).numpy()
  windows = {(y, x): image[y:y + 70, x:x + 70]
             for y in range(6) for x in range(11)}
  for crop in batch:
    assert any(np.array_equal(crop, window) for window in windows.values())


def test_training_dataset_errors():
  with pytest.raises(ValueError, match="'tiny' is 60x90"):
    datasets.make_training_dataset(
        [('big', _constant(80, 80)), ('tiny', _constant(60, 90))])
  with pytest.raises(ValueError, match='channel counts'):
    datasets.make_training_dataset([_constant(80, 80, 1), _constant(80, 80, 3)])
  with pytest.raises(ValueError, match='no training images'):
    datasets.make_training_dataset([])


def test_rotation_brings_black_corners_at_the_expected_rate():
  ones = _constant(70, 70)
  dataset = datasets.make_training_dataset(
      [ones], batch_size=128, crop_size=70, seed=3)
  batch = next(iter(dataset)).numpy()
  corner_darkened = batch[:, [0, 0, -1, -1], [0, -1, 0, -1], 0].min(axis=1) < 1
  # Rotated with probability 0.5 by U(0, 10) degrees: only nearly-zero
  # angles leave the corners intact.
  assert 0.35 < corner_darkened.mean() < 0.65
  assert batch.min() == 0.0
  centre = batch[:, 30:40, 30:40]
  np.testing.assert_allclose(centre, 1.0, atol=1e-5)
  unaugmented = datasets.make_training_dataset(
      [ones], batch_size=32, crop_size=70, seed=3, augment=False)
  np.testing.assert_array_equal(next(iter(unaugmented)).numpy(), 1.0)


def test_flip_happens_half_of_the_time():
  ramp = np.tile(np.arange(70, dtype=np.float32) / 70.0, (70, 1))[..., None]
  dataset = datasets.make_training_dataset(
      [ramp], batch_size=128, crop_size=70, seed=4, rotation_probability=0.0)
  batch = next(iter(dataset)).numpy()
  flipped = np.array([np.array_equal(crop, ramp[:, ::-1]) for crop in batch])
  kept = np.array([np.array_equal(crop, ramp) for crop in batch])
  assert (flipped | kept).all()
  assert 0.35 < flipped.mean() < 0.65


@pytest.mark.parametrize('flip, angle, offset_y, offset_x', [
    (False, 7.5, 3, 9), (True, -9.0, 10, 2), (True, 0.0, 5, 5),
    (False, 40.0, 0, 0)
])
def test_transformed_crop_matches_opencv(flip, angle, offset_y, offset_x):
  height, width, crop_size = 61, 83, 40
  rows, columns = np.mgrid[0:height, 0:width]
  image = (0.5 + 0.4 * np.sin(columns / 7.0) * np.cos(rows / 5.0)).astype(
      np.float32)
  source = np.ascontiguousarray(image[:, ::-1]) if flip else image
  rotation = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1)
  expected = cv2.warpAffine(source, rotation, (width, height))
  expected = expected[offset_y:offset_y + crop_size,
                      offset_x:offset_x + crop_size]
  crop = datasets.transformed_crop(image[..., None], crop_size, flip, angle,
                                   offset_y, offset_x).numpy()[..., 0]
  # OpenCV quantises bilinear weights to 1/32.
  np.testing.assert_allclose(crop, expected, atol=0.02)
  if angle == 0.0:
    np.testing.assert_array_equal(crop, expected)


def test_paired_dataset_applies_the_same_augmentation():
  rng = np.random.default_rng(1)
  inputs = [rng.random((90, 100, 3)).astype(np.float32) for _ in range(3)]
  targets = [image[:, :, :1] * 0.5 for image in inputs]
  dataset = datasets.make_paired_dataset(
      inputs, targets, batch_size=16, crop_size=64, seed=2,
      max_rotation_degrees=45.0)
  input_spec, target_spec = dataset.element_spec
  assert input_spec.shape == (16, 64, 64, 3)
  assert target_spec.shape == (16, 64, 64, 1)
  input_crops, target_crops = next(iter(dataset))
  np.testing.assert_allclose(target_crops.numpy(),
                             input_crops.numpy()[..., :1] * 0.5, atol=1e-6)
  with pytest.raises(ValueError, match='target'):
    datasets.make_paired_dataset(inputs, [_constant(80, 100)] * 3)
  with pytest.raises(ValueError, match='3 inputs but 1 targets'):
    datasets.make_paired_dataset(inputs, targets[:1])


def test_dataset_works_in_a_tf_function():
  dataset = datasets.make_training_dataset(
      [_constant(80, 90, value=0.5)], batch_size=4, crop_size=70, seed=0)

  @tf.function
  def mean_of_first_batch():
    return tf.reduce_mean(next(iter(dataset)))

  assert 0.0 < float(mean_of_first_batch()) <= 0.5



def test_image_source_default_with_validation_folder(image_folder):
  train = datasets.image_source(validation_source=image_folder)
  assert len(train) == len(datasets.DEFAULT_IMAGE_NAMES)
  validation = datasets.image_source(
      subset='validation', validation_source=image_folder)
  assert len(validation) == 5
  with pytest.raises(ValueError, match='no validation images'):
    datasets.image_source(subset='validation', validation_fraction=0.0)
  with pytest.raises(ValueError, match='subset'):
    datasets.image_source(subset='test')


def test_start_batch_resumes_the_stream_exactly():
  rng = np.random.default_rng(0)
  images = [rng.uniform(size=(40 + i, 50, 1)).astype(np.float32)
            for i in range(3)]
  full = datasets.make_training_dataset(images, batch_size=2, crop_size=16,
                                        seed=7)
  batches = [b.numpy() for b in full.take(5)]
  resumed = datasets.make_training_dataset(images, batch_size=2,
                                           crop_size=16, seed=7,
                                           start_batch=3)
  for want, got in zip(batches[3:], resumed.take(2)):
    np.testing.assert_array_equal(got.numpy(), want)

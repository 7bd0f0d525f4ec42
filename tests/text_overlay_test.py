"""Tests of pixelrl_tf.data.text_overlay and the make_restoration_set tool."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import HANG_TIMEOUT_SECONDS
from pixelrl_tf.data import text_overlay
from pixelrl_tf.io import images as image_io
from pixelrl_tf.jobs import restoration_set_lib

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent

# sha256 of np.packbits(render_text_mask(64, 96, default_rng(0))): pins the
# rendering of the pinned numpy / OpenCV stack across machines.
GOLDEN_MASK_SHA256 = (
    'dd5096834c870e398d3cbb207b1be96f4a413687c257c53e86a8f83f2fa315b4')


def _masks(count, size=256, stream=1):
  return [text_overlay.render_text_mask(
      size, size, np.random.default_rng([index, stream]))
          for index in range(count)]


def _photo_like(height, width, channels, seed=0):
  """Values in [0.02, 0.98], so no untouched pixel is exactly 0 or 1."""
  rng = np.random.default_rng(seed)
  return rng.uniform(0.02, 0.98, (height, width, channels)).astype(np.float32)


# ---------------------------------------------------------------------------
# Masks and overlays.


def test_masks_are_deterministic_per_seed():
  first = text_overlay.render_text_mask(80, 120, np.random.default_rng(5))
  again = text_overlay.render_text_mask(80, 120, np.random.default_rng(5))
  other = text_overlay.render_text_mask(80, 120, np.random.default_rng(6))
  assert first.dtype == bool and first.shape == (80, 120)
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_mask_bytes_are_pinned():
  mask = text_overlay.render_text_mask(64, 96, np.random.default_rng(0))
  digest = hashlib.sha256(np.packbits(mask).tobytes()).hexdigest()
  assert digest == GOLDEN_MASK_SHA256


def test_coverage_statistics():
  coverages = np.array([mask.mean() for mask in _masks(50)])
  assert 0.07 <= coverages.mean() <= 0.13
  assert coverages.min() >= 0.01
  assert coverages.max() <= 0.20
  assert coverages.std() > 0.015  # Coverage really varies between masks.


def test_explicit_target_coverage_is_reached():
  rng = np.random.default_rng(3)
  mask = text_overlay.render_text_mask(200, 200, rng, target_coverage=0.05)
  assert mask.mean() == pytest.approx(0.05, abs=0.01)
  with pytest.raises(ValueError, match='target_coverage'):
    text_overlay.render_text_mask(10, 10, rng, target_coverage=0.0)


def test_fonts_and_sizes_vary():
  # Median height of the connected components (letters) of each mask: one
  # font size per block, so the medians spread with the drawn sizes.
  median_heights = []
  for mask in _masks(30):
    _, _, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8)
    median_heights.append(np.median(stats[1:, cv2.CC_STAT_HEIGHT]))
  assert min(median_heights) <= 8
  assert max(median_heights) >= 15


def test_tiny_canvas_terminates():
  mask = text_overlay.render_text_mask(2, 3, np.random.default_rng(0))
  assert mask.shape == (2, 3)


@pytest.mark.parametrize('channels', [1, 3])
def test_corrupt_with_text_paints_zero_or_one_and_keeps_the_rest(channels):
  image = _photo_like(90, 110, channels)
  values = set()
  for seed in range(6):
    corrupted, mask = text_overlay.corrupt_with_text(image, (seed, 0))
    assert corrupted.dtype == np.float32
    assert corrupted.shape == image.shape
    assert mask.shape == (90, 110) and mask.any()
    np.testing.assert_array_equal(corrupted[~mask], image[~mask])
    text_pixels = corrupted[mask]
    value = text_pixels.flat[0]
    assert value in (0.0, 1.0)
    assert np.all(text_pixels == value)  # One value, in every channel.
    values.add(float(value))
    again, again_mask = text_overlay.corrupt_with_text(image, (seed, 0))
    assert again.tobytes() == corrupted.tobytes()
    np.testing.assert_array_equal(again_mask, mask)
  assert values == {0.0, 1.0}


def test_corrupt_with_text_accepts_two_dimensional_images():
  image = _photo_like(40, 50, 1)[..., 0]
  corrupted, mask = text_overlay.corrupt_with_text(image, 4)
  assert corrupted.shape == (40, 50)
  np.testing.assert_array_equal(corrupted[~mask], image[~mask])


def test_overlay_text_checks_shapes():
  with pytest.raises(ValueError, match='does not match'):
    text_overlay.overlay_text(np.zeros((4, 5, 1)), np.zeros((5, 4), bool), 1)


def test_mask_bank_prefix_is_shared():
  small = text_overlay.mask_bank(9, 3, 64)
  large = text_overlay.mask_bank(9, 5, 64)
  assert small.dtype == np.uint8 and small.shape == (3, 64, 64)
  np.testing.assert_array_equal(small, large[:3])
  assert set(np.unique(large).tolist()) == {0, 1}
  assert not np.array_equal(large, text_overlay.mask_bank(10, 5, 64))


# ---------------------------------------------------------------------------
# Training dataset.


def _dataset_images(channels=1):
  return [('a', _photo_like(100, 120, channels, seed=1)),
          ('b', _photo_like(90, 90, channels, seed=2))]


def _batches(dataset, count):
  iterator = iter(dataset)
  return [tuple(part.numpy() for part in next(iterator))
          for _ in range(count)]


def test_dataset_shapes_values_and_determinism():
  kwargs = dict(batch_size=6, crop_size=32, mask_bank_size=16, mask_size=96)
  batches = _batches(text_overlay.make_text_restoration_dataset(
      _dataset_images(), seed=3, **kwargs), 3)
  again = _batches(text_overlay.make_text_restoration_dataset(
      _dataset_images(), seed=3, **kwargs), 3)
  other = _batches(text_overlay.make_text_restoration_dataset(
      _dataset_images(), seed=4, **kwargs), 1)
  resumed = _batches(text_overlay.make_text_restoration_dataset(
      _dataset_images(), seed=3, start_batch=2, **kwargs), 1)
  for corrupted, clean in batches:
    assert corrupted.shape == clean.shape == (6, 32, 32, 1)
    assert corrupted.dtype == clean.dtype == np.float32
    changed = corrupted != clean
    assert np.all(np.isin(corrupted[changed], (0.0, 1.0)))
    assert clean.min() >= 0.0 and clean.max() <= 1.0
  all_corrupted = np.concatenate([corrupted for corrupted, _ in batches])
  all_clean = np.concatenate([clean for _, clean in batches])
  text_fraction = np.mean(all_corrupted != all_clean)
  assert 0.02 < text_fraction < 0.25
  for (corrupted, clean), (corrupted_again, clean_again) in zip(batches,
                                                                again):
    assert corrupted.tobytes() == corrupted_again.tobytes()
    assert clean.tobytes() == clean_again.tobytes()
  assert not np.array_equal(other[0][0], batches[0][0])
  np.testing.assert_array_equal(resumed[0][0], batches[2][0])
  np.testing.assert_array_equal(resumed[0][1], batches[2][1])


def test_dataset_colour_text_is_grey_level():
  dataset = text_overlay.make_text_restoration_dataset(
      _dataset_images(channels=3), batch_size=4, crop_size=40, seed=0,
      mask_bank_size=8, mask_size=64)
  corrupted, clean = _batches(dataset, 1)[0]
  assert corrupted.shape == (4, 40, 40, 3)
  text = np.any(corrupted != clean, axis=-1)
  assert text.any()
  painted = corrupted[text]
  assert np.all(painted == painted[:, :1])
  assert np.all(np.isin(painted, (0.0, 1.0)))


# ---------------------------------------------------------------------------
# make_restoration_set.


@pytest.fixture(name='image_dir')
def _image_dir(tmp_path):
  folder = tmp_path / 'clean'
  folder.mkdir()
  rng = np.random.default_rng(0)
  cv2.imwrite(str(folder / 'b_gray.png'),
              rng.integers(0, 256, (48, 64), dtype=np.uint8))
  cv2.imwrite(str(folder / 'a_colour.png'),
              rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
  cv2.imwrite(str(folder / 'c_photo.jpg'),
              rng.integers(0, 256, (33, 50, 3), dtype=np.uint8))
  (folder / 'notes.txt').write_text('not an image')
  return folder


def _run_tool(*args):
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      [str(PROJECT_ROOT)] + [p for p in [env.get('PYTHONPATH')] if p])
  return subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.make_restoration_set', *args],
      cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS,
      check=False)


def _folder_bytes(folder):
  return {str(path.relative_to(folder)): path.read_bytes()
          for path in sorted(folder.rglob('*')) if path.is_file()}


def test_tool_writes_a_reproducible_set(image_dir, tmp_path):
  output = tmp_path / 'set'
  result = _run_tool(f'--input_dir={image_dir}', f'--output_dir={output}',
                     '--seed=7')
  assert result.returncode == 0, result.stderr
  names = ['a_colour.png', 'b_gray.png', 'c_photo.png']
  manifest = json.loads((output / 'manifest.json').read_text())
  assert manifest['seed'] == 7 and manifest['channels'] == 1
  assert [entry['name'] for entry in manifest['images']] == names
  assert manifest['images'][2]['source'] == 'c_photo.jpg'
  for entry in manifest['images']:
    name = entry['name']
    corrupted = cv2.imread(str(output / 'input' / name), cv2.IMREAD_UNCHANGED)
    target = cv2.imread(str(output / 'target' / name), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(output / 'mask' / name), cv2.IMREAD_UNCHANGED)
    source = image_io.read_image(image_dir / entry['source'],
                                 channels=1)[..., 0]
    assert corrupted.dtype == target.dtype == mask.dtype == np.uint8
    assert corrupted.shape == target.shape == mask.shape == source.shape
    assert (entry['height'], entry['width']) == source.shape
    text = mask == 255
    assert set(np.unique(mask).tolist()) <= {0, 255}
    np.testing.assert_array_equal(corrupted[~text], target[~text])
    assert np.all(corrupted[text] == entry['text_value'])
    assert entry['coverage'] == pytest.approx(text.mean(), abs=1e-6)
    # The target is the clean image as the package loads it.
    np.testing.assert_array_equal(target, np.round(source * 255.0))

  # Same command into a fresh folder: the same bytes.
  rerun = tmp_path / 'rerun'
  result = _run_tool(f'--input_dir={image_dir}', f'--output_dir={rerun}',
                     '--seed=7')
  assert result.returncode == 0, result.stderr
  assert _folder_bytes(rerun) == _folder_bytes(output)

  # A non-empty output folder is refused without --overwrite.
  result = _run_tool(f'--input_dir={image_dir}', f'--output_dir={output}',
                     '--seed=8')
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1] == (
      f"error: output folder '{output}' is not empty (pass --overwrite to "
      f'replace its set)')


def test_tool_reports_a_missing_input_folder(tmp_path):
  missing = tmp_path / 'missing'
  result = _run_tool(f'--input_dir={missing}',
                     f'--output_dir={tmp_path / "out"}', '--seed=0')
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1] == (
      f"error: image folder '{missing}' does not exist")
  assert not (tmp_path / 'out').exists()


def test_library_errors_and_overwrite(image_dir, tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(restoration_set_lib.RestorationSetError,
                     match='no image files'):
    restoration_set_lib.make_restoration_set(empty, tmp_path / 'out', 0)
  with pytest.raises(restoration_set_lib.RestorationSetError, match='seed'):
    restoration_set_lib.make_restoration_set(image_dir, tmp_path / 'out', -1)

  output = tmp_path / 'set'
  first = restoration_set_lib.make_restoration_set(image_dir, output, 1,
                                                   channels=3)
  assert cv2.imread(str(output / 'target' / 'a_colour.png'),
                    cv2.IMREAD_UNCHANGED).shape == (40, 30, 3)
  (image_dir / 'b_gray.png').unlink()
  second = restoration_set_lib.make_restoration_set(image_dir, output, 2,
                                                    overwrite=True)
  assert first['seed'] == 1 and second['seed'] == 2
  for folder in ('input', 'target', 'mask'):
    assert sorted(p.name for p in (output / folder).iterdir()) == [
        'a_colour.png', 'c_photo.png']
  assert not [p for p in output.rglob('*') if p.name.endswith('.tmp')]

"""Tests of pixelrl_tf.visualization (action-map pictures and summaries)."""

import glob
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.visualization import action_maps
from pixelrl_tf.visualization import summaries

_ACTIONS = action_set_lib.DENOISE_ACTIONS
_TWO_COLORS = np.array([[200, 30, 30], [30, 30, 200]], np.uint8)


def _episode(seed, steps, height, width, channels):
  rng = np.random.default_rng(seed)
  images = rng.random((steps + 1, height, width, channels)).astype(np.float32)
  maps = rng.integers(0, _ACTIONS.num_actions, (steps, height, width))
  return images, maps


def _has_color(picture, color):
  return bool(np.all(picture == np.asarray(color, np.uint8), axis=-1).any())


def test_colorize_picks_palette_entries():
  colors = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]], np.uint8)
  actions = np.array([[0, 1], [2, 0], [1, 1]])
  picture = action_maps.colorize_actions(actions, colors)
  assert picture.shape == (3, 2, 3) and picture.dtype == np.uint8
  np.testing.assert_array_equal(picture[0, 0], [10, 20, 30])
  np.testing.assert_array_equal(picture[0, 1], [40, 50, 60])
  np.testing.assert_array_equal(picture[1, 0], [70, 80, 90])
  np.testing.assert_array_equal(picture[2], [[40, 50, 60], [40, 50, 60]])


def test_colorize_rejects_out_of_range_actions():
  with pytest.raises(ValueError):
    action_maps.colorize_actions(np.array([[0, 3]]), _TWO_COLORS)


def test_count_actions_and_fractions():
  maps = np.array([[[0, 0], [1, 0]], [[1, 1], [1, 1]]])
  np.testing.assert_array_equal(action_maps.count_actions(maps, 3),
                                [[3, 1, 0], [0, 4, 0]])
  np.testing.assert_allclose(summaries.action_fractions(maps, 3),
                             [[0.75, 0.25, 0.0], [0.0, 1.0, 0.0]])
  text = summaries.format_action_fractions(
      summaries.action_fractions(maps, 3), ['a', 'b', 'c'])
  assert text.splitlines()[0] == 't=1: a 75.0%, b 25.0%, c 0.0%'


@pytest.mark.parametrize('width', [None, 120, 300, 1000])
def test_legend_shape_and_colors(width):
  picture = action_maps.legend(_ACTIONS.names, _ACTIONS.colors, width=width)
  assert picture.dtype == np.uint8 and picture.ndim == 3
  if width is not None:
    assert picture.shape[1] == width
  for color in _ACTIONS.colors:
    assert _has_color(picture, color)
  narrow = action_maps.legend(_ACTIONS.names, _ACTIONS.colors, width=300)
  wide = action_maps.legend(_ACTIONS.names, _ACTIONS.colors, width=1000)
  assert narrow.shape[0] > wide.shape[0]  # More rows when narrower.


@pytest.mark.parametrize('height,width,channels', [(8, 8, 1), (8, 8, 3),
                                                   (40, 57, 1), (5, 90, 3)])
def test_action_strip_shape_is_sane_and_deterministic(height, width,
                                                      channels):
  images, maps = _episode(0, 3, height, width, channels)
  strip = action_maps.action_strip(images, maps, _ACTIONS.names,
                                   _ACTIONS.colors)
  assert strip.dtype == np.uint8 and strip.ndim == 3 and strip.shape[2] == 3
  # Four columns of panels at least `width` wide and two rows of panels.
  assert strip.shape[1] >= 4 * max(width, 96)
  assert strip.shape[0] >= 2 * max(height, 32)
  again = action_maps.action_strip(list(images), list(maps), _ACTIONS.names,
                                   _ACTIONS.colors)
  np.testing.assert_array_equal(strip, again)


def test_action_strip_shows_each_used_action_color():
  height, width = 24, 30
  maps = np.zeros((2, height, width), np.int64)
  maps[0, :, :10] = 2
  maps[0, :, 10:20] = 5
  maps[1, :12] = 8
  images = np.full((3, height, width, 1), 0.5, np.float32)
  strip = action_maps.action_strip(images, maps, _ACTIONS.names,
                                   _ACTIONS.colors)
  top_without_legend = strip[:-action_maps.legend(
      _ACTIONS.names, _ACTIONS.colors, width=strip.shape[1]).shape[0]]
  for action in (0, 2, 5, 8):
    assert _has_color(top_without_legend, _ACTIONS.colors[action])
  for action in (3, 4, 6):
    assert not _has_color(top_without_legend, _ACTIONS.colors[action])


def test_action_strip_checks_counts_and_titles():
  images, maps = _episode(1, 2, 8, 8, 1)
  with pytest.raises(ValueError):
    action_maps.action_strip(images[:2], maps, _ACTIONS.names,
                             _ACTIONS.colors)
  with pytest.raises(ValueError):
    action_maps.action_strip(images, maps, _ACTIONS.names, _ACTIONS.colors,
                             titles=['a', 'b'])
  strip = action_maps.action_strip(images, maps, _ACTIONS.names,
                                   _ACTIONS.colors,
                                   titles=['noisy', 'one', 'two'])
  assert strip.ndim == 3


def _bar_heights(chart, color):
  """Heights of the connected regions of exactly `color`, tallest first."""
  mask = np.all(chart == color, axis=-1).astype(np.uint8)
  count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
  return sorted((stats[index, cv2.CC_STAT_HEIGHT]
                 for index in range(1, count)), reverse=True)


def test_chart_bar_heights_are_proportional_to_fractions():
  counts = np.array([[75, 25], [0, 100], [50, 50]])
  chart = action_maps.action_count_chart(counts, ['left', 'right'],
                                         _TWO_COLORS, height=240)
  assert chart.dtype == np.uint8 and chart.shape[2] == 3
  assert chart.shape[0] > 240
  first_heights = _bar_heights(chart, _TWO_COLORS[0])
  second_heights = _bar_heights(chart, _TWO_COLORS[1])
  # Bars of action 0: 0.75 and 0.5; of action 1: 1.0, 0.5 and 0.25; the
  # legend swatch comes last (smallest).
  full = second_heights[0]
  assert full > 100
  assert first_heights[0] == pytest.approx(0.75 * full, abs=1)
  assert first_heights[1] == pytest.approx(0.5 * full, abs=1)
  assert second_heights[1] == pytest.approx(0.5 * full, abs=1)
  assert second_heights[2] == pytest.approx(0.25 * full, abs=1)
  assert len(first_heights) == 3 and len(second_heights) == 4


def test_chart_columns_hold_bar_heights():
  chart = action_maps.action_count_chart(np.array([[3, 1]]), ['a', 'b'],
                                         _TWO_COLORS, height=200)
  first_columns = np.all(chart == _TWO_COLORS[0], axis=-1).sum(axis=0)
  second_columns = np.all(chart == _TWO_COLORS[1], axis=-1).sum(axis=0)
  # Tallest columns are bar columns (the swatches are short).
  assert first_columns.max() == pytest.approx(3 * second_columns.max(), abs=2)


def test_chart_is_deterministic_and_handles_many_steps():
  rng = np.random.default_rng(3)
  counts = rng.integers(0, 50, (10, _ACTIONS.num_actions))
  chart = action_maps.action_count_chart(counts, _ACTIONS.names,
                                         _ACTIONS.colors)
  np.testing.assert_array_equal(
      chart, action_maps.action_count_chart(counts, _ACTIONS.names,
                                            _ACTIONS.colors))
  for color in _ACTIONS.colors:
    assert _has_color(chart, color)
  zeros = action_maps.action_count_chart(
      np.zeros((2, 2)), ['a', 'b'], _TWO_COLORS)
  assert zeros.ndim == 3


def test_gif_round_trips(tmp_path):
  frames = [np.full((20, 30, 3), value, np.uint8)
            for value in (0, 80, 160, 240)]
  path = tmp_path / 'sub' / 'episode.gif'
  action_maps.write_gif(frames, path, duration_ms=250)
  with Image.open(path) as gif:
    assert gif.size == (30, 20)
    assert gif.n_frames == 4
    assert gif.info.get('loop') == 0
    assert gif.info.get('duration') == 250
  assert os.listdir(path.parent) == ['episode.gif']


def test_save_png_round_trips_rgb(tmp_path):
  image = np.zeros((4, 5, 3), np.uint8)
  image[..., 0] = 255  # Pure red in RGB.
  path = tmp_path / 'red.png'
  action_maps.save_png(image, path)
  np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
  assert os.listdir(tmp_path) == ['red.png']


def _read_events(logdir):
  values = {}
  for path in glob.glob(os.path.join(logdir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        values.setdefault(value.tag, []).append(value)
  return values


def test_episode_summaries_write_expected_tags(tmp_path):
  images, maps = _episode(2, 2, 16, 12, 1)
  batch = 4
  images_per_step = np.stack([images] * batch, axis=1)  # [T+1, B, H, W, C]
  maps_per_step = np.stack([maps] * batch, axis=1)  # [T, B, H, W]
  writer = tf.summary.create_file_writer(str(tmp_path))
  with writer.as_default():
    summaries.write_episode_images('eval', images_per_step, maps_per_step,
                                   _ACTIONS, step=7, max_outputs=2)
    summaries.write_episode_images('', images_per_step, maps_per_step,
                                   _ACTIONS, step=7, max_outputs=1)
    summaries.write_scalars({'loss': 1.5}, step=7, prefix='Losses/')
    kernel = np.zeros((33, 33), np.float32)
    kernel[16, 16] = 1.0
    kernel[0, 0] = -0.5
    summaries.write_reward_map_kernel(kernel, step=7)
  writer.flush()
  values = _read_events(str(tmp_path))
  for tag in ('Images/eval/input', 'Images/eval/output_t1',
              'Images/eval/output_t2', 'Images/eval/action_strip',
              'Images/eval/action_counts', 'Images/input',
              'Images/action_strip', 'Images/action_counts',
              'Images/reward_map_kernel', 'Metrics/reward_map_centre',
              'Metrics/reward_map_sum', 'Losses/loss'):
    assert tag in values, (tag, sorted(values))

  # Image tensors hold [width, height, png...] strings, one per example.
  strip = tf.make_ndarray(values['Images/eval/action_strip'][0].tensor)
  assert len(strip) == 2 + 2
  decoded = tf.io.decode_png(strip[2]).numpy()
  assert decoded.shape[2] == 3 and decoded.shape[1] == int(strip[0])
  centre = tf.make_ndarray(values['Metrics/reward_map_centre'][0].tensor)
  total = tf.make_ndarray(values['Metrics/reward_map_sum'][0].tensor)
  assert float(centre) == pytest.approx(1.0)
  assert float(total) == pytest.approx(0.5)


def test_episode_summaries_check_shapes():
  images, maps = _episode(4, 2, 8, 8, 1)
  with pytest.raises(ValueError):
    summaries.write_episode_images('x', images[:, None], maps[:1, None],
                                   _ACTIONS, step=0)


def test_kernel_heat_map_is_symmetric_around_zero():
  kernel = np.zeros((33, 33))
  kernel[16, 16] = 2.0
  kernel[0, 0] = -2.0
  picture = summaries.kernel_heat_map(kernel[:, :, None, None], scale=4)
  assert picture.dtype == np.uint8 and picture.shape[1] >= 33 * 4
  pixels = {tuple(pixel) for pixel in picture.reshape(-1, 3)}
  assert (178, 24, 43) in pixels  # Full red for +2.
  assert (33, 102, 172) in pixels  # Full blue for -2.


def test_line_chart_draws_each_series():
  from pixelrl_tf.visualization import plots  # pylint: disable=g-import-not-at-top
  chart = plots.line_chart({'a': [20.0, 25.0, 27.0], 'b': [20.0, 20.0, 20.0]},
                           title='t')
  assert chart.shape == (400, 640, 3) and chart.dtype == np.uint8
  for color in plots._COLORS[:2]:  # pylint: disable=protected-access
    assert np.all(chart == np.array(color, np.uint8), axis=-1).sum() > 20
  with pytest.raises(ValueError):
    plots.line_chart({'a': [1.0], 'b': [1.0, 2.0]})

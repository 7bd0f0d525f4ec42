"""Line charts drawn with OpenCV (no plotting library needed).

Used for the PSNR-versus-step curves of the paper's Fig. 8.
"""

from typing import Mapping, Sequence

import cv2
import numpy as np

_COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
           (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127))
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _nice_ticks(low, high, count=5):
  span = max(high - low, 1e-6)
  raw = span / count
  magnitude = 10 ** np.floor(np.log10(raw))
  step = min((m * magnitude for m in (1, 2, 2.5, 5, 10)
              if m * magnitude >= raw), default=raw)
  start = np.floor(low / step) * step
  ticks = np.arange(start, high + step * 1.001, step)
  return ticks, step


def line_chart(series: Mapping[str, Sequence[float]], x_values=None,
               x_label='step', y_label='PSNR (dB)', title='', width=640,
               height=400) -> np.ndarray:
  """Draws one line per series, with axes, ticks and a legend.

  Args:
    series: name -> y values (all the same length, >= 1).
    x_values: x positions (default 1..N).
    x_label: x axis label.
    y_label: y axis label.
    title: text above the chart.
    width: image width.
    height: image height.

  Returns:
    uint8 RGB `[height, width, 3]`.
  """
  names = list(series)
  if not names:
    raise ValueError('line_chart needs at least one series')
  values = [np.asarray(series[n], np.float64) for n in names]
  length = len(values[0])
  if length < 1 or any(len(v) != length for v in values):
    raise ValueError('every series needs the same, non-zero length')
  x_values = np.arange(1, length + 1) if x_values is None else np.asarray(
      x_values, np.float64)
  canvas = np.full((height, width, 3), 255, np.uint8)
  left, right, top, bottom = 70, 20, (56 if title else 40), 60
  plot_w, plot_h = width - left - right, height - top - bottom
  finite = np.concatenate([v[np.isfinite(v)] for v in values])
  low, high = (float(finite.min()), float(finite.max())) if finite.size else (
      0.0, 1.0)
  ticks, step = _nice_ticks(low, high)
  y_low, y_high = ticks[0], max(ticks[-1], ticks[0] + step)
  x_low, x_high = float(x_values.min()), float(x_values.max())
  x_span = max(x_high - x_low, 1.0)

  def to_pixel(x, y):
    px = left + (x - x_low) / x_span * plot_w
    py = top + plot_h - (y - y_low) / (y_high - y_low) * plot_h
    return int(round(px)), int(round(py))

  for tick in ticks:
    _, py = to_pixel(x_low, tick)
    cv2.line(canvas, (left, py), (left + plot_w, py), (225, 225, 225), 1)
    text = f'{tick:.{max(0, int(-np.floor(np.log10(step))))}f}'
    if float(text) == 0.0:
      text = text.lstrip('-')  # a rounded -1e-17 is no "-0.0"
    cv2.putText(canvas, text, (5, py + 4), _FONT, 0.4, (0, 0, 0), 1,
                cv2.LINE_AA)
  for x in x_values:
    px, _ = to_pixel(x, y_low)
    cv2.line(canvas, (px, top + plot_h), (px, top + plot_h + 4), (0, 0, 0), 1)
    label = f'{x:g}'
    (tw, _), _ = cv2.getTextSize(label, _FONT, 0.4, 1)
    cv2.putText(canvas, label, (px - tw // 2, top + plot_h + 18), _FONT, 0.4,
                (0, 0, 0), 1, cv2.LINE_AA)
  cv2.rectangle(canvas, (left, top), (left + plot_w, top + plot_h),
                (0, 0, 0), 1)
  for index, (name, y) in enumerate(zip(names, values)):
    color = _COLORS[index % len(_COLORS)]
    points = [to_pixel(x, v) for x, v in zip(x_values, y) if np.isfinite(v)]
    for a, b in zip(points, points[1:]):
      cv2.line(canvas, a, b, color, 2, cv2.LINE_AA)
    for point in points:
      cv2.circle(canvas, point, 3, color, -1, cv2.LINE_AA)
    legend_y = top + 14 + 16 * index
    cv2.line(canvas, (left + 10, legend_y - 4), (left + 30, legend_y - 4),
             color, 2)
    cv2.putText(canvas, name, (left + 36, legend_y), _FONT, 0.45, (0, 0, 0),
                1, cv2.LINE_AA)
  (tw, _), _ = cv2.getTextSize(x_label, _FONT, 0.45, 1)
  cv2.putText(canvas, x_label, (left + (plot_w - tw) // 2, height - 15),
              _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
  cv2.putText(canvas, y_label, (5, top - 10), _FONT, 0.45, (0, 0, 0), 1,
              cv2.LINE_AA)
  if title:
    (tw, _), _ = cv2.getTextSize(title, _FONT, 0.5, 1)
    cv2.putText(canvas, title, ((width - tw) // 2, 18), _FONT, 0.5,
                (0, 0, 0), 1, cv2.LINE_AA)
  return canvas

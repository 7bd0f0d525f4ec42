"""Restoring large images in overlapping tiles, with the untiled result.

Shapes: `T` steps, `H, W` height and width of the whole image, `h, w` of a
tile window, `C` channels.

A greedy PixelRL episode is local: after `T` steps every output pixel (the
restored image and every action map) depends only on input pixels within a
radius `R` in each axis, `R = restoration_module.dependency_radius(network,
T)` (90 pixels for the "+convGRU" network and `T = 5`; see that function
for the derivation). The image is cut into cores of `tile_size x tile_size`
pixels; each core is restored inside a window that extends it by `R` pixels
on every side (clipped at the image edges), and only the core of the result
is kept.

Why that gives exactly the untiled result: the window's own borders are
artificial (zero padding of the convolutions, OpenCV's reflect-101 or
replicate border of the filters); their effect enters the window at its edge
and spreads inward by at most the per-step radius each step, so after `T`
steps it reaches at most `R` pixels in, i.e. never the core. Where a window
edge is the true image edge, nothing is artificial: the network pads with
zeros and the filters reflect or replicate exactly the pixels they would in
the whole image, because the window holds the same pixels next to that edge.
The margin must cover the filters' 2-pixel windows as well as the network's
receptive field, since a filter read across an artificial border would be
wrong too; in PixelRL the network term (18 per step) dominates.

Only one window is in memory at a time (plus the full-size outputs).
"""

import dataclasses
from typing import Callable, Dict, Iterator, Mapping, Optional

import numpy as np

# Position of the height axis of each output of `RestorationModule` (width
# follows); the leading axis is the batch of one.
OUTPUT_HEIGHT_AXES = {
    'restored': 1,
    'restored_uint8': 1,
    'actions': 2,
    'images': 2,
}


@dataclasses.dataclass(frozen=True)
class Tile:
  """One tile: the core it produces and the window it reads.

  Attributes:
    core: `(top, bottom, left, right)` of the pixels kept, in image
      coordinates (bottom and right excluded).
    window: `(top, bottom, left, right)` of the pixels restored.
  """
  core: tuple
  window: tuple

  def core_in_window(self):
    """`(top, bottom, left, right)` of the core in window coordinates."""
    top, bottom, left, right = self.core
    window_top, _, window_left, _ = self.window
    return (top - window_top, bottom - window_top, left - window_left,
            right - window_left)


def tiles(height, width, tile_size, margin) -> Iterator[Tile]:
  """Yields the tiles covering an image, row by row.

  Args:
    height: `H`.
    width: `W`.
    tile_size: side of the cores; None or <= 0 gives one tile (the whole
      image).
    margin: `R`, pixels added to each side of a core (clipped at the image).

  Yields:
    `Tile`s whose cores partition the image.
  """
  if height < 1 or width < 1:
    raise ValueError(f'image size must be positive, got {height}x{width}')
  if margin < 0:
    raise ValueError(f'margin must be >= 0, got {margin}')
  if not tile_size or tile_size <= 0:
    tile_size = max(height, width)
  for top in range(0, height, tile_size):
    bottom = min(top + tile_size, height)
    for left in range(0, width, tile_size):
      right = min(left + tile_size, width)
      yield Tile(core=(top, bottom, left, right),
                 window=(max(0, top - margin), min(height, bottom + margin),
                         max(0, left - margin), min(width, right + margin)))


def restore_tiled(
    restore_fn: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    image: np.ndarray,
    tile_size: Optional[int],
    margin: int,
    height_axes: Optional[Mapping[str, int]] = None,
) -> Dict[str, np.ndarray]:
  """Runs `restore_fn` tile by tile and assembles its outputs.

  Args:
    restore_fn: maps a float32 `[1,h,w,C]` window to a dict of arrays with a
      leading batch axis of one and the window's `h, w` at the axes given by
      `height_axes` (e.g. a `RestorationModule` signature, outputs converted
      to numpy).
    image: `[H,W,C]` float32 image.
    tile_size: side of the cores; None or <= 0 restores the image in one go.
    margin: `R`, the dependency radius of the restoration
      (`restoration_module.dependency_radius`); smaller values give seams.
    height_axes: position of the height axis of every output to keep;
      defaults to `OUTPUT_HEIGHT_AXES` (outputs not listed are dropped).

  Returns:
    dict of the outputs for the whole image, batch axis removed: e.g.
    `restored [H,W,C]`, `actions [T,H,W]`.
  """
  height_axes = dict(height_axes or OUTPUT_HEIGHT_AXES)
  image = np.asarray(image, np.float32)
  if image.ndim != 3:
    raise ValueError(f'image must be [H,W,C], got shape {image.shape}')
  height, width = image.shape[:2]
  outputs = {}
  for tile in tiles(height, width, tile_size, margin):
    top, bottom, left, right = tile.window
    window = np.ascontiguousarray(image[None, top:bottom, left:right])
    results = restore_fn(window)
    core_top, core_bottom, core_left, core_right = tile.core_in_window()
    for key, value in results.items():
      if key not in height_axes:
        continue
      value = np.asarray(value)[0]
      axis = height_axes[key] - 1
      if value.shape[axis:axis + 2] != window.shape[1:3]:
        raise ValueError(
            f'output {key!r} has shape {value.shape}; expected the window '
            f'size {window.shape[1:3]} at axes {axis}, {axis + 1}')
      if key not in outputs:
        shape = list(value.shape)
        shape[axis:axis + 2] = [height, width]
        outputs[key] = np.empty(shape, value.dtype)
      index = [slice(None)] * value.ndim
      index[axis] = slice(core_top, core_bottom)
      index[axis + 1] = slice(core_left, core_right)
      target = list(index)
      target[axis] = slice(tile.core[0], tile.core[1])
      target[axis + 1] = slice(tile.core[2], tile.core[3])
      outputs[key][tuple(target)] = value[tuple(index)]
  return outputs

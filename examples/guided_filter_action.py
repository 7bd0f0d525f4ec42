r"""A guided-filter action added from outside the package.

The paper mentions a guided filter (He et al.) as a possible action; this
module adds it without editing pixelrl_tf: it registers the action
`guided_2_0.01` (the image guiding itself, radius 2, eps 0.01 on the 0..1
scale, as `cv2.ximgproc.guidedFilter(img, img, 2, 0.01)`) and the table
`denoise_guided` (the 9 denoising actions and the guided filter). Train with
it from a gin file or the command line:

  python -m pixelrl_tf.train --gin_file=configs/denoise_quick.gin \
      --gin_bindings='import examples.guided_filter_action' \
      --gin_bindings="make_task.action_set = 'denoise_guided'" \
      --root_dir=runs/guided

(run from the project root, so that `examples` is importable). The model
directory records this module in `model.json`, so `eval`, `export` and
`restore` import it and rebuild the same 10 actions.

Shapes: `B` batch, `H, W` height and width, `C` channels (each channel is
filtered with itself as the guide).
"""

import functools

import tensorflow as tf

from pixelrl_tf.filters import action_set


def _box_mean(images, radius):
  """Mean over `(2r+1)^2` windows with OpenCV's `BORDER_REFLECT` border.

  `cv2.ximgproc.guidedFilter` pads by mirroring the edge pixel too (`fedcba|
  abcdef`, TensorFlow's 'SYMMETRIC'), unlike the reflect-101 border of the
  project's box filter.
  """
  size = 2 * radius + 1
  padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius],
                           [0, 0]], mode='SYMMETRIC')
  channels = tf.shape(images)[-1]
  kernel = tf.fill([size, size, channels, 1], 1.0 / (size * size))
  return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], 'VALID')


def guided_filter(images: tf.Tensor, radius: int = 2,
                  eps: float = 0.01) -> tf.Tensor:
  """Self-guided filter of `[B,H,W,C]` images (He et al., Alg. 1).

  With `mean` the box filter of side `2 * radius + 1` (OpenCV's border):
  `a = var(I) / (var(I) + eps)`, `b = (1 - a) mean(I)`, and the output is
  `mean(a) I + mean(b)`, as `cv2.ximgproc.guidedFilter(I, I, radius, eps)`.

  Args:
    images: float32 `[B,H,W,C]`, guide and input.
    radius: window radius.
    eps: regularisation, on the images' scale squared.

  Returns:
    float32 `[B,H,W,C]`.
  """
  mean = functools.partial(_box_mean, radius=radius)
  mean_i = mean(images)
  variance = mean(images * images) - mean_i * mean_i
  a = variance / (variance + eps)
  b = mean_i - a * mean_i
  return mean(a) * images + mean(b)


GUIDED = action_set.register_action(action_set.Action(
    'guided_2_0.01', functools.partial(guided_filter, radius=2, eps=0.01),
    (255, 215, 0)), overwrite=True)
action_set.register_action_set(
    'denoise_guided',
    action_set.action_names('denoise') + (GUIDED.name,), overwrite=True)

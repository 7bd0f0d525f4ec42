"""Seeded noise models for the denoising tasks.

All ops take float32 images on the 0..1 scale, shaped `[..., H, W, C]`
(usually `[B, H, W, C]`), and a seed tensor of shape `[2]` (int32 or int64).
They use TensorFlow's stateless random ops, so the same images and seed give
the same noise on every run, inside `tf.data` pipelines and inside
`tf.function`s alike.

As in the reference code the noisy images are NOT clipped to [0, 1] by
default; pass `clip=True` to clip them.

Noise models are written as short strings, `KIND:LEVEL[:clip]`:

  * `gaussian:25`: additive white Gaussian noise, sigma 25 on the 0..255
    scale;
  * `poisson:30`: Poisson (shot) noise with peak 30, `Poisson(30 * x) / 30`;
  * `salt_pepper:0.5`: half of the pixels set to 0 or 1;
  * a trailing `:clip` clips the noisy image to [0, 1].
"""

import dataclasses

import gin
import tensorflow as tf

GAUSSIAN = 'gaussian'
POISSON = 'poisson'
SALT_PEPPER = 'salt_pepper'
NOISE_KINDS = (GAUSSIAN, POISSON, SALT_PEPPER)

_KIND_ALIASES = {
    'gauss': GAUSSIAN,
    'awgn': GAUSSIAN,
    'salt_and_pepper': SALT_PEPPER,
    'saltpepper': SALT_PEPPER,
    'sp': SALT_PEPPER,
}
_CLIP_SUFFIX = 'clip'
_SPEC_HELP = ('expected KIND:LEVEL[:clip] with KIND one of gaussian, poisson, '
              'salt_pepper (e.g. gaussian:25, poisson:30, salt_pepper:0.5, '
              'gaussian:25:clip)')


def _maybe_clip(images, clip):
  if clip:
    return tf.clip_by_value(images, 0.0, 1.0)
  return images


def add_gaussian_noise(images, sigma, seed, clip=False):
  """Adds white Gaussian noise with standard deviation `sigma` / 255.

  Args:
    images: float32 `[..., H, W, C]` on the 0..1 scale.
    sigma: standard deviation on the 0..255 scale (e.g. 15, 25, 50); a Python
      number or a scalar tensor.
    seed: int32/int64 `[2]` seed of the stateless random op.
    clip: whether to clip the result to [0, 1].

  Returns:
    float32 `[..., H, W, C]`: `images + N(0, sigma) / 255`.
  """
  images = tf.convert_to_tensor(images, tf.float32)
  sigma = tf.cast(sigma, tf.float32)
  noise = tf.random.stateless_normal(tf.shape(images), seed, dtype=tf.float32)
  return _maybe_clip(images + noise * (sigma / 255.0), clip)


def add_poisson_noise(images, peak, seed, clip=False):
  """Replaces each value `x` by `Poisson(peak * x) / peak`.

  The Poisson rate of negative values (possible when the input is itself an
  unclipped noisy image) is taken as 0.

  Args:
    images: float32 `[..., H, W, C]` on the 0..1 scale.
    peak: the photon count of a white (1.0) value; lower is noisier (the
      paper uses 30 and 10). A Python number or a scalar tensor.
    seed: int32/int64 `[2]` seed of the stateless random op.
    clip: whether to clip the result to [0, 1].

  Returns:
    float32 `[..., H, W, C]`.
  """
  images = tf.convert_to_tensor(images, tf.float32)
  peak = tf.cast(peak, tf.float32)
  rates = tf.maximum(images, 0.0) * peak
  counts = tf.random.stateless_poisson(
      tf.shape(images), seed, lam=rates, dtype=tf.float32)
  return _maybe_clip(counts / peak, clip)


def add_salt_pepper_noise(images, density, seed, clip=False):
  """Sets a random `density` fraction of the pixels to 0 or 1 (half each).

  A corrupted pixel is corrupted in all its channels at once (it turns black
  or white, not into a random colour), so `density` is the fraction of pixel
  positions hit, for gray and colour images alike.

  Args:
    images: float32 `[..., H, W, C]` on the 0..1 scale.
    density: probability in [0, 1] that a pixel is corrupted; a Python number
      or a scalar tensor.
    seed: int32/int64 `[2]` seed of the stateless random op.
    clip: whether to clip the untouched pixels to [0, 1].

  Returns:
    float32 `[..., H, W, C]` whose corrupted pixels are exactly 0.0 or 1.0.
  """
  images = tf.convert_to_tensor(images, tf.float32)
  density = tf.cast(density, tf.float32)
  pixel_shape = tf.concat([tf.shape(images)[:-1], [1]], axis=0)
  # One uniform draw per pixel: [0, density/2) -> pepper, [density/2, density)
  # -> salt, the rest untouched.
  draws = tf.random.stateless_uniform(pixel_shape, seed, dtype=tf.float32)
  impulses = tf.cast(draws >= density / 2.0, tf.float32)
  corrupted = tf.broadcast_to(draws < density, tf.shape(images))
  return tf.where(corrupted, impulses * tf.ones_like(images),
                  _maybe_clip(images, clip))


@dataclasses.dataclass(frozen=True)
class NoiseModel:
  """A noise kind, its level and whether noisy images are clipped.

  Attributes:
    kind: one of `NOISE_KINDS`: 'gaussian', 'poisson' or 'salt_pepper'.
    level: sigma on the 0..255 scale (gaussian, >= 0), peak (poisson, > 0) or
      density (salt_pepper, in [0, 1]).
    clip: whether `apply` clips its result to [0, 1].
  """
  kind: str
  level: float
  clip: bool = False

  def __post_init__(self):
    if self.kind not in NOISE_KINDS:
      raise ValueError(f'unknown noise kind {self.kind!r}; expected one of '
                       f'{", ".join(NOISE_KINDS)}')
    try:
      level = float(self.level)
    except (TypeError, ValueError):
      raise ValueError(f'noise level must be a number, got {self.level!r}'
                      ) from None
    if self.kind == GAUSSIAN and not level >= 0.0:
      raise ValueError(f'gaussian sigma must be >= 0 (0..255 scale), got '
                       f'{self.level!r}')
    if self.kind == POISSON and not level > 0.0:
      raise ValueError(f'poisson peak must be > 0, got {self.level!r}')
    if self.kind == SALT_PEPPER and not 0.0 <= level <= 1.0:
      raise ValueError(f'salt_pepper density must be a fraction in [0, 1] '
                       f'(e.g. 0.5 for 50%), got {self.level!r}')
    object.__setattr__(self, 'level', level)
    object.__setattr__(self, 'clip', bool(self.clip))

  def __str__(self):
    level_text = repr(self.level)
    if level_text.endswith('.0'):
      level_text = level_text[:-2]
    text = f'{self.kind}:{level_text}'
    if self.clip:
      text += ':' + _CLIP_SUFFIX
    return text

  def apply(self, images, seed):
    """Returns noisy `images` (float32 `[..., H, W, C]`) for a `[2]` seed."""
    if self.kind == GAUSSIAN:
      return add_gaussian_noise(images, self.level, seed, clip=self.clip)
    if self.kind == POISSON:
      return add_poisson_noise(images, self.level, seed, clip=self.clip)
    return add_salt_pepper_noise(images, self.level, seed, clip=self.clip)


def parse_noise(spec):
  """Parses `KIND:LEVEL[:clip]` (e.g. 'gaussian:25') into a `NoiseModel`.

  Kinds are case-insensitive; '-' and '_' are interchangeable and 'sp',
  'salt_and_pepper' are accepted for 'salt_pepper'. `str()` of the result
  parses back to an equal model.

  Args:
    spec: the noise string.

  Returns:
    The `NoiseModel`.

  Raises:
    ValueError: (one line) for a malformed string, an unknown kind or a level
      out of range.
  """
  if isinstance(spec, NoiseModel):
    return spec
  if not isinstance(spec, str):
    raise ValueError(f'bad noise {spec!r}: {_SPEC_HELP}')
  parts = [part.strip() for part in spec.strip().split(':')]
  clip = False
  if len(parts) == 3 and parts[2].lower() == _CLIP_SUFFIX:
    clip = True
    parts = parts[:2]
  if len(parts) != 2 or not parts[0] or not parts[1]:
    raise ValueError(f'bad noise {spec!r}: {_SPEC_HELP}')
  kind = parts[0].lower().replace('-', '_')
  kind = _KIND_ALIASES.get(kind, kind)
  if kind not in NOISE_KINDS:
    raise ValueError(f'bad noise {spec!r}: unknown kind {parts[0]!r}; '
                     f'{_SPEC_HELP}')
  try:
    level = float(parts[1])
  except ValueError:
    raise ValueError(f'bad noise {spec!r}: level {parts[1]!r} is not a '
                     f'number; {_SPEC_HELP}') from None
  try:
    return NoiseModel(kind, level, clip)
  except ValueError as error:
    raise ValueError(f'bad noise {spec!r}: {error}') from None


@gin.configurable(module='pixelrl_tf.data')
def noise_model(kind=GAUSSIAN, level=25.0, clip=False):
  """Gin-configurable factory of a `NoiseModel` (see `NoiseModel`)."""
  return NoiseModel(kind, level, clip)


def noisy_pairs(images, noise_model, seed):
  """Yields `(name, noisy, clean)`, noise seeded by `(seed, image index)`.

  Args:
    images: iterable of `(name, clean [H,W,C])`.
    noise_model: a `NoiseModel`.
    seed: int seed; image `i` is corrupted with the stateless seed
      `(seed, i)`, so a set of noisy images is the same in every run.
  """
  for index, (name, clean) in enumerate(images):
    noisy = noise_model.apply(clean[None], tf.constant([seed, index],
                                                       tf.int64))
    yield name, noisy.numpy()[0], clean

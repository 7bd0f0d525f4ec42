"""Overlaid-text corruption for blind image restoration (text removal).

Shapes: `B` batch, `H, W` height and width, `C` image channels. Images are
float32 on the 0..1 scale; text masks are bool `[H, W]` (True on text).

The reference restoration task paints text over photographs: 20-Newsgroups
documents rendered offline (Arial / Times, size 10-30, random bold / italic)
into 512x512 binary masks that cover about 10.4% of the pixels on average
(1.3% to 17.6%); the text pixels of an image are all set to 0 or all to 255,
with probability 0.5 each. Those masks and their renderer are not published,
so this module renders look-alikes with OpenCV's Hershey stroke fonts:

  * each mask draws a target coverage (mean about 10%, kept within 1.2%-18%)
    and is filled with blocks of text until the target is reached;
  * a block is a few left-aligned lines of random common English words (some
    capitalised, some followed by punctuation, a few numbers) at a random
    position, in one style: a face (sans-like simplex / duplex, serif-like
    complex / triplex, small complex, plain or script), a font size of
    10-30 px (ascender to descender), regular or bold (thicker strokes) and
    upright or italic;
  * lines may run off the mask's edges, as text cropped from a page does.

Masks are pure functions of a seed: numpy `Generator`s drive every choice
and OpenCV rasterises the stroke fonts with integer arithmetic, so a seed
gives the same bytes on every machine.

Training crops (`make_text_restoration_dataset`) follow the reference loader:
a mask is chosen at random from a bank rendered once from the seed, flipped
(p 0.5), rotated by up to 10 degrees (p 0.5), cropped at a random position
and pasted, in black or white, onto an augmented clean crop.
"""

import functools

import cv2
import numpy as np
import tensorflow as tf

from pixelrl_tf.data import datasets

# Mean and spread of the per-mask target coverage (the reference masks'
# measured mean is 10.4%), and its bounds.
TARGET_COVERAGE_MEAN = 0.104
TARGET_COVERAGE_STDDEV = 0.035
MIN_TARGET_COVERAGE = 0.012
MAX_TARGET_COVERAGE = 0.18

MIN_FONT_SIZE = 10
MAX_FONT_SIZE = 30
BOLD_PROBABILITY = 0.3
ITALIC_PROBABILITY = 0.3
TEXT_VALUE_WHITE_PROBABILITY = 0.5

DEFAULT_MASK_BANK_SIZE = 512
DEFAULT_MASK_SIZE = 256

# Hershey faces and how often a block uses each. Only some faces have an
# italic variant in OpenCV; an italic block picks among those.
_FACE_WEIGHTS = (
    (cv2.FONT_HERSHEY_SIMPLEX, 0.22),
    (cv2.FONT_HERSHEY_DUPLEX, 0.18),
    (cv2.FONT_HERSHEY_COMPLEX, 0.22),
    (cv2.FONT_HERSHEY_TRIPLEX, 0.14),
    (cv2.FONT_HERSHEY_COMPLEX_SMALL, 0.10),
    (cv2.FONT_HERSHEY_PLAIN, 0.04),
    (cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 0.05),
    (cv2.FONT_HERSHEY_SCRIPT_COMPLEX, 0.05),
)
_ITALIC_FACES = (cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
                 cv2.FONT_HERSHEY_COMPLEX_SMALL, cv2.FONT_HERSHEY_PLAIN)
FONT_FACES = tuple(face for face, _ in _FACE_WEIGHTS)

# Cap height over font size (ascender-to-descender height) of common fonts.
_CAP_HEIGHT_PER_SIZE = 0.7

# Seed-stream tags keeping the mask bank and the per-crop draws independent
# of the other seeded draws of the data pipeline.
_MASK_BANK_STREAM = 0x7E47
_CROP_STREAM = 0x7E48

WORDS = tuple("""
a about above across act actually add after again against age ago agree air
all almost alone along already also although always am among an and another
answer any anyone anything are area argument around art article as ask at
away back bad bank based be because become been before began begin being
believe below best better between big bill bit black body book both box
boy bring brought build business but buy by call came can car card care
carry case cause center certain chance change check child children church
city claim class clear close code cold come common company computer
control could country course court cover current cut dark data day dead
deal death decide deep did different disk do does done door down draw
drive driver during each early earth east easy either else end enough even
evening event ever every evidence example except eye face fact fair family
far fast father few field figure file final find fine fire first five
follow food for force form found four free friend from front full game
gave general get give given go god going good got government great green
ground group grow guess gun had half hand happen hard has have he head hear
heard heart help her here high him his history hold home hope hot hour
house how however human hundred idea if important in include information
inside instead interest into is issue it its job just keep key kind knew
know land language large last late later law lead learn least leave left
less let letter life light like line list little live local long look lose
lost lot love low machine made mail main make man many mark matter may
maybe me mean memory message might mind mine minute miss money month more
morning most mother move much music must my name nation near need never
new news next night no north not note nothing now number of off offer
office often old on once one only open or order other our out over own
page paper part party pass past pay people perhaps person phone picture
piece place plan play point police possible post power present price
probably problem program public put question quite rather read ready real
really reason record red remember report rest result right river road
rock room rule run said same saw say school science screen sea second see
seem seen send sense set several shall she short should show side simple
since single small so software some something sometimes soon sound south
space speak special stand start state still stop story street strong such
sun support sure system table take talk team tell ten than thank that the
their them then there these they thing think this those though thought
three through time to today together told too took top toward town true
try turn two type under understand until up upon us use used user usually
very video view voice wait walk want war was watch water way we week well
went were west what when where whether which while white who whole why
will window with within without word work world would write wrong year yes
yet you young your
""".split())

_PUNCTUATION = ('.', ',', ',', '.', ':', ';', '?', '!', ')', '"')


# ---------------------------------------------------------------------------
# Masks.


def draw_target_coverage(rng):
  """Draws the fraction of pixels a mask should cover.

  Args:
    rng: `np.random.Generator`.

  Returns:
    A float in `[MIN_TARGET_COVERAGE, MAX_TARGET_COVERAGE]` from a normal
    distribution (mean `TARGET_COVERAGE_MEAN`) truncated to those bounds.
  """
  while True:
    coverage = TARGET_COVERAGE_MEAN + TARGET_COVERAGE_STDDEV * rng.normal()
    if MIN_TARGET_COVERAGE <= coverage <= MAX_TARGET_COVERAGE:
      return float(coverage)


def _draw_style(rng):
  """Draws `(face, font_scale, thickness, font_size)` of a text block."""
  faces, weights = zip(*_FACE_WEIGHTS)
  italic = rng.random() < ITALIC_PROBABILITY
  if italic:
    face = _ITALIC_FACES[rng.integers(len(_ITALIC_FACES))] | cv2.FONT_ITALIC
  else:
    face = faces[rng.choice(len(faces), p=np.array(weights) / sum(weights))]
  font_size = int(rng.integers(MIN_FONT_SIZE, MAX_FONT_SIZE + 1))
  # Regular strokes are about a tenth of the size thick, bold ones about
  # twice that (Hershey strokes are lines of a given pixel thickness).
  thickness = max(1, int(round(font_size / 12.0)))
  if rng.random() < BOLD_PROBABILITY:
    thickness += max(1, int(round(font_size / 14.0)))
  cap_height = max(4, int(round(font_size * _CAP_HEIGHT_PER_SIZE)))
  font_scale = cv2.getFontScaleFromHeight(face, cap_height, thickness)
  return face, font_scale, thickness, font_size


def _draw_word(rng):
  """Draws one word of running text (maybe capitalised or punctuated)."""
  if rng.random() < 0.04:
    word = str(int(rng.integers(0, 10 ** int(rng.integers(1, 5)))))
  else:
    word = WORDS[rng.integers(len(WORDS))]
    draw = rng.random()
    if draw < 0.15:
      word = word.capitalize()
    elif draw < 0.17:
      word = word.upper()
  if rng.random() < 0.12:
    word += _PUNCTUATION[rng.integers(len(_PUNCTUATION))]
  return word


def render_text_mask(height, width, rng, target_coverage=None):
  """Renders a binary mask of overlaid text.

  Blocks of text (see the module docstring) are drawn at random positions
  until `target_coverage` of the pixels are text: the last word is kept or
  dropped, whichever lands nearer the target.

  Args:
    height: mask height `H` (pixels).
    width: mask width `W` (pixels).
    rng: `np.random.Generator` driving every choice.
    target_coverage: fraction of text pixels to reach, in (0, 0.9]; drawn
      with `draw_target_coverage` when None.

  Returns:
    bool numpy `[H, W]`, True on text.

  Raises:
    ValueError: a non-positive size or a target out of range.
  """
  if height < 1 or width < 1:
    raise ValueError(f'mask size must be positive, got {height}x{width}')
  if target_coverage is None:
    target_coverage = draw_target_coverage(rng)
  if not 0.0 < target_coverage <= 0.9:
    raise ValueError(f'target_coverage must be in (0, 0.9], got '
                     f'{target_coverage!r}')
  canvas = np.zeros((height, width), np.uint8)
  target_pixels = target_coverage * height * width
  covered_pixels = 0
  # Every word lands at least partly inside the canvas, so this bound is
  # only a guard against degenerate (tiny) canvases.
  words_left = 50 * int(target_pixels) + 1000
  while covered_pixels < target_pixels and words_left > 0:
    words_left -= 1
    face, font_scale, thickness, font_size = _draw_style(rng)
    (space_width, _), _ = cv2.getTextSize(' ', face, font_scale, thickness)
    line_spacing = font_size + int(rng.integers(0, font_size // 2 + 2))
    block_width = int(rng.integers(width // 3, 2 * width + 1))
    left = int(rng.integers(-width // 4, width))
    baseline = int(rng.integers(0, height)) + font_size // 2
    line_count = int(rng.integers(1, 9))
    for _ in range(line_count):
      x = left
      while x < left + block_width and x < width:
        word = _draw_word(rng)
        words_left -= 1
        (word_width, word_height), descent = cv2.getTextSize(
            word, face, font_scale, thickness)
        # A box around the word with room for the strokes, accents and the
        # overhangs of italic and script glyphs.
        margin = thickness + font_size // 4 + 2
        top = max(0, baseline - word_height - margin)
        bottom = min(height, baseline + descent + margin)
        region_left = max(0, x - font_size)
        region_right = min(width, x + word_width + font_size)
        if top < bottom and region_left < region_right:
          region = canvas[top:bottom, region_left:region_right]
          before = region.copy()
          cv2.putText(canvas, word, (x, baseline), face, font_scale, 255,
                      thickness, cv2.LINE_8)
          gain = np.count_nonzero(region) - np.count_nonzero(before)
          if covered_pixels + gain >= target_pixels:
            # The last word: keep it only if that lands nearer the target.
            if covered_pixels + gain - target_pixels > (
                target_pixels - covered_pixels):
              region[...] = before
              gain = 0
            covered_pixels += gain
            return canvas > 0
          covered_pixels += gain
        x += word_width + space_width
      baseline += line_spacing
      if baseline - font_size >= height:
        break
  return canvas > 0


def overlay_text(image, mask, value):
  """Paints the text of `mask` onto `image` in one value (all channels).

  Args:
    image: float32 `[..., H, W, C]` on 0..1.
    mask: bool `[..., H, W]`, True on text.
    value: the text value, 0.0 (black) or 1.0 (white).

  Returns:
    float32 `[..., H, W, C]`: `value` on text pixels, `image` elsewhere.

  Raises:
    ValueError: mismatched shapes.
  """
  image = np.asarray(image, np.float32)
  mask = np.asarray(mask, bool)
  if image.shape[:-1] != mask.shape:
    raise ValueError(f'mask {mask.shape} does not match image {image.shape}')
  return np.where(mask[..., np.newaxis], np.float32(value), image)


def draw_text_corruption(height, width, seed):
  """Draws the text mask and value that `corrupt_with_text` paints.

  The value (white with probability 0.5) is drawn first, then the mask is
  rendered with `render_text_mask`, both from `np.random.default_rng(seed)`.

  Args:
    height: image height `H`.
    width: image width `W`.
    seed: a non-negative int or a sequence of them (e.g.
      `(set_seed, image_index)`).

  Returns:
    `(mask, value)`: bool `[H, W]` and the text value, 0.0 or 1.0.
  """
  rng = np.random.default_rng(seed)
  value = 1.0 if rng.random() < TEXT_VALUE_WHITE_PROBABILITY else 0.0
  return render_text_mask(height, width, rng), value


def corrupt_with_text(image, seed):
  """Overlays seeded random text, all black or all white, on an image.

  Args:
    image: float32 `[H, W, C]` (or `[H, W]`) on 0..1.
    seed: a non-negative int or a sequence of them; see
      `draw_text_corruption`.

  Returns:
    `(corrupted, mask)`: float32 of the shape of `image`, text pixels
    exactly 0.0 or 1.0 and the others untouched, and the bool `[H, W]` mask.
  """
  image = np.asarray(image, np.float32)
  mask, value = draw_text_corruption(image.shape[0], image.shape[1], seed)
  if image.ndim == 2:
    return overlay_text(image[..., np.newaxis], mask, value)[..., 0], mask
  return overlay_text(image, mask, value), mask


@functools.lru_cache(maxsize=4)
def mask_bank(seed, count=DEFAULT_MASK_BANK_SIZE, size=DEFAULT_MASK_SIZE):
  """Renders `count` square text masks from a seed.

  Mask `i` depends only on `(seed, i, size)`, so banks of different sizes
  share their first masks. The result is cached and read-only.

  Args:
    seed: int; any integer (taken modulo 2**64).
    count: number of masks `N`.
    size: side `S` of the masks.

  Returns:
    uint8 numpy `[N, S, S]`, 1 on text and 0 elsewhere.
  """
  if count < 1 or size < 1:
    raise ValueError(f'count and size must be positive, got {count} and '
                     f'{size}')
  bank = np.empty((count, size, size), np.uint8)
  for index in range(count):
    rng = np.random.default_rng(
        [int(seed) % 2 ** 64, index, _MASK_BANK_STREAM])
    bank[index] = render_text_mask(size, size, rng)
  bank.flags.writeable = False
  return bank


# ---------------------------------------------------------------------------
# Training pipeline.


def _resolve_seed(seed):
  if seed is None:
    return int(np.random.SeedSequence().generate_state(1, np.uint32)[0])
  return int(seed)


def _text_crop(bank, element_seed, crop_size, max_rotation_degrees):
  """Draws a mask crop `[crop, crop]` (bool) and a text value for an element.

  Args:
    bank: uint8 `[N, S, S]` tensor of masks.
    element_seed: int64 `[2]` seed of the element.
    crop_size: side of the crop.
    max_rotation_degrees: largest rotation of the mask.

  Returns:
    `(text [crop, crop] bool, value float32 scalar)`.
  """
  seed = tf.random.experimental.stateless_fold_in(element_seed, _CROP_STREAM)
  seeds = tf.random.experimental.stateless_split(seed, num=4)
  flip_draw, rotate_draw, sign_draw, value_draw = tf.unstack(
      tf.random.stateless_uniform([4], seeds[0]))
  magnitude = tf.random.stateless_uniform(
      [], seeds[1], maxval=max_rotation_degrees)
  angle = tf.where(sign_draw < 0.5, -magnitude, magnitude)
  angle = tf.where(rotate_draw < 0.5, angle, 0.0)
  mask_count = tf.shape(bank, out_type=tf.int64)[0]
  mask_size = tf.shape(bank)[1]
  mask_index = tf.random.stateless_uniform(
      [], seeds[2], maxval=mask_count, dtype=tf.int64)
  offset_y, offset_x = tf.unstack(tf.random.stateless_uniform(
      [2], seeds[3], maxval=mask_size - crop_size + 1, dtype=tf.int32))
  mask = tf.cast(tf.gather(bank, mask_index), tf.float32)[..., tf.newaxis]
  crop = datasets.transformed_crop(mask, crop_size, flip_draw < 0.5, angle,
                                   offset_y, offset_x)
  value = tf.where(value_draw < TEXT_VALUE_WHITE_PROBABILITY, 1.0, 0.0)
  return crop[..., 0] >= 0.5, value


def make_text_restoration_dataset(images,
                                  batch_size=64,
                                  crop_size=70,
                                  seed=None,
                                  start_batch=0,
                                  mask_bank_size=DEFAULT_MASK_BANK_SIZE,
                                  mask_size=DEFAULT_MASK_SIZE,
                                  augment=True,
                                  max_rotation_degrees=10.0):
  """An endless `tf.data.Dataset` of (text-corrupted, clean) training crops.

  Clean crops come from `datasets.make_training_dataset` (same seed, same
  start batch). Element `e` (counted from the start of the seeded stream)
  gets a mask from a bank of `mask_bank_size` masks rendered once from the
  seed, flipped with probability 0.5, rotated by U(0, 10) degrees of random
  sign with probability 0.5, cropped at a uniform position, and painted in
  white or black (probability 0.5 each) over all channels; every draw is a
  stateless op seeded from `(seed, e)`, so a seed fixes the whole stream and
  `start_batch` resumes it exactly.

  Args:
    images: list of float32 `[H, W, C]` arrays or `(name, image)` pairs.
    batch_size: crops per batch `B`.
    crop_size: side `c` of the square crops.
    seed: integer fixing the whole stream; None draws a fresh one.
    start_batch: index of the first batch of the seeded stream.
    mask_bank_size: number of pre-rendered masks.
    mask_size: side of the pre-rendered masks (raised to `crop_size` if
      smaller).
    augment: flip and rotate the clean images (the masks always are).
    max_rotation_degrees: largest rotation of images and masks.

  Returns:
    `tf.data.Dataset` of `(corrupted [B, c, c, C], clean [B, c, c, C])`
    float32 batches (static shapes); the text pixels of `corrupted` are
    exactly 0.0 or 1.0, the others equal `clean`.

  Raises:
    ValueError: the cases of `datasets.make_training_dataset`, or a
      non-positive bank size.
  """
  base_seed = _resolve_seed(seed)
  clean_batches = datasets.make_training_dataset(
      images, batch_size=batch_size, crop_size=crop_size, seed=base_seed,
      augment=augment, max_rotation_degrees=max_rotation_degrees,
      start_batch=start_batch)
  bank = tf.constant(
      mask_bank(base_seed, int(mask_bank_size), max(int(mask_size),
                                                    int(crop_size))))
  max_rotation_degrees = float(max_rotation_degrees)

  def corrupt_element(index, clean):
    element_seed = tf.stack([tf.constant(base_seed, tf.int64), index])
    text, value = _text_crop(bank, element_seed, crop_size,
                             max_rotation_degrees)
    corrupted = tf.where(text[..., tf.newaxis], value, clean)
    return corrupted, clean

  pairs = clean_batches.unbatch().enumerate(
      start=int(start_batch) * batch_size).map(
          corrupt_element, num_parallel_calls=tf.data.AUTOTUNE,
          deterministic=True)
  return pairs.batch(batch_size, drop_remainder=True).prefetch(
      tf.data.AUTOTUNE)

r"""Measures TensorFlow Addons and KerasCV against the project's own code.

  python bench/bench_addons.py [--output_json=bench/results/addons.json]
      [--repeats=5] [--number=3] [--import_repeats=3] [--skip_imports]

Decides whether `tensorflow-addons` and `keras-cv` do a job of the project at
least as well as its own code: equal to the OpenCV oracle, no slower, and
deterministic under stateless seeds with exact resume. Measures, on the same
inputs:
  * 5x5 filters: `tfa.image.median_filter2d`, `gaussian_filter2d` (sigma 0.5
    and 1.5) and `mean_filter2d` against `image_ops.median_filter`,
    `gaussian_filter` and `box_filter`, with `cv2.medianBlur`,
    `cv2.GaussianBlur` and `cv2.boxFilter` as the oracle. The image is
    scikit-image's camera cropped to 481x321 plus Gaussian noise (sigma
    25/255), float32. The largest absolute difference to OpenCV is split into
    the interior (windows inside the image) and the border (windows that read
    padding), for each of TFA's padding modes; TFA's time is taken with the
    mode closest to OpenCV's border (REFLECT, which is reflect-101, for the
    Gaussian and mean; for the median, whose OpenCV border is replicate and
    has no TFA mode, the mode with the smallest border error). Times are per
    call, inside `tf.function`, on [8,70,70,1] and [1,321,481,1] batches, the
    median over repeats of `number` calls after one warm-up call; OpenCV's
    time is its loop over the batch's planes. Images of 1x1 and 2x7 check
    whether a filter accepts borders wider than the image.
  * Augmentation layers that could replace the crop pipeline
    (`keras_cv.layers` and `tf.keras.layers` RandomFlip, RandomRotation,
    RandomCrop): whether one layer called twice on the same input repeats
    its output (eagerly and inside `tf.function`), whether a fresh layer
    with the same seed repeats the first call, whether a call takes a seed
    (the only way to reach element n without making n calls), and whether
    two `tf.data` maps (sequential, then parallel) with fresh same-seed
    layers give the same stream. The project's `make_training_dataset` gets
    the same checks, and the time to its first batch at `start_batch` 0 and
    29999 (the last of the reference's 30000 episodes).
  * `import tensorflow_addons` and `import keras_cv`, each in a fresh
    interpreter after `import tensorflow`: wall time (median over
    `import_repeats`), the modules the import adds to `sys.modules` and the
    top-level packages among them that were not loaded before, and the
    warnings it issues.
Either package missing is reported, not an error.
"""

import argparse
import contextlib
import inspect
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import pixelrl_tf  # pylint: disable=g-import-not-at-top,unused-import
import cv2
import numpy as np
import tensorflow as tf
from skimage import data as skimage_data

from pixelrl_tf.data import datasets
from pixelrl_tf.filters import image_ops
from pixelrl_tf.io import files  # pylint: disable=g-import-not-at-top

# Measured only where installed; requirements.txt does not pin them.
try:
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # Its end-of-life notice, measured below.
    import tensorflow_addons as tfa  # pylint: disable=g-import-not-at-top
except ImportError:
  tfa = None
try:
  with contextlib.redirect_stdout(io.StringIO()):
    import keras_cv  # pylint: disable=g-import-not-at-top
except ImportError:
  keras_cv = None

SIZE = 5
RADIUS = SIZE // 2
HEIGHT, WIDTH = 321, 481
CROP = 70
TFA_MODES = ('REFLECT', 'SYMMETRIC', 'CONSTANT')
TINY_SHAPES = ((1, 1, 1, 1), (1, 2, 7, 1))
# The reference trains for 30000 episodes: the start of the last one.
RESUME_BATCH = 29999


def _median_seconds(fn, repeats: int, number: int) -> float:
  """Median seconds per call of `fn` over `repeats` runs of `number` calls."""
  fn()  # trace / warm up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(number):
      fn()
    times.append((time.perf_counter() - start) / number)
  return statistics.median(times)


def noisy_camera(seed: int = 0) -> np.ndarray:
  """The centre 321x481 of scikit-image's camera plus N(0, 25/255) noise.

  Args:
    seed: seed of the noise.

  Returns:
    float32 `[321, 481]`, not clipped.
  """
  camera = skimage_data.camera().astype(np.float32) / 255
  top = (camera.shape[0] - HEIGHT) // 2
  left = (camera.shape[1] - WIDTH) // 2
  clean = camera[top:top + HEIGHT, left:left + WIDTH]
  noise = np.random.default_rng(seed).normal(0, 25 / 255, clean.shape)
  return (clean + noise).astype(np.float32)


def crop_batch(plane: np.ndarray) -> np.ndarray:
  """Eight 70x70 crops of `plane`, corners and edges included: [8,70,70,1]."""
  tops = (0, 0, HEIGHT - CROP, HEIGHT - CROP, 100, 37, 251, 150)
  lefts = (0, WIDTH - CROP, 0, WIDTH - CROP, 37, 300, 200, 411)
  return np.stack([plane[t:t + CROP, l:l + CROP, None]
                   for t, l in zip(tops, lefts)])


def _opencv(opencv_fn, images: np.ndarray) -> np.ndarray:
  """Applies `opencv_fn` to each [H, W] plane of float32 `[B, H, W, C]`."""
  return np.stack([
      np.stack([opencv_fn(np.ascontiguousarray(image[:, :, c]))
                for c in range(image.shape[-1])], axis=-1)
      for image in images])


def _errors(output: np.ndarray, expected: np.ndarray) -> dict:
  """Largest absolute differences, all pixels, interior and border."""
  difference = np.abs(output.astype(np.float64) - expected)
  interior = np.zeros(difference.shape, bool)
  interior[:, RADIUS:-RADIUS, RADIUS:-RADIUS] = True
  return {'max_abs_all': float(difference.max()),
          'max_abs_interior': float(difference[interior].max()),
          'max_abs_border': float(difference[~interior].max())}


def filter_cases() -> list:
  """The compared filters: name, OpenCV oracle, ours, TFA's (by mode)."""
  cases = [
      ('median 5x5', lambda plane: cv2.medianBlur(plane, SIZE),
       lambda x: image_ops.median_filter(x, SIZE),
       None if tfa is None else lambda x, mode: tfa.image.median_filter2d(
           x, (SIZE, SIZE), padding=mode)),
      ('mean 5x5', lambda plane: cv2.boxFilter(plane, -1, (SIZE, SIZE)),
       lambda x: image_ops.box_filter(x, SIZE),
       None if tfa is None else lambda x, mode: tfa.image.mean_filter2d(
           x, (SIZE, SIZE), padding=mode)),
  ]
  for sigma in (0.5, 1.5):
    cases.append((
        f'gaussian 5x5 s={sigma}',
        lambda plane, s=sigma: cv2.GaussianBlur(plane, (SIZE, SIZE), s),
        lambda x, s=sigma: image_ops.gaussian_filter(x, s, SIZE),
        None if tfa is None else
        lambda x, mode, s=sigma: tfa.image.gaussian_filter2d(
            x, (SIZE, SIZE), s, padding=mode)))
  return cases


def _traced(fn, shape):
  """`fn` as a `tf.function` of one float32 tensor of `shape`."""
  return tf.function(fn, input_signature=[tf.TensorSpec(shape, tf.float32)])


def _accepts_tiny_images(tf_fn, opencv_fn) -> str:
  """'ok' if `tf_fn` equals OpenCV on 1x1 and 2x7 images, else why not."""
  rng = np.random.default_rng(1)
  for shape in TINY_SHAPES:
    images = rng.uniform(0, 1, shape).astype(np.float32)
    try:
      output = tf_fn(tf.constant(images)).numpy()
    except (tf.errors.InvalidArgumentError, ValueError) as error:
      return f'{shape[1]}x{shape[2]}: {type(error).__name__}'
    error = np.abs(output - _opencv(opencv_fn, images)).max()
    if error > 1e-5:
      return f'{shape[1]}x{shape[2]}: differs by {error:.3g}'
  return 'ok'


def bench_filters(repeats: int, number: int) -> list:
  """Accuracy and time of each filter case; one row per implementation."""
  plane = noisy_camera()
  photo = plane[None, :, :, None]
  batches = {'8x70x70': crop_batch(plane), '1x321x481': photo}
  rows = []
  for name, opencv_fn, ours, theirs in filter_cases():
    expected = _opencv(opencv_fn, photo).astype(np.float64)
    border = 'replicate' if name.startswith('median') else 'reflect-101'
    implementations = [('image_ops', border, ours)]
    if theirs is not None:
      implementations += [('tfa', mode, lambda x, f=theirs, m=mode: f(x, m))
                          for mode in TFA_MODES]
    candidates = []
    for library, mode, fn in implementations:
      output = fn(tf.constant(photo)).numpy()
      repeated = fn(tf.constant(photo)).numpy()
      row = {'filter': name, 'implementation': library, 'padding': mode,
             **_errors(output, expected),
             'repeatable': bool(np.array_equal(output, repeated)),
             'tiny_images': _accepts_tiny_images(fn, opencv_fn)}
      candidates.append((row, fn))
    # TFA is timed in the mode closest to OpenCV's border: reflect-101 where
    # OpenCV uses it, else the mode that differs least at the border.
    tfa_rows = [c for c in candidates if c[0]['implementation'] == 'tfa']
    if tfa_rows:
      if name.startswith('median'):
        closest = min(tfa_rows, key=lambda c: c[0]['max_abs_border'])
      else:
        closest = next(c for c in tfa_rows if c[0]['padding'] == 'REFLECT')
      closest[0]['timed'] = True
    candidates[0][0]['timed'] = True
    oracle = {'filter': name, 'implementation': 'opencv', 'padding': border,
              'timed': True}
    for row, fn in candidates + [(oracle, None)]:
      for label, images in batches.items():
        if not row.get('timed'):
          continue
        if fn is None:
          seconds = _median_seconds(lambda i=images: _opencv(opencv_fn, i),
                                    repeats, number)
        else:
          traced = _traced(fn, images.shape)
          tensor = tf.constant(images)
          seconds = _median_seconds(
              lambda t=traced, x=tensor: t(x).numpy(), repeats, number)
        row[f'ms_{label}'] = seconds * 1e3
      rows.append(row)
  return rows


# ---------------------------------------------------------------------------
# Augmentation.


def _layer_factories() -> dict:
  """Layer name -> `seed -> layer`, for the layers that could do our crops."""
  angle = 10 / 360  # Keras factors are fractions of a full turn.
  factories = {
      'tf.keras.layers.RandomFlip': lambda seed: tf.keras.layers.RandomFlip(
          'horizontal', seed=seed),
      'tf.keras.layers.RandomRotation':
          lambda seed: tf.keras.layers.RandomRotation(
              angle, fill_mode='constant', seed=seed),
      'tf.keras.layers.RandomCrop': lambda seed: tf.keras.layers.RandomCrop(
          CROP, CROP, seed=seed),
  }
  if keras_cv is not None:
    factories.update({
        'keras_cv.layers.RandomFlip': lambda seed: keras_cv.layers.RandomFlip(
            'horizontal', seed=seed),
        'keras_cv.layers.RandomRotation':
            lambda seed: keras_cv.layers.RandomRotation(
                angle, fill_mode='constant', seed=seed),
        'keras_cv.layers.RandomCrop': lambda seed: keras_cv.layers.RandomCrop(
            CROP, CROP, seed=seed),
    })
  return factories


def _generator_kind(layer) -> str:
  """The class of the random generator a layer draws from, after a call."""
  generator = getattr(layer, '_random_generator', None)
  inner = getattr(generator, '_generator', None)
  names = [type(g).__name__ for g in (generator, inner) if g is not None]
  return ' > '.join(names) or 'none'


def _mapped_stream(make_layer, images: np.ndarray, seed: int,
                   parallel: bool) -> np.ndarray:
  """A `tf.data` map of a fresh layer over `images`, as one array."""
  layer = make_layer(seed)
  stream = tf.data.Dataset.from_tensor_slices(images).map(
      lambda image: layer(image[tf.newaxis], training=True)[0],
      num_parallel_calls=tf.data.AUTOTUNE if parallel else None,
      deterministic=True)
  return np.stack(list(stream.as_numpy_iterator()))


def bench_layers(seed: int = 7) -> list:
  """Repeatability and resumability of each augmentation layer."""
  plane = noisy_camera()
  rng = np.random.default_rng(seed)
  tops = rng.integers(0, HEIGHT - 100, 32)
  lefts = rng.integers(0, WIDTH - 100, 32)
  images = np.stack([plane[t:t + 100, l:l + 100, None]
                     for t, l in zip(tops, lefts)])
  batch = tf.constant(images[:8])
  rows = []
  for name, make_layer in _layer_factories().items():
    row = {'layer': name}
    try:
      layer = make_layer(seed)
      first = layer(batch, training=True).numpy()
      second = layer(batch, training=True).numpy()
      row['same_layer_twice_equal'] = bool(np.array_equal(first, second))
      fresh = make_layer(seed)(batch, training=True).numpy()
      row['fresh_layer_same_seed_equal'] = bool(np.array_equal(first, fresh))
      traced = tf.function(lambda x, l=make_layer(seed): l(x, training=True))
      row['same_traced_call_twice_equal'] = bool(np.array_equal(
          traced(batch).numpy(), traced(batch).numpy()))
      row['call_takes_seed'] = 'seed' in inspect.signature(
          layer.call).parameters
      row['generator'] = _generator_kind(layer)
      with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for parallel in (False, True):
          key = ('parallel' if parallel else 'sequential') + (
              '_tf_data_same_stream')
          row[key] = bool(np.array_equal(
              _mapped_stream(make_layer, images, seed, parallel),
              _mapped_stream(make_layer, images, seed, parallel)))
    except Exception as error:  # pylint: disable=broad-except
      row['error'] = f'{type(error).__name__}: {error}'.splitlines()[0]
    rows.append(row)
  rows.append(_bench_our_crops(seed))
  return rows


def _bench_our_crops(seed: int) -> dict:
  """The same checks for `datasets.make_training_dataset`."""
  named = [('camera', noisy_camera()[:, :, None]),
           ('camera flipped', noisy_camera(1)[::-1, :, None])]

  def make(start_batch=0):
    return datasets.make_training_dataset(
        named, batch_size=8, crop_size=CROP, seed=seed,
        start_batch=start_batch)

  def equal(first, second):
    return all(np.array_equal(a, b) for a, b in zip(first, second))

  dataset = make()
  stream = [b.numpy() for b in dataset.take(6)]
  same_again = [b.numpy() for b in dataset.take(6)]
  fresh = [b.numpy() for b in make().take(6)]
  resumed = next(iter(make(5))).numpy()
  seconds = {}
  for start_batch in (0, RESUME_BATCH):
    start = time.perf_counter()
    next(iter(make(start_batch))).numpy()
    seconds[start_batch] = time.perf_counter() - start
  return {
      'layer': 'datasets.make_training_dataset',
      'same_layer_twice_equal': equal(stream, same_again),
      'fresh_layer_same_seed_equal': equal(stream, fresh),
      # Not applicable: the pipeline is a dataset, not a layer to trace.
      'same_traced_call_twice_equal': None,
      # Every crop is drawn from stateless ops seeded by (seed, element).
      'call_takes_seed': True,
      'generator': 'stateless, (seed, element index)',
      # Its crop map is itself parallel (AUTOTUNE, deterministic order).
      'sequential_tf_data_same_stream': None,
      'parallel_tf_data_same_stream': equal(stream, fresh),
      'start_batch_5_equals_batch_5': bool(np.array_equal(resumed, stream[5])),
      'first_batch_s_at_start_0': seconds[0],
      'resume_batch': RESUME_BATCH,
      'passes_skipped_at_resume': RESUME_BATCH * 8 // len(named),
      'first_batch_s_at_resume': seconds[RESUME_BATCH],
  }


# ---------------------------------------------------------------------------
# Imports.

_IMPORT_CODE = r'''
import contextlib, io, json, sys, time, warnings
import tensorflow
before = set(sys.modules)
captured = io.StringIO()
with warnings.catch_warnings(record=True) as caught:
  warnings.simplefilter('always')
  with contextlib.redirect_stdout(captured), \
      contextlib.redirect_stderr(captured):
    start = time.perf_counter()
    import {module}
    seconds = time.perf_counter() - start
added = set(sys.modules) - before
print(json.dumps({{
    'seconds': seconds, 'modules_before': len(before),
    'modules_added': len(added),
    'packages_added': sorted({{m.split('.')[0] for m in added}} -
                             {{m.split('.')[0] for m in before}}),
    'warnings': [str(w.message).strip().splitlines()[0] for w in caught
                 if 'ended development' in str(w.message)
                 or w.category is not DeprecationWarning],
    'printed': captured.getvalue().strip().splitlines()[:3]}}))
'''


def bench_import(module: str, repeats: int) -> dict:
  """Times `import module` after TensorFlow in fresh interpreters."""
  runs = []
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  for _ in range(repeats):
    result = subprocess.run(
        [sys.executable, '-c', _IMPORT_CODE.format(module=module)],
        capture_output=True, text=True, env=env, check=False)
    if result.returncode:
      return {'module': module,
              'error': (result.stderr.strip().splitlines() or ['?'])[-1]}
    runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
  last = runs[-1]
  return {'module': module,
          'seconds': statistics.median(r['seconds'] for r in runs),
          'modules_before': last['modules_before'],
          'modules_added': last['modules_added'],
          'packages_added': last['packages_added'],
          'warnings': sorted(set(last['warnings'])),
          'printed': last['printed']}


def _tfa_supported_tf():
  """The TensorFlow versions TFA accepts, e.g. '>=2.13.0, <2.16.0'."""
  if tfa is None:
    return None
  return (f'>={tfa.version.INCLUSIVE_MIN_TF_VERSION}, '
          f'<{tfa.version.EXCLUSIVE_MAX_TF_VERSION}')


# ---------------------------------------------------------------------------


def _print_tables(results: dict) -> None:
  print(f'filters, 5x5, vs OpenCV on a noisy 481x321 camera '
        f'({results["machine"]}):')
  print(f'{"filter":<20}{"impl.":<11}{"padding":<12}{"interior":>10}'
        f'{"border":>10}{"ms 8x70²":>10}{"ms 321x481":>12}  tiny images')
  for row in results['filters']:
    interior = row.get('max_abs_interior')
    print(f'{row["filter"]:<20}{row["implementation"]:<11}'
          f'{row["padding"] or "reflect-101":<12}'
          + (f'{interior:>10.2g}{row["max_abs_border"]:>10.2g}'
             if interior is not None else f'{"oracle":>10}{"":>10}')
          + (f'{row["ms_8x70x70"]:>10.3f}{row["ms_1x321x481"]:>12.3f}'
             if 'ms_8x70x70' in row else f'{"":>22}')
          + f'  {row.get("tiny_images", "")}')
  print('\naugmentation (same input, same seed):')
  columns = (('same_layer_twice_equal', 'twice'),
             ('same_traced_call_twice_equal', 'traced twice'),
             ('fresh_layer_same_seed_equal', 'fresh layer'),
             ('sequential_tf_data_same_stream', 'seq. map x2'),
             ('parallel_tf_data_same_stream', 'par. map x2'),
             ('call_takes_seed', 'seed/call'))
  print(f'{"layer":<34}' + ''.join(f'{h:>14}' for _, h in columns)
        + '  generator')
  for row in results['augmentation']:
    if 'error' in row:
      print(f'{row["layer"]:<34}{row["error"]}')
      continue
    print(f'{row["layer"]:<34}'
          + ''.join(f'{"n/a" if row[k] is None else str(row[k]):>14}'
                    for k, _ in columns)
          + f'  {row["generator"]}')
  ours = results['augmentation'][-1]
  print(f'make_training_dataset: start_batch=5 equals batch 5: '
        f'{ours["start_batch_5_equals_batch_5"]}; first batch at start_batch '
        f'0: {ours["first_batch_s_at_start_0"]:.2f} s, at '
        f'{ours["resume_batch"]} ({ours["passes_skipped_at_resume"]} passes '
        f'skipped): {ours["first_batch_s_at_resume"]:.2f} s')
  if results.get('imports'):
    print('\nimports after `import tensorflow`:')
    for row in results['imports']:
      if 'error' in row:
        print(f'  {row["module"]}: {row["error"]}')
        continue
      print(f'  {row["module"]}: {row["seconds"]:.2f} s, '
            f'+{row["modules_added"]} modules, '
            f'+{len(row["packages_added"])} top-level packages; warnings: '
            f'{row["warnings"] or "none"}')
  supported = results['tfa_supported_tensorflow']
  print('\ntensorflow-addons: ' + (f'supports TensorFlow {supported}'
                                   if supported else 'not installed'))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output_json', default='bench/results/addons.json')
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--number', type=int, default=3)
  parser.add_argument('--import_repeats', type=int, default=3)
  parser.add_argument('--skip_imports', action='store_true')
  args = parser.parse_args()
  # The accuracy checks call TFA's tf.function-wrapped filters eagerly with
  # several shapes and sigmas; their retracing notices are expected.
  tf.get_logger().setLevel('ERROR')
  results = {
      'machine': f'{platform.node()} {platform.processor() or platform.machine()}'
                 f', {os.cpu_count()} cores',
      'date': time.strftime('%Y-%m-%d'),
      'tensorflow': tf.__version__,
      'opencv': cv2.__version__,
      'tensorflow_addons': tfa.__version__ if tfa is not None else None,
      'keras_cv': keras_cv.__version__ if keras_cv is not None else None,
      'tfa_supported_tensorflow': _tfa_supported_tf(),
      'filters': bench_filters(args.repeats, args.number),
      'augmentation': bench_layers(),
  }
  if not args.skip_imports:
    results['imports'] = [bench_import(module, args.import_repeats)
                          for module in ('tensorflow_addons', 'keras_cv')]
  _print_tables(results)
  files.write_text_atomically(args.output_json, json.dumps(results, indent=2))


if __name__ == '__main__':
  main()

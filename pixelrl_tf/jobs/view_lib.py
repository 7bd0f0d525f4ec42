"""The viewer of restorations and action maps: models, inputs and results.

Shapes: `T` steps of a model (its `t_max`), `H, W` height and width, `C`
channels of the models (1 gray, 3 colour), `A` actions.

`python -m pixelrl_tf.view` shows what a PixelRL model does to an image, step
by step, in a web page (`view_server` is the HTTP side). This module holds
everything else, and reuses the package's one implementation of each part:

  * `load_model` loads what `--model` names: a run directory (`RUN`,
    `RUN/best` or a checkpoint prefix), an exported SavedModel
    (`EXPORT_BASE/NAME/VERSION`, or `EXPORT_BASE/NAME` for its largest
    version), both by `models.restorers.load`, or a released
    model by name (`gru_rmc_sigma25`, ...: `data.known_files` resolves it
    through the data root, the cache or a download, and
    `import_weights_lib.import_npz` imports it into the viewer's work folder).
    The model's task (from `model.json`, or the SavedModel's
    `assets.extra/model.json`) gives the noise the page offers and the
    channel order of colour images.
  * `Viewer` is the state of one viewer: decoded inputs, restoration jobs
    and their results, each under an unguessable id
    (`secrets.token_urlsafe`), so that two browser tabs never see each
    other's work. Jobs run one at a time on a worker thread, through
    `restore_lib.restore_image` (the greedy rollout of
    `serving.restoration_module`, in overlapping tiles for large images, as
    `restore` runs it) with the images after every step.
  * The pictures of a result come from `visualization.action_maps` (action
    colours, the action-count chart, the action strip and GIF that `restore
    --save_actions` writes) and `io.images` (PNG encoding with the official
    8-bit quantisation); the metrics from `metrics` (PSNR and SSIM, and the
    mean Lab distance for colour models).

Inputs. Uploads are decoded by `io.images.decode_image`, the project's one
image reader, into the models' channels: 16-bit images are scaled by 1/65535
(as every command reads them); an alpha channel is dropped, a colour image
given to gray models is converted with OpenCV's luminance formula and a gray
one given to colour models is repeated, each with a note shown in the page;
anything it cannot read (not an image, truncated, empty, more than 4
channels, NaN or out-of-range float pixels) is refused with its one-line
message. Uploads are limited in bytes and in pixels: the size declared in
the file's header is read (with Pillow, which reads the header alone) before
the image is decoded, so that a small file declaring a huge image is refused
before memory is spent on it. The offline default photographs are those of
`data.datasets.default_images`. Noise is the task's kind (`gaussian`,
`poisson`, `salt_pepper`) at the level asked for, seeded as `eval` seeds its
first image (`data.noise.noisy_pairs`, stateless seed `(seed, 0)`); the clean
image is then the target of the metrics.
"""

import collections
import dataclasses
import io
import os
import queue
import re
import secrets
import shutil
import tempfile
import threading
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from pixelrl_tf import cli
from pixelrl_tf import metrics
from pixelrl_tf.data import datasets
from pixelrl_tf.data import known_files
from pixelrl_tf.data import noise as noise_lib
from pixelrl_tf.io import images as image_io
from pixelrl_tf.jobs import import_weights_lib
from pixelrl_tf.jobs import restore_lib
from pixelrl_tf.models import restorers
from pixelrl_tf.serving import restoration_module
from pixelrl_tf.serving import tiling
from pixelrl_tf.tasks import tasks as tasks_lib
from pixelrl_tf.visualization import action_maps

MAX_MODELS = 2
# Uploads: a 16-bit 4000x3000 colour PNG is about 70 MB; JPEGs are far
# smaller. A restoration keeps `T+1` float32 images of every model in memory
# (16 million pixels x 6 x 4 bytes is 384 MB per gray model with T = 5).
DEFAULT_MAX_UPLOAD_MB = 64.0
DEFAULT_MAX_MEGAPIXELS = 16.0
# What one viewer keeps before it forgets the oldest (ids then answer 404).
KEPT_IMAGES = 32
KEPT_JOBS = 16
# Restorations waiting for the worker before new ones are refused.
MAX_PENDING_JOBS = 8
# Amplification of the absolute difference of two models' images.
DIFFERENCE_GAIN = 4.0
# Colours of the action difference picture: same action, different actions.
SAME_ACTION_RGB = (235, 235, 235)
OTHER_ACTION_RGB = (200, 0, 90)
# SSIM needs 7x7 windows (`metrics.ssim`).
_SSIM_MIN_SIDE = 7
_MAX_SEED = 2**31 - 1
_MAX_NAME_CHARS = 120
_SIGMA_IN_NAME = re.compile(r'sigma(\d+)$')
_UNSAFE_NAME_CHARS = re.compile(r'[^A-Za-z0-9._-]+')

QUEUED = 'queued'
RUNNING = 'running'
DONE = 'done'
FAILED = 'failed'


class ViewError(ValueError):
  """A model, an input or a request the viewer refuses; one line."""


class NotFoundError(ViewError):
  """An unknown, expired or out-of-range id, model, step or pixel."""


class TooLargeError(ViewError):
  """An upload over the byte or pixel limit."""


class BusyError(ViewError):
  """Too many restorations are waiting."""


# ---------------------------------------------------------------------------
# Models.


@dataclasses.dataclass
class ViewerModel:
  """A model of the viewer.

  Attributes:
    name: what `--model` said.
    restorer: its `restoration_module.Restorer`.
    task: the `tasks.Task` it was trained for.
    description: what was loaded, for the page.
    noise: the noise the page offers (the task's; at the level in the name
      of a released `..._sigmaN` model), or None when the task adds none.
  """
  name: str
  restorer: restoration_module.Restorer
  task: tasks_lib.Task
  description: str
  noise: Optional[noise_lib.NoiseModel]

  @property
  def channels(self) -> int:
    return self.restorer.channels

  @property
  def t_max(self) -> int:
    return self.restorer.t_max

  @property
  def bgr(self) -> bool:
    """Whether the model's colour images are in OpenCV's BGR order."""
    return self.task.bgr and self.channels == 3

  @property
  def lab_metric(self) -> bool:
    """Whether results are also measured by the mean Lab distance."""
    return self.task.lab_metric


def _default_noise(task, name):
  if not task.noise:
    return None
  noise = noise_lib.parse_noise(task.noise)
  sigma = _SIGMA_IN_NAME.search(os.path.basename(name.rstrip('/')))
  if sigma and noise.kind == noise_lib.GAUSSIAN:
    noise = dataclasses.replace(noise, level=float(sigma.group(1)))
  return noise


def load_model(spec: str, work_dir: str) -> ViewerModel:
  """Loads a model named on the command line.

  Args:
    spec: a run directory (`RUN`), `RUN/best`, a checkpoint prefix, an
      exported SavedModel (`EXPORT_BASE/NAME/VERSION` or `EXPORT_BASE/NAME`),
      a released model's `.npz` or its name (`gru_rmc_sigma25`, see
      `data.known_files`).
    work_dir: a folder the viewer owns; a released model is imported into
      a new folder inside it.

  Returns:
    The `ViewerModel`.

  Raises:
    FileNotFoundError: (one line) a run without checkpoints.
    ValueError: (one line) a damaged or foreign checkpoint, `model.json` or
      `.npz`, or a name that is not known
      (`known_files.KnownFileError`; also when a known file cannot be had,
      saying how to fetch it).
    restorers.RestoreError: (one line) a corrupt SavedModel, or a folder
      with neither a SavedModel nor a run.
  """
  if os.path.isdir(spec) or os.path.isfile(spec + '.index'):
    config, restorer, description = restorers.load(spec)
  else:
    npz = known_files.resolve_path_or_name(spec, what='model')
    run_dir = tempfile.mkdtemp(prefix='imported_', dir=work_dir)
    os.rmdir(run_dir)  # `import_npz` creates it whole or not at all.
    import_weights_lib.import_npz(str(npz), run_dir)
    config, restorer = restorers.restorer_from_run(run_dir)
    description = f'released {config.variant} model {npz}'
  if config is not None:
    task = config.get_task()
  else:
    task = tasks_lib.task_for_model(None, tuple(restorer.action_names))
  return ViewerModel(name=spec, restorer=restorer, task=task,
                     description=description,
                     noise=_default_noise(task, spec))


def load_models(specs: Sequence[str], work_dir: str,
                log_fn: Optional[Callable[[str], None]] = None
                ) -> List[ViewerModel]:
  """Loads one or two models that take the same images.

  Raises:
    ViewError: no model, more than `MAX_MODELS`, or models that take
      different images (gray and colour, or colour in RGB and BGR order).
    The errors of `load_model`.
  """
  if not specs:
    raise ViewError('give a model (--model)')
  if len(specs) > MAX_MODELS:
    raise ViewError(f'the viewer compares at most {MAX_MODELS} models, got '
                    f'{len(specs)}')
  models = []
  for spec in specs:
    if log_fn is not None:
      log_fn(f'loading {spec}')
    model = load_model(spec, work_dir)
    if log_fn is not None:
      log_fn(f'model {len(models) + 1}: {model.description} ({model.channels}'
             f' channel(s), {model.t_max} steps, task {model.task.name})')
    models.append(model)
  if len({(model.channels, model.bgr) for model in models}) > 1:
    raise ViewError(
        'the models take different images (' + ' and '.join(
            f'{m.name}: {"colour" if m.channels == 3 else "gray"}'
            f'{" BGR" if m.bgr else ""}' for m in models) +
        '); compare models of the same kind')
  return models


def _hex_color(rgb):
  return '#' + ''.join(f'{int(value):02x}' for value in rgb)


# ---------------------------------------------------------------------------
# Inputs, jobs and results.


@dataclasses.dataclass
class _Input:
  """A decoded input: float32 `[H,W,C]` in the models' channels and order."""
  name: str
  image: np.ndarray
  notes: List[str]


@dataclasses.dataclass
class _ModelResult:
  """What one model did: `images [T+1,H,W,C]`, `actions [T,H,W]`."""
  images: np.ndarray
  actions: np.ndarray
  restored_uint8: np.ndarray
  pictures: Dict[str, bytes] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Job:
  """A restoration request and, once done, its results."""
  job_id: str
  source: _Input
  target: Optional[_Input]
  noise: Optional[noise_lib.NoiseModel]
  seed: int
  state: str = QUEUED
  progress: float = 0.0
  message: str = 'waiting for the restorations before it'
  image: Optional[np.ndarray] = None  # The input the models got.
  clean: Optional[np.ndarray] = None  # The target of the metrics.
  results: List[_ModelResult] = dataclasses.field(default_factory=list)
  summary: Optional[Dict[str, Any]] = None


def _display_name(filename):
  name = os.path.basename(str(filename or '').replace('\\', '/')).strip()
  name = ''.join(c for c in name if c.isprintable())
  return name[:_MAX_NAME_CHARS] or 'upload'


def _file_stem(name):
  stem = _UNSAFE_NAME_CHARS.sub('_', os.path.splitext(name)[0]).strip('._')
  return stem[:60] or 'image'


def _declared_size(data):
  """`(width, height)` from an image file's header, or None if unknown.

  Pillow reads only the header here; the image itself is decoded by
  `io.images`. A size past Pillow's decompression-bomb bound (about 179
  million pixels) is returned as `(inf, 1)`.
  """
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    try:
      with Image.open(io.BytesIO(data)) as picture:
        return picture.size
    except Image.DecompressionBombError:
      return float('inf'), 1
    except Exception:  # pylint: disable=broad-except
      return None  # Not a format Pillow knows: `decode_image` decides.


def _integer(value, what, low, high):
  if isinstance(value, bool) or not isinstance(value, (int, float)) or (
      isinstance(value, float) and not value.is_integer()):
    raise ViewError(f'{what} must be an integer, got {value!r}')
  value = int(value)
  if not low <= value <= high:
    raise ViewError(f'{what} must be in {low}..{high}, got {value}')
  return value


def _number(value, what):
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ViewError(f'{what} must be a number, got {value!r}')
  return float(value)


def _measure(clean, images, lab):
  """Per-step metrics of `images [T+1,H,W,C]` against `clean [H,W,C]`."""
  measured = {'psnr': [metrics.psnr(clean, image) for image in images]}
  if min(clean.shape[:2]) >= _SSIM_MIN_SIDE:
    measured['ssim'] = [metrics.ssim(clean, image) for image in images]
  if lab:
    measured['lab'] = [metrics.mean_lab_distance(clean, image)
                       for image in images]
  return measured


class Viewer:
  """The state of one viewer: models, inputs, restoration jobs, results.

  Thread-safe: the web server calls it from one thread per request, and a
  worker thread runs the restorations one at a time, in the order asked.
  Every method raises `ViewError` (one line) for a bad request:
  `NotFoundError` for unknown or expired ids and out-of-range indices,
  `TooLargeError` for uploads over the limits, `BusyError` when too many
  restorations wait.
  """

  def __init__(self, models: Sequence[ViewerModel],
               tile_size: Optional[int] = restore_lib.DEFAULT_TILE_SIZE,
               max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 2**20),
               max_pixels: int = int(DEFAULT_MAX_MEGAPIXELS * 1e6),
               work_dir: Optional[str] = None,
               kept_images: int = KEPT_IMAGES, kept_jobs: int = KEPT_JOBS):
    """Starts the worker thread.

    Args:
      models: one or two `ViewerModel`s taking the same images.
      tile_size: side of the tile cores of large images (`restore`'s
        `--tile_size`); None or <= 0 never tiles.
      max_upload_bytes: largest upload, in bytes.
      max_pixels: largest image, in pixels (`H * W`).
      work_dir: folder for temporary files (removed by `close` only if the
        viewer made it).
      kept_images: decoded inputs kept before the oldest is forgotten.
      kept_jobs: restorations kept before the oldest is forgotten.
    """
    if not models:
      raise ViewError('the viewer needs a model')
    self.models = list(models)
    self.tile_size = tile_size
    self.max_upload_bytes = int(max_upload_bytes)
    self.max_pixels = int(max_pixels)
    self._own_work_dir = work_dir is None
    self._work_dir = work_dir or tempfile.mkdtemp(prefix='pixelrl_view_')
    self._kept_images = kept_images
    self._kept_jobs = kept_jobs
    self._lock = threading.Lock()
    self._inputs = collections.OrderedDict()
    self._jobs = collections.OrderedDict()
    self._photographs = None
    self._queue = queue.Queue()
    self._worker = threading.Thread(target=self._work, name='restorations',
                                    daemon=True)
    self._worker.start()

  @property
  def channels(self) -> int:
    return self.models[0].channels

  @property
  def bgr(self) -> bool:
    return self.models[0].bgr

  def close(self) -> None:
    """Stops the worker (after the current job) and removes temporaries."""
    self._queue.put(None)
    if self._own_work_dir:
      shutil.rmtree(self._work_dir, ignore_errors=True)

  # Information.

  def info(self) -> Dict[str, Any]:
    """What the page shows before any input: models, photographs, limits."""
    models = []
    for model in self.models:
      restorer = model.restorer
      models.append({
          'name': model.name,
          'description': model.description,
          'task': model.task.name,
          'channels': model.channels,
          'steps': model.t_max,
          'actions': [{'name': name, 'color': _hex_color(color)}
                      for name, color in zip(restorer.action_names,
                                             restorer.action_colors)],
          'noise': None if model.noise is None else {
              'kind': model.noise.kind, 'level': model.noise.level,
              'clip': model.noise.clip},
          'lab_metric': model.lab_metric,
      })
    return {'models': models,
            'photographs': list(datasets.DEFAULT_IMAGE_NAMES),
            'max_upload_bytes': self.max_upload_bytes,
            'max_pixels': self.max_pixels}

  # Inputs.

  def _keep(self, mapping, key, value, limit):
    with self._lock:
      mapping[key] = value
      while len(mapping) > limit:
        mapping.popitem(last=False)

  def _check_pixels(self, width, height, source):
    if width * height <= self.max_pixels:
      return
    size = (f'{width}x{height} = {width * height:,} pixels' if
            width * height < float('inf') else 'over 179 million pixels')
    raise TooLargeError(f'{source} is {size}; the viewer takes at most '
                        f'{self.max_pixels:,} (--max_megapixels)')

  def _add_input(self, name, image, notes):
    self._check_pixels(image.shape[1], image.shape[0], repr(name))
    image_id = secrets.token_urlsafe(16)
    self._keep(self._inputs, image_id, _Input(name, image, list(notes)),
               self._kept_images)
    return {'id': image_id, 'name': name, 'width': int(image.shape[1]),
            'height': int(image.shape[0]), 'channels': int(image.shape[2]),
            'notes': list(notes)}

  def add_upload(self, data: bytes, filename: str = '') -> Dict[str, Any]:
    """Decodes an uploaded image file into the models' channels.

    Args:
      data: the file's bytes.
      filename: its name (for messages and downloads only).

    Returns:
      `{'id', 'name', 'width', 'height', 'channels', 'notes'}`; `notes` are
      one-line notes on what was converted (alpha dropped, colour to gray,
      ...).

    Raises:
      TooLargeError: over `max_upload_bytes` or `max_pixels`.
      ViewError: (`io.images.ImageReadError`, one line) not a usable
        image.
    """
    name = _display_name(filename)
    source = f'uploaded file {name!r}'
    if len(data) > self.max_upload_bytes:
      raise TooLargeError(
          f'{source} is {len(data):,} bytes; the viewer takes at most '
          f'{self.max_upload_bytes:,} (--max_upload_mb)')
    declared = _declared_size(data)
    if declared is not None:
      self._check_pixels(declared[0], declared[1], source)
    try:
      image, notes = image_io.decode_image(
          data, channels=self.channels, bgr=self.bgr, source=source)
    except image_io.ImageReadError as error:
      raise ViewError(str(error)) from None
    return self._add_input(name, image, notes)

  def add_photograph(self, name: str) -> Dict[str, Any]:
    """One of the offline default photographs (`data.datasets`) as input.

    Raises:
      NotFoundError: not one of `datasets.DEFAULT_IMAGE_NAMES`.
    """
    if name not in datasets.DEFAULT_IMAGE_NAMES:
      raise NotFoundError(f'no photograph {name!r}; choose one of '
                          f'{", ".join(datasets.DEFAULT_IMAGE_NAMES)}')
    with self._lock:
      if self._photographs is None:
        self._photographs = dict(datasets.default_images(
            channels=self.channels, bgr=self.bgr))
      image = self._photographs[name]
    return self._add_input(name, image, [])

  def _input(self, image_id, what):
    if not isinstance(image_id, str):
      raise ViewError(f'{what} must be an image id, got {image_id!r}')
    with self._lock:
      found = self._inputs.get(image_id)
    if found is None:
      raise NotFoundError(f'no {what} {image_id[:40]!r} (unknown or expired; '
                          'choose the image again)')
    return found

  def input_png(self, image_id: str) -> bytes:
    """The decoded input as the models see it, as a PNG (8-bit)."""
    return image_io.encode_image(self._input(image_id, 'image').image, '.png',
                                 bgr=self.bgr)

  # Jobs.

  def start_restoration(self, request: Mapping[str, Any]) -> Dict[str, Any]:
    """Queues a restoration of an input with every model.

    Args:
      request: `{'input': image id, 'target': image id or None, 'noise':
        None or {'level': number, 'seed': int}}`. With `noise`, the input is
        the clean image: it is corrupted with the first model's task noise
        at `level` (stateless seed `(seed, 0)`) and is the target of the
        metrics. With `target`, the input is taken as corrupted and
        `target` is its clean version.

    Returns:
      `{'job': job id}`; `job_status` tells how it goes.

    Raises:
      ViewError: a bad request; `NotFoundError` for unknown ids;
        `BusyError` when `MAX_PENDING_JOBS` wait already.
    """
    if not isinstance(request, Mapping):
      raise ViewError('the request must be a JSON object')
    unknown = sorted(set(request) - {'input', 'target', 'noise'})
    if unknown:
      raise ViewError(f'unknown request fields: {", ".join(unknown)}')
    source = self._input(request.get('input'), 'input image')
    target = None
    if request.get('target') is not None:
      target = self._input(request['target'], 'clean target')
      if target.image.shape[:2] != source.image.shape[:2]:
        raise ViewError(
            f'the clean target {target.name!r} is {target.image.shape[1]}x'
            f'{target.image.shape[0]} but the input {source.name!r} is '
            f'{source.image.shape[1]}x{source.image.shape[0]}; they must be '
            'the same size')
    noise, seed = None, 0
    if request.get('noise') is not None:
      noise, seed = self._noise(request['noise'])
      if target is not None:
        raise ViewError('give either noise (the input is the clean image) or '
                        'a clean target, not both')
    if self._queue.qsize() >= MAX_PENDING_JOBS:
      raise BusyError(f'{MAX_PENDING_JOBS} restorations are waiting; try '
                      'again when they are done')
    job = _Job(secrets.token_urlsafe(16), source, target, noise, seed)
    self._keep(self._jobs, job.job_id, job, self._kept_jobs)
    self._queue.put(job)
    return {'job': job.job_id}

  def _noise(self, options):
    model = self.models[0]
    if model.noise is None:
      raise ViewError(f'the task of {model.name} ({model.task.name}) adds no '
                      'noise; upload a corrupted image instead')
    if not isinstance(options, Mapping):
      raise ViewError('noise must be an object {"level": ..., "seed": ...}')
    unknown = sorted(set(options) - {'level', 'seed'})
    if unknown:
      raise ViewError(f'unknown noise fields: {", ".join(unknown)}')
    level = _number(options.get('level', model.noise.level), 'noise level')
    seed = _integer(options.get('seed', 0), 'noise seed', 0, _MAX_SEED)
    try:
      noise = noise_lib.NoiseModel(model.noise.kind, level, model.noise.clip)
    except ValueError as error:
      raise ViewError(cli.first_line(error)) from None
    return noise, seed

  def _work(self):
    while True:
      job = self._queue.get()
      if job is None:
        return
      try:
        self._run(job)
      except Exception as error:  # pylint: disable=broad-except
        job.message = f'restoration failed: {cli.first_line(error)}'
        job.state = FAILED

  def _run(self, job):
    job.state = RUNNING
    job.message = 'preparing the input'
    if job.noise is not None:
      _, job.image, job.clean = next(noise_lib.noisy_pairs(
          [(job.source.name, job.source.image)], job.noise, job.seed))
    else:
      job.image = job.source.image
      job.clean = None if job.target is None else job.target.image
    height, width = job.image.shape[:2]
    counts = [len(list(tiling.tiles(height, width, self.tile_size,
                                    model.restorer.dependency_radius)))
              for model in self.models]
    done = 0

    def counted(restore_steps_fn):
      def restore_steps(window):
        nonlocal done
        outputs = restore_steps_fn(window)
        done += 1
        job.progress = done / sum(counts)
        return outputs
      return restore_steps

    for index, model in enumerate(self.models):
      job.message = (f'restoring with {model.name} (model {index + 1} of '
                     f'{len(self.models)}, {counts[index]} tile(s))')
      restorer = dataclasses.replace(
          model.restorer,
          restore_steps_fn=counted(model.restorer.restore_steps_fn))
      outputs = restore_lib.restore_image(restorer, job.image, self.tile_size,
                                          with_steps=True)
      job.results.append(_ModelResult(outputs['images'], outputs['actions'],
                                      outputs['restored_uint8']))
    job.message = 'measuring'
    job.summary = self._summary(job)
    job.progress = 1.0
    job.message = 'done'
    job.state = DONE

  def _summary(self, job):
    height, width, channels = job.image.shape
    models = []
    for model, result in zip(self.models, job.results):
      models.append({
          'name': model.name,
          'steps': model.t_max,
          'counts': action_maps.count_actions(
              result.actions, len(model.restorer.action_names)).tolist(),
          'metrics': None if job.clean is None else _measure(
              job.clean, result.images, model.lab_metric),
      })
    summary = {
        'width': width, 'height': height, 'channels': channels,
        'input': job.source.name, 'stem': _file_stem(job.source.name),
        'target': None if job.target is None else job.target.name,
        'noise': None if job.noise is None else str(job.noise),
        'seed': job.seed if job.noise is not None else None,
        'steps': max(model.t_max for model in self.models),
        'models': models,
    }
    if len(self.models) == 2:
      summary['difference'] = self._difference_summary(job)
    return summary

  def _difference_summary(self, job):
    steps = max(model.t_max for model in self.models)
    image_max, image_mean, actions_differ = [], [], []
    for step in range(steps + 1):
      first, second = (self._step_image(job, index, step)
                       for index in range(2))
      difference = np.abs(first - second)
      image_max.append(float(difference.max()))
      image_mean.append(float(difference.mean()))
      if step:
        first, second = (self._step_actions(job, index, step)
                         for index in range(2))
        actions_differ.append(float(np.mean(first != second)))
    return {'gain': DIFFERENCE_GAIN, 'max_abs': image_max,
            'mean_abs': image_mean, 'actions_differ': actions_differ}

  def job_status(self, job_id: str) -> Dict[str, Any]:
    """`{'job', 'state', 'progress', 'message'}`, and `result` when done.

    `state` is `queued`, `running`, `done` or `failed` (`message` then says
    why); `progress` is the fraction of tiles restored, all models together.
    `result` holds `width`, `height`, `channels`, `steps` (the largest `T`),
    the input's name (`input`, `stem`), `noise` and `seed` or `target`, and
    per model its `name`, `steps`, `counts [T][A]` (pixels per action) and
    `metrics` (`psnr`, `ssim`, `lab` lists over steps 0..T, or None without
    a target); with two models also `difference` (`max_abs`, `mean_abs` of
    the images over steps 0..T, `actions_differ`, the fraction of pixels
    whose actions differ, over steps 1..T).
    """
    job = self._job(job_id)
    status = {'job': job.job_id, 'state': job.state,
              'progress': round(job.progress, 4), 'message': job.message}
    if job.state == DONE:
      status['result'] = job.summary
    return status

  def _job(self, job_id):
    with self._lock:
      job = self._jobs.get(job_id)
    if job is None:
      raise NotFoundError(f'no restoration {str(job_id)[:40]!r} (unknown or '
                          'expired; run it again)')
    return job

  def _done_job(self, job_id):
    job = self._job(job_id)
    if job.state != DONE:
      raise NotFoundError(f'restoration {job_id!r} is {job.state}, not done')
    return job

  def _model_index(self, index):
    if not 0 <= index < len(self.models):
      raise NotFoundError(f'no model {index}; there are {len(self.models)}')
    return index

  def _step_image(self, job, index, step):
    """The image after step `min(step, T)` of model `index`."""
    return job.results[index].images[min(step, self.models[index].t_max)]

  def _step_actions(self, job, index, step):
    """The action map of step `min(step, T)` (1-based) of model `index`."""
    return job.results[index].actions[min(step, self.models[index].t_max) - 1]

  def _check_step(self, step, low, high):
    if not low <= step <= high:
      raise NotFoundError(f'no step {step}; steps are {low}..{high}')

  # Pictures and values of a result.

  def step_image_png(self, job_id: str, index: int, step: int) -> bytes:
    """PNG of model `index`'s image after `step` steps (0: its input)."""
    job = self._done_job(job_id)
    self._model_index(index)
    self._check_step(step, 0, self.models[index].t_max)
    return image_io.encode_image(job.results[index].images[step], '.png',
                                 bgr=self.bgr)

  def action_map_png(self, job_id: str, index: int, step: int) -> bytes:
    """PNG of the action map of step `step` (1..T) in the action colours."""
    job = self._done_job(job_id)
    self._model_index(index)
    self._check_step(step, 1, self.models[index].t_max)
    return action_maps.png_bytes(action_maps.colorize_actions(
        job.results[index].actions[step - 1],
        self.models[index].restorer.action_colors))

  def _picture(self, job_id, index, key, make_fn):
    job = self._done_job(job_id)
    self._model_index(index)
    result = job.results[index]
    if key not in result.pictures:
      result.pictures[key] = make_fn(self.models[index], result)
    return result.pictures[key]

  def restored_png(self, job_id: str, index: int) -> bytes:
    """The restored image as `restore` writes it (8-bit PNG)."""
    return self._picture(job_id, index, 'restored', lambda model, result: (
        image_io.encode_image(result.restored_uint8, '.png', bgr=self.bgr)))

  def strip_png(self, job_id: str, index: int) -> bytes:
    """The action strip (`restore --save_actions`'s `x_actions.png`)."""
    def make(model, result):
      restorer = model.restorer
      return action_maps.png_bytes(action_maps.action_strip(
          result.images, result.actions, restorer.action_names,
          restorer.action_colors, bgr=self.bgr))
    return self._picture(job_id, index, 'strip', make)

  def chart_png(self, job_id: str, index: int) -> bytes:
    """The per-step action-count chart (the paper's Fig. 2)."""
    def make(model, result):
      restorer = model.restorer
      counts = action_maps.count_actions(result.actions,
                                         len(restorer.action_names))
      return action_maps.png_bytes(action_maps.action_count_chart(
          counts, restorer.action_names, restorer.action_colors))
    return self._picture(job_id, index, 'chart', make)

  def animation_gif(self, job_id: str, index: int) -> bytes:
    """The animation (`restore --save_actions`'s `x_actions.gif`)."""
    def make(model, result):
      frames = restore_lib.gif_frames(result.images, result.actions,
                                      model.restorer, self.bgr)
      folder = tempfile.mkdtemp(prefix='gif_', dir=self._work_dir)
      try:
        path = os.path.join(folder, 'actions.gif')
        action_maps.write_gif(frames, path)
        with open(path, 'rb') as f:
          return f.read()
      finally:
        shutil.rmtree(folder, ignore_errors=True)
    return self._picture(job_id, index, 'gif', make)

  def difference_png(self, job_id: str, kind: str, step: int) -> bytes:
    """The difference of the two models at `step` as a PNG.

    Args:
      job_id: a done restoration with two models.
      kind: `'image'`: `DIFFERENCE_GAIN * |a - b|`, clipped, of the images
        after `step` (0..T) steps (largest over colour channels); or
        `'actions'`: `OTHER_ACTION_RGB` where the action maps of `step`
        (1..T) differ, `SAME_ACTION_RGB` where they agree. A model with
        fewer steps shows its last.
    """
    job = self._done_job(job_id)
    if len(self.models) != 2:
      raise NotFoundError('the difference needs two models')
    steps = max(model.t_max for model in self.models)
    if kind == 'image':
      self._check_step(step, 0, steps)
      difference = np.abs(self._step_image(job, 0, step) -
                          self._step_image(job, 1, step)).max(axis=-1)
      return image_io.encode_image(
          np.minimum(difference * np.float32(DIFFERENCE_GAIN), 1.0), '.png')
    if kind == 'actions':
      self._check_step(step, 1, steps)
      differ = (self._step_actions(job, 0, step) !=
                self._step_actions(job, 1, step))
      picture = np.where(differ[..., None], np.uint8(OTHER_ACTION_RGB),
                         np.uint8(SAME_ACTION_RGB)).astype(np.uint8)
      return action_maps.png_bytes(picture)
    raise NotFoundError(f'no difference {kind!r}; use image or actions')

  def pixel(self, job_id: str, x: int, y: int) -> Dict[str, Any]:
    """One pixel's action at every step and its value after each.

    Returns:
      `{'x', 'y', 'models': [{'actions': [T action indices], 'values':
      [T+1 lists of C floats]}]}`: `values[0]` is the input, `values[t]` the
      value after step t, on the 0..1 scale and unclipped, colour in RGB
      order.
    """
    job = self._done_job(job_id)
    height, width = job.image.shape[:2]
    if not (0 <= x < width and 0 <= y < height):
      raise NotFoundError(f'no pixel ({x}, {y}) in a {width}x{height} image')
    models = []
    for result in job.results:
      values = result.images[:, y, x, :]
      if self.bgr:
        values = values[:, ::-1]
      models.append({'actions': result.actions[:, y, x].tolist(),
                     'values': values.astype(float).tolist()})
    return {'x': x, 'y': y, 'models': models}

"""Saliency-driven image editing with PixelRL (paper Sec. VI-D, Table IX).

Shapes: `B` batch (1 here), `T` steps, `H, W` height and width, `A` actions.

Given a colour image `I` and a mask `M` of the regions to enhance, a PixelRL
agent is trained on that one image (minibatch 1, 200 episodes by default,
no crop or rotation) to make the masked regions more salient and the rest
less salient, with the 13 colour actions of local colour enhancement:

  * state: the BGR image being edited, float32 `[1,H,W,3]`, never clipped;
  * network input, 4 channels: the state as scaled Lab `(L/100, a/127,
    b/127)` (the colour models' input transform) and the mask as 0/1; the
    actions change the 3 colour channels only;
  * reward, eq. (22): with `dS = S(s_{t+1}) - S(s_t)` per pixel,
    `r = alpha dS` inside the mask and `r = -beta dS` outside
    (`alpha = 1.0`, `beta = 0.5`), where `S` is OpenCV's fine-grained static
    saliency (Montabone & Soto 2010, the paper's [66]):
    `cv2.saliency.StaticSaliencyFineGrained_create().computeSaliency` on the
    state clipped and rounded to 8 bits (`io.images.quantize_uint8`).
    Measured with opencv-contrib 4.11 on uint8 BGR input: the map is float32
    `[H, W]` in [0, 1], a multiple of 1/255 everywhere, min-max normalised
    per image (its minimum is 0 and its maximum 1, except for a constant
    image, whose map is all 0); the colour image is converted to gray first,
    so only luminance changes move it. On float input it returns a different
    map (it does not rescale 0..1 floats), hence the 8-bit conversion. The
    rewards are therefore in [-1, 1] (inside) and [-0.5, 0.5] (outside);
  * initialisation: the trunk and both branch stacks (not the ConvGRU, the
    policy head or the value head) from a colour run or from
    `200model.npz`; conv1 gets zero weights for the mask channel, so the
    edit starts as the colour model sees the image;
  * test: greedy actions for `t_max` steps (5, 10 or 15 in Table IX), and
    after every step a guided filter (He et al., the paper's [61];
    `cv2.ximgproc.guidedFilter`) smooths the edited image with the input
    image as the guide. Radius 4 and eps 1e-4 (on the 0..1 scale; the
    filter runs on the 0..255 scale, where OpenCV's float implementation
    with a colour guide is accurate) remove pixel-level action noise while
    keeping region-level edits and the input's texture: ten filterings of an
    unedited photograph keep SSIM 0.986 to it, and a random per-pixel
    +-5% gain pattern is smoothed from SSIM 0.82 to 0.995.

Reported metrics (Table IX): the Pearson correlation coefficient (CC)
between the mask and the saliency map of an image under OpenCV's
fine-grained (VSF) and spectral-residual (SR, Hou & Zhang 2007) static
saliency, and SSIM to the input (`metrics.ssim`), for the input, random
agents and the edited image (and per step).
"""

import dataclasses
import json
import math
import os
import sys
import time
from typing import Callable, Optional, Tuple

import cv2
import gin
import numpy as np
import tensorflow as tf

from pixelrl_tf import metrics
from pixelrl_tf.agents import pixel_a2c_agent
from pixelrl_tf.agents import pixel_policy
from pixelrl_tf.drivers import learner as learner_lib
from pixelrl_tf.drivers import rollout
from pixelrl_tf.environments import rewards
from pixelrl_tf.environments import tf_pixel_env
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.io import files
from pixelrl_tf.io import images as image_io
from pixelrl_tf.models import initialise
from pixelrl_tf.models import model_io
from pixelrl_tf.tasks import episode_sources
from pixelrl_tf.tasks import tasks as tasks_lib
from pixelrl_tf.training import loop
from pixelrl_tf.training import progress
from pixelrl_tf.training import triggers
from pixelrl_tf.visualization import action_maps
from pixelrl_tf.visualization import summaries

ALPHA = rewards.SALIENCY_ALPHA
BETA = rewards.SALIENCY_BETA
DEFAULT_EPISODES = 200
DEFAULT_T_MAX = tasks_lib.SALIENCY_EDIT.t_max
DEFAULT_UPDATE_INTERVAL = tasks_lib.SALIENCY_EDIT.update_interval
GUIDED_FILTER_RADIUS = 4
GUIDED_FILTER_EPS = 1e-4


INPUT = 'input'
RANDOM_AGENTS = 'random_agents'
OUTPUT = 'output'


class SaliencyEditError(Exception):
  """A problem with the inputs of the editing job; one-line message."""


# ---------------------------------------------------------------------------
# Saliency maps and metrics.


def measure(input_image, image, mask):
  """Table IX metrics of an edited image.

  Args:
    input_image: float `[H, W, 3]` BGR input.
    image: float `[H, W, 3]` BGR image to measure.
    mask: `[H, W]` 0/1 mask.

  Returns:
    `{'cc_fine_grained', 'cc_spectral_residual', 'ssim'}`.
  """
  result = {f'cc_{method}': metrics.pearson_cc(mask, metrics.saliency_map(image, method))
            for method in metrics.SALIENCY_METHODS}
  result['ssim'] = metrics.ssim(input_image, image)
  return result


def guided_filter(guide, image, radius=GUIDED_FILTER_RADIUS,
                  eps=GUIDED_FILTER_EPS):
  """He et al.'s guided filter of `image` with `guide`, both 0..1 BGR.

  Runs `cv2.ximgproc.guidedFilter` on the 0..255 scale (eps scaled by
  255^2), where its float colour-guide path is accurate.

  Args:
    guide: float `[H, W, 3]` guide (the input image).
    image: float `[H, W, 3]` image to filter (not clipped).
    radius: window radius.
    eps: regularisation on the 0..1 scale.

  Returns:
    float32 `[H, W, 3]`.
  """
  filtered = cv2.ximgproc.guidedFilter(
      np.asarray(guide, np.float32) * 255.0,
      np.asarray(image, np.float32) * 255.0, int(radius),
      float(eps) * 255.0 * 255.0)
  return (filtered / 255.0).astype(np.float32)


# ---------------------------------------------------------------------------
# Data and initialisation.


def load_image_and_mask(
    image_path: str, mask_path: str,
    note_fn: Optional[Callable[[str], None]] = None
) -> Tuple[np.ndarray, np.ndarray]:
  """Reads the colour image (BGR, 0..1) and the mask (0/1, > 50% inside).

  Both are read with `pixelrl_tf.io.images`: a gray image becomes colour and
  a colour mask gray, an alpha channel is dropped (with a note each).

  Args:
    image_path: the image file.
    mask_path: the mask file, the same size.
    note_fn: optional callable given one line per conversion.

  Returns:
    `(image float32 [H, W, 3], mask float32 [H, W])`.

  Raises:
    FileNotFoundError: a file does not exist.
    ValueError: (one line, naming the file) a file is not a usable image
      (`io.images.ImageReadError`).
    SaliencyEditError: a mask of another size than the image, or a mask
      that is all 0 or all 1.
  """
  image, image_notes = image_io.read_image_with_notes(image_path, channels=3,
                                                    bgr=True)
  mask, mask_notes = image_io.read_image_with_notes(mask_path, channels=1)
  if note_fn is not None:
    for path, notes in ((image_path, image_notes), (mask_path, mask_notes)):
      for note in notes:
        note_fn(f'{os.path.basename(path)}: {note}')
  mask = mask[:, :, 0] > 0.5
  if mask.shape != image.shape[:2]:
    raise SaliencyEditError(
        f'mask {mask_path} is {mask.shape[0]}x{mask.shape[1]} but the image '
        f'is {image.shape[0]}x{image.shape[1]}; they must be the same size')
  if mask.all() or not mask.any():
    raise SaliencyEditError(
        f'mask {mask_path} is {"all" if mask.all() else "never"} set; it '
        'must mark the target region (non-zero) and the rest (zero)')
  return image, mask.astype(np.float32)


def initialise_from(network, init):
  """Copies trunk and branch layers of a colour model into `network`.

  Args:
    network: the 4-channel `FcnActorCritic` of the edit.
    init: a colour run directory / checkpoint, a Chainer `.npz`
      (`200model.npz` or a released model), or the name of a known `.npz`
      (`'color_init'`, see `data.known_files`); None keeps random weights.

  Returns:
    A one-line note of what was loaded (`models.initialise.copy_layers`; the
    mask channel starts with zero weights).

  Raises:
    SaliencyEditError: the source is not a colour model or has another
      width (the message says which `edit_image` setting to change).
    FileNotFoundError, ValueError: missing or unreadable sources, an unknown
      name, or a known file that cannot be had
      (`known_files.KnownFileError`).
  """
  # pylint: disable=g-import-not-at-top
  from pixelrl_tf.weights import chainer_npz
  if not init:
    return 'note: no --init; starting from random weights'
  colour = model_io.ModelConfig.for_task(tasks_lib.COLOR_ENHANCE,
                                         filters=network.filters)
  try:
    return initialise.copy_layers(network, init,
                                  chainer_npz.COLOR_INIT_LAYERS, colour)
  except model_io.CheckpointError as error:
    hint = ('; set edit_image.filters to its width'
            if 'filters' in str(error) else
            '; saliency editing starts from a colour (3-channel) model')
    raise SaliencyEditError(f'{error}{hint}') from None


# ---------------------------------------------------------------------------
# Training and editing.


class SaliencyEditor:
  """Trains a PixelRL agent on one image and mask, then edits the image."""

  def __init__(self, image, mask, network, action_set, t_max, update_interval,
               num_episodes, learning_rate=1e-3, learning_rate_power=0.9,
               alpha=ALPHA, beta=BETA, seed=0):
    """Creates the editor.

    Args:
      image: float32 `[H, W, 3]` BGR input on 0..1.
      mask: float32 `[H, W]` 0/1.
      network: an `FcnActorCritic` taking the image and the mask (3 + 1
        channels, Lab input transform).
      action_set: the colour `ActionSet`.
      t_max: steps of a training episode.
      update_interval: steps per update (divides `t_max`).
      num_episodes: episodes of training (poly learning-rate decay span).
      learning_rate: initial Adam learning rate.
      learning_rate_power: poly decay power.
      alpha: reward weight inside the mask.
      beta: reward weight outside the mask.
      seed: seed of the action sampling.
    """
    self._image = np.asarray(image, np.float32)
    self._mask = np.asarray(mask, np.float32)[:, :, None]
    self._network = network
    self._action_set = action_set
    self._t_max = int(t_max)
    self._num_episodes = int(num_episodes)
    self._learning_rate = learning_rate
    self._learning_rate_power = learning_rate_power
    height, width = self._mask.shape[:2]
    environment = tf_pixel_env.PixelTFEnvironment(
        action_set, rewards.saliency_change_reward(alpha, beta), channels=3,
        extra_channels=1, image_size=(height, width), batch_size=1,
        t_max=self._t_max)
    self._optimizer = tf.keras.optimizers.Adam(learning_rate, epsilon=1e-8)
    self._agent = pixel_a2c_agent.PixelA2CAgent(
        environment.time_step_spec(), environment.action_spec(), network,
        self._optimizer, train_step_counter=tf.Variable(0, dtype=tf.int64))
    learner = learner_lib.EpisodeLearner(
        self._agent, environment, self._t_max, int(update_interval), seed,
        reward_log_scale=1.0)
    # Python control flow on Python values only: no autograph rewriting.
    self._run_episode = tf.function(
        lambda start, mask, episode: learner.run(start, mask, episode,
                                                 extra=mask),
        autograph=False,
        input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32),
                         tf.TensorSpec([1, height, width, 1], tf.float32),
                         tf.TensorSpec([], tf.int64)])

  def train(self, progress_stream=None):
    """Runs the training episodes with a progress bar; returns seconds.

    The episodes go through the training loop (`training.loop`) with the
    one image as their source.

    Raises:
      KeyboardInterrupt: SIGINT or SIGTERM stopped the training (nothing
        is written).
    """
    bar = progress.ProgressBar(self._num_episodes, initial=0,
                               stream=progress_stream or sys.stderr,
                               log_every_seconds=10.0)
    batches = iter(episode_sources.single_image_source(
        self._image, self._mask).dataset)

    def episode_fn(current):
      start, mask = next(batches)
      return self._run_episode(start, mask, tf.constant(current, tf.int64))

    started = time.monotonic()
    ended = loop.run_episodes(
        episode_fn, tf.Variable(0, dtype=tf.int64), self._num_episodes,
        loop.poly_schedule(self._optimizer, self._learning_rate,
                           self._num_episodes, self._learning_rate_power),
        [triggers.ProgressReport(bar, None, '')])
    if ended.signal_name:
      raise KeyboardInterrupt(f'stopped by {ended.signal_name} after '
                              f'{ended.episodes_run} of {self._num_episodes} '
                              'training episodes')
    return time.monotonic() - started

  def _rollout(self, policy, t_max, seed, use_guided_filter, radius, eps):
    """`(images [T+1,H,W,3], actions [T,H,W])` of `policy` on the image."""
    def guided(images, start):
      filtered = tf.numpy_function(
          lambda x, guide: guided_filter(guide[0], x[0], radius, eps)[None],
          [images, start], tf.float32, stateful=False)
      return tf.ensure_shape(filtered, images.shape)
    environment = tf_pixel_env.PixelTFEnvironment(
        self._action_set, channels=3, extra_channels=1,
        post_step_fn=guided if use_guided_filter else None)
    if policy is None:
      policy = pixel_policy.RandomPixelPolicy(environment.time_step_spec(),
                                              environment.action_spec())
    time_step = environment.start_episode(self._image[None],
                                          extra=self._mask[None])
    episode = rollout.run_episode(
        environment, policy, time_step, t_max,
        seed=None if seed is None else tf.constant([seed, 0], tf.int64))
    return episode.images.numpy()[0], episode.actions.numpy()[0]

  def edit(self, t_max, use_guided_filter=True,
           radius=GUIDED_FILTER_RADIUS, eps=GUIDED_FILTER_EPS):
    """Edits the image greedily, guided-filtering after every step.

    Args:
      t_max: steps.
      use_guided_filter: smooth every step's image with the guided filter.
      radius: guided filter radius.
      eps: guided filter eps (0..1 scale).

    Returns:
      `(images [T+1,H,W,3] (input first), actions [T,H,W])`.
    """
    return self._rollout(self._agent.policy, t_max, None, use_guided_filter,
                         radius, eps)

  def random_agents(self, t_max, seed, use_guided_filter=True,
                    radius=GUIDED_FILTER_RADIUS, eps=GUIDED_FILTER_EPS):
    """Uniformly random actions (seeded), filtered as `edit`; last image."""
    images, _ = self._rollout(None, t_max, seed, use_guided_filter, radius,
                              eps)
    return images[-1]


def _jsonable(value):
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  return value


def _gray_panel(maps):
  """Side-by-side uint8 RGB picture of `[H, W]` maps on 0..1."""
  gap = np.full((maps[0].shape[0], 4), 255, np.uint8)
  row = []
  for index, values in enumerate(maps):
    if index:
      row.append(gap)
    row.append(image_io.quantize_uint8(np.asarray(values, np.float32)))
  gray = np.concatenate(row, axis=1)
  return np.repeat(gray[:, :, None], 3, axis=2)


@gin.configurable(module='pixelrl_tf.jobs', denylist=[
    'image_path', 'mask_path', 'output_dir'])
def edit_image(image_path, mask_path, output_dir,
               episodes=DEFAULT_EPISODES,
               t_max=DEFAULT_T_MAX,
               test_t_max=None,
               init=None,
               filters=64,
               use_conv_gru=True,
               update_interval=None,
               learning_rate=1e-3,
               alpha=ALPHA,
               beta=BETA,
               use_guided_filter=True,
               guided_filter_radius=GUIDED_FILTER_RADIUS,
               guided_filter_eps=GUIDED_FILTER_EPS,
               reference_code_actions=False,
               seed=0,
               progress_stream=None):
  """Runs the whole per-image procedure and writes its outputs.

  Writes into `output_dir`, for an image `NAME.ext`: `NAME_edited.png` (the
  edited image, 8-bit), `NAME_actions.png` (the image after each step above
  that step's colour-coded action map, with a legend), `NAME_saliency.png`
  (fine-grained saliency of the input and of the edit, and the mask) and
  `NAME_metrics.json` (Table IX metrics of the input, random agents and the
  edit, per step, and the settings).

  Args:
    image_path: colour image file.
    mask_path: mask file of the same size (non-zero = target region).
    output_dir: folder for the outputs (created with the first one).
    episodes: training episodes on this image (200 in the paper).
    t_max: steps of a training episode.
    test_t_max: steps of the edit (None: `t_max`); 5, 10, 15 in Table IX.
    init: colour run directory / checkpoint or `.npz` to start from.
    filters: network width (64 to start from the released weights).
    use_conv_gru: the "+convGRU" network.
    update_interval: steps per update; it must divide `t_max`. None: the
      paper's 5 when it divides `t_max`, else one update per episode.
    learning_rate: initial Adam learning rate (poly decay over `episodes`).
    alpha: reward weight inside the mask (1.0).
    beta: reward weight outside the mask (0.5).
    use_guided_filter: guided-filter every test step.
    guided_filter_radius: its radius.
    guided_filter_eps: its eps (0..1 scale).
    reference_code_actions: use the released code's colour actions.
    seed: seed of the weights, action sampling and random agents.
    progress_stream: where progress goes (default stderr).

  Returns:
    The metrics dict written to `NAME_metrics.json`.

  Raises:
    SaliencyEditError, FileNotFoundError, ValueError: bad inputs (image,
      mask, `init`), one line naming the file; nothing is written.
    OSError: (one line) an output cannot be written (full or read-only
      disk); no file is left half-written.
  """
  stream = progress_stream or sys.stderr
  if episodes < 0 or (test_t_max is not None and test_t_max < 1):
    raise SaliencyEditError('episodes must be >= 0 and test_t_max >= 1')
  action_set_name = action_set_lib.color_action_set(reference_code_actions)
  if update_interval is None and not t_max % DEFAULT_UPDATE_INTERVAL:
    update_interval = DEFAULT_UPDATE_INTERVAL
  try:
    task = dataclasses.replace(tasks_lib.SALIENCY_EDIT,
                               action_set=action_set_name, t_max=t_max,
                               update_interval=update_interval)
  except ValueError as error:
    raise SaliencyEditError(
        f'{error} (set --t_max and edit_image.update_interval)') from None
  test_t_max = test_t_max or task.t_max
  image, mask = load_image_and_mask(
      image_path, mask_path, note_fn=lambda line: print(f'note: {line}',
                                                         file=stream))
  tf.keras.utils.set_random_seed(seed)
  action_set = task.get_action_set()
  network = model_io.build_network(model_io.ModelConfig.for_task(
      task, filters=filters, use_conv_gru=use_conv_gru))
  print(initialise_from(network, init), file=stream)
  editor = SaliencyEditor(image, mask, network, action_set, task.t_max,
                          task.window, episodes,
                          learning_rate=learning_rate, alpha=alpha,
                          beta=beta, seed=seed)
  train_seconds = editor.train(stream)
  filter_args = dict(use_guided_filter=use_guided_filter,
                     radius=guided_filter_radius, eps=guided_filter_eps)
  started = time.monotonic()
  step_images, step_actions = editor.edit(test_t_max, **filter_args)
  edit_seconds = time.monotonic() - started
  edited = step_images[-1]
  random_image = editor.random_agents(test_t_max, seed, **filter_args)

  stem = os.path.splitext(os.path.basename(image_path))[0]
  prefix = os.path.join(output_dir, stem)
  outputs = {}
  outputs[prefix + '_edited.png'] = image_io.encode_image(
      edited, '.png', bgr=True, name=prefix + '_edited.png')
  strip = action_maps.action_strip(step_images, step_actions,
                                   action_set.names, action_set.colors,
                                   bgr=True)
  outputs[prefix + '_actions.png'] = action_maps.png_bytes(
      strip, name=prefix + '_actions.png')
  outputs[prefix + '_saliency.png'] = action_maps.png_bytes(
      _gray_panel([metrics.saliency_map(image), metrics.saliency_map(edited),
                   mask]), name=prefix + '_saliency.png')
  fractions = summaries.action_fractions(step_actions,
                                         action_set.num_actions)
  report = {
      'image': str(image_path), 'mask': str(mask_path),
      'height': int(image.shape[0]), 'width': int(image.shape[1]),
      'episodes': int(episodes), 't_max': task.t_max,
      'test_t_max': int(test_t_max), 'update_interval': task.window,
      'init': init, 'filters': int(filters), 'action_set': action_set_name,
      'alpha': alpha, 'beta': beta,
      'guided_filter': ({'radius': guided_filter_radius,
                         'eps': guided_filter_eps}
                        if use_guided_filter else None),
      'saliency': ('OpenCV static saliency on the 8-bit BGR image: float32 '
                   'in [0, 1], min-max normalised per image'),
      'mask_fraction': float(mask.mean()),
      INPUT: measure(image, image, mask),
      RANDOM_AGENTS: measure(image, random_image, mask),
      OUTPUT: measure(image, edited, mask),
      'per_step': [dict(t=t, **measure(image, step_images[t], mask))
                   for t in range(1, len(step_images))],
      'action_fractions': {
          name: [float(v) for v in fractions[:, index]]
          for index, name in enumerate(action_set.names)},
      'train_seconds': train_seconds, 'edit_seconds': edit_seconds,
  }
  report = _jsonable(report)
  outputs[prefix + '_metrics.json'] = json.dumps(report, indent=2).encode()
  # The four files together: a failure leaves the earlier ones as they were.
  files.write_files_atomically(outputs)
  return report

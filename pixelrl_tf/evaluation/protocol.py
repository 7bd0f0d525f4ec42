"""The evaluation protocol over a `Restorer`: greedy, x8, random, fixed.

Shapes: `N` images, `A` actions, `T` steps, `H, W` height and width, `C`
channels.

Each image is restored greedily for `T` steps (full size, batch 1, as the
reference `test.py`) and measured after every step with the official
protocol (clip to [0,1], round to uint8): PSNR, SSIM and, for colour
models, the mean Lab distance. The baselines beside the model: the
corrupted input, uniformly random actions (seeded) and the best fixed
schedule (one action repeated a fixed number of times over the whole
image, best on the same images); on request, the best fixed sequence (one
action per step for the whole image, changing from step to step).
Training's validation, `eval` and the benchmarks all measure through this
module.
"""

import numpy as np
import tensorflow as tf

from pixelrl_tf import metrics

ORIGINAL = 'original'
RANDOM_AGENTS = 'random_agents'
BEST_FIXED = 'best_fixed_schedule'
BEST_FIXED_SEQUENCE = 'best_fixed_sequence'
MODEL = 'model'
MODEL_X8 = 'model_x8'

# The 8 dihedral transforms of test-time augmentation: (flip, quarter turns).
X8_TRANSFORMS = tuple((flip, turns) for flip in (False, True)
                      for turns in range(4))


def _transform(image, flip, turns):
  """Flips left-right, then rotates by `turns` quarter turns ([..,H,W,C])."""
  if flip:
    image = image[..., :, ::-1, :]
  return np.rot90(image, turns, axes=(-3, -2))


def _inverse_transform(image, flip, turns):
  image = np.rot90(image, -turns, axes=(-3, -2))
  if flip:
    image = image[..., :, ::-1, :]
  return image


def greedy(restorer, image):
  """Greedy restoration of one image.

  Args:
    restorer: a `restoration_module.Restorer`.
    image: `[H,W,C]` float32 corrupted image.

  Returns:
    `(outputs [T,H,W,C] after each step, actions [T,H,W])`.
  """
  steps = restorer.restore_steps_fn(
      np.ascontiguousarray(image[None], np.float32))
  return steps['images'][0, 1:], steps['actions'][0]


def greedy_x8(restorer, image):
  """Per-step outputs `[T,H,W,C]` averaged over the 8 transforms."""
  total = None
  for flip, turns in X8_TRANSFORMS:
    outputs, _ = greedy(restorer, np.ascontiguousarray(
        _transform(image, flip, turns)))
    restored = _inverse_transform(outputs, flip, turns)
    total = restored if total is None else total + restored
  return total / len(X8_TRANSFORMS)


def random_agents(restorer, image, seed):
  """Per-step outputs `[T,H,W,C]` of uniformly random actions (seeded)."""
  steps = restorer.random_steps_fn(
      np.ascontiguousarray(image[None], np.float32), seed)
  return steps['images'][0, 1:]


class FixedSchedules:
  """Every action repeated 1..T times: the bar a learned policy must clear.

  `outputs(image)` is `[A, T, H, W, C]`: the image after `k + 1`
  applications of action `a` to the whole image, for every `a` and `k`. The
  actions run eagerly, one at a time (a graph of all of them takes far
  longer to optimise than to run).
  """

  def __init__(self, action_set, t_max, channels=None):
    del channels  # Any channel count the actions accept.
    self.action_set = action_set
    self.t_max = int(t_max)

  def outputs(self, image):
    per_action = []
    for action in self.action_set:
      current, steps = tf.constant(image[None], tf.float32), []
      for _ in range(self.t_max):
        current = action.fn(current)
        steps.append(current.numpy()[0])
      per_action.append(np.stack(steps))
    return np.stack(per_action)


def best_fixed_schedule(per_image_scores, action_names, higher_is_better):
  """Picks the action and count with the best mean score over images.

  Args:
    per_image_scores: `[N, A, T]` scores of each image, action and count.
    action_names: the `A` names.
    higher_is_better: whether a larger score is better (PSNR) or not (Lab).

  Returns:
    `(action index, count (1..T), label like 'gaussian_1.5 x3')`.
  """
  means = np.mean(np.asarray(per_image_scores, np.float64), axis=0)
  flat = np.argmax(means) if higher_is_better else np.argmin(means)
  action, count = np.unravel_index(flat, means.shape)
  return int(action), int(count) + 1, f'{action_names[action]} x{count + 1}'


def best_fixed_sequence(action_set, pairs, t_max, lab_metric=False,
                        beam_width=128):
  """The best sequence of whole-image actions, a different one per step.

  A fixed schedule repeats one action; a fixed sequence may change the
  action from step to step (for Gaussian denoising, a mild filter and then
  a stronger one), but still applies it to every pixel of every image. It
  is the bar a policy that has learnt *when* to filter, but not *where*,
  reaches: agents that beat it have learnt something per pixel.

  The search keeps the `beam_width` best prefixes (by mean score over the
  images) at every length; with `A ** (T - 1) <= beam_width` nothing is
  pruned and the result is the exhaustive optimum. Images of the same shape
  are filtered as one batch.

  Args:
    action_set: the task's `ActionSet`.
    pairs: sequence of `(name, corrupted [H,W,C], clean [H,W,C])`.
    t_max: the longest sequence (`T`).
    lab_metric: score by the mean Lab distance (lower is better) instead
      of PSNR.
    beam_width: how many prefixes each length keeps.

  Returns:
    `{'score': mean metric of the best sequence, 'actions': its action
      names (1..T of them, the best length), 'exhaustive': whether the
      search pruned nothing}`.
  """
  pairs = list(pairs)
  if not pairs:
    raise ValueError('no images to search a fixed sequence on')
  if beam_width < 1:
    raise ValueError(f'beam_width must be at least 1, got {beam_width}')
  groups = {}
  for index, (_, corrupted, _) in enumerate(pairs):
    groups.setdefault(np.shape(corrupted), []).append(index)
  groups = list(groups.values())
  cleans = [[pairs[i][2] for i in indices] for indices in groups]
  score_fn = metrics.mean_lab_distance if lab_metric else metrics.psnr
  higher_is_better = not lab_metric

  def mean_score(states):
    scores = [score_fn(clean, image)
              for group, state in zip(cleans, states)
              for clean, image in zip(group, state)]
    return float(np.mean(scores))

  beam = [((), [np.stack([np.asarray(pairs[i][1], np.float32)
                          for i in indices]) for indices in groups])]
  def step(states, action):
    return [action.fn(tf.constant(state)).numpy() for state in states]

  best_score, best_actions = None, ()
  for _ in range(int(t_max)):
    # Only the scores are kept for every candidate; the images of the ones
    # the beam keeps are filtered again, so memory stays at the beam's
    # images whatever the number of actions.
    candidates = []
    for parent, (prefix, states) in enumerate(beam):
      for index, action in enumerate(action_set):
        candidates.append((mean_score(step(states, action)),
                           prefix + (index,), parent))
    candidates.sort(key=lambda c: -c[0] if higher_is_better else c[0])
    score, prefix, _ = candidates[0]
    if best_score is None or (score > best_score if higher_is_better
                              else score < best_score):
      best_score, best_actions = score, prefix
    beam = [(prefix, step(beam[parent][1], action_set[prefix[-1]]))
            for _, prefix, parent in candidates[:beam_width]]
  exhaustive = len(action_set) ** (int(t_max) - 1) <= beam_width
  return {'score': best_score,
          'actions': [action_set.names[i] for i in best_actions],
          'exhaustive': exhaustive}


LAB = 'lab'
_METRICS = ('psnr', 'ssim', LAB)


def _measure(clean, image, lab_metric=False):
  measured = {'psnr': metrics.psnr(clean, image),
              'ssim': metrics.ssim(clean, image)}
  if lab_metric:
    measured[LAB] = metrics.mean_lab_distance(clean, image)
  return measured


def _mean_rows(per_image):
  """Averages a list of {row: {'psnr', 'ssim', 'per_step': [...]}}."""
  rows = {}
  for row in per_image[0]:
    values = [image[row] for image in per_image]
    keys = [key for key in _METRICS if key in values[0]]
    summary = {key: float(np.mean([v[key] for v in values])) for key in keys}
    if 'per_step' in values[0]:
      steps = len(values[0]['per_step'])
      summary['per_step'] = [
          {key: float(np.mean([v['per_step'][t][key] for v in values]))
           for key in keys}
          for t in range(steps)]
    rows[row] = summary
  return rows


def _per_step_row(clean, outputs, lab_metric=False):
  per_step = [_measure(clean, outputs[t], lab_metric)
              for t in range(len(outputs))]
  return dict(per_step[-1], per_step=per_step)


def evaluate_images(restorer, pairs, random_seed=0, augment_x8=False,
                    include_random=True, progress_fn=None, lab_metric=False,
                    fixed_schedules=None):
  """Evaluates a restorer on `(name, corrupted, clean)` triples.

  Args:
    restorer: a `restoration_module.Restorer`.
    pairs: iterable of `(name, corrupted [H,W,C], clean [H,W,C])`.
    random_seed: seed of the random agents.
    augment_x8: also measure the x8 test-time augmentation.
    include_random: measure the random agents row (needs a restorer with
      `random_steps_fn`).
    progress_fn: optional callable `(index, name)` called per image.
    lab_metric: also measure `lab`, the mean Lab distance of BGR images.
    fixed_schedules: optional `FixedSchedules`: adds the row of the best
      single action repeated a fixed number of times (best by mean PSNR, or
      by mean Lab distance with `lab_metric`) and its label.

  Returns:
    `{'num_images', 'rows': {row: {'psnr', 'ssim', 'lab'?, 'per_step'?}},
      'per_image': {name: {row: {'psnr', 'ssim', 'lab'?, 'per_step'?}}}}`,
    plus `best_fixed_schedule` (its label) with `fixed_schedules`.
  """
  per_image, names, schedule_scores, schedule_outputs = [], [], [], []
  for index, (name, corrupted, clean) in enumerate(pairs):
    if progress_fn is not None:
      progress_fn(index, name)
    rows = {ORIGINAL: _measure(clean, corrupted, lab_metric)}
    if include_random and restorer.random_steps_fn is not None:
      rows[RANDOM_AGENTS] = _per_step_row(
          clean, random_agents(restorer, corrupted, [random_seed, index]),
          lab_metric)
    if fixed_schedules is not None:
      outputs = fixed_schedules.outputs(corrupted)
      score = (lambda x: metrics.mean_lab_distance(clean, x)) if lab_metric \
          else (lambda x: metrics.psnr(clean, x))
      schedule_scores.append([[score(step) for step in action]
                              for action in outputs])
      schedule_outputs.append((clean, outputs))
    outputs, _ = greedy(restorer, corrupted)
    rows[MODEL] = _per_step_row(clean, outputs, lab_metric)
    if augment_x8:
      rows[MODEL_X8] = _per_step_row(clean, greedy_x8(restorer, corrupted),
                                     lab_metric)
    per_image.append(rows)
    names.append(name)
  if not per_image:
    raise ValueError('no images to evaluate')
  label = None
  if fixed_schedules is not None:
    action, count, label = best_fixed_schedule(
        schedule_scores, fixed_schedules.action_set.names, not lab_metric)
    for index, (clean, outputs) in enumerate(schedule_outputs):
      rows = per_image[index]
      best = _measure(clean, outputs[action, count - 1], lab_metric)
      # The rows in reading order: the baselines, then the model.
      per_image[index] = dict(
          [(k, v) for k, v in rows.items() if k in (ORIGINAL, RANDOM_AGENTS)]
          + [(BEST_FIXED, best)] +
          [(k, v) for k, v in rows.items()
           if k not in (ORIGINAL, RANDOM_AGENTS)])
  report = {
      'num_images': len(per_image),
      'rows': _mean_rows(per_image),
      'per_image': {
          name: {row: {k: v[k] for k in _METRICS + ('per_step',) if k in v}
                 for row, v in rows.items()}
          for name, rows in zip(names, per_image)}}
  if label is not None:
    report[BEST_FIXED] = label
  return report


LEARNED_GAIN = 'learned_gain'
LEARNED_GAIN_OVER_SEQUENCE = 'learned_gain_over_sequence'


def learned_gain(model: float, best_fixed: float,
                 higher_is_better: bool) -> float:
  """What the agents add over the best fixed schedule (positive: better).

  The model's metric minus the best fixed schedule's (PSNR), or the other
  way round when lower is better (the mean Lab distance).
  """
  return model - best_fixed if higher_is_better else best_fixed - model

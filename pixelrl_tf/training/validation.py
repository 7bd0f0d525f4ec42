"""Validation during training: greedy restoration of fixed, seeded images.

Shapes: `T` steps, `H, W` height and width, `C` channels.

`Validator` restores the run's validation images with the network being
trained (through the one rollout, as `eval` does) and measures them with the
task's metric after every step; `final_report` adds the input and the best
fixed action schedule on the same images, and `final_report_line` says in
one line what the agents add over that schedule.
"""

import numpy as np

from pixelrl_tf import metrics
from pixelrl_tf.evaluation import protocol
from pixelrl_tf.serving import restoration_module
from pixelrl_tf.tasks import tasks as tasks_lib

# How validation measures a restored image against its target.
_SCORES = {tasks_lib.PSNR: metrics.psnr,
           tasks_lib.LAB_DISTANCE: metrics.mean_lab_distance}


class Validator:
  """Greedy restoration of fixed, seeded validation images.

  Attributes:
    metric: the task's `Metric` (name and direction).
  """

  def __init__(self, network, action_set, pairs, task: tasks_lib.Task):
    """Creates the validator.

    Args:
      network: the network being trained.
      action_set: its `ActionSet`.
      pairs: `(name, corrupted [H,W,C], target [H,W,C])` triples.
      task: the `Task` (its `t_max` and validation metric).

    Raises:
      ValueError: validation images for a metric validation cannot measure
        (it measures PSNR or the mean Lab distance).
    """
    if pairs and task.metric.name not in _SCORES:
      raise ValueError(
          f'task {task.name!r} validates with {task.metric.name!r}; '
          f'validation measures {" or ".join(sorted(_SCORES))} (leave out '
          'the validation images, or use one of those)')
    module = restoration_module.RestorationModule(network, action_set,
                                                  task.t_max)
    self._restorer = restoration_module.restorer_from_module(module)
    self._action_set = action_set
    self._pairs = list(pairs)
    self._task = task
    self.metric = task.metric
    self._lab = task.lab_metric

  def __len__(self):
    return len(self._pairs)

  @property
  def metric_name(self):
    return self.metric.name

  def score(self, clean, image):
    return _SCORES[self.metric.name](clean, image)

  def input_score(self):
    return float(np.mean([self.score(clean, noisy)
                          for _, noisy, clean in self._pairs]))

  def evaluate(self, every_step=False):
    """Returns `(metric [T] or [1], (images [T+1,1,H,W,C], actions [T,1,H,W]))`.

    Args:
      every_step: the mean metric after each of the `T` steps (else only
        after the last one).

    The images and actions are those of the first validation image, laid
    out for `summaries.write_episode_images`.
    """
    values, example = [], None
    for _, noisy, clean in self._pairs:
      outputs, actions = protocol.greedy(self._restorer, noisy)
      values.append([self.score(clean, image)
                     for image in (outputs if every_step else outputs[-1:])])
      if example is None:
        example = (np.concatenate([noisy[None], outputs])[:, None],
                   actions[:, None])
    return [float(v) for v in np.mean(values, axis=0)], example

  def best_step(self, per_step):
    """The step count (1..T) with the best of the `[T]` metrics."""
    return self.metric.best_index(per_step) + 1

  def final_report(self, inference_steps=None):
    """Input, best fixed action schedule and model on the validation set.

    Args:
      inference_steps: the model's restoration step count when it was chosen
        on validation (its `model` entry is then the metric after that many
        steps); None: `t_max`.
    """
    schedules = protocol.FixedSchedules(
        self._action_set, self._task.t_max, self._pairs[0][1].shape[-1])
    report = protocol.evaluate_images(
        self._restorer, self._pairs, include_random=False,
        lab_metric=self._lab, fixed_schedules=schedules)
    key = protocol.LAB if self._lab else 'psnr'
    rows = report['rows']
    per_step = [s[key] for s in rows[protocol.MODEL]['per_step']]
    steps = inference_steps or self._task.t_max
    return {'metric': self.metric_name,
            'input': rows[protocol.ORIGINAL][key],
            'best_fixed_schedule': rows[protocol.BEST_FIXED][key],
            'best_fixed_schedule_label': report[protocol.BEST_FIXED],
            'model': per_step[steps - 1],
            'inference_steps': steps,
            't_max': self._task.t_max,
            'model_per_step': per_step}


def final_report_line(report):
  """One line comparing the model with the input and the best schedule."""
  better = protocol.learned_gain(
      report['model'], report['best_fixed_schedule'],
      tasks_lib.METRICS[report['metric']].higher_is_better)
  if report['metric'] == 'psnr':
    unit = ' dB'
    text = (f'final validation PSNR {report["model"]:.2f} dB (input '
            f'{report["input"]:.2f} dB, best fixed schedule '
            f'{report["best_fixed_schedule_label"]} '
            f'{report["best_fixed_schedule"]:.2f} dB): ')
  else:
    unit = ''
    text = (f'final validation mean Lab distance {report["model"]:.2f} '
            f'(input {report["input"]:.2f}, best fixed schedule '
            f'{report["best_fixed_schedule_label"]} '
            f'{report["best_fixed_schedule"]:.2f}): ')
  verdict = 'better' if better > 0 else 'WORSE'
  text += f'{abs(better):.2f}{unit} {verdict} than the best fixed schedule'
  steps, t_max = report.get('inference_steps'), report.get('t_max')
  if steps is not None and steps != t_max:
    text += (f', after {steps} of {t_max} steps (the count chosen on '
             'validation)')
  return text

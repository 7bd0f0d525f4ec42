"""A fingerprint of a tiny training run, to keep the loop's output fixed.

`python tests/tiny_run_fingerprint.py` trains `configs/tiny.gin` (with the
validated step-count choice and the gradient histograms on) for four
episodes, resumes it to six, and writes `tests/golden/tiny_run.json`: every
checkpoint's tensors (shape, sum, sum of magnitudes, first values), `best.json`, `final_report.json`, `run.json`,
`model.json`, the operative configs' names and every summary (scalars with
their values; images and histograms by tag, step and shape).
`tests/train_loop_test.py` runs the same and compares with the file.
"""

import json
import os
import pathlib
import sys
import tempfile

import gin
import numpy as np
import tensorflow as tf

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[1]
GOLDEN_FILE = PROJECT_ROOT / 'tests' / 'golden' / 'tiny_run.json'
BINDINGS = ('Cadence.choose_inference_steps = True',
            'PixelA2CAgent.summarize_grads_and_vars = True')
FIRST_START_EPISODES = 4
# Scalars that are wall-clock times, compared by tag and step only.
TIMINGS = ('Metrics/episode_seconds',)


class _Quiet:

  def write(self, text):
    del text

  def flush(self):
    pass


def _tensor_summary(value):
  """Shape, sum, sum of magnitudes and the first values of a tensor."""
  if value.dtype.kind not in 'fiub':
    return str(value)
  flat = value.astype(np.float64).ravel()
  return {'shape': list(value.shape), 'sum': float(flat.sum()),
          'abs_sum': float(np.abs(flat).sum()),
          'first': flat[:4].tolist()}


def _checkpoints(root_dir):
  result = {}
  for folder in ('train', 'best'):
    directory = os.path.join(root_dir, folder)
    for name in sorted(tf.io.gfile.listdir(directory)):
      if not name.endswith('.index'):
        continue
      reader = tf.train.load_checkpoint(
          os.path.join(directory, name[:-len('.index')]))
      tensors = {}
      for key in sorted(reader.get_variable_to_shape_map()):
        if key == '_CHECKPOINTABLE_OBJECT_GRAPH':
          continue
        tensors[key] = _tensor_summary(np.asarray(reader.get_tensor(key)))
      result[f'{folder}/{name[:-len(".index")]}'] = tensors
  return result


def _summaries(root_dir):
  result = {}
  for folder in ('train', 'eval'):
    entries = []
    directory = os.path.join(root_dir, folder)
    for name in sorted(tf.io.gfile.listdir(directory)):
      if 'tfevents' not in name:
        continue
      for record in tf.data.TFRecordDataset(os.path.join(directory, name)):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
          tensor = tf.make_ndarray(value.tensor)
          plugin = value.metadata.plugin_data.plugin_name
          entry = {'tag': value.tag, 'step': int(event.step),
                   'plugin': plugin, 'shape': list(tensor.shape)}
          if plugin == 'scalars' and value.tag not in TIMINGS:
            entry['value'] = float(tensor)
          entries.append(entry)
    entries.sort(key=lambda e: (e['step'], e['tag']))
    result[folder] = entries
  return result


def _json_file(root_dir, name):
  with open(os.path.join(root_dir, name)) as f:
    return json.load(f)


def fingerprint(root_dir):
  """What the run left in `root_dir`, as JSON-able values."""
  return {
      'checkpoints': _checkpoints(root_dir),
      'summaries': _summaries(root_dir),
      'best': _json_file(root_dir, 'best.json'),
      'final_report': _json_file(root_dir, 'final_report.json'),
      'run': _json_file(root_dir, 'run.json'),
      'model': _json_file(root_dir, 'model.json'),
      'operative_configs': sorted(
          n for n in os.listdir(root_dir) if n.startswith('operative_config')),
  }


def train_tiny_run(root_dir):
  """Four episodes, a resume to six; returns `fingerprint(root_dir)`."""
  from pixelrl_tf import cli  # pylint: disable=g-import-not-at-top
  from pixelrl_tf.jobs import train_lib  # pylint: disable=g-import-not-at-top
  for stop_after in (FIRST_START_EPISODES, None):
    gin.clear_config()
    cli.parse_gin([str(PROJECT_ROOT / 'configs' / 'tiny.gin')],
                  list(BINDINGS) +
                  [f'RunControl.stop_after_episodes = {stop_after!r}'])
    train_lib.train(str(root_dir), progress_stream=_Quiet())
  gin.clear_config()
  return fingerprint(root_dir)


def main():
  with tempfile.TemporaryDirectory() as work:
    result = train_tiny_run(os.path.join(work, 'run'))
  GOLDEN_FILE.write_text(json.dumps(result, indent=1, sort_keys=True) + '\n')
  print(f'wrote {GOLDEN_FILE}')


if __name__ == '__main__':
  sys.path.insert(0, str(PROJECT_ROOT))
  main()

r"""Greedy restoration quality under XLA and mixed precision.

  python bench/precision_check.py [--npz=NAME_OR_PATH] [--max_images=6]
      [--output_json=bench/results/precision.json]

Imports the authors' released sigma-25 "+convGRU+RMC" model and restores
the offline default photographs (scikit-image's, none of which is in the
BSD training data of the released model), corrupted with seeded Gaussian
noise of sigma 25, with the float32 network and with each other setting:
XLA (`jit_compile`), `mixed_bfloat16` (bfloat16 arithmetic in the network;
filters, rewards and the loss stay float32) and, on a GPU, `mixed_float16`.
For each setting it reports the mean greedy PSNR, its difference from
float32 (the target: within 0.05 dB) and the share of pixel decisions that
differ from float32's (over all steps), plus the time per image.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import numpy as np  # pylint: disable=g-import-not-at-top
import pixelrl_tf  # pylint: disable=g-import-not-at-top,unused-import
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from pixelrl_tf import metrics  # pylint: disable=g-import-not-at-top
from pixelrl_tf.data import datasets  # pylint: disable=g-import-not-at-top
from pixelrl_tf.data import known_files  # pylint: disable=g-import-not-at-top
from pixelrl_tf.data import noise as noise_lib  # pylint: disable=g-import-not-at-top
from pixelrl_tf.io import files  # pylint: disable=g-import-not-at-top
from pixelrl_tf.jobs import import_weights_lib  # pylint: disable=g-import-not-at-top
from pixelrl_tf.models import restorers  # pylint: disable=g-import-not-at-top

# A known name (data root, cache or a checked download), or a path.
DEFAULT_NPZ = 'gru_rmc_sigma25'


def _settings():
  settings = [('float32', False, None), ('xla', True, None),
              ('mixed_bfloat16', False, 'mixed_bfloat16')]
  if tf.config.list_physical_devices('GPU'):
    settings.append(('mixed_float16', False, 'mixed_float16'))
  return settings


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--npz', default=DEFAULT_NPZ,
                      help='Released .npz: a known name or a path.')
  parser.add_argument('--max_images', type=int, default=6)
  parser.add_argument('--output_json',
                      default='bench/results/precision.json')
  args = parser.parse_args()
  try:
    npz = str(known_files.resolve_path_or_name(args.npz, what='--npz'))
  except (known_files.KnownFileError, FileNotFoundError) as error:
    parser.error(str(error))
  run_dir = os.path.join(tempfile.mkdtemp(prefix='precision_'), 'run')
  import_weights_lib.import_npz(npz, run_dir)
  images = datasets.default_images(1)[:args.max_images]
  pairs = list(noise_lib.noisy_pairs(images, noise_lib.parse_noise(
      'gaussian:25'), seed=0))
  rows, reference = {}, None
  for name, jit_compile, policy in _settings():
    _, restorer = restorers.restorer_from_run(
        run_dir, jit_compile=jit_compile, dtype_policy=policy)
    psnrs, actions, seconds = [], [], []
    restorer.restore_steps_fn(pairs[0][1][None])  # Trace / compile.
    for _, noisy, clean in pairs:
      started = time.perf_counter()
      steps = restorer.restore_steps_fn(noisy[None])
      seconds.append(time.perf_counter() - started)
      psnrs.append(metrics.psnr(clean, steps['images'][0, -1]))
      actions.append(steps['actions'][0])
    row = {'psnr': float(np.mean(psnrs)),
           'seconds_per_image': float(np.median(seconds))}
    if reference is None:
      reference = (row['psnr'], actions)
    else:
      changed = sum(int(np.sum(a != b)) for a, b in zip(actions,
                                                         reference[1]))
      total = sum(a.size for a in actions)
      row['psnr_difference'] = row['psnr'] - reference[0]
      row['changed_action_share'] = changed / total
    rows[name] = row
    print(f'{name:<16} PSNR {row["psnr"]:.3f} dB'
          + (f'  diff {row["psnr_difference"]:+.3f} dB  changed actions '
             f'{100 * row["changed_action_share"]:.3f}%'
             if 'psnr_difference' in row else '')
          + f'  {row["seconds_per_image"]:.2f} s/image', flush=True)
  results = {
      'machine': f'{platform.node()} {platform.processor() or platform.machine()}'
                 f', {os.cpu_count()} cores',
      'gpu': [d.name for d in tf.config.list_physical_devices('GPU')],
      'date': time.strftime('%Y-%m-%d'), 'tensorflow': tf.__version__,
      'model': (args.npz if args.npz in known_files.REGISTRY else
                os.path.relpath(npz)),
      'noise': 'gaussian:25',
      'images': [name for name, _, _ in pairs], 'rows': rows}
  files.write_text_atomically(args.output_json, json.dumps(results, indent=2))


if __name__ == '__main__':
  main()

r"""Times training episodes of the PixelRL-Pytorch port (Denoise task) on CPU.

  /path/to/python-with-torch bench/bench_peer.py \
      --peer_dir=/tmp/peer/PixelRL-Pytorch [--variant=FCN] [--batch=8] \
      [--crop=70] [--t_max=5] [--repeats=5] \
      [--output_json=bench/results/peer.json]

Runs the public PyTorch port Nhat-Thanh/PixelRL-Pytorch from a checkout
(`--peer_dir`), importing its own modules from `<peer_dir>/Denoise/<variant>`
at run time; none of its code lives in this project. It needs an
interpreter with PyTorch (measured with torch 2.13.0 CPU), NumPy, OpenCV and
the port's checkout; TensorFlow is not imported.

Set-up, following the port's `Denoise/<variant>/train.py` (whose own
defaults are `--sigma=15 --batch-size=64` and device 'cuda' when available;
here the flags give sigma 25, batch 8 and the device is always 'cpu'):
  * `MyFCN(9)` (random initial weights from `torch.manual_seed(1)`, which the
    port's train.py and model.py set; for sigma 25 the port ships no initial
    weights, so its train.py also starts from this random init),
    `torch.optim.Adam(model.parameters(), 1e-3)`, the variant's agent
    (`PixelWiseA3C`, `PixelWiseA3C_ConvGRU` or
    `PixelWiseA3C_InnerState_ConvR`) with gamma 0.95, beta 1e-2, and its
    `setup(...)` with device 'cpu';
  * the port's `utils.dataset.dataset` with noise (0, sigma):
    `generate(crop, crop)` (25 random crops per image with the port's
    `random_crop`) and `load_data(shuffle_arrays=True)`, run in a temporary
    folder over the first `--num_images` gray images of `--image_dir`
    (default: the port's own `Dataset/Denoise/train`);
  * `agent.current_state = State()`, as the port's `train()` does before its
    episode loop.

One timed episode is the body of the port's `PixelWiseA3C.train()` loop
without its logging, evaluation and checkpointing:
  * data: `dataset.get_batch(batch)` (Gaussian noise, clip) and
    `State.reset(noise_image)`;
  * collect: the first part of `agent.train_step(...)`: t_max times the
    model forward pass, softmax / log-softmax, `Categorical(...).sample()`,
    `State.step(actions)` (the cv2 filters and the +-1 moves), the reward,
    `MyLogProb` and `MyEntropy`; then the discounted-return loss and
    `torch.nanmean`, up to the call of `optimizer.zero_grad()`;
  * update: the rest of `train_step`: `optimizer.zero_grad()`,
    `total_loss.backward()`, `optimizer.step()`, `copy_grad(...)` and
    `sync_parameters()`;
  * environment (part of collect): the t_max `State.step` calls alone.
The split is taken by wrapping, on the instances only, `optimizer.zero_grad`
(a timestamp, then the original call) and `State.step` (a timer around the
original call); the port's code is run unchanged.

Adaptation: the port was written for torch 1.x, where `zero_grad()` zeroed
the gradient tensors in place. Its `train_step` steps the optimizer of the
shared model, whose gradients `copy_grad` aliases to the worker model's
gradients; with torch >= 2.0, `zero_grad()` sets them to None instead, so
`optimizer.step()` has no gradients and never changes the weights. By default
this script restores the torch 1.x behaviour (`zero_grad(set_to_none=False)`)
so that every timed episode applies a real Adam update, as in the port's
original training; `--zero_grad_set_to_none` times the port's code under the
torch 2.x default instead (no weight update). The JSON records which was
used and whether the weights changed over the timed episodes.

Each figure is the median over `--repeats` episodes after one warm-up
episode. `torch.set_num_threads` is left at its default and reported.
"""

import argparse
import contextlib
import importlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List

import cv2
import numpy as np
import torch

N_ACTIONS = 9  # train.py's N_ACTIONS; the port's State implements 9 actions.
LEARNING_RATE = 1e-3
GAMMA = 0.95
BETA = 1e-2
NUM_CROPS = 25  # Crops per image made by the port's dataset.generate().

# Variant folder -> (agent class in its model.py, whether setup() takes the
# learning rate, whether train_step() takes the noisy image).
VARIANTS = {
    'FCN': ('PixelWiseA3C', False, False),
    'FCN_ConvGRU': ('PixelWiseA3C_ConvGRU', True, True),
    'FCN_ConvGRU_RMC': ('PixelWiseA3C_InnerState_ConvR', True, True),
}


def _git_commit(path: str) -> str:
  """Returns the checked-out commit of the git work tree at `path`."""
  try:
    return subprocess.run(['git', '-C', path, 'rev-parse', 'HEAD'],
                          check=True, capture_output=True,
                          text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return 'unknown'


def _import_port(variant_dir: str) -> Dict[str, Any]:
  """Imports the port's modules of one Denoise variant from its folder."""
  sys.path.insert(0, variant_dir)
  return {name: importlib.import_module(name)
          for name in ('MyFCN', 'model', 'State', 'utils.common',
                       'utils.dataset')}


def _build_dataset(port: Dict[str, Any], image_dir: str, num_images: int,
                   crop: int, sigma: float) -> Any:
  """Builds the port's training dataset over the first `num_images` images.

  Runs the port's `generate` and `load_data` in a temporary folder, since
  `generate` reads every image of `<dataset_dir>/train` and writes
  `labels_train.npy` to the working directory.

  Args:
    port: The modules returned by `_import_port`.
    image_dir: A folder of images (read as gray by the port).
    num_images: How many images, in sorted order, to crop from.
    crop: The crop height and width.
    sigma: The Gaussian noise standard deviation on the 0..255 scale.

  Returns:
    The port's `dataset` object, ready for `get_batch`.
  """
  names = sorted(os.listdir(image_dir))[:num_images]
  cwd = os.getcwd()
  with tempfile.TemporaryDirectory() as tmp:
    subset_dir = os.path.join(tmp, 'images', 'train')
    os.makedirs(subset_dir)
    for name in names:
      os.symlink(os.path.abspath(os.path.join(image_dir, name)),
                 os.path.join(subset_dir, name))
    os.chdir(tmp)
    try:
      train_set = port['utils.dataset'].dataset(
          os.path.join(tmp, 'images'), 'train', (0.0, sigma))
      with contextlib.redirect_stdout(io.StringIO()):  # one line per image
        train_set.generate(crop, crop)
      train_set.load_data(shuffle_arrays=True)
    finally:
      os.chdir(cwd)
  return train_set


class _Timer:
  """Accumulates the time spent in wrapped calls."""

  def __init__(self):
    self.total = 0.0

  def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args, **kwargs):
      start = time.perf_counter()
      try:
        return fn(*args, **kwargs)
      finally:
        self.total += time.perf_counter() - start
    return timed


def bench_episodes(args: argparse.Namespace) -> Dict[str, Any]:
  """Builds the port's agent and times its training episodes.

  Args:
    args: The parsed command-line flags.

  Returns:
    The settings and timings, as written to the JSON file.
  """
  agent_name, setup_takes_lr, step_takes_noise = VARIANTS[args.variant]
  variant_dir = os.path.join(os.path.abspath(args.peer_dir), 'Denoise',
                             args.variant)
  port = _import_port(variant_dir)
  image_dir = args.image_dir or os.path.join(args.peer_dir, 'Dataset',
                                             'Denoise', 'train')
  np.random.seed(args.seed)
  torch.manual_seed(1)  # As the port's train.py.
  train_set = _build_dataset(port, image_dir, args.num_images, args.crop,
                             args.sigma)

  model = port['MyFCN'].MyFCN(N_ACTIONS).to('cpu')
  optimizer = torch.optim.Adam(model.parameters(), LEARNING_RATE)
  agent = getattr(port['model'], agent_name)(model, args.t_max, GAMMA, BETA)
  setup_args = [optimizer] + ([LEARNING_RATE] if setup_takes_lr else [])
  agent.setup(*setup_args, args.batch, port['utils.common'].PSNR, 'cpu',
              None, None)
  agent.current_state = port['State'].State()

  marks = {}
  zero_grad = optimizer.zero_grad
  set_to_none = args.zero_grad_set_to_none

  def marked_zero_grad(*unused_args, **unused_kwargs):
    marks['zero_grad'] = time.perf_counter()
    zero_grad(set_to_none=set_to_none)

  optimizer.zero_grad = marked_zero_grad
  env_timer = _Timer()
  agent.current_state.step = env_timer.wrap(agent.current_state.step)

  def episode() -> Dict[str, float]:
    env_timer.total = 0.0
    start = time.perf_counter()
    noise_image, labels, _ = train_set.get_batch(args.batch)
    agent.current_state.reset(noise_image)
    data_end = time.perf_counter()
    if step_takes_noise:
      _, loss = agent.train_step(noise_image, labels)
    else:
      _, loss = agent.train_step(labels)
    end = time.perf_counter()
    return {'episode_s': end - start, 'data_s': data_end - start,
            'collect_s': marks['zero_grad'] - data_end,
            'update_s': end - marks['zero_grad'],
            'environment_s': env_timer.total, 'loss': float(loss.detach())}

  episode()  # warm-up
  before = [p.detach().clone() for p in model.parameters()]
  runs = [episode() for _ in range(args.repeats)]
  weights_updated = any(not torch.equal(p, b)
                        for p, b in zip(model.parameters(), before))

  def median(key: str) -> float:
    return statistics.median(run[key] for run in runs)

  return {
      'peer_repo': 'Nhat-Thanh/PixelRL-Pytorch',
      'peer_commit': _git_commit(args.peer_dir),
      'variant': f'Denoise/{args.variant}',
      'agent': agent_name,
      'machine': f'{platform.node()} '
                 f'{platform.processor() or platform.machine()}, '
                 f'{os.cpu_count()} cores',
      'date': time.strftime('%Y-%m-%d %H:%M:%S'),
      'python': platform.python_version(),
      'torch_version': torch.__version__,
      'numpy_version': np.__version__,
      'cv2_version': cv2.__version__,
      'threads': torch.get_num_threads(),
      'interop_threads': torch.get_num_interop_threads(),
      'cv2_threads': cv2.getNumThreads(),
      'device': 'cpu',
      'batch': args.batch,
      'crop': args.crop,
      't_max': args.t_max,
      'n_actions': N_ACTIONS,
      'sigma': args.sigma,
      'image_dir': os.path.abspath(image_dir),
      'num_images': args.num_images,
      'repeats': args.repeats,
      'zero_grad_set_to_none': set_to_none,
      'weights_updated': weights_updated,
      'episode_s': median('episode_s'),
      'episode_s_all': [run['episode_s'] for run in runs],
      'data_s': median('data_s'),
      'collect_s': median('collect_s'),
      'update_s': median('update_s'),
      'environment_s': median('environment_s'),
      'network_s': median('episode_s') - median('environment_s'),
      'loss_all': [run['loss'] for run in runs],
  }


def _print_table(results: Dict[str, Any]) -> None:
  print(f'PixelRL-Pytorch {results["variant"]} @ '
        f'{results["peer_commit"][:12]}, torch {results["torch_version"]}, '
        f'threads {results["threads"]} (interop '
        f'{results["interop_threads"]}, cv2 {results["cv2_threads"]}), '
        f'zero_grad(set_to_none={results["zero_grad_set_to_none"]}), '
        f'weights updated: {results["weights_updated"]}')
  print(f'{"what":<36}{"total s":>9}{"data s":>8}{"collect s":>11}'
        f'{"update s":>10}{"env s":>8}')
  what = (f'train episode, batch {results["batch"]}, '
          f'{results["crop"]}x{results["crop"]}, T={results["t_max"]}')
  print(f'{what:<36}{results["episode_s"]:>9.2f}{results["data_s"]:>8.3f}'
        f'{results["collect_s"]:>11.2f}{results["update_s"]:>10.2f}'
        f'{results["environment_s"]:>8.2f}')
  all_runs: List[float] = results['episode_s_all']
  print('episodes s: ' + ', '.join(f'{t:.2f}' for t in all_runs))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--peer_dir', required=True,
                      help='Checkout of Nhat-Thanh/PixelRL-Pytorch.')
  parser.add_argument('--variant', default='FCN', choices=sorted(VARIANTS),
                      help='Folder under the port\'s Denoise/.')
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--crop', type=int, default=70)
  parser.add_argument('--t_max', type=int, default=5)
  parser.add_argument('--sigma', type=float, default=25.0)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--image_dir', default=None,
                      help='Gray training images; default '
                           '<peer_dir>/Dataset/Denoise/train.')
  parser.add_argument('--num_images', type=int, default=16,
                      help='Images to crop from (25 crops each).')
  parser.add_argument('--seed', type=int, default=0,
                      help='NumPy seed for the crops, noise and shuffles.')
  parser.add_argument('--zero_grad_set_to_none', action='store_true',
                      help='Run zero_grad() with the torch 2.x default, under '
                           'which the port never updates its weights.')
  parser.add_argument('--output_json', default='bench/results/peer.json')
  args = parser.parse_args()
  results = bench_episodes(args)
  _print_table(results)
  os.makedirs(os.path.dirname(os.path.abspath(args.output_json)),
              exist_ok=True)
  with open(args.output_json, 'w') as f:
    json.dump(results, f, indent=2)


if __name__ == '__main__':
  main()

r"""Trains the PixelRL-Pytorch port for a wall-clock budget; PSNR over time.

  /path/to/python-with-torch bench/peer_time_to_quality.py \
      --peer_dir=/tmp/peer/PixelRL-Pytorch --train_dir=TRAIN_PNG_DIR \
      --split_npz=SPLIT.npz --minutes=10 --eval_every_minutes=2 \
      [--variant=FCN_ConvGRU] [--batch=8] [--crop=70] [--t_max=5] \
      [--sigma=25] [--learning_rate=1e-3] [--seed=0] [--torch_seed=1] \
      [--threads=2] [--eval_batch=16] [--eval_at_start] \
      [--output_json=bench/results/peer_time_to_quality.json]

`bench/peer_setup.sh` makes the interpreter (a virtual environment with
torch 2.13.0 CPU, NumPy and OpenCV) and the port's checkout at the commit
measured; it prints the `--peer_dir` and the interpreter to use.

Runs the public PyTorch port Nhat-Thanh/PixelRL-Pytorch from a checkout
(`--peer_dir`), importing its own modules from `<peer_dir>/Denoise/<variant>`
at run time (through `bench_peer.py`, which sits next to this script); none
of its code lives in this project. TensorFlow is not imported. The device is
always the CPU.

Variant: the default, `FCN_ConvGRU`, is the port's "PixelRL + convGRU"
(`MyFCN` with a ConvGRU in the policy branch, agent `PixelWiseA3C_ConvGRU`),
the model of this project's `configs/denoise.gin`. The port also has `FCN`
(no recurrent state) and `FCN_ConvGRU_RMC` (ConvGRU plus the learned reward
map convolution); both can be chosen.

Set-up, as `bench_peer.py` and the port's `Denoise/<variant>/train.py`:
  * the port's `utils.dataset.dataset` with noise (0, sigma) over every image
    of `--train_dir` (read as gray by the port): `generate(crop, crop)` (25
    random crops per image, the port's `random_crop`) and
    `load_data(shuffle_arrays=True)`; each batch then gets fresh noise
    N(0, sigma) / 255 and the port's clipping to [0, 1] in `get_batch`;
  * `MyFCN(9)`, randomly initialised after `torch.manual_seed(torch_seed)`
    (1, as the port's train.py, by default); the port ships initial weights
    only for sigma 15, so for sigma 25 its train.py also starts from this
    random init;
  * `torch.optim.Adam(model.parameters(), learning_rate)` (the port's 1e-3 by
    default), the variant's agent with the port's gamma 0.95 and beta 1e-2
    (and its own defaults pi_loss_coef 1.0, v_loss_coef 0.5), `setup(...)`
    with device 'cpu', and `agent.current_state = State()`. The port's
    learning-rate schedule is commented out in its `train()` loop, so the
    rate is constant, as in the port's training.

One training episode is the body of the port's `train()` loop without its
logging, evaluation and checkpointing: `get_batch(batch)`,
`State.reset(noise_image)` and `agent.train_step(...)` (t_max sampled steps,
the discounted-return loss, the Adam update, `copy_grad` and
`sync_parameters`).

Adaptation (found by `bench_peer.py`): the port was written for torch 1.x,
where `zero_grad()` zeroed the gradient tensors in place. Its `train_step`
steps the optimizer of the shared model, whose gradients `copy_grad` aliases
to the worker model's gradients; with torch >= 2.0, `zero_grad()` sets them
to None instead and the weights never change. `optimizer.zero_grad` is
therefore replaced, on the instance only, by `zero_grad(set_to_none=False)`,
the torch 1.x behaviour; the port's code is otherwise run unchanged. As in
the port, the first episode's gradients are not applied (the shared model
has no gradients yet when its optimizer steps); each later episode applies
one Adam update.

Time accounting: the training clock runs only over the training episodes
(data, rollout, update) and starts when the first episode starts; the
seconds before it (imports, data set, model) are reported as
`setup_seconds`. Whenever the clock passes a multiple of
`--eval_every_minutes` (and when it passes `--minutes`, which ends the
training), the clock is stopped, the worker model's weights (those the port
evaluates and saves; equal to the shared model's after `sync_parameters`)
are deep-copied, evaluated and the clock resumed. Episodes are not cut, so
a point lands at the end of the episode that crosses its mark; its
`train_seconds` is the time actually trained, and the last point may pass
the budget by up to one episode (the episode that crosses `--minutes` runs
to its end). `--eval_at_start` adds a point at 0 seconds (the initial
weights) before the others.

Evaluation of a snapshot: a copy of the model in eval mode under
`torch.no_grad()`, on the `noisy` images of `--split_npz` (float32
`[N, H, W]` arrays `noisy` and `clean` on the 0..1 scale), `--eval_batch`
images at a time: `t_max` greedy steps, `argmax` of the softmax policy per
pixel, applied by the port's `State.step` (moves -1, 0, +1; Gaussian 0.5,
bilateral 0.1, median 5, Gaussian 1.5, bilateral 1.0, box 5), which also
carries the ConvGRU state to the next step for the ConvGRU variants. After
each step, and for the input, the PSNR of the reference protocol: clip to
[0, 1], `(x * 255 + 0.5).astype(uint8)`, `cv2.PSNR(clean_u8, restored_u8)`,
mean over the images.

Output: a line per evaluation point as it goes, and the JSON file (written
again, whole, after every point, through a temporary file and `os.replace`;
`complete` is true once the budget is spent).
"""

import argparse
import copy
import functools
import json
import os
import platform
import tempfile
import time
from typing import Any, Dict, List

_START = time.perf_counter()  # Set-up time includes the imports below.

# pylint: disable=g-import-not-at-top,wrong-import-position
import cv2
import numpy as np
import torch

import bench_peer
# pylint: enable=g-import-not-at-top,wrong-import-position
# pylint: disable=protected-access  # bench_peer's helpers, shared on purpose.

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
CPU_FLAGS = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16')
# The port's PixelWiseA3C* defaults, not set by its train.py.
PI_LOSS_COEF = 1.0
V_LOSS_COEF = 0.5


def _machine() -> Dict[str, Any]:
  """Returns the CPU model, count and a few instruction-set flags."""
  model, flags = platform.processor() or platform.machine(), set()
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        key, _, value = line.partition(':')
        if key.strip() == 'model name':
          model = value.strip()
        elif key.strip() == 'flags':
          flags = set(value.split())
  except OSError:
    pass
  return {'cpu_model': model, 'cpu_count': os.cpu_count(),
          'cpu_flags': {flag: flag in flags for flag in CPU_FLAGS}}


def _to_u8(images: np.ndarray) -> np.ndarray:
  """Quantises 0..1 images as the reference protocol does."""
  return (np.clip(images, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def mean_psnr(clean: np.ndarray, restored: np.ndarray) -> float:
  """Mean over images of `cv2.PSNR` between the quantised images.

  Args:
    clean: `[N, H, W]` clean images on the 0..1 scale.
    restored: `[N, H, W]` images to score, on the 0..1 scale (clipped here).

  Returns:
    The mean PSNR in dB.
  """
  clean_u8, restored_u8 = _to_u8(clean), _to_u8(restored)
  return float(np.mean([cv2.PSNR(c, r)
                        for c, r in zip(clean_u8, restored_u8)]))


def greedy_restore(port: Dict[str, Any], model: torch.nn.Module,
                   recurrent: bool, noisy: np.ndarray, t_max: int,
                   eval_batch: int) -> List[np.ndarray]:
  """Runs the greedy policy for `t_max` steps with the port's `State`.

  Args:
    port: The modules returned by `bench_peer._import_port`.
    model: The port's `MyFCN`, in eval mode.
    recurrent: Whether the variant carries a ConvGRU state (its model
      returns it and its `State.step` takes it).
    noisy: `[N, H, W]` float32 noisy images on the 0..1 scale.
    t_max: The number of steps.
    eval_batch: Images per forward pass.

  Returns:
    `t_max` arrays `[N, H, W]`: the images after each step (not clipped).
  """
  steps = [[] for _ in range(t_max)]
  with torch.no_grad():
    for start in range(0, len(noisy), eval_batch):
      state = port['State'].State()
      state.reset(np.ascontiguousarray(
          noisy[start:start + eval_batch, np.newaxis], dtype=np.float32))
      for t in range(t_max):
        if recurrent:
          pi, _, inner_state = model(torch.as_tensor(state.tensor))
        else:
          pi, _ = model(torch.as_tensor(state.image))
        actions = torch.argmax(torch.softmax(pi, dim=1), dim=1)
        if recurrent:
          state.step(actions, inner_state)
        else:
          state.step(actions)
        steps[t].append(state.image[:, 0].copy())
  return [np.concatenate(images) for images in steps]


def _write_json(path: str, results: Dict[str, Any]) -> None:
  """Writes `results` to `path` through a temporary file and a rename."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
  try:
    with os.fdopen(fd, 'w') as f:
      json.dump(results, f, indent=2)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def _image_count(train_dir: str) -> int:
  """Counts the images of `train_dir`, which must hold images only."""
  names = sorted(os.listdir(train_dir))
  others = [n for n in names if not n.lower().endswith(IMAGE_SUFFIXES)]
  if others or not names:
    raise ValueError(f'--train_dir={train_dir} must hold images only (the '
                     f'port reads every file); found {others[:5] or "none"}')
  return len(names)


def run(args: argparse.Namespace) -> Dict[str, Any]:
  """Trains the port's agent for the budget, evaluating along the way.

  Args:
    args: The parsed command-line flags.

  Returns:
    The results, as written to the JSON file.
  """
  torch.set_num_threads(args.threads)
  agent_name, setup_takes_lr, step_takes_noise = bench_peer.VARIANTS[
      args.variant]
  recurrent = step_takes_noise  # The ConvGRU variants.
  learning_rate = (bench_peer.LEARNING_RATE if args.learning_rate is None
                   else args.learning_rate)
  variant_dir = os.path.join(os.path.abspath(args.peer_dir), 'Denoise',
                             args.variant)
  port = bench_peer._import_port(variant_dir)
  imported = time.perf_counter()

  split = np.load(args.split_npz)
  noisy = np.asarray(split['noisy'], dtype=np.float32)
  clean = np.asarray(split['clean'], dtype=np.float32)
  if noisy.ndim != 3 or noisy.shape != clean.shape:
    raise ValueError(f'{args.split_npz}: noisy {noisy.shape} and clean '
                     f'{clean.shape} must be equal [N, H, W] shapes')
  np.random.seed(args.seed)
  num_images = _image_count(args.train_dir)
  train_set = bench_peer._build_dataset(
      port, args.train_dir, num_images, args.crop, args.sigma)
  data_ready = time.perf_counter()

  torch.manual_seed(args.torch_seed)
  model = port['MyFCN'].MyFCN(bench_peer.N_ACTIONS).to('cpu')
  optimizer = torch.optim.Adam(model.parameters(), learning_rate)
  optimizer.zero_grad = functools.partial(optimizer.zero_grad,
                                          set_to_none=False)
  agent = getattr(port['model'], agent_name)(model, args.t_max,
                                             bench_peer.GAMMA, bench_peer.BETA)
  setup_args = [optimizer] + ([learning_rate] if setup_takes_lr else [])
  agent.setup(*setup_args, args.batch, port['utils.common'].PSNR, 'cpu',
              None, None)
  agent.current_state = port['State'].State()
  eval_model = copy.deepcopy(agent.model)  # No draw from torch's generator.
  eval_model.train(False)
  setup_seconds = time.perf_counter() - _START

  settings = dict(vars(args))
  settings.update({
      'learning_rate': learning_rate, 'gamma': bench_peer.GAMMA,
      'beta': bench_peer.BETA, 'pi_loss_coef': PI_LOSS_COEF,
      'v_loss_coef': V_LOSS_COEF, 'n_actions': bench_peer.N_ACTIONS,
      'optimizer': 'Adam (torch defaults but lr)',
      'learning_rate_schedule': 'constant (the port\'s schedule line in '
                                'train() is commented out)',
      'initial_weights': f'random, torch.manual_seed({args.torch_seed})',
      'agent': agent_name, 'device': 'cpu',
      'train_images': num_images,
      'train_crops': int(train_set.labels.shape[0]),
      'noise': 'N(0, sigma) / 255 per batch, clipped to [0, 1] (the port\'s '
               'get_batch)',
      'split_images': int(noisy.shape[0]),
      'split_shape': list(noisy.shape[1:]),
      'interop_threads': torch.get_num_interop_threads(),
      'cv2_threads': cv2.getNumThreads(),
  })
  results = {
      'peer_repo': 'Nhat-Thanh/PixelRL-Pytorch',
      'peer_commit': bench_peer._git_commit(args.peer_dir),
      'variant': f'Denoise/{args.variant}',
      'adaptation_notes': [
          'optimizer.zero_grad runs as zero_grad(set_to_none=False) (the '
          'torch 1.x behaviour); under the torch 2.x default the port\'s '
          'train_step never updates the weights.',
          'The first episode applies no update (the port steps the shared '
          'model before copy_grad has given it gradients).',
          'Evaluation: greedy argmax actions with the port\'s State.step, '
          'the ConvGRU state carried across steps where the variant has '
          'one; PSNR by cv2.PSNR on (clip(x) * 255 + 0.5) uint8 images.',
      ],
      'settings': settings,
      'machine': _machine(),
      'date': time.strftime('%Y-%m-%d %H:%M:%S'),
      'python': platform.python_version(),
      'torch_version': torch.__version__,
      'numpy_version': np.__version__,
      'cv2_version': cv2.__version__,
      'setup_seconds': setup_seconds,
      'setup_breakdown_seconds': {
          'imports': imported - _START, 'data': data_ready - imported,
          'model': time.perf_counter() - data_ready},
      'psnr_protocol': 'clip [0,1], (x*255+0.5).astype(uint8), cv2.PSNR, '
                       'mean over images',
      'points': [],
      'episodes_total': 0,
      'train_seconds_total': 0.0,
      'complete': False,
  }
  psnr_input = mean_psnr(clean, noisy)
  print(f'PixelRL-Pytorch {results["variant"]} @ '
        f'{results["peer_commit"][:12]}, torch {torch.__version__}, threads '
        f'{args.threads}, set-up {setup_seconds:.1f} s; split '
        f'{noisy.shape[0]} x {noisy.shape[1]}x{noisy.shape[2]}, input PSNR '
        f'{psnr_input:.2f} dB')
  print(f'{"train s":>8}{"episodes":>9}{"input":>7}' +
        ''.join(f'{f"t={t + 1}":>7}' for t in range(args.t_max)) +
        f'{"eval s":>8}')

  last_weights = [None]

  def evaluate(train_seconds: float, episodes: int, losses: List[float],
               rewards: List[float]) -> None:
    """Evaluates a copy of the current weights; records and writes a point."""
    start = time.perf_counter()
    weights = copy.deepcopy(agent.model.state_dict())
    eval_model.load_state_dict(weights)
    restored = greedy_restore(port, eval_model, recurrent, noisy, args.t_max,
                              args.eval_batch)
    psnrs = [mean_psnr(clean, images) for images in restored]
    changed = (None if last_weights[0] is None else max(
        float(torch.max(torch.abs(weights[k] - last_weights[0][k])))
        for k in weights))
    last_weights[0] = weights
    eval_seconds = time.perf_counter() - start
    results['points'].append({
        'train_seconds': train_seconds, 'episodes': episodes,
        'psnr_per_step': psnrs, 'psnr_input': psnr_input,
        'eval_seconds': eval_seconds,
        'max_weight_change_since_previous_point': changed,
        'mean_loss_since_previous_point': (
            float(np.mean(losses)) if losses else None),
        'mean_sum_reward_since_previous_point': (
            float(np.mean(rewards)) if rewards else None),
    })
    results['episodes_total'] = episodes
    results['train_seconds_total'] = train_seconds
    print(f'{train_seconds:>8.1f}{episodes:>9d}{psnr_input:>7.2f}' +
          ''.join(f'{p:>7.2f}' for p in psnrs) + f'{eval_seconds:>8.1f}',
          flush=True)
    _write_json(args.output_json, results)

  budget = args.minutes * 60.0
  every = args.eval_every_minutes * 60.0
  marks = [every * k for k in range(1, int(budget / every) + 1)
           if every * k < budget - 1e-6] + [budget]
  if args.eval_at_start:
    evaluate(0.0, 0, [], [])
  train_seconds, episodes, mark = 0.0, 0, 0
  losses, rewards = [], []
  while train_seconds < budget:
    start = time.perf_counter()
    noise_image, labels, _ = train_set.get_batch(args.batch)
    agent.current_state.reset(noise_image)
    if step_takes_noise:
      sum_reward, loss = agent.train_step(noise_image, labels)
    else:
      sum_reward, loss = agent.train_step(labels)
    train_seconds += time.perf_counter() - start
    episodes += 1
    losses.append(float(loss.detach()))
    rewards.append(float(sum_reward) * 255)  # As the port's train() prints.
    if train_seconds >= marks[mark]:
      while mark < len(marks) and train_seconds >= marks[mark]:
        mark += 1
      evaluate(train_seconds, episodes, losses, rewards)
      losses, rewards = [], []
  results['complete'] = True
  _write_json(args.output_json, results)
  print(f'{episodes} episodes in {train_seconds:.1f} s of training '
        f'({60 * episodes / train_seconds:.2f} per minute); '
        f'{args.output_json}')
  return results


def main():
  """Parses the flags and runs the benchmark."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--peer_dir', required=True,
                      help='Checkout of Nhat-Thanh/PixelRL-Pytorch.')
  parser.add_argument('--variant', default='FCN_ConvGRU',
                      choices=sorted(bench_peer.VARIANTS),
                      help='Folder under the port\'s Denoise/.')
  parser.add_argument('--train_dir', required=True,
                      help='Folder of 8-bit gray training images only.')
  parser.add_argument('--split_npz', required=True,
                      help='npz with float32 [N, H, W] "noisy" and "clean" '
                           'on the 0..1 scale.')
  parser.add_argument('--minutes', type=float, required=True,
                      help='Training wall-clock budget.')
  parser.add_argument('--eval_every_minutes', type=float, default=2.0)
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--crop', type=int, default=70)
  parser.add_argument('--t_max', type=int, default=5)
  parser.add_argument('--sigma', type=float, default=25.0,
                      help='Training noise on the 0..255 scale.')
  parser.add_argument('--learning_rate', type=float, default=None,
                      help='Adam learning rate; default the port\'s 1e-3.')
  parser.add_argument('--seed', type=int, default=0,
                      help='NumPy seed: crops, training noise, shuffles.')
  parser.add_argument('--torch_seed', type=int, default=1,
                      help='torch seed: initial weights, action sampling '
                           '(the port\'s train.py uses 1).')
  parser.add_argument('--threads', type=int, default=2,
                      help='torch.set_num_threads.')
  parser.add_argument('--eval_batch', type=int, default=16,
                      help='Split images per evaluation forward pass.')
  parser.add_argument('--eval_at_start', action='store_true',
                      help='Also evaluate the initial weights (a point at 0 '
                           's).')
  parser.add_argument('--output_json',
                      default='bench/results/peer_time_to_quality.json')
  args = parser.parse_args()
  if args.minutes <= 0 or args.eval_every_minutes <= 0:
    parser.error('--minutes and --eval_every_minutes must be positive')
  run(args)


if __name__ == '__main__':
  main()

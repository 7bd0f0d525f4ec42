"""What this machine is: its CPU, the CPU features that matter, its GPUs.

Benchmarks record `describe()` with every figure (the CPU model changes
between machines of the same kind), and training's
`mixed_precision='auto'` asks `native_bfloat16()` whether bfloat16
arithmetic is native here (a CPU with AMX or AVX512_BF16, or a GPU of
compute capability 8.0 or later); elsewhere bfloat16 is emulated and slower
than float32.
"""

import os
import platform
from typing import Dict, FrozenSet, List

# CPU flags (as /proc/cpuinfo spells them) with native bfloat16 arithmetic.
NATIVE_BFLOAT16_CPU_FLAGS = ('amx_bf16', 'avx512_bf16')
# The flags a benchmark records (vector width and bfloat16 support).
RECORDED_CPU_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16',
                      'amx_tile', 'amx_bf16', 'amx_int8')
# GPUs of this compute capability or later multiply bfloat16 natively.
NATIVE_BFLOAT16_GPU_CAPABILITY = (8, 0)

_CPUINFO = '/proc/cpuinfo'


def _cpuinfo_field(name: str) -> str:
  try:
    with open(_CPUINFO) as f:
      for line in f:
        key, _, value = line.partition(':')
        if key.strip() == name:
          return value.strip()
  except OSError:
    pass
  return ''


def cpu_model() -> str:
  """The CPU's model name (e.g. `'AMD EPYC'`), or the platform's guess."""
  return (_cpuinfo_field('model name') or platform.processor() or
          platform.machine())


def cpu_flags() -> FrozenSet[str]:
  """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
  return frozenset(_cpuinfo_field('flags').split())


def gpus() -> List[Dict[str, object]]:
  """`{'name', 'compute_capability'}` of every GPU TensorFlow sees."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  found = []
  for device in tf.config.list_physical_devices('GPU'):
    details = tf.config.experimental.get_device_details(device)
    found.append({'name': details.get('device_name', device.name),
                  'compute_capability': details.get('compute_capability')})
  return found


def native_bfloat16() -> str:
  """Where bfloat16 is native: `'gpu'`, `'cpu'` or `''` (nowhere).

  With a GPU TensorFlow places the network there, so the GPU decides; on a
  CPU-only machine the CPU's flags do.
  """
  devices = gpus()
  if devices:
    return 'gpu' if all(
        tuple(d['compute_capability'] or (0, 0)) >=
        NATIVE_BFLOAT16_GPU_CAPABILITY for d in devices) else ''
  flags = cpu_flags()
  return 'cpu' if any(f in flags for f in NATIVE_BFLOAT16_CPU_FLAGS) else ''


def describe() -> Dict[str, object]:
  """The machine as a benchmark records it."""
  flags = cpu_flags()
  return {'node': platform.node(), 'cpu_model': cpu_model(),
          'cpu_count': os.cpu_count(),
          'cpu_flags': [f for f in RECORDED_CPU_FLAGS if f in flags],
          'gpus': gpus(), 'native_bfloat16': native_bfloat16()}


def summary_line(description: Dict[str, object]) -> str:
  """One line naming a `describe()` result, for tables."""
  gpu_names = ', '.join(str(g['name']) for g in description.get('gpus', []))
  return (f'{description["cpu_model"]}, {description["cpu_count"]} cores '
          f'({" ".join(description["cpu_flags"]) or "no AVX2"})' +
          (f', {gpu_names}' if gpu_names else ', no GPU'))

#!/usr/bin/env bash
# The checks that need a GPU, in one run (docs/benchmarks.md says which GPU
# figures exist):
#   1. the tests marked `gpu` (tests/gpu_test.py): XLA training gives the
#      weights of graph training within a tolerance; mixed_float16 (with
#      loss scaling) and mixed_bfloat16 training follow float32 training
#      (their updates point the same way and have about the same size); and,
#      with two or more GPUs only, mirrored training over the local GPUs
#      gives the weights of one replica (skipped, saying so, on one GPU);
#   2. bench_core.py at batch 8 and 64 ("+convGRU", 70x70, t_max 5) for
#      float32, XLA, mixed_bfloat16 and mixed_float16, and the 481x321
#      restoration;
#   3. precision_check.py: greedy PSNR of the released sigma-25 model under
#      XLA, mixed_bfloat16 and (on a GPU) mixed_float16 against float32.
# Prints one table at the end; JSON goes to $OUT (or bench/results/gpu).
#
#   bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench/results/gpu}"
mkdir -p "$out"
python -c "import tensorflow as tf; print('GPUs:', tf.config.list_physical_devices('GPU'))"
python -m pytest -q -m gpu tests 2>&1 | tail -n 15 | tee "$out/gpu_tests.txt"
for setting in "float32::" "xla:--jit_compile:" "mixed_bfloat16::--mixed_precision=mixed_bfloat16" "mixed_float16::--mixed_precision=mixed_float16"; do
  IFS=: read -r name jit mixed <<< "$setting"
  python bench/bench_core.py --batches=8,64 --repeats=5 --skip_memory \
      --update_recompute=auto $jit $mixed --output_json="$out/core_$name.json" \
      2>&1 | tail -n 5
done
python bench/precision_check.py --output_json="$out/precision.json" 2>&1 | tail -n 5
python - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print(f'{"setting":<16}{"batch-8 s":>11}{"batch-64 s":>12}{"restore s":>11}'
      f'{"effic. b64":>12}{"PSNR diff dB":>14}{"changed %":>11}')
precision = json.loads((out / 'precision.json').read_text())['rows']
for name in ('float32', 'xla', 'mixed_bfloat16', 'mixed_float16'):
  path = out / f'core_{name}.json'
  if not path.exists():
    continue
  core = json.loads(path.read_text())
  episodes = {row['batch']: row for row in core['episodes']}
  quality = precision.get(name, {})
  print(f'{name:<16}{episodes[8]["episode_s"]:>11.3f}'
        f'{episodes[64]["episode_s"]:>12.3f}'
        f'{core["restore"]["restore_s"]:>11.3f}'
        f'{episodes[64]["efficiency"]:>12.2f}'
        f'{quality.get("psnr_difference", 0.0):>14.3f}'
        f'{100 * quality.get("changed_action_share", 0.0):>11.3f}')
PY

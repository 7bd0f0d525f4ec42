"""Many command lines of one command, run one after another in one process.

Every start of a command costs the import of TensorFlow (seconds on a busy
2-core machine). Tests that check what a command prints and leaves behind
for many command lines run them through `run_cases`: one Python process
imports the command's module once and runs its real `main` for each case
through `cli.guard` and `cli.parse_flags` (the path `cli.run` takes), with
absl's flags, gin and the environment reset between cases, each case's
stdout and stderr captured and its exit status taken from `SystemExit`.
What only a fresh interpreter shows (`python -m` itself, signals) keeps its
own subprocess test per command.
"""

import dataclasses
import json
import pathlib
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT


@dataclasses.dataclass
class Outcome:
  """Exit status and output of one command line."""
  status: int
  stdout: str
  stderr: str


@dataclasses.dataclass
class Case:
  """One command line: its arguments and, optionally, its whole environment."""
  args: Sequence[str]
  env: Optional[Dict[str, str]] = None


_DRIVER = r'''
import contextlib, importlib, io, json, os, sys
import pixelrl_tf
from absl import flags
import gin
from pixelrl_tf import cli
command, cases_path, results_path = sys.argv[1:]
module = importlib.import_module('pixelrl_tf.' + command)
with open(cases_path) as f:
  cases = json.load(f)
own_environment = dict(os.environ)
results = []
for case in cases:
  flags.FLAGS.unparse_flags()
  gin.clear_config()
  os.environ.clear()
  os.environ.update(own_environment if case['env'] is None else case['env'])
  stdout, stderr = io.StringIO(), io.StringIO()
  status = 0
  with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    try:
      cli.guard(module.main)(
          cli.parse_flags(['pixelrl_tf.' + command] + case['args']))
    except SystemExit as exit:
      status = exit.code if isinstance(exit.code, int) else int(
          exit.code is not None)
  results.append({'status': status, 'stdout': stdout.getvalue(),
                  'stderr': stderr.getvalue()})
os.environ.clear()
os.environ.update(own_environment)
with open(results_path, 'w') as f:
  json.dump(results, f)
'''


def run_cases(command: str, cases: Sequence[Case], folder: pathlib.Path,
              env: Optional[Dict[str, str]] = None,
              cwd: pathlib.Path = PROJECT_ROOT) -> Tuple[List[Outcome], str]:
  """Runs `python -m pixelrl_tf.<command>` for every case in one process.

  Args:
    command: the module name below `pixelrl_tf` (`train`, `eval`, ...).
    cases: the command lines, in order.
    folder: where the cases and results files are written.
    env: the driver process's environment (default: this process's); a
      case's own `env` replaces it for that case.
    cwd: the folder the commands run in.

  Returns:
    One `Outcome` per case and the driver's own stderr.
  """
  folder.mkdir(parents=True, exist_ok=True)
  cases_path = folder / f'{command}_cases.json'
  results_path = folder / f'{command}_results.json'
  cases_path.write_text(json.dumps(
      [{'args': list(case.args), 'env': case.env} for case in cases]))
  completed = subprocess.run(
      [sys.executable, '-c', _DRIVER, command, str(cases_path),
       str(results_path)], cwd=cwd, env=env, capture_output=True, text=True,
      timeout=HANG_TIMEOUT_SECONDS, check=False)
  assert completed.returncode == 0, completed.stderr[-3000:]
  results = json.loads(results_path.read_text())
  return [Outcome(**result) for result in results], completed.stderr

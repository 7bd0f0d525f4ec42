"""The package installs like a Python package and runs from any folder.

A fresh virtual environment (with the system's site-packages for the pinned
stack, so nothing is downloaded) gets `pip install` of a copy of the
project's source; its console entry point then trains the bare-named tiny
config from an unrelated folder, importing the installed copy.
"""

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import tomllib

import gin
import pytest

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT

import pixelrl_tf
from pixelrl_tf import cli
from pixelrl_tf import console
from pixelrl_tf.jobs import train_lib  # noqa: F401  (its configurables)

SOURCE_FILES = ('pyproject.toml', 'setup.py', 'README.md')
SOURCE_FOLDERS = ('pixelrl_tf', 'configs')


def _copy_source(destination: pathlib.Path) -> None:
  destination.mkdir()
  for name in SOURCE_FILES:
    shutil.copy2(PROJECT_ROOT / name, destination / name)
  for name in SOURCE_FOLDERS:
    shutil.copytree(PROJECT_ROOT / name, destination / name,
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


def _clean_environment():
  env = dict(os.environ)
  env.pop('PYTHONPATH', None)
  return env


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
  """A virtual environment with the package installed from a source copy."""
  # Offline, the build uses this interpreter's own build tools.
  for tool in ('setuptools', 'wheel'):
    if importlib.util.find_spec(tool) is None:
      pytest.skip(f'needs {tool} installed to build the package offline')
  root = tmp_path_factory.mktemp('install')
  source = root / 'source'
  _copy_source(source)
  venv = root / 'venv'
  subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages',
                  str(venv)], check=True, timeout=HANG_TIMEOUT_SECONDS)
  python = venv / 'bin' / 'python'
  install = subprocess.run(
      [str(python), '-m', 'pip', 'install', '--quiet', '--no-deps',
       '--no-build-isolation', '--no-index', '--disable-pip-version-check',
       str(source)], capture_output=True, text=True, cwd=root,
      env=_clean_environment(), timeout=HANG_TIMEOUT_SECONDS)
  assert install.returncode == 0, install.stderr
  return venv


def _venv_python(venv, code, cwd):
  return subprocess.run([str(venv / 'bin' / 'python'), '-c', code],
                        capture_output=True, text=True, cwd=cwd,
                        env=_clean_environment(), timeout=HANG_TIMEOUT_SECONDS)


def test_the_installed_package_is_imported_with_its_configs(installed,
                                                             tmp_path):
  shown = _venv_python(
      installed, 'import pixelrl_tf, pixelrl_tf.cli as c; '
      'print(pixelrl_tf.__file__); print(c.config_folder()); '
      'print(pixelrl_tf.__version__)', cwd=tmp_path)
  assert shown.returncode == 0, shown.stderr
  module, folder, version = shown.stdout.split()
  site = str(installed)
  assert module.startswith(site) and folder.startswith(site)
  assert version == pixelrl_tf.__version__
  shipped = sorted(p.name for p in pathlib.Path(folder).glob('*.gin'))
  assert shipped == sorted(p.name for p in
                           (PROJECT_ROOT / 'configs').glob('*.gin'))
  static = pathlib.Path(module).parent / 'jobs' / 'view_static'
  assert sorted(p.name for p in static.iterdir()) == sorted(
      p.name for p in (PROJECT_ROOT / 'pixelrl_tf/jobs/view_static').iterdir())
  for name in ('known_files_bsd432.json', 'known_files_fpop.json'):
    assert (pathlib.Path(module).parent / 'data' / name).is_file()


def test_the_console_entry_point_trains_a_bare_named_config_elsewhere(
    installed, tmp_path):
  run = tmp_path / 'run'
  trained = subprocess.run(
      [str(installed / 'bin' / 'pixelrl-train'), '--gin_file=tiny.gin',
       f'--root_dir={run}', '--gin_bindings=Optimization.num_episodes = 2',
       '--gin_bindings=Cadence.eval_interval = 100',
       '--gin_bindings=Cadence.final_report = False'],
      capture_output=True, text=True, cwd=tmp_path, env=_clean_environment(),
      timeout=HANG_TIMEOUT_SECONDS)
  assert trained.returncode == 0, trained.stderr
  operative = (run / 'operative_config-0.gin').read_text()
  assert 'Optimization.num_episodes = 2' in operative
  assert 'TrainingData.crop_size = 16' in operative  # from tiny.gin, found by name
  assert 'episode 2/2' in trained.stdout + trained.stderr
  assert 'model_checkpoint_path' in (run / 'train' / 'checkpoint').read_text()

  # A bare name that is no package config is one line naming those that are.
  missing = subprocess.run(
      [str(installed / 'bin' / 'pixelrl-train'), '--gin_file=nosuch.gin',
       f'--root_dir={tmp_path / "other"}'],
      capture_output=True, text=True, cwd=tmp_path, env=_clean_environment(),
      timeout=HANG_TIMEOUT_SECONDS)
  assert missing.returncode == 1
  assert missing.stderr.strip().splitlines() == [
      'bad gin configuration: gin file nosuch.gin does not exist (the '
      f'package configs are {", ".join(sorted(p.name for p in (PROJECT_ROOT / "configs").glob("*.gin")))})']


def test_every_console_script_runs_its_commands_main():
  scripts = tomllib.loads((PROJECT_ROOT / 'pyproject.toml').read_text())[
      'project']['scripts']
  mains = {path.stem for path in (PROJECT_ROOT / 'pixelrl_tf').glob('*.py')
           if "if __name__ == '__main__':" in path.read_text()}
  commands = set()
  for script, target in scripts.items():
    module, attribute = target.split(':')
    assert module == 'pixelrl_tf.console'
    entry = getattr(console, attribute)
    assert entry.func is console._run  # pylint: disable=protected-access
    command, = entry.args
    assert script == 'pixelrl-' + command.replace('_', '-')
    commands.add(command)
  assert commands == mains


def test_bare_names_resolve_in_the_checkout_and_paths_still_work(tmp_path):
  checkout = PROJECT_ROOT / 'configs'
  assert cli.resolve_gin_file('denoise_quick.gin') == str(
      checkout / 'denoise_quick.gin')
  assert cli.resolve_gin_file('denoise_quick') == str(
      checkout / 'denoise_quick.gin')
  own = tmp_path / 'denoise_quick.gin'
  own.write_text("include 'denoise_quick.gin'\n")
  assert cli.resolve_gin_file(str(own)) == str(own)
  with pytest.raises(FileNotFoundError, match='the package configs are .*'
                     'denoise_quick.gin'):
    cli.resolve_gin_file('nosuch.gin')
  with pytest.raises(FileNotFoundError, match=r'^gin file sub/nosuch.gin does '
                     r'not exist$'):
    cli.resolve_gin_file('sub/nosuch.gin')


def test_a_users_config_includes_a_package_config_by_name(tmp_path):
  own = tmp_path / 'mine.gin'
  own.write_text("include 'tiny.gin'\nTrainingData.batch_size = 3\n")
  cli.parse_gin([str(own)], [])
  assert gin.query_parameter('TrainingData.batch_size') == 3
  assert gin.query_parameter('TrainingData.crop_size') == 16

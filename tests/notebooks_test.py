"""The notebooks in colab/ are well-formed and run end to end.

No Jupyter is needed: the code cells of a notebook are executed in order in
one namespace, from colab/ as Jupyter would, with `PIXELRL_NOTEBOOK_TINY=1`
(seconds-long settings) and a temporary `PIXELRL_NOTEBOOK_OUTPUT` folder.
Shell (`!`) and magic (`%`) lines are skipped.
"""

import ast
import json
import linecache
import re

import cv2
import numpy as np
import pytest

from conftest import PROJECT_ROOT

COLAB = PROJECT_ROOT / 'colab'
NOTEBOOKS = sorted(COLAB.glob('*.ipynb'))
EXPECTED_NOTEBOOKS = {'quickstart.ipynb', 'inspect_actions.ipynb'}
DEFAULT_WEIGHTS = (PROJECT_ROOT.parent / 'shared' / 'data' /
                   'official_weights' / 'denoise_with_convGRU_and_RMC' /
                   'pretrained_50.npz')

_CELL_ID = re.compile(r'^[a-zA-Z0-9_-]{1,64}$')
_CELL_KEYS = {
    'markdown': {'cell_type', 'id', 'metadata', 'source', 'attachments'},
    'code': {'cell_type', 'id', 'metadata', 'source', 'execution_count',
             'outputs'},
    'raw': {'cell_type', 'id', 'metadata', 'source', 'attachments'},
}
_MAX_COLUMNS = 80


def _load(path):
  return json.loads(path.read_text(encoding='utf-8'))


def _code_cells(notebook):
  return [(index, cell) for index, cell in enumerate(notebook['cells'])
          if cell['cell_type'] == 'code']


def _runnable_source(cell):
  """The cell's code with `!` and `%` lines blanked (line numbers kept)."""
  lines = ''.join(cell['source']).split('\n')
  return '\n'.join('' if line.lstrip().startswith(('!', '%')) else line
                   for line in lines)


def run_notebook(path):
  """Executes the code cells of `path` in order; returns the namespace."""
  namespace = {'__name__': '__main__'}
  for index, cell in _code_cells(_load(path)):
    source = _runnable_source(cell)
    filename = f'{path.name}[cell {index}]'
    # Lets tracebacks show the failing notebook line.
    linecache.cache[filename] = (len(source), None,
                                 source.splitlines(True), filename)
    code = compile(source, filename, 'exec')
    exec(code, namespace)  # pylint: disable=exec-used
  return namespace


def _assert_png(path, min_size=16):
  assert path.is_file(), f'{path} was not written'
  image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
  assert image is not None, f'{path} is not a readable image'
  assert min(image.shape[:2]) >= min_size, (path, image.shape)
  return image


@pytest.fixture
def notebook_env(tmp_path, monkeypatch):
  """Tiny settings, a temporary output folder, colab/ as the directory."""
  output = tmp_path / 'output'
  monkeypatch.setenv('PIXELRL_NOTEBOOK_TINY', '1')
  monkeypatch.setenv('PIXELRL_NOTEBOOK_OUTPUT', str(output))
  monkeypatch.delenv('PIXELRL_NOTEBOOK_WEIGHTS', raising=False)
  monkeypatch.chdir(COLAB)
  return output


def test_the_notebooks_are_there():
  assert EXPECTED_NOTEBOOKS <= {path.name for path in NOTEBOOKS}


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_follows_nbformat_4(path):
  notebook = _load(path)
  assert set(notebook) == {'cells', 'metadata', 'nbformat', 'nbformat_minor'}
  assert notebook['nbformat'] == 4
  assert isinstance(notebook['nbformat_minor'], int)
  metadata = notebook['metadata']
  assert {'name', 'display_name'} <= set(metadata['kernelspec'])
  assert metadata['language_info']['name'] == 'python'
  cells = notebook['cells']
  assert cells and isinstance(cells, list)
  ids = []
  for index, cell in enumerate(cells):
    where = f'{path.name} cell {index}'
    assert cell['cell_type'] in _CELL_KEYS, where
    assert set(cell) <= _CELL_KEYS[cell['cell_type']], where
    assert {'cell_type', 'metadata', 'source'} <= set(cell), where
    assert isinstance(cell['metadata'], dict), where
    source = cell['source']
    assert isinstance(source, list) and source, where
    assert all(isinstance(line, str) for line in source), where
    assert all(line.endswith('\n') for line in source[:-1]), where
    assert all('\n' not in line[:-1] for line in source), where
    if cell['cell_type'] == 'code':
      assert cell['execution_count'] is None, f'{where}: clear the outputs'
      assert cell['outputs'] == [], f'{where}: clear the outputs'
    if notebook['nbformat_minor'] >= 5:
      assert _CELL_ID.match(cell['id']), where
      ids.append(cell['id'])
  assert len(ids) == len(set(ids)), 'cell ids must be unique'
  assert cells[0]['cell_type'] == 'markdown'
  assert cells[0]['source'][0].startswith('# ')


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_code_is_setup_then_calls_into_the_package(path):
  cells = _code_cells(_load(path))
  setup = ''.join(cells[0][1]['source'])
  assert 'sys.path' in setup and 'PIXELRL_NOTEBOOK_TINY' in setup
  assert re.search(r'^# !pip install', setup, re.MULTILINE), (
      'the first code cell shows the Colab install line, commented out')
  for index, cell in cells:
    where = f'{path.name} cell {index}'
    tree = ast.parse(_runnable_source(cell), filename=where)
    defined = [node for node in ast.walk(tree) if isinstance(
        node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
               ast.Lambda))]
    assert not defined, (f'{where} defines logic (line '
                         f'{defined[0].lineno}); put it in pixelrl_tf')
    for number, line in enumerate(''.join(cell['source']).split('\n'), 1):
      assert len(line) <= _MAX_COLUMNS, f'{where} line {number} is too long'


def test_quickstart_trains_exports_and_restores(notebook_env):
  namespace = run_notebook(COLAB / 'quickstart.ipynb')
  output = notebook_env
  assert namespace['TINY'] and namespace['OUTPUT_DIR'] == output
  assert namespace['CONFIG'] == 'tiny.gin'

  run_dir = output / 'tiny'
  for name in ('model.json', 'operative_config-0.gin', 'train/checkpoint',
               'best.json', 'best/checkpoint'):
    assert (run_dir / name).is_file(), name
  episodes = namespace['result']['episode']
  assert episodes > 0 and namespace['result']['interrupted'] is None
  steps, values = namespace['train_scalars']['Losses/total']
  np.testing.assert_array_equal(steps, np.arange(1, episodes + 1))
  assert np.all(np.isfinite(values))
  assert 'Metrics/reward' in namespace['train_scalars']
  assert namespace['eval_scalars']['Metrics/val_psnr'][0][-1] == episodes

  exported = namespace['exported']
  for served in ('pixelrl_quickstart', 'pixelrl_quickstart_policy'):
    assert (output / 'export' / served / str(exported.version) /
            'saved_model.pb').is_file(), served
  assert namespace['action_names'][1] == 'do_nothing'

  for name in ('reward.png', 'losses.png', 'validation_action_strip.png',
               'validation_action_counts.png', 'camera_action_strip.png'):
    _assert_png(output / name)
  restored = _assert_png(output / 'camera_restored.png')
  assert restored.shape == (96, 96)


@pytest.mark.parametrize('weights', ['default', 'absent'])
def test_inspect_actions_restores_and_draws_the_actions(
    weights, notebook_env, monkeypatch, capsys):
  if weights == 'absent':
    monkeypatch.setenv('PIXELRL_NOTEBOOK_WEIGHTS',
                       str(notebook_env / 'absent.npz'))
  official = weights == 'default' and DEFAULT_WEIGHTS.is_file()
  namespace = run_notebook(COLAB / 'inspect_actions.ipynb')
  printed = capsys.readouterr().out
  output = notebook_env

  assert namespace['OFFICIAL'] == official
  run_dir = output / ('pretrained_50' if official else 'untrained_tiny')
  assert namespace['RUN_DIR'] == run_dir
  assert (run_dir / 'model.json').is_file()
  if not official:
    assert 'Falling back to a freshly initialised tiny model' in printed

  config = namespace['config']
  assert config.variant == ('gru_rmc' if official else 'gru')
  num_steps = config.t_max
  fractions = namespace['fractions']
  assert fractions.shape == (num_steps, config.get_action_set().num_actions)
  np.testing.assert_allclose(fractions.sum(axis=1), 1.0)
  table = namespace['summaries'].format_action_fractions(
      fractions, config.get_action_set().names)
  assert table in printed and table.count('\n') == num_steps - 1
  psnrs = namespace['psnrs']
  assert len(psnrs) == num_steps + 1
  if official:  # The released denoiser removes most of the noise.
    assert psnrs[-1] > psnrs[0] + 5.0, psnrs

  for name in ('psnr.png', 'action_strip.png', 'action_counts.png'):
    _assert_png(output / name)
  assert (output / 'reward_map_kernel.png').is_file() == official

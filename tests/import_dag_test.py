"""The package's import rules (docs/design.md) hold for every module."""

import ast
import pathlib

from conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / 'pixelrl_tf'

# Package (first component below pixelrl_tf) -> packages it may import.
ALLOWED = {
    'io': {'io'},
    'filters': {'filters'},
    'metrics': {'io'},
    'data': {'data', 'io'},
    'networks': {'networks'},
    'agents': {'agents'},
    'environments': {'environments', 'filters', 'metrics'},
    'tasks': {'tasks', 'environments', 'filters', 'data'},
    'drivers': {'drivers', 'agents'},
    'weights': {'weights', 'networks'},
    'visualization': {'visualization', 'filters', 'metrics', 'io'},
    'serving': {'serving', 'drivers', 'agents', 'environments'},
    'evaluation': {'evaluation', 'metrics'},
    'models': {'models', 'io', 'filters', 'data', 'networks', 'agents',
               'environments', 'tasks', 'weights', 'serving', 'cli'},
    'training': {'training', 'io', 'metrics', 'agents', 'drivers', 'tasks',
                 'visualization', 'serving', 'evaluation', 'models', 'cli'},
    'jobs': {'jobs', 'io', 'filters', 'metrics', 'data', 'networks',
             'agents', 'environments', 'tasks', 'drivers', 'weights',
             'visualization', 'serving', 'evaluation', 'models', 'training',
             'cli', 'hardware'},
    'cli': set(),
    'hardware': set(),
    # The console entry points import each command's main by name, at run
    # time (`importlib`), so that no module imports a main statically.
    'console': {'cli'},
}
MAINS_MAY_IMPORT = {'jobs', 'cli'}


def _internal_imports(path):
  tree = ast.parse(path.read_text())
  names = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names += [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      if node.module == 'pixelrl_tf':
        names += [f'pixelrl_tf.{alias.name}' for alias in node.names]
      else:
        names.append(node.module)
  return [n.split('.')[1] for n in names
          if n.startswith('pixelrl_tf.') and len(n.split('.')) > 1]


def _modules():
  for path in sorted(PACKAGE.rglob('*.py')):
    relative = path.relative_to(PACKAGE)
    if relative.name == '__init__.py' and len(relative.parts) == 1:
      continue
    yield path, relative


def test_every_import_follows_the_dag():
  violations = []
  mains = []
  for path, relative in _modules():
    imported = set(_internal_imports(path))
    if relative.name == '__main__.py':  # `python -m pixelrl_tf.<package>`
      mains.append(relative.parts[0])
      allowed = MAINS_MAY_IMPORT
    elif len(relative.parts) == 1:
      owner = relative.stem
      if owner not in ALLOWED:  # a command-line main
        mains.append(owner)
        allowed = MAINS_MAY_IMPORT
      else:
        allowed = ALLOWED[owner]
    else:
      owner = relative.parts[0]
      allowed = ALLOWED[owner]
    for target in imported - allowed:
      violations.append(f'{relative} imports pixelrl_tf.{target}')
  assert not violations, '\n'.join(violations)
  assert {'train', 'eval'} <= set(mains)


def test_agents_never_see_environments_or_networks():
  for path in (PACKAGE / 'agents').glob('*.py'):
    imported = set(_internal_imports(path))
    assert not imported & {'environments', 'networks'}, path


def test_one_rollout_loop():
  """Only `drivers/rollout.py` steps an environment with a policy."""
  stepping = []
  for path, relative in _modules():
    text = path.read_text()
    if '.action(' in text and 'environment.step(' in text:
      stepping.append(str(relative))
  assert stepping == ['drivers/rollout.py'], stepping


def test_nothing_imports_a_main():
  mains = {p.stem for p, r in _modules()
           if len(r.parts) == 1 and r.stem not in ALLOWED}
  for path, relative in _modules():
    hit = set(_internal_imports(path)) & mains
    assert not hit, f'{relative} imports {hit}'


def test_test_files_exist_for_the_core_modules():
  tests = {p.name for p in pathlib.Path(PROJECT_ROOT / 'tests').glob('*.py')}
  for name in ('filters_test.py', 'network_test.py', 'agent_test.py',
               'environment_test.py', 'train_test.py', 'eval_test.py'):
    assert name in tests

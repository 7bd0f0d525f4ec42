"""BUILD declares every module, entry point and test with its real deps.

Nothing runs Bazel here, so this test keeps BUILD honest. It parses BUILD
(Starlark, close enough to Python for `ast`), works out from the tree as it
is now what each target must be (imports read with `ast`), and on a mismatch
fails with the problem and the entry to paste into BUILD.

What each file needs:
  * `pixelrl_tf/a/b.py` -> `a_b`: a `py_library`, or a `py_binary` for a main
    (a file with an `if __name__ == '__main__':` block).
    `pixelrl_tf/a/__init__.py` -> `a_init`, `pixelrl_tf/__init__.py` ->
    `pixelrl_tf`, `pixelrl_tf/a/__main__.py` -> `py_binary` `a`.
  * `tests/x_test.py` -> `py_test` `x_test`, run by pytest through the
    generated `pytest_main.py`; any other `tests/y.py` -> `tests_y`.
  * `examples/*.py`, `bench/*.py` mains -> `py_binary` named after the file.
  * deps: the targets of the project modules a file imports, the `__init__`
    of its own package (Python runs it first), and `requirement()` of every
    third-party import; imports guarded by `except ImportError` are
    optional (allowed, not required). A `py_test` also needs pytest.
  * A `py_test` also needs `:tests_conftest`, which pytest loads itself.
  * data: `:configs` for files that name `configs/...` or take a
    `--gin_file`; `:notebooks` for files that name `colab/`; `:sources` for
    files that glob the `*.py` files of the tree; the root files a file
    names (`BUILD`, `requirements.txt`, ...); the binaries it runs
    (`python -m pixelrl_tf.X`, or a script by name); `pytest.ini` for tests.
    A test that runs the notebooks (calls `exec`) also needs what the
    notebooks import and read.
"""

import ast
import dataclasses
import functools
import importlib.metadata
import json
import pathlib
import re
import subprocess
import sys
from typing import Dict, List, Set, Tuple

import pytest

from conftest import PROJECT_ROOT  # puts the project root on sys.path
import pixelrl_tf  # pylint: disable=g-bad-import-order

BUILD_FILE = 'BUILD'
MODULE_FILE = 'MODULE.bazel'
REQUIREMENTS_FILE = 'requirements.txt'
PACKAGE = 'pixelrl_tf'
TESTS_DIR = 'tests'
SCRIPT_DIRS = ('examples', 'bench')
NOTEBOOK_DIR = 'colab'

PYTEST_MAIN = 'pytest_main.py'
PYTEST_MAIN_RULE = 'pytest_main'
PYTEST_INI = 'pytest.ini'
CONFTEST = 'tests/conftest.py'
CONFIGS = 'configs'
NOTEBOOKS = 'notebooks'
SOURCES = 'sources'
# filegroup name -> the glob patterns of its files.
FILEGROUPS = {
    CONFIGS: ('configs/*.gin',),
    NOTEBOOKS: ('colab/*.ipynb',),
    SOURCES: ('pixelrl_tf/**/*.py', 'tests/*.py', 'examples/*.py',
              'bench/*.py'),
}

LOADS = {
    '@rules_python//python:defs.bzl': {'py_binary', 'py_library', 'py_test'},
    '@pip//:requirements.bzl': {'requirement'},
}

# Third-party import name -> its pip distribution (requirements.txt, or a
# dependency of a package listed there).
PIP_NAMES = {
    'IPython': 'ipython',
    'PIL': 'pillow',
    'absl': 'absl-py',
    'cv2': 'opencv-contrib-python-headless',
    'gin': 'gin-config',
    'gym': 'gym',
    'keras_cv': 'keras-cv',
    'numpy': 'numpy',
    'pytest': 'pytest',
    'skimage': 'scikit-image',
    'tensorflow': 'tensorflow',
    'tensorflow_addons': 'tensorflow-addons',
    'tensorflow_probability': 'tensorflow-probability',
    'tf_agents': 'tf-agents',
}

PY_KINDS = ('py_library', 'py_binary', 'py_test')
_LIST_ATTRS = ('srcs', 'args', 'data', 'deps')
_ATTR_ORDER = ('srcs', 'main', 'args', 'data', 'deps')


@dataclasses.dataclass(frozen=True, order=True)
class Requirement:
  """A `requirement("name")` dep."""
  name: str

  def __str__(self):
    return f'requirement("{self.name}")'


@dataclasses.dataclass
class Rule:
  """A rule call in BUILD (or one that BUILD should hold)."""
  kind: str
  name: str
  attrs: Dict[str, object]
  lineno: int = 0
  # For expected rules: the file it is for, why each dep / data entry is
  # needed, and the optional requirements it may have.
  source: str = ''
  reasons: Dict[object, str] = dataclasses.field(default_factory=dict)
  optional: Set[object] = dataclasses.field(default_factory=set)


# --------------------------------------------------------------------------
# Sources.


@dataclasses.dataclass(frozen=True)
class _Import:
  module: str
  names: Tuple[str, ...]  # `from module import names`; empty for `import`.
  optional: bool


@dataclasses.dataclass
class _Analysis:
  imports: List[_Import]
  strings: Set[str]
  is_main: bool
  runs_code: bool  # Calls exec().
  globs_sources: bool  # Calls glob('*.py') or rglob('*.py').


def _catches_import_error(handler):
  if handler.type is None:
    return True
  names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [
      handler.type]
  return any(isinstance(n, ast.Name) and
             n.id in ('ImportError', 'ModuleNotFoundError', 'Exception')
             for n in names)


def _is_main_guard(node):
  if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
    return False
  test = node.test
  sides = [test.left] + list(test.comparators)
  return (any(isinstance(s, ast.Name) and s.id == '__name__' for s in sides)
          and any(isinstance(s, ast.Constant) and s.value == '__main__'
                  for s in sides))


def _analyse(text, filename):
  tree = ast.parse(text, filename=filename)
  optional = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Try) and any(
        _catches_import_error(h) for h in node.handlers):
      for statement in node.body:
        optional.update(id(n) for n in ast.walk(statement)
                        if isinstance(n, (ast.Import, ast.ImportFrom)))
  imports = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      imports += [_Import(alias.name, (), id(node) in optional)
                  for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      module = '.' * node.level + (node.module or '')
      imports.append(_Import(module, tuple(a.name for a in node.names),
                             id(node) in optional))
  strings = {node.value for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str)}
  is_main = any(_is_main_guard(node) for node in tree.body)
  calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
  runs_code = any(isinstance(c.func, ast.Name) and c.func.id == 'exec'
                  for c in calls)
  globs_sources = any(
      isinstance(c.func, ast.Attribute) and c.func.attr in ('glob', 'rglob')
      and c.args and isinstance(c.args[0], ast.Constant) and
      c.args[0].value == '*.py' for c in calls)
  return _Analysis(imports, strings, is_main, runs_code, globs_sources)


def notebook_code(path):
  """The code cells of a notebook, `!` and `%` lines blanked."""
  notebook = json.loads(path.read_text(encoding='utf-8'))
  cells = [''.join(cell['source']) for cell in notebook['cells']
           if cell['cell_type'] == 'code']
  lines = '\n\n'.join(cells).split('\n')
  return '\n'.join('' if line.lstrip().startswith(('!', '%')) else line
                   for line in lines)


def _project_module(dotted, importer, root):
  """The project file (posix, relative to `root`) of a module, or None."""
  parts = dotted.split('.')
  if parts[0] == PACKAGE:
    base = root.joinpath(*parts)
    candidates = [base / '__init__.py']
    if len(parts) > 1:
      candidates.insert(0, base.with_suffix('.py'))
  elif len(parts) == 1 and not importer.startswith(PACKAGE + '/'):
    # Scripts and tests import their siblings (their folder is on sys.path).
    candidates = [(root / importer).parent / f'{parts[0]}.py']
  else:
    return None
  for candidate in candidates:
    if candidate.is_file():
      return candidate.relative_to(root).as_posix()
  return None


def _absolute(module, importer):
  """Resolves `from .x import y` against the importer's package."""
  level = len(module) - len(module.lstrip('.'))
  if not level:
    return module
  package = pathlib.PurePosixPath(importer).parent.parts
  package = package[:len(package) - (level - 1)]
  rest = module[level:]
  return '.'.join(package + ((rest,) if rest else ()))


def _resolve_imports(analysis, importer, root):
  """Sorts the imports of `importer` into project files and requirements.

  Returns:
    `(files, requirements, optional, problems)`: project file -> the import
    naming it, `Requirement` -> the import naming it, the requirements of
    optional imports, and problem lines.
  """
  files, requirements, optional, problems = {}, {}, set(), []
  for item in analysis.imports:
    module = _absolute(item.module, importer)
    found = []
    for name in item.names:
      target = _project_module(f'{module}.{name}', importer, root)
      if target:
        found.append((target, f'{module}.{name}'))
    if len(found) < len(item.names) or not item.names:
      target = _project_module(module, importer, root)
      if target:
        found.append((target, module))
    if found:
      for target, name in found:
        files.setdefault(target, name)
      continue
    top = module.split('.')[0]
    if top == PACKAGE:
      problems.append(f'{importer} imports {module}, which is not a module '
                      'of the tree')
    elif top in sys.stdlib_module_names or not top:
      continue
    elif top in PIP_NAMES:
      requirement = Requirement(PIP_NAMES[top])
      if item.optional:
        optional.add(requirement)
      else:
        requirements.setdefault(requirement, module)
    else:
      guess = importlib.metadata.packages_distributions().get(top)
      problems.append(
          f'{importer} imports {module}: unknown third-party module; add '
          f'{top!r} to PIP_NAMES in tests/build_file_test.py (pip name per '
          f'the installed metadata: {guess})')
  optional -= set(requirements)
  return files, requirements, optional, problems


# --------------------------------------------------------------------------
# The expected targets.


def _glob(root, patterns, exclude=()):
  """Files (posix, relative to `root`) matching Bazel-style glob patterns."""
  matches = set()
  for pattern in patterns:
    matches |= {p.relative_to(root).as_posix() for p in root.glob(pattern)
                if p.is_file() and '__pycache__' not in p.parts}
  for pattern in exclude:
    matches -= {p.relative_to(root).as_posix() for p in root.glob(pattern)}
  return sorted(matches)


def _python_files(root):
  paths = [p for p in (root / PACKAGE).rglob('*.py')
           if '__pycache__' not in p.parts]
  paths += list((root / TESTS_DIR).glob('*.py'))
  for folder in SCRIPT_DIRS:
    paths += list((root / folder).glob('*.py'))
  return sorted(p.relative_to(root).as_posix() for p in paths)


def _kind(path, is_main):
  if path.parts[0] == TESTS_DIR:
    return 'py_test' if path.name.endswith('_test.py') else 'py_library'
  return 'py_binary' if is_main or path.name == '__main__.py' else (
      'py_library')


def target_name(relative, kind):
  """The target name of a project file (see the module docstring)."""
  path = pathlib.PurePosixPath(relative)
  inner = path.parts[1:-1]
  if path.parts[0] == PACKAGE:
    if path.name == '__init__.py':
      return '_'.join(inner) + '_init' if inner else PACKAGE
    if path.name == '__main__.py':
      return '_'.join(inner)
    return '_'.join(inner + (path.stem,))
  if kind in ('py_test', 'py_binary'):
    return path.stem
  return '_'.join(path.parts[:-1] + (path.stem,))


def _own_package_init(relative, root):
  """The `__init__.py` Python runs before `relative`, or None."""
  path = pathlib.PurePosixPath(relative)
  if path.parts[0] != PACKAGE:
    return None
  folder = path.parent
  if path.name == '__init__.py':
    if folder == pathlib.PurePosixPath(PACKAGE):
      return None
    folder = folder.parent
  init = folder / '__init__.py'
  return init.as_posix() if (root / init).is_file() else None


def _module_of(relative):
  """`pixelrl_tf/a/b.py` -> `pixelrl_tf.a.b`; `a/__main__.py` -> `a`."""
  path = pathlib.PurePosixPath(relative)
  parts = path.parts[:-1]
  if path.name not in ('__init__.py', '__main__.py'):
    parts += (path.stem,)
  return '.'.join(parts)


def _data_labels(analysis, runnable, own_name, has_filegroup, root_files):
  """Data entries (label or file -> reason) a file's code calls for."""
  strings, data = analysis.strings, {}
  if has_filegroup[SOURCES] and analysis.globs_sources:
    data[':' + SOURCES] = 'globs the *.py files of the tree'
  for name in sorted(strings & root_files):
    data[name] = f'reads {name}'
  if has_filegroup[CONFIGS] and any(
      s == 'configs' or s.startswith('configs/') or s == 'gin_file'
      for s in strings):
    data[':' + CONFIGS] = 'reads configs/*.gin'
  if has_filegroup[NOTEBOOKS] and any(
      s == NOTEBOOK_DIR or s.startswith(NOTEBOOK_DIR + '/') for s in strings):
    data[':' + NOTEBOOKS] = 'reads colab/*.ipynb'
  for text in sorted(strings & set(runnable)):
    if runnable[text] != own_name:
      data[':' + runnable[text]] = f'runs {text}'
  return data


@functools.lru_cache(maxsize=None)
def expected_build(root=PROJECT_ROOT):
  """Returns `(rules by name, filegroups, problems)` the tree calls for."""
  files = _python_files(root)
  analyses, kinds, names = {}, {}, {}
  for relative in files:
    analyses[relative] = _analyse((root / relative).read_text(), relative)
    path = pathlib.PurePosixPath(relative)
    kinds[relative] = _kind(path, analyses[relative].is_main)
    names[relative] = target_name(relative, kinds[relative])
  has_filegroup = {name: bool(_glob(root, patterns))
                   for name, patterns in FILEGROUPS.items()}
  root_files = {path.name for path in root.iterdir() if path.is_file()}
  # What files run: `-m` module names and script names -> binary target.
  runnable = {}
  for relative in files:
    if kinds[relative] != 'py_binary':
      continue
    if relative.startswith(PACKAGE + '/'):
      runnable[_module_of(relative)] = names[relative]
    else:
      runnable[relative] = names[relative]
      runnable[pathlib.PurePosixPath(relative).name] = names[relative]
  notebooks = [root / path for path in _glob(root, FILEGROUPS[NOTEBOOKS])]

  rules, problems = {}, []
  for relative in files:
    kind, name = kinds[relative], names[relative]
    analysis = analyses[relative]
    imports = [analysis]
    data = _data_labels(analysis, runnable, name, has_filegroup,
                        root_files)
    if ':' + NOTEBOOKS in data and analysis.runs_code:
      for notebook in notebooks:
        code_analysis = _analyse(notebook_code(notebook),
                                 notebook.relative_to(root).as_posix())
        imports.append(code_analysis)
        for label, reason in _data_labels(code_analysis, runnable, name,
                                          has_filegroup, set()).items():
          data.setdefault(label, f'{reason} (the notebooks)')
    reasons, optional = {}, set()
    for index, part in enumerate(imports):
      importer = relative if index == 0 else (
          notebooks[index - 1].relative_to(root).as_posix())
      found, requirements, maybe, import_problems = _resolve_imports(
          part, importer, root)
      problems += import_problems
      suffix = '' if index == 0 else f' (in {importer})'
      for target_file, module in found.items():
        if target_file != relative:
          reasons.setdefault(':' + names[target_file],
                             f'imports {module}{suffix}')
      for requirement, module in requirements.items():
        reasons.setdefault(requirement, f'imports {module}{suffix}')
      optional |= maybe
    init = _own_package_init(relative, root)
    if init:
      reasons.setdefault(':' + names[init],
                         f'its package runs {init} first')
    srcs = [relative]
    if kind == 'py_test':
      reasons.setdefault(Requirement('pytest'), 'pytest runs the test')
      if (root / CONFTEST).is_file():
        reasons.setdefault(':' + names[CONFTEST], f'pytest loads {CONFTEST}')
      data = {PYTEST_INI: 'pytest settings', **data}
      srcs.append(PYTEST_MAIN)
    deps = sorted(label for label in reasons if isinstance(label, str))
    deps += sorted(r for r in reasons if isinstance(r, Requirement))
    attrs = {'srcs': srcs, 'deps': deps}
    if data:  # Files, then labels.
      attrs['data'] = sorted(data, key=lambda item: (item[0] == ':', item))
    if kind == 'py_test':
      attrs['main'] = PYTEST_MAIN
      attrs['args'] = [f'$(rootpath {relative})']
    elif kind == 'py_binary' and pathlib.PurePosixPath(
        relative).name != f'{name}.py':
      attrs['main'] = relative
    reasons.update(data)
    rules[name] = Rule(kind, name, attrs, source=relative, reasons=reasons,
                       optional=optional - set(reasons))
    if sum(n == name for n in names.values()) > 1:
      problems.append(f'{relative} and another file both map to target '
                      f'{name!r}; rename one')
  filegroups = {name: patterns for name, patterns in FILEGROUPS.items()
                if has_filegroup[name]}
  return rules, filegroups, sorted(set(problems))


# --------------------------------------------------------------------------
# BUILD, read and written.


class _StarlarkError(ValueError):
  pass


class _Evaluator:
  """Evaluates the literal Starlark of a BUILD file (plus glob)."""

  def __init__(self, root):
    self._root = root
    self.variables = {}

  def __call__(self, node):
    if isinstance(node, ast.Constant):
      return node.value
    if isinstance(node, ast.List):
      return [self(element) for element in node.elts]
    if isinstance(node, ast.Dict):
      return {self(k): self(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Name) and node.id in self.variables:
      return self.variables[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
      return self(node.left) + self(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
      args = [self(arg) for arg in node.args]
      kwargs = {kw.arg: self(kw.value) for kw in node.keywords}
      if node.func.id == 'requirement' and len(args) == 1 and not kwargs:
        return Requirement(args[0])
      if node.func.id == 'glob':
        return self._glob(*args, **kwargs)
    raise _StarlarkError(f'line {node.lineno}: cannot evaluate '
                         f'{ast.unparse(node)!r}')

  def _glob(self, include, exclude=(), allow_empty=False):
    matches = _glob(self._root, include, exclude)
    if not matches and not allow_empty:
      raise _StarlarkError(f'glob({include!r}) matches no file')
    return matches


def parse_build(text, root=PROJECT_ROOT):
  """Returns `(rules, loads {file: symbols}, problems)` of a BUILD text."""
  try:
    tree = ast.parse(text, filename=BUILD_FILE)
  except SyntaxError as error:
    return [], {}, [f'BUILD line {error.lineno}: not parseable ({error.msg})']
  evaluate = _Evaluator(root)
  rules, loads, problems = [], {}, []
  for statement in tree.body:
    try:
      if isinstance(statement, ast.Assign) and len(
          statement.targets) == 1 and isinstance(statement.targets[0],
                                                  ast.Name):
        evaluate.variables[statement.targets[0].id] = evaluate(
            statement.value)
        continue
      if not (isinstance(statement, ast.Expr) and
              isinstance(statement.value, ast.Call) and
              isinstance(statement.value.func, ast.Name)):
        problems.append(f'BUILD line {statement.lineno}: expected a rule '
                        'call')
        continue
      call = statement.value
      if call.func.id == 'load':
        args = [evaluate(arg) for arg in call.args]
        loads.setdefault(args[0], set()).update(args[1:])
        continue
      attrs = {kw.arg: evaluate(kw.value) for kw in call.keywords}
      rules.append(Rule(call.func.id, attrs.pop('name', None), attrs,
                        lineno=statement.lineno))
    except _StarlarkError as error:
      problems.append(f'BUILD {error}')
  return rules, loads, problems


def _render_value(value):
  if isinstance(value, str):
    return json.dumps(value)
  return str(value)


def _render_attr(attr, value):
  if not isinstance(value, list):
    return [f'    {attr} = {_render_value(value)},']
  if len(value) == 1:
    line = f'    {attr} = [{_render_value(value[0])}],'
    if len(line) <= 80:
      return [line]
  return ([f'    {attr} = ['] +
          [f'        {_render_value(item)},' for item in value] + ['    ],'])


def render_rule(rule):
  """The BUILD text of a rule."""
  lines = [f'{rule.kind}(', f'    name = "{rule.name}",']
  order = list(_ATTR_ORDER) + sorted(set(rule.attrs) - set(_ATTR_ORDER))
  for attr in order:
    if attr in rule.attrs and rule.attrs[attr] not in ([], None):
      lines += _render_attr(attr, rule.attrs[attr])
  return '\n'.join(lines + [')'])


def _filegroup_rule(name, patterns):
  lines = ['filegroup(', f'    name = "{name}",']
  one_line = f'    srcs = glob([{", ".join(map(json.dumps, patterns))}]),'
  if len(one_line) <= 80:
    lines.append(one_line)
  else:
    lines += (['    srcs = glob(['] +
              [f'        {json.dumps(p)},' for p in patterns] + ['    ]),'])
  return '\n'.join(lines + [')'])


def _pytest_main_rule():
  return '\n'.join([
      'genrule(',
      f'    name = "{PYTEST_MAIN_RULE}",',
      f'    outs = ["{PYTEST_MAIN}"],',
      '    cmd = ("printf \'import sys\\\\n\\\\nimport pytest\\\\n\\\\n" +',
      '           "sys.exit(pytest.main(sys.argv[1:]))\\\\n\' > $@"),',
      ')'])


def render_build(root=PROJECT_ROOT):
  """A complete BUILD for the tree (what `check_build` accepts)."""
  rules, filegroups, _ = expected_build(root)
  parts = [
      'load("@rules_python//python:defs.bzl", "py_binary", "py_library", '
      '"py_test")\nload("@pip//:requirements.bzl", "requirement")']
  parts += [_filegroup_rule(name, patterns)
            for name, patterns in filegroups.items()]
  if any(rule.kind == 'py_test' for rule in rules.values()):
    parts.append(_pytest_main_rule())
  parts += [render_rule(rule) for rule in sorted(
      rules.values(), key=lambda r: (PY_KINDS.index(r.kind), r.source))]
  return '\n\n'.join(parts) + '\n'


# --------------------------------------------------------------------------
# The check.


def _duplicates(values):
  seen, repeated = set(), []
  for value in values:
    if value in seen:
      repeated.append(value)
    seen.add(value)
  return repeated


def _compare(expected, actual):
  """Problem lines of a py_* rule against the rule the tree calls for."""
  lines = []
  if actual.kind != expected.kind:
    lines.append(f'is a {actual.kind}; {expected.source} needs a '
                 f'{expected.kind}')
  for attr in _ATTR_ORDER:
    want = expected.attrs.get(attr, [] if attr in _LIST_ATTRS else None)
    have = actual.attrs.get(attr, [] if attr in _LIST_ATTRS else None)
    if attr not in _LIST_ATTRS:
      if have != want:
        lines.append(f'{attr} is {_render_value(have)}; it must be '
                     f'{_render_value(want)}')
      continue
    if not isinstance(have, list):
      lines.append(f'{attr} must be a list')
      continue
    for item in _duplicates(have):
      lines.append(f'{attr} lists {_render_value(item)} twice')
    for item in want:
      if item not in have:
        why = expected.reasons.get(item)
        lines.append(f'{attr} lacks {_render_value(item)}' +
                     (f' ({expected.source} {why})' if why else ''))
    for item in have:
      if item not in want and item not in expected.optional:
        if attr == 'deps':
          lines.append(f'deps has {_render_value(item)}, which '
                       f'{expected.source} does not import')
        else:
          lines.append(f'{attr} has {_render_value(item)}, which '
                       f'{expected.source} does not need')
    if attr == 'args' and have != want and set(have) == set(want):
      lines.append(f'args must be in the order {want}')
  return lines


def _files_of(rule):
  files = []
  for attr in ('srcs', 'data', 'outs'):
    value = rule.attrs.get(attr, [])
    files += [v for v in value if isinstance(v, str) and
              not v.startswith((':', '@', '//'))] if isinstance(
                  value, list) else []
  return files


def check_build(text, root=PROJECT_ROOT):
  """Returns the problems of a BUILD text (empty when it is right)."""
  expected, filegroups, problems = expected_build(root)
  problems = list(problems)
  rules, loads, parse_problems = parse_build(text, root)
  problems += parse_problems

  for source, symbols in LOADS.items():
    missing = symbols - loads.get(source, set())
    if missing:
      problems.append(f'BUILD must load {sorted(missing)} from {source!r}:\n'
                      f'load("{source}", ' +
                      ', '.join(f'"{s}"' for s in sorted(symbols)) + ')')

  by_name = {}
  for rule in rules:
    if rule.name is None:
      problems.append(f'BUILD line {rule.lineno}: {rule.kind} has no name')
      continue
    if rule.name in by_name:
      problems.append(f'name "{rule.name}" is defined twice (BUILD lines '
                      f'{by_name[rule.name].lineno} and {rule.lineno})')
      continue
    by_name[rule.name] = rule
  generated = {out for rule in rules if rule.kind == 'genrule'
               for out in rule.attrs.get('outs', [])}

  # Every file a rule names exists; every label it names is defined.
  for rule in rules:
    for item in _files_of(rule):
      if item in generated and rule.kind != 'genrule':
        continue
      if rule.kind != 'genrule' and not (root / item).is_file():
        problems.append(f'{rule.kind} "{rule.name}" (BUILD line '
                        f'{rule.lineno}) names a missing file {item}')
    for attr in ('deps', 'data', 'srcs'):
      value = rule.attrs.get(attr, [])
      for item in value if isinstance(value, list) else []:
        if isinstance(item, str) and item.startswith(':') and (
            item[1:] not in by_name):
          problems.append(f'{rule.kind} "{rule.name}" (BUILD line '
                          f'{rule.lineno}) refers to undefined {item}')

  for name, patterns in filegroups.items():
    files = _glob(root, patterns)
    rule = by_name.get(name)
    entry = _filegroup_rule(name, patterns)
    if rule is None or rule.kind != 'filegroup':
      problems.append(f'no filegroup "{name}" of {", ".join(patterns)}; '
                      f'add:\n{entry}')
    elif sorted(rule.attrs.get('srcs', [])) != files:
      problems.append(f'filegroup "{name}" (BUILD line {rule.lineno}) must '
                      f'hold exactly {", ".join(patterns)}:\n{entry}')
  if any(rule.kind == 'py_test' for rule in expected.values()):
    rule = by_name.get(PYTEST_MAIN_RULE)
    if (rule is None or rule.kind != 'genrule' or
        rule.attrs.get('outs') != [PYTEST_MAIN]):
      problems.append(f'the tests need the genrule "{PYTEST_MAIN_RULE}" '
                      f'writing {PYTEST_MAIN}; add:\n{_pytest_main_rule()}')

  for name, want in sorted(expected.items(),
                           key=lambda item: item[1].source):
    rule = by_name.get(name)
    if rule is None:
      problems.append(f'no {want.kind} for {want.source}; add:\n'
                      f'{render_rule(want)}')
      continue
    lines = _compare(want, rule)
    if lines:
      problems.append(
          f'{rule.kind} "{name}" (BUILD line {rule.lineno}, for '
          f'{want.source}):\n' + '\n'.join(f'  - {line}' for line in lines) +
          f'\n  correct entry:\n{render_rule(want)}')
  for rule in rules:
    if rule.kind in PY_KINDS and rule.name not in expected:
      problems.append(f'{rule.kind} "{rule.name}" (BUILD line {rule.lineno})'
                      ' is for no file of the tree; remove it (or name it '
                      'after its file, see tests/build_file_test.py)')
  return problems


def _problems_text(problems):
  return f'{len(problems)} BUILD problem(s):\n\n' + '\n\n'.join(problems)


# --------------------------------------------------------------------------
# Tests of the real files.


def _build_text():
  return (PROJECT_ROOT / BUILD_FILE).read_text()


def test_build_matches_the_tree():
  problems = check_build(_build_text())
  assert not problems, _problems_text(problems)


def test_every_module_test_and_main_has_a_target():
  # The kinds the tree holds now; the full check is above.
  rules, _, _ = expected_build()
  sources = {rule.source: rule.kind for rule in rules.values()}
  for path in (PROJECT_ROOT / PACKAGE).rglob('*.py'):
    if '__pycache__' not in path.parts:
      assert path.relative_to(PROJECT_ROOT).as_posix() in sources
  for path in (PROJECT_ROOT / TESTS_DIR).glob('*_test.py'):
    assert sources[path.relative_to(PROJECT_ROOT).as_posix()] == 'py_test'
  for main in ('train', 'eval', 'restore', 'import_weights'):
    assert sources[f'{PACKAGE}/{main}.py'] == 'py_binary'
  assert sources[f'{PACKAGE}/export/__main__.py'] == 'py_binary'
  assert rules['filters_image_ops'].kind == 'py_library'


def test_pytest_main_runs_pytest_and_reports_failures(tmp_path):
  rules, _, _ = parse_build(_build_text())
  (genrule,) = [r for r in rules if r.name == PYTEST_MAIN_RULE]
  runner = tmp_path / PYTEST_MAIN
  command = genrule.attrs['cmd'].replace('$@', str(runner))
  assert '$(' not in command.replace('$$', '')
  subprocess.run(['bash', '-c', command.replace('$$', '$')], check=True)
  compile(runner.read_text(), PYTEST_MAIN, 'exec')
  (tmp_path / 'passing_test.py').write_text('def test_ok():\n  pass\n')
  (tmp_path / 'failing_test.py').write_text(
      'def test_bad():\n  assert False\n')
  outcomes = {}
  for name in ('passing_test.py', 'failing_test.py'):
    outcomes[name] = subprocess.run(
        [sys.executable, str(runner), name, '-q', '-p', 'no:cacheprovider'],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
  assert outcomes['passing_test.py'].returncode == 0, (
      outcomes['passing_test.py'].stdout)
  assert '1 passed' in outcomes['passing_test.py'].stdout
  assert outcomes['failing_test.py'].returncode == 1


def _starlark_calls(path):
  calls = {}
  for statement in ast.parse(path.read_text(), filename=path.name).body:
    value = getattr(statement, 'value', None)
    if isinstance(value, ast.Call):
      name = ast.unparse(value.func)
      calls.setdefault(name, []).append(value)
      if isinstance(statement, ast.Assign):
        calls.setdefault('=' + statement.targets[0].id, []).append(value)
  return calls


def _kwargs(call):
  return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def test_module_bazel_declares_the_pip_hub():
  calls = _starlark_calls(PROJECT_ROOT / MODULE_FILE)
  (module,) = calls['module']
  assert _kwargs(module) == {'name': PACKAGE,
                             'version': pixelrl_tf.__version__}
  assert 'rules_python' in [_kwargs(c)['name'] for c in calls['bazel_dep']]
  python_version = f'{sys.version_info.major}.{sys.version_info.minor}'
  (toolchain,) = calls['python.toolchain']
  assert _kwargs(toolchain)['python_version'] == python_version
  (pip,) = calls['=pip']
  assert [ast.literal_eval(a) for a in pip.args] == [
      '@rules_python//python/extensions:pip.bzl', 'pip']
  (parse,) = calls['pip.parse']
  settings = _kwargs(parse)
  assert settings['hub_name'] == 'pip'
  assert settings['python_version'] == python_version
  assert settings['requirements_lock'] == '//:' + REQUIREMENTS_FILE
  assert (PROJECT_ROOT / REQUIREMENTS_FILE).is_file()
  assert any([ast.unparse(a) for a in call.args] == ['pip', "'pip'"]
             for call in calls['use_repo'])


def _normalise(name):
  return re.sub(r'[-_.]+', '-', name).lower()


def _pip_closure():
  """requirements.txt's distributions and, per installed metadata, theirs."""
  names = set()
  for line in (PROJECT_ROOT / REQUIREMENTS_FILE).read_text().splitlines():
    line = line.split('#')[0].strip()
    if line:
      names.add(_normalise(re.split(r'[<>=!~;\[ ]', line)[0]))
  direct, queue = set(names), list(names)
  while queue:
    try:
      requires = importlib.metadata.requires(queue.pop()) or []
    except importlib.metadata.PackageNotFoundError:
      continue
    for spec in requires:
      if 'extra ==' in spec:
        continue
      name = _normalise(re.split(r'[<>=!~;\[ (]', spec.strip())[0])
      if name not in names:
        names.add(name)
        queue.append(name)
  return direct, names


def test_every_requirement_comes_from_requirements_txt():
  rules, _, _ = parse_build(_build_text())
  used = {dep.name for rule in rules for dep in rule.attrs.get('deps', [])
          if isinstance(dep, Requirement)}
  _, available = _pip_closure()
  unknown = sorted(n for n in used if _normalise(n) not in available)
  assert not unknown, (f'requirement() of {unknown}: neither in '
                       f'{REQUIREMENTS_FILE} nor a dependency of a package '
                       'there')
  assert set(PIP_NAMES.values()) >= used


# --------------------------------------------------------------------------
# The check itself catches what it should, with the entry to paste.


def _rules():
  rules, _, _ = expected_build()
  return {name: dataclasses.replace(rule, attrs=dict(rule.attrs))
          for name, rule in rules.items()}


def _build_of(rules):
  _, filegroups, _ = expected_build()
  parts = ['load("@rules_python//python:defs.bzl", "py_binary", '
           '"py_library", "py_test")',
           'load("@pip//:requirements.bzl", "requirement")']
  parts += [_filegroup_rule(n, p) for n, p in filegroups.items()]
  parts += [_pytest_main_rule()] + [render_rule(r) for r in rules]
  return '\n'.join(parts) + '\n'


def _single_problem(rules):
  problems = check_build(_build_of(rules))
  assert len(problems) == 1, _problems_text(problems)
  return problems[0]


def test_a_rendered_build_passes():
  assert check_build(render_build()) == []
  assert check_build(_build_of(_rules().values())) == []


def _with_internal_deps():
  return next(rule for rule in _rules().values()
              if rule.kind == 'py_library' and
              rule.source.startswith(PACKAGE + '/') and
              len([d for d in rule.attrs['deps'] if isinstance(d, str)]) > 1)


def test_a_missing_import_edge_is_reported_with_the_entry():
  rules = _rules()
  rule = _with_internal_deps()
  correct = render_rule(rule)
  dropped = next(d for d in rule.attrs['deps'] if isinstance(d, str) and
                 not d.endswith('_init') and d != ':' + PACKAGE)
  rules[rule.name].attrs['deps'] = [
      d for d in rule.attrs['deps'] if d != dropped]
  problem = _single_problem(rules.values())
  assert f'deps lacks "{dropped}" ({rule.source} imports' in problem
  assert problem.endswith(correct)


def test_an_extra_edge_and_a_missing_requirement_are_reported():
  rules = _rules()
  rule = rules['filters_image_ops']
  correct = render_rule(rule)
  rule.attrs['deps'] = [':metrics'] + [
      d for d in rule.attrs['deps'] if d != Requirement('tensorflow')]
  problem = _single_problem(rules.values())
  assert ('deps has ":metrics", which pixelrl_tf/filters/image_ops.py does '
          'not import') in problem
  assert 'deps lacks requirement("tensorflow")' in problem
  assert problem.endswith(correct)


def test_missing_targets_and_files_are_reported():
  rules = _rules()
  test_rule = rules.pop('filters_test')
  problem = _single_problem(rules.values())
  assert problem == (f'no py_test for tests/filters_test.py; add:\n'
                     f'{render_rule(test_rule)}')
  rules = _rules()
  del rules['train']
  problems = check_build(_build_of(rules.values()))
  assert any(p.startswith('no py_binary for pixelrl_tf/train.py; add:\n'
                          'py_binary(\n    name = "train",') for p in problems)
  assert any(p.endswith('refers to undefined :train') for p in problems)
  rules = _rules()
  rules['gone'] = Rule('py_library', 'gone',
                       {'srcs': ['pixelrl_tf/gone.py']})
  problems = check_build(_build_of(rules.values()))
  assert any('"gone"' in p and 'names a missing file pixelrl_tf/gone.py' in p
             for p in problems), problems
  assert any('"gone"' in p and 'is for no file of the tree' in p
             for p in problems), problems


def test_a_name_defined_twice_is_reported():
  rules = list(_rules().values())
  problem = _single_problem(rules + [rules[0]])
  assert problem.startswith(f'name "{rules[0].name}" is defined twice')


def test_missing_data_is_reported():
  rules = _rules()
  rule = rules['train_test']
  assert ':configs' in rule.attrs['data'] and ':train' in rule.attrs['data']
  rule.attrs['data'] = [PYTEST_INI]
  problem = _single_problem(rules.values())
  assert 'data lacks ":configs" (tests/train_test.py reads configs' in problem
  assert ('data lacks ":train" (tests/train_test.py runs pixelrl_tf.train)'
          in problem)


def test_optional_imports_need_no_requirement():
  analysis = _analyse(
      'try:\n  import gym\nexcept ImportError:\n  gym = None\n'
      'import numpy as np\n', 'x.py')
  _, requirements, optional, problems = _resolve_imports(
      analysis, f'{PACKAGE}/x.py', PROJECT_ROOT)
  assert set(requirements) == {Requirement('numpy')}
  assert optional == {Requirement('gym')} and not problems


def test_an_unknown_third_party_import_is_reported():
  analysis = _analyse('import not_a_known_module\n', 'x.py')
  *_, problems = _resolve_imports(analysis, f'{PACKAGE}/x.py', PROJECT_ROOT)
  assert len(problems) == 1 and 'add \'not_a_known_module\' to PIP_NAMES' in (
      problems[0])


def test_a_main_is_found_by_its_guard():
  assert _analyse("if __name__ == '__main__':\n  main()\n", 'x').is_main
  assert not _analyse('def main():\n  pass\n', 'x').is_main
  assert target_name(f'{PACKAGE}/export/__main__.py', 'py_binary') == 'export'
  assert target_name(f'{PACKAGE}/__init__.py', 'py_library') == PACKAGE
  assert target_name(f'{PACKAGE}/data/__init__.py', 'py_library') == (
      'data_init')
  assert target_name('tests/conftest.py', 'py_library') == 'tests_conftest'


if __name__ == '__main__':
  import sys  # pylint: disable=g-import-not-at-top
  if sys.argv[1:] != ['--write']:
    sys.exit('usage: python tests/build_file_test.py --write')
  build_path = PROJECT_ROOT / 'BUILD'
  header = build_path.read_text().split('\n\n', 1)[0] + '\n\n'
  build_path.write_text(header + render_build())
  print(f'rewrote {build_path}')

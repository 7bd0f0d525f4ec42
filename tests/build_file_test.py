"""BUILD matches the tree: its mains, its requirement()s and its globs.

Nothing runs Bazel here, so this test evaluates BUILD as Python (Starlark is
close enough) with stand-ins for the Bazel functions and compares the result
with the tree as it is now. Each failure says what to add or remove where.
"""

import ast
import functools
import importlib.metadata
import re
import sys
import types

from conftest import PROJECT_ROOT

SOURCE_DIRS = ('pixelrl_tf', 'tests', 'bench', 'examples')
# Pinned in requirements.txt although nothing imports them (yet).
NOT_IMPORTED_OK = set()
# Pinned to run the tests, whether or not a source imports them.
TOOLS = {'pytest', 'pytest-xdist'}
# Import name -> pip distribution, where installed metadata may not say.
DISTRIBUTIONS = {'absl': 'absl-py', 'cv2': 'opencv-contrib-python-headless',
                 'gin': 'gin-config', 'PIL': 'pillow',
                 'skimage': 'scikit-image', 'yaml': 'pyyaml'}
# What Bazel rejects in a glob pattern: empty, absolute, an empty, "." or ".."
# segment, or "**" that is not a whole segment.
BAD_GLOB = re.compile(r'^$|^/|//|/$|(^|/)\.\.?(/|$)|[^/]\*\*|\*\*[^/]')


def _normalise(spec):
  """The normalised distribution name of a requirement like `a_b>=1; ...`."""
  name = re.split(r'[\s<>=!~;\[(]', spec.strip(), maxsplit=1)[0]
  return re.sub(r'[-_.]+', '-', name).lower()


@functools.lru_cache()
def evaluate_build():
  """Runs BUILD with stand-ins for Bazel's functions; returns what it made."""
  rules, requirements, excluded, problems = {}, set(), set(), []
  tree = ast.parse((PROJECT_ROOT / 'BUILD').read_text(), 'BUILD')
  problems += [f'BUILD:{n.lineno}: only calls and assignments are allowed at '
               'the top level' for n in tree.body
               if not isinstance(n, (ast.Assign, ast.Expr))]

  def glob(include, exclude=(), allow_empty=False):
    problems.extend(f'glob "{p}": Bazel rejects it' for p in
                    [*include, *exclude] if BAD_GLOB.search(p))
    found, dropped = ({p.relative_to(PROJECT_ROOT).as_posix()
                       for pattern in patterns if not BAD_GLOB.search(pattern)
                       for p in PROJECT_ROOT.glob(pattern) if p.is_file()}
                      for patterns in (include, exclude))
    excluded.update(p for p in exclude if '*' not in p)
    if not found and not allow_empty:
      problems.append(f'glob {include} matches no file')
    return sorted(found - dropped)

  def rule(kind, name, **attrs):
    if name in rules:
      problems.append(f'target "{name}" is defined twice')
    rules[name] = dict(attrs, kind=kind)

  namespace = {'glob': glob, 'load': lambda *_: None,
               'requirement': lambda name: requirements.add(name) or name}
  namespace.update({kind: functools.partial(rule, kind) for kind in (
      'filegroup', 'genrule', 'py_binary', 'py_library', 'py_test')})
  exec(compile(tree, 'BUILD', 'exec'), namespace)  # pylint: disable=exec-used
  generated = {out for r in rules.values() for out in r.get('outs', [])}
  # `sources`: the srcs of each py_* target; `excluded`: the files that a
  # glob excludes by name, not by a wildcard.
  return types.SimpleNamespace(
      globals=namespace, rules=rules, requirements=requirements,
      excluded=excluded, problems=problems,
      sources=[src for r in rules.values() if r['kind'].startswith('py_')
               for src in set(r['srcs']) - generated])


def _python_files(*dirs):
  return {p.relative_to(PROJECT_ROOT).as_posix(): p for d in dirs
          for p in sorted((PROJECT_ROOT / d).rglob('*.py'))}


def _is_main(path):
  return any(isinstance(node, ast.If) and
             ast.unparse(node.test) == "__name__ == '__main__'"
             for node in ast.parse(path.read_text()).body)


def third_party_imports(path):
  """The top-level third-party modules `path` imports, but optional ones."""
  tree = ast.parse(path.read_text(), str(path))
  optional, names = set(), set()
  for node in ast.walk(tree):
    caught = ' '.join(ast.unparse(h.type) if h.type else 'ImportError'
                      for h in getattr(node, 'handlers', ()))
    if re.search(r'\b(ImportError|ModuleNotFoundError)\b', caught):
      optional |= {id(n) for s in node.body for n in ast.walk(s)}
  for node in ast.walk(tree):
    if isinstance(node, ast.Import) and id(node) not in optional:
      names |= {alias.name.split('.')[0] for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and id(node) not in optional:
      names |= {node.module.split('.')[0]} if node.level == 0 else set()
  return {n for n in names - set(sys.stdlib_module_names) if not (
      (PROJECT_ROOT / n).is_dir() or any(
          (folder / f'{n}.py').exists()
          for folder in (path.parent, PROJECT_ROOT / 'tests')))}


def pins_and_dependencies():
  """requirements.txt's packages; each installed one's own dependencies."""
  lines = (PROJECT_ROOT / 'requirements.txt').read_text().splitlines()
  pins = {_normalise(l) for l in lines if l.split('#')[0].strip()}
  requires = {_normalise(d.metadata['Name']): {
      _normalise(s) for s in d.requires or () if 'extra ==' not in s}
              for d in importlib.metadata.distributions()}
  deps, queue = {}, set(pins)
  while queue:
    name = queue.pop()
    deps[name] = requires.get(name, set())
    queue |= deps[name] - deps.keys()
  return pins, deps


def test_mains_match_the_tree():
  expected = {f[len('pixelrl_tf/'):-len('.py')] for f, path
              in _python_files('pixelrl_tf').items()
              if f.endswith('/__main__.py') or
              (f.count('/') == 1 and _is_main(path))}
  listed = set(evaluate_build().globals['MAINS'])
  problems = [f'add "{m}" to MAINS in BUILD' for m in expected - listed]
  problems += [f'remove "{m}" from MAINS in BUILD: pixelrl_tf/{m}.py is not '
               'a main' for m in listed - expected]
  assert not problems, '\n'.join(sorted(problems))


def test_globs_are_valid_and_put_every_source_file_in_one_target():
  build = evaluate_build()
  srcs = build.sources
  problems = build.problems + [
      f'{f}: in no target; widen a glob in BUILD (or exclude it by name)'
      for f in _python_files(*SOURCE_DIRS)
      if f not in srcs and f not in build.excluded]
  problems += [f'{f}: in {srcs.count(f)} targets; keep it in one'
               for f in sorted(set(srcs)) if srcs.count(f) > 1]
  assert not problems, '\n'.join(problems)


def test_requirements_match_imports_and_requirements_txt():
  imported, problems = {}, []  # Distribution -> a file that imports it.
  mapping = importlib.metadata.packages_distributions()
  for relative in sorted(set(evaluate_build().sources)):
    for module in sorted(third_party_imports(PROJECT_ROOT / relative)):
      names = ({DISTRIBUTIONS[module]} if module in DISTRIBUTIONS
               else set(mapping.get(module, [])))
      if len(names) == 1:
        imported.setdefault(_normalise(names.pop()), relative)
      else:
        problems.append(f'{relative}: import {module}: name its distribution '
                        'in DISTRIBUTIONS in tests/build_file_test.py '
                        f'(installed: {sorted(names) or "none"})')
  declared = {_normalise(r) for r in evaluate_build().requirements}
  pins, deps = pins_and_dependencies()
  problems += [f'add requirement("{d}") to BUILD (imported by {imported[d]})'
               + ('' if d in deps else ' and pin it in requirements.txt')
               for d in sorted(imported.keys() - declared)]
  problems += [f'remove requirement("{d}") from BUILD: nothing imports it'
               for d in sorted(declared - imported.keys() - TOOLS)]
  problems += [f'requirement("{d}") in BUILD: pin it in requirements.txt; no '
               'pinned package depends on it'
               for d in sorted(declared - deps.keys())]
  # A pin that a pinned package needs, directly or not, constrains a version.
  unused = pins - imported.keys() - TOOLS - set().union(*deps.values())
  allowed = {_normalise(n) for n in NOT_IMPORTED_OK}
  problems += [f'requirements.txt pins "{p}" but nothing imports it: remove it'
               for p in sorted(unused - allowed)]
  problems += [f'remove "{p}" from NOT_IMPORTED_OK in build_file_test.py: it '
               'is imported or no longer pinned'
               for p in sorted(allowed - unused)]
  assert not problems, '\n'.join(problems)


def test_bad_globs_and_optional_imports_are_told_apart(tmp_path):
  assert not BAD_GLOB.search('pixelrl_tf/**/*.py')
  assert all(BAD_GLOB.search(p) for p in ('a**/b', 'a/**b', '../a', '/a/b'))
  source = tmp_path / 'x.py'
  source.write_text('import numpy.linalg\ntry:\n  import gym\n'
                    'except ImportError:\n  pass\nfrom os import path\n')
  assert third_party_imports(source) == {'numpy'}


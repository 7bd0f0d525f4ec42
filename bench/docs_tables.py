r"""The tables of the documentation, generated from benchmark result files.

  python bench/docs_tables.py            # rewrites every generated block
  python bench/docs_tables.py --check    # changes nothing; exit 1 if stale

Every speed, memory and quality figure of `docs/` comes from a result file
that a script under `bench/` wrote (`bench/results/*.json`); none is typed
by hand. In a markdown file a generated table sits between two marker lines:

  <!-- generated: NAME -->
  ...
  <!-- end generated -->

where NAME is a registered table. The script replaces what lies between the
markers of every block of `docs/*.md` and `README.md` with the table's
rendering, followed by a source line naming the result files and the
machine and date recorded in them (atomic writes; a file whose blocks are
all current is not touched). `--check` writes nothing: it prints one line
per block that differs from its rendering, names an unknown table, has no
end marker, or whose result file is missing or cannot be rendered, and
exits 1 if there is any such line. The rewrite prints the same problems
(leaving those blocks as they are) and exits 1 too.

Adding a table: write a function that takes the loaded result files (a dict
from file name, relative to `bench/results`, to the parsed JSON) and returns
markdown without the source line (`markdown_table` builds a table), then
register it under a name with the files it reads:

  def _render_time_to_quality(results):
    data = results['time_to_quality.json']
    return markdown_table(['config', 'minutes'],
                          [[run['config'], fmt(run['minutes'], 1)]
                           for run in data['runs']])

  register_table('time_to_quality', _render_time_to_quality,
                 ['time_to_quality.json'])

and put the two marker lines where the table belongs in the document;
`python bench/docs_tables.py` fills the block in. A renderer raises
`TableError` (or lets a `KeyError`, `TypeError`, `ValueError` or
`IndexError` escape) when a file does not have what it needs; the block is
then reported, not rewritten.
"""

import argparse
import json
import os
import pathlib
import re
import statistics
import sys
from typing import (Any, Callable, Dict, Iterable, List, NamedTuple,
                    Optional, Sequence, Tuple)

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pixelrl_tf import hardware  # pylint: disable=g-import-not-at-top
from pixelrl_tf.io import files  # pylint: disable=g-import-not-at-top

RESULTS_DIR = ROOT / 'bench' / 'results'
# How documents name a result file, whichever folder it was read from.
RESULTS_LABEL = 'bench/results'
START_MARKER = '<!-- generated: {name} -->'
END_MARKER = '<!-- end generated -->'
_START = re.compile(r'^<!-- generated: (\S*) -->$')
_MISSING = '—'

# The loaded result files of a table: file name -> parsed JSON.
Results = Dict[str, Any]
RenderFn = Callable[[Results], str]


class TableError(Exception):
  """A table that cannot be rendered, with the reason."""


class Table(NamedTuple):
  """A registered table.

  Attributes:
    name: the NAME of its marker line.
    render_fn: `results -> markdown` (without the source line).
    sources: the result files it reads, relative to `bench/results`.
  """
  name: str
  render_fn: RenderFn
  sources: Tuple[str, ...]


TABLES: Dict[str, Table] = {}


def register_table(name: str, render_fn: RenderFn, sources: Sequence[str],
                   overwrite: bool = False) -> None:
  """Registers a table under `name`.

  Args:
    name: the NAME of `<!-- generated: NAME -->` (no white space).
    render_fn: takes the loaded result files (file name -> parsed JSON) and
      returns the table as markdown, without the source line.
    sources: the result files it reads, relative to `bench/results`.
    overwrite: replace a table of the same name instead of raising.

  Raises:
    ValueError: a bad name, no sources, or a name already registered.
  """
  if not name or re.search(r'\s', name):
    raise ValueError(f'bad table name {name!r}')
  if isinstance(sources, str) or not sources:
    raise ValueError(f'table {name!r}: give a list of result files')
  if name in TABLES and not overwrite:
    raise ValueError(f'table {name!r} is already registered')
  TABLES[name] = Table(name, render_fn, tuple(sources))


# Formatting helpers for renderers.


def fmt(value: Any, digits: int = 2, missing: str = _MISSING) -> str:
  """A number with `digits` decimals; `missing` for None, yes/no for bools."""
  if value is None:
    return missing
  if isinstance(value, bool):
    return 'yes' if value else 'no'
  return f'{value:.{digits}f}'


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]],
                   align: Optional[str] = None) -> str:
  """A markdown table; `|` inside a cell is escaped.

  Args:
    header: the column titles.
    rows: the cells of each row, as text, one per column.
    align: one letter per column, `l` (left) or `r` (right); by default the
      first column is left-aligned and the others right-aligned.

  Returns:
    The table's lines, joined with newlines (no trailing newline).

  Raises:
    ValueError: a row or `align` of the wrong length.
  """
  align = align or 'l' + 'r' * (len(header) - 1)
  if len(align) != len(header):
    raise ValueError(f'align {align!r} does not fit {len(header)} columns')

  def line(cells):
    return '| ' + ' | '.join(str(c).replace('|', '\\|') for c in cells) + ' |'

  lines = [line(header),
           '|' + '|'.join('---' if a == 'l' else '---:' for a in align) + '|']
  for row in rows:
    if len(row) != len(header):
      raise ValueError(f'row {row!r} does not fit {len(header)} columns')
    lines.append(line(row))
  return '\n'.join(lines)


def describe_machine(data: Dict[str, Any]) -> str:
  """The machine a result file records, in words."""
  machine = data.get('machine')
  if machine is None:
    text = 'machine not recorded'
  elif isinstance(machine, str):
    text = machine
  elif 'cpu_model' in machine:
    text = f'{machine.get("node", "?")}, {hardware.summary_line(machine)}'
  else:
    text = (f'{machine.get("node", "?")} {machine.get("processor", "?")}, '
            f'{machine.get("cpu_count", "?")} cores')
  if isinstance(data.get('gpu'), list):
    names = ', '.join(str(g.get('name', g)) if isinstance(g, dict) else str(g)
                      for g in data['gpu'])
    text += f', {names}' if names else ', no GPU'
  return text


def describe_date(data: Dict[str, Any]) -> str:
  """The day a result file records (`YYYY-MM-DD`), or that it has none."""
  date = data.get('date')
  if not date:
    return 'date not recorded'
  date = str(date)
  return date[:10] if re.match(r'\d{4}-\d{2}-\d{2}', date) else date


def source_line(results: Results, sources: Sequence[str]) -> str:
  """`Source: `bench/results/X.json` (machine; date).`, files grouped."""
  groups: List[Tuple[str, List[str]]] = []
  for name in sources:
    where = (f'{describe_machine(results[name])}; '
             f'{describe_date(results[name])}')
    label = f'`{RESULTS_LABEL}/{name}`'
    if groups and groups[-1][0] == where:
      groups[-1][1].append(label)
    else:
      groups.append((where, [label]))
  word = 'Source' if len(sources) == 1 else 'Sources'
  return f'{word}: ' + '; '.join(
      f'{", ".join(labels)} ({where})' for where, labels in groups) + '.'


# Rendering and checking documents.


def load_results(sources: Sequence[str],
                 results_dir: pathlib.Path = RESULTS_DIR) -> Results:
  """Reads the result files of a table.

  Args:
    sources: file names relative to `results_dir`.
    results_dir: the folder of the result files.

  Returns:
    File name -> parsed JSON.

  Raises:
    TableError: a file is missing or is not JSON.
  """
  results = {}
  for name in sources:
    path = pathlib.Path(results_dir) / name
    try:
      results[name] = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
      raise TableError(
          f'missing result file {RESULTS_LABEL}/{name}') from None
    except (OSError, ValueError) as error:
      raise TableError(
          f'cannot read {RESULTS_LABEL}/{name}: {error}') from None
  return results


def render_block(name: str,
                 results_dir: pathlib.Path = RESULTS_DIR) -> str:
  """The text between the marker lines of table `name`.

  Args:
    name: a registered table.
    results_dir: the folder of the result files.

  Returns:
    The rendering and the source line, each line ending with a newline.

  Raises:
    TableError: an unknown table, a missing or unreadable result file, or a
      file that lacks what the renderer needs.
  """
  if name not in TABLES:
    raise TableError(f'unknown table {name!r} (registered: '
                     f'{", ".join(sorted(TABLES))})')
  table = TABLES[name]
  results = load_results(table.sources, results_dir)
  try:
    markdown = table.render_fn(results)
  except TableError:
    raise
  except (KeyError, TypeError, ValueError, IndexError) as error:
    raise TableError(
        f'cannot render from {", ".join(table.sources)}: '
        f'{type(error).__name__} {error}') from None
  return (markdown.strip('\n') + '\n\n' +
          source_line(results, table.sources) + '\n')


class Outcome(NamedTuple):
  """What refreshing one document found.

  Attributes:
    text: the document with every renderable block rendered.
    stale: one line per block whose text differs from its rendering.
    errors: one line per block that cannot be rendered (unknown table,
      missing or unreadable result file, no end marker).
  """
  text: str
  stale: List[str]
  errors: List[str]


def refresh_text(text: str, label: str,
                 results_dir: pathlib.Path = RESULTS_DIR) -> Outcome:
  """Renders every generated block of a markdown document.

  Args:
    text: the document.
    label: how messages name the document (e.g. `docs/benchmarks.md`).
    results_dir: the folder of the result files.

  Returns:
    An `Outcome`; blocks that cannot be rendered keep their text.
  """
  lines = text.splitlines(keepends=True)
  out: List[str] = []
  stale: List[str] = []
  errors: List[str] = []
  index = 0
  while index < len(lines):
    line = lines[index]
    match = _START.match(line.strip())
    if not match:
      if line.strip() == END_MARKER:
        errors.append(f'{label}:{index + 1}: end marker without a block')
      elif line.strip().startswith('<!-- generated'):
        errors.append(f'{label}:{index + 1}: malformed marker line (write '
                      f'"{START_MARKER.format(name="NAME")}")')
      out.append(line)
      index += 1
      continue
    name, start = match.group(1), index
    end = start + 1
    while end < len(lines) and not (
        lines[end].strip() == END_MARKER or _START.match(lines[end].strip())):
      end += 1
    where = f'{label}:{start + 1}: table {name!r}'
    if end == len(lines) or lines[end].strip() != END_MARKER:
      errors.append(f'{where}: no "{END_MARKER}" before the next block or '
                    'the end of the file')
      out.append(lines[start])
      index = start + 1
      continue
    current = ''.join(lines[start + 1:end])
    try:
      rendered = render_block(name, results_dir)
    except TableError as error:
      errors.append(f'{where}: {error}')
      rendered = current
    if rendered != current:
      stale.append(f'{where}: differs from its rendering')
    out.append(lines[start])
    out.append(rendered)
    out.append(lines[end])
    index = end + 1
  return Outcome(''.join(out), stale, errors)


def documents(root: pathlib.Path = ROOT) -> List[pathlib.Path]:
  """`docs/*.md` and `README.md`: the documents that may hold blocks."""
  found = sorted((pathlib.Path(root) / 'docs').glob('*.md'))
  readme = pathlib.Path(root) / 'README.md'
  return found + ([readme] if readme.exists() else [])


def _label(path: pathlib.Path) -> str:
  try:
    return pathlib.Path(path).resolve().relative_to(ROOT).as_posix()
  except ValueError:
    return str(path)


def check(paths: Optional[Sequence[pathlib.Path]] = None,
          results_dir: pathlib.Path = RESULTS_DIR) -> List[str]:
  """Problems of the documents' blocks; nothing is written.

  Args:
    paths: the documents (default: `documents()`).
    results_dir: the folder of the result files.

  Returns:
    One line per block that cannot be rendered or differs from its
    rendering; empty when every block is current.
  """
  problems = []
  for path in documents() if paths is None else paths:
    outcome = refresh_text(pathlib.Path(path).read_text(encoding='utf-8'),
                           _label(path), results_dir)
    problems += outcome.errors + outcome.stale
  return problems


def update(paths: Optional[Sequence[pathlib.Path]] = None,
           results_dir: pathlib.Path = RESULTS_DIR
           ) -> Tuple[List[str], List[str]]:
  """Rewrites the blocks of the documents in place.

  Args:
    paths: the documents (default: `documents()`).
    results_dir: the folder of the result files.

  Returns:
    `(rewritten, errors)`: one line per block rewritten, one per block that
    cannot be rendered (left as it was).
  """
  rewritten, errors = [], []
  for path in documents() if paths is None else paths:
    path = pathlib.Path(path)
    text = path.read_text(encoding='utf-8')
    outcome = refresh_text(text, _label(path), results_dir)
    errors += outcome.errors
    if outcome.text != text:
      files.write_text_atomically(path, outcome.text)
      rewritten += [line.replace('differs from its rendering', 'rewritten')
                    for line in outcome.stale]
  return rewritten, errors


# The tables.


def _core_model(data: Dict[str, Any]) -> str:
  return {'gru': '"+convGRU"', 'fcn': 'plain FCN',
          'gru_rmc': '"+convGRU+RMC"'}.get(data['variant'], data['variant'])


def _core_options(data: Dict[str, Any]) -> str:
  options = (['XLA'] if data.get('jit_compile') else []) + (
      [f'`{data["mixed_precision"]}`'] if data.get('mixed_precision') else [])
  return ''.join(f', {o}' for o in options)


_CORE_FILES = ('core.json', 'core_fcn_b8_kept.json',
               'core_fcn_b8_recompute.json', 'core_fcn_b8_xla.json')


def _render_core(results: Results) -> str:
  rows, restorations = [], []
  for name in _CORE_FILES:
    data = results[name]
    model, options = _core_model(data), _core_options(data)
    for episode in data['episodes']:
      rows.append([
          f'{model} episode, batch {episode["batch"]}{options}',
          fmt(episode['episode_s']), fmt(episode['collect_s']),
          fmt(episode['update_s']), fmt(episode['environment_s']),
          fmt(episode['efficiency']),
          'kept' if episode['kept_activations'] else 'recomputed',
          fmt(data['conv_gflops'], 1)])
    restore = data.get('restore')
    if restore:
      restorations.append([
          f'{model} greedy restoration {restore["size"]}{options}',
          fmt(restore['restore_s']), _MISSING, _MISSING,
          fmt(restore['environment_s']), fmt(restore['efficiency']),
          _MISSING, fmt(data['conv_gflops'], 1)])
  return markdown_table(
      ['what', 'total s', 'collect s', 'update s', 'environment s',
       'efficiency', 'activations', 'conv GFLOP/s'], rows + restorations,
      align='lrrrrrlr')


def _render_one_rollout(results: Results) -> str:
  before = results['core_before_one_rollout.json']
  after = results['core_after_one_rollout.json']
  label = _core_model(before) + _core_options(before)
  if _core_model(after) + _core_options(after) != label:
    raise TableError('the before and after files measure different models')
  pairs = []
  after_episodes = {e['batch']: e for e in after['episodes']}
  for episode in before['episodes']:
    if episode['batch'] in after_episodes:
      pairs.append((f'{label} episode, batch {episode["batch"]}',
                    episode['episode_s'],
                    after_episodes[episode['batch']]['episode_s']))
  if before.get('restore') and after.get('restore'):
    pairs.append((f'{label} greedy restoration {before["restore"]["size"]}',
                  before['restore']['restore_s'],
                  after['restore']['restore_s']))
  rows = [[what, fmt(old), fmt(new), _change(old, new)]
          for what, old, new in pairs]
  rows.append(['one 64→64 3×3 convolution, GFLOP/s (same run)',
               fmt(before['conv_gflops'], 1), fmt(after['conv_gflops'], 1),
               _change(before['conv_gflops'], after['conv_gflops'])])
  return markdown_table(['what', 'before', 'after', 'change'], rows)


def _change(old: float, new: float) -> str:
  return f'{100 * (new / old - 1):+.1f} %'


def _render_peer(results: Results) -> str:
  peer, ours = results['peer.json'], results['core_fcn_b8_kept.json']
  if ours['variant'] != 'fcn':
    raise TableError('core_fcn_b8_kept.json is not a plain FCN run')
  episodes = {e['batch']: e for e in ours['episodes']}
  if peer['batch'] not in episodes:
    raise TableError(f'core_fcn_b8_kept.json has no batch {peer["batch"]}')
  mine = episodes[peer['batch']]
  rows = [
      [f'PyTorch port ({peer["peer_repo"]} @ {peer["peer_commit"][:7]}, '
       f'{peer["variant"]}, torch {peer["torch_version"]}, '
       f'{peer["threads"]} threads)', fmt(peer['episode_s']),
       fmt(peer['collect_s']), fmt(peer['update_s'])],
      ['pixelrl_tf, activations '
       f'{"kept" if mine["kept_activations"] else "recomputed"}',
       fmt(mine['episode_s']), fmt(mine['collect_s']),
       fmt(mine['update_s'])],
      ['ratio pixelrl_tf / port',
       fmt(mine['episode_s'] / peer['episode_s']),
       fmt(mine['collect_s'] / peer['collect_s']),
       fmt(mine['update_s'] / peer['update_s'])],
  ]
  return markdown_table(
      [f'plain FCN episode, batch {peer["batch"]}, '
       f'{peer["crop"]}×{peer["crop"]}, t_max {peer["t_max"]}', 'total s',
       'collect s', 'update s'], rows)


_PRECISION_LABELS = {'float32': 'float32', 'xla': 'XLA (`jit_compile`)',
                     'mixed_bfloat16': '`mixed_bfloat16` (network only)',
                     'mixed_float16': '`mixed_float16` (network only)'}


def _render_precision(results: Results) -> str:
  data = results['precision.json']
  rows = []
  for name, row in data['rows'].items():
    difference = row.get('psnr_difference')
    changed = row.get('changed_action_share')
    rows.append([
        _PRECISION_LABELS.get(name, name), fmt(row['psnr'], 3),
        _MISSING if difference is None else f'{difference:+.2g}',
        _MISSING if changed is None else f'{100 * changed:.2g} %',
        fmt(row['seconds_per_image'], 1)])
  intro = (f'Weights `{os.path.basename(data["model"])}`, noise '
           f'`{data["noise"]}`, images: {", ".join(data["images"])}.')
  return intro + '\n\n' + markdown_table(
      ['setting', 'greedy PSNR (dB)', 'vs float32 (dB)',
       'pixel decisions changed (all steps)', 's per image'], rows)


# Training runs (`bench/bench_training.py`).

_TRAINING_FILES = ('training_denoise_quick.json',
                   'training_denoise_quick_random_init.json',
                   'training_poisson_quick.json',
                   'training_salt_pepper_quick.json',
                   'training_denoise_rmc_quick.json',
                   'training_restore_quick.json')
_METRIC_LABELS = {'psnr': 'PSNR (dB)', 'lab_distance': 'mean Lab distance',
                  'lab': 'mean Lab distance'}


def _metric_label(data: Dict[str, Any]) -> str:
  return _METRIC_LABELS.get(data['metric'], data['metric'])


def _steps(data: Dict[str, Any], checkpoint: Dict[str, Any]) -> int:
  return checkpoint.get('inference_steps') or data['model']['t_max']


def _render_training_runs(results: Results) -> str:
  rows = []
  for name in _TRAINING_FILES:
    data = results[name]
    training, test = data['training'], data['test_set']
    run = ' '.join([f'`{f}`' for f in data['gin_files']] +
                   [f'`{b}`' for b in data['gin_bindings']])
    corruption = test.get('noise') or test['kind']
    test_set = (f'{test["num_images"]} centre {test["crop"]}×{test["crop"]} '
                f'crops of {os.path.basename(test["test_dir"])}, '
                f'{corruption} (seed {test["seed"]})')
    model = data['checkpoints']['model']
    evaluated = (f'episode {model["episode"]} of {training["num_episodes"]}, '
                 f'{_steps(data, model)} steps')
    if training['skipped']:
      trained, per_episode = 'none (evaluation only)', _MISSING
    else:
      budget = training['budget'].get('max_minutes')
      trained = (f'{training["episodes_done"]} episodes'
                 + (f' ({budget:g}-minute budget)' if budget else ''))
      per_episode = fmt(training['seconds'] / training['episodes_done'], 1)
    validation = _MISSING
    if training.get('val_metric') is not None:
      validation = (f'{fmt(training["val_metric"])} (input '
                    f'{fmt(training["input_metric"])})')
    best = data['checkpoints'].get('best_checkpoint')
    best_text = _MISSING
    if best:
      best_text = (f'episode {best["episode"]}, {_steps(data, best)} steps: '
                   f'{fmt(best["validation"]["value"])}')
    rows.append([run, test_set, evaluated, trained, per_episode, validation,
                 best_text])
  return markdown_table(
      ['run', 'test set', 'checkpoint tested', 'trained by this command',
       's per episode, set-up included', 'last validation (input)',
       'best validated checkpoint'], rows, align='lllrrrl')


def _fixed_label(label: str) -> Tuple[str, str]:
  """`('bilateral_0.1', '3')` from `'bilateral_0.1 x3'`."""
  action, _, count = label.rpartition(' x')
  return (action, count) if action else (label, '?')


def _render_training_quality(name: str) -> RenderFn:
  """A renderer of the rows of one `bench_training.py` result file."""

  def render(results: Results) -> str:
    data = results[name]
    metric, rows, per_step = data['metric'], data['rows'], data['per_step']
    t_max = data['model']['t_max']
    has_ssim = 'ssim' in rows['original']
    table = []

    def add(label, steps, row):
      cells = [label] + ([fmt(v) for v in steps] if steps else [''] * t_max)
      cells.append(fmt(row[metric]))
      if has_ssim:
        cells.append(fmt(row['ssim'], 3))
      table.append(cells)

    add('Corrupted input', None, rows['original'])
    add('Random agents', per_step['random_agents'], rows['random_agents'])
    action, count = _fixed_label(data['best_fixed_schedule'])
    add(f'Best fixed schedule ({action} × t; best at {count})',
        per_step['best_fixed_action'], rows['best_fixed_schedule'])
    checkpoints = data['checkpoints']
    model = checkpoints['model']
    add(f'Model, latest checkpoint (episode {model["episode"]}, '
        f'{_steps(data, model)} steps)', per_step['model'], rows['model'])
    if 'best_checkpoint' in rows:
      best = checkpoints['best_checkpoint']
      add(f'Model, best validated checkpoint (episode {best["episode"]}, '
          f'{_steps(data, best)} steps)', per_step['best_checkpoint'],
          rows['best_checkpoint'])
    header = ([''] + [f't={t}' for t in range(1, t_max + 1)] +
              [f'{_metric_label(data)} at the steps used'] +
              (['SSIM'] if has_ssim else []))
    return markdown_table(header, table)

  return render


def _render_validation_report(results: Results) -> str:
  """The final report of the training command (validation split)."""
  data = results['training_denoise_rmc_quick.json']
  report = data['training']['final_report']
  if not report:
    raise TableError('training_denoise_rmc_quick.json has no final report')
  steps = report['model_per_step']
  header = ([''] + [f't={t}' for t in range(1, len(steps) + 1)] +
            [f'{_METRIC_LABELS.get(report["metric"], report["metric"])} '
             'at the steps used'])
  action, count = _fixed_label(report['best_fixed_schedule_label'])
  rows = [
      ['Input'] + [''] * len(steps) + [fmt(report['input'])],
      [f'Best fixed schedule ({action}, {count} times)'] + [''] * len(steps)
      + [fmt(report['best_fixed_schedule'])],
      [f'Model ({report["inference_steps"]} of {report["t_max"]} steps '
       'chosen on validation)'] + [fmt(v) for v in steps] +
      [fmt(report['model'])],
  ]
  return markdown_table(header, rows)


# The learning tests and their breakages (`bench/learning_breakage.py`).

_BREAKAGE_LABELS = {
    'none': 'nothing', 'advantage_sign': 'advantage sign flipped',
    'entropy_sign': 'entropy bonus reversed',
    'entropy_removed': 'entropy bonus removed',
    'returns_shift': 'returns of the next step',
    'returns_zero': 'returns zero', 'schedule_zero': 'schedule gives 0',
    'schedule_constant': 'schedule constant',
    'schedule_inverted': 'schedule inverted'}


def _breakages(data: Dict[str, Any]) -> Dict[str, Any]:
  if 'breakages' not in data:
    raise TableError(
        'learning_breakage.json has no "breakages": it was written by an '
        'earlier version of bench/learning_breakage.py (one seed, no '
        'bandit); rerun that script')
  return data['breakages']


def _verdict(passes: bool) -> str:
  return 'passes' if passes else '**fails**'


def _render_breakage(results: Results) -> str:
  data = results['learning_breakage.json']
  breakages = _breakages(data)
  limits, settings = data['thresholds'], data['settings']
  optimum = ', '.join(f'{p:.3f}' for p in settings['bandit_optimum'])
  intro = (
      f'Seeds {", ".join(str(s) for s in data["seeds"])}. Shift task: '
      f'{settings["shift_episodes"]} episodes at learning rate '
      f'{settings["shift_learning_rate"]:g}; its test passes when the '
      f'median optimal share is at least {limits["min_optimal_share"]:g} and '
      f'the median PSNR at least {limits["min_psnr"]:g} dB. Bandit: '
      f'{settings["bandit_episodes"]} episodes at learning rate '
      f'{settings["bandit_learning_rate"]:g}, entropy weight '
      f'{settings["bandit_beta"]:g}, reward {settings["bandit_reward"]:g} '
      f'(optimum: {optimum}); its test passes when the median total '
      'variation distance to the optimum is at most '
      f'{limits["max_bandit_distance"]:g}. The schedule test passes when '
      'the logged rates follow the poly schedule on every seed.')
  rows = []
  for name, result in breakages.items():
    median = result['median']
    rows.append([_BREAKAGE_LABELS.get(name, name),
                 fmt(median['optimal_share'], 3), fmt(median['psnr']),
                 fmt(median['bandit_distance'], 3),
                 _verdict(result['shift_test_passes']),
                 _verdict(result['schedule_test_passes']),
                 _verdict(result['bandit_test_passes'])])
  return intro + '\n\n' + markdown_table(
      ['broken', 'median optimal share', 'median PSNR (dB)',
       'median bandit distance', 'shift test', 'schedule test',
       'bandit test'], rows, align='lrrrlll')


def _render_breakage_seeds(results: Results) -> str:
  breakages = _breakages(results['learning_breakage.json'])
  rows = []
  for name, result in breakages.items():
    for seed in result['per_seed']:
      rows.append([
          _BREAKAGE_LABELS.get(name, name), str(seed['seed']),
          fmt(seed['optimal_share'], 3), fmt(seed['psnr']),
          'poly' if seed['schedule_is_poly'] else 'wrong',
          ', '.join(f'{p:.3f}' for p in seed['bandit_probabilities']),
          fmt(seed['bandit_distance'], 3)])
  return markdown_table(
      ['broken', 'seed', 'optimal share', 'PSNR (dB)', 'schedule',
       'bandit probabilities (down, nothing, up)', 'bandit distance'], rows,
      align='lrrrlrr')


# Reliability and dependencies.


def _render_kill_campaign(results: Results) -> str:
  data = results['kill_campaign.json']
  settings, summary = data['settings'], data['summary']
  uninterrupted = data['uninterrupted_command']
  comparison = data['comparison']
  phases = ', '.join(f'{phase} {count}' for phase, count
                     in summary['kills_by_phase'].items())
  differences = ', '.join(
      f'{part} {value:g}' for part, value
      in comparison['final_checkpoint_max_abs_difference'].items())
  equal_files = [key[:-len(' equal')] for key, value in comparison.items()
                 if key.endswith(' equal') and value]
  unequal_files = [key[:-len(' equal')] for key, value in comparison.items()
                   if key.endswith(' equal') and not value]
  rows = [
      ['run', f'`{settings["gin_file"]}`, {settings["num_episodes"]} '
       f'episodes, seed {settings["seed"]}, launcher {settings["launcher"]}'],
      ['kills, starts', f'{summary["kills"]} kills, {summary["starts"]} '
       f'starts; completed: {fmt(summary["completed"])}'],
      ['kills by phase', phases],
      ['kills before / after the first episode of their start',
       f'{summary["kills_before_the_first_episode_of_their_start"]} / '
       f'{summary["kills_after_it"]}'],
      ['kills that kept episodes', str(summary['kills_that_kept_episodes'])],
      ['every start resumed from the latest checkpoint',
       fmt(summary['every_start_resumed_from_the_latest_checkpoint'])],
      ['final checkpoint, max abs difference to the uninterrupted run',
       differences],
      ['best checkpoint, max abs difference',
       f'{comparison["best_checkpoint_max_abs_difference"]:g}'],
      ['run files equal', ', '.join(equal_files) or 'none'],
      ['run files that differ', ', '.join(unequal_files) or 'none'],
      ['stray files', ', '.join(comparison['stray_files']) or 'none'],
      ['seconds: campaign / uninterrupted run',
       f'{fmt(summary["seconds"], 1)} / {fmt(uninterrupted["seconds"], 1)}'],
  ]
  return markdown_table(['what', 'result'], rows, align='ll')


def _render_addons(results: Results) -> str:
  data = results['addons.json']
  rows = []

  def small(value):
    return _MISSING if value is None else f'{value:.2g}'

  for row in data['filters']:
    timed = row.get('timed')
    rows.append([
        row['filter'], row['implementation'], row['padding'],
        f'{small(row.get("max_abs_interior"))} / '
        f'{small(row.get("max_abs_border"))}',
        fmt(row.get('ms_8x70x70'), 1) if timed else _MISSING,
        fmt(row.get('ms_1x321x481'), 1) if timed else _MISSING,
        row.get('tiny_images', _MISSING)])
  intro = (f'TensorFlow {data["tensorflow"]}, OpenCV {data["opencv"]}, '
           f'TensorFlow Addons {data["tensorflow_addons"]}, keras-cv '
           f'{data["keras_cv"]}.')
  return intro + '\n\n' + markdown_table(
      ['filter', 'implementation', 'padding',
       'max abs difference to OpenCV, interior / border',
       'ms [8,70,70,1]', 'ms [1,321,481,1]', 'tiny images'], rows,
      align='lllrrrl')


def _render_addons_imports(results: Results) -> str:
  data = results['addons.json']
  rows = [[f'`{row["module"]}`', fmt(row['seconds'], 2),
           str(row['modules_added']), str(len(row['packages_added'])),
           '; '.join(row['warnings'] + row['printed']) or '-']
          for row in data['imports']]
  return markdown_table(
      ['import (after `import tensorflow`)', 'seconds', 'modules added',
       'packages added', 'warnings and printed lines'], rows,
      align='lrrrl')


# The colour metric (`bench/color_metric_variants.py`).


def _render_color_metric_variants(results: Results) -> str:
  data = results['color_metric_variants.json']
  quoted = data['reference_original_test']
  rows = []
  for row in data['variants']:
    value, ratio = row['value'], row['ratio']
    low_high = row.get('ratio_p5_p95')
    spread = (f'{low_high[0]:.3f}-{low_high[1]:.3f}'
              if low_high and row['variant'] != 'reference' else '')
    rows.append([row['description'].replace('*', '\\*'),
                 'n/a' if value is None else fmt(value),
                 '' if ratio is None else fmt(ratio, 3), spread,
                 '' if row['implied_test'] is None
                 else fmt(row['implied_test'])])
  intro = (
      f'{data["pairs"]} training pairs; spread over '
      f'{data["subsets"]["count"]} random {data["subsets"]["size"]}-pair '
      f'subsets (seed {data["subsets"]["seed"]}). Quoted, not measured '
      f'here: the paper\'s "Original" on the test split, '
      f'{data["paper_original_test"]:g} (Table VIII), and the released '
      f'code\'s metric on that split, {quoted:g} (the test pairs are not '
      f'available here); their ratio is {data["target_ratio"]:.3f}.')
  return intro + '\n\n' + markdown_table(
      ['variant', f'{data["pairs"]} train pairs', 'ratio', '5-95%',
       f'× quoted {quoted:g}'], rows)


# Time to quality (`bench/bench_time_to_quality.py`).


def _ttq_unit(data: Dict[str, Any]) -> str:
  return ' dB' if data['higher_is_better'] else ' Lab'


def _gain(metric: float, bar: float, data: Dict[str, Any]) -> float:
  """`protocol.learned_gain` (docs_tables does not import TensorFlow)."""
  return metric - bar if data['higher_is_better'] else bar - metric


def _sequence_text(base: Dict[str, Any], unit: str) -> str:
  """The best fixed sequence of a time-to-quality file's baselines, if any."""
  if 'best_fixed_sequence' not in base:
    return ''
  how = '' if base['best_fixed_sequence_exhaustive'] else ' (beam search)'
  return (f', best fixed sequence{how} '
          f'{", ".join(base["best_fixed_sequence_actions"])} '
          f'{base["best_fixed_sequence"]:.2f}{unit}')


def _render_time_to_quality(name: str) -> RenderFn:
  """One configuration's gain curve: median (min..max) over the seeds."""

  def render(results: Results) -> str:
    data = results[name]
    base = data['baselines']
    unit = _ttq_unit(data)
    seeds = data['settings']['seeds']
    peer = any('peer_gain_median' in row for row in data['summary'])
    sequence = 'best_fixed_sequence' in base
    header = ['minutes', 'episodes', 'learned gain', 'metric']
    if sequence:
      header.append('gain over the sequence')
    if peer:
      header += ['PyTorch port: gain', 'port episodes']
    shares = all('top_action_share' in point for run in data['runs']
                 for point in run['points'])
    if shares:
      header.append('top action share')
    rows = []
    for index, row in enumerate(data['summary']):
      cells = [fmt(row['minutes'], 1) if row['episodes'] else
               '0 (initial weights)', fmt(row['episodes'], 0),
               f'{row["gain_median"]:+.2f} ({row["gain_min"]:+.2f}..'
               f'{row["gain_max"]:+.2f})', fmt(row['metric_median'])]
      if sequence:
        cells.append(f'{row["sequence_gain_median"]:+.2f} '
                     f'({row["sequence_gain_min"]:+.2f}..'
                     f'{row["sequence_gain_max"]:+.2f})')
      if shares:
        per_seed = [run['points'][index]['top_action_share']
                    for run in data['runs']]
        cells.append(' / '.join(
            f'{statistics.median(step):.2f}' for step in zip(*per_seed)))
      if peer:
        cells += ([f'{row["peer_gain_median"]:+.2f} '
                   f'({row["peer_gain_min"]:+.2f}..'
                   f'{row["peer_gain_max"]:+.2f})',
                   fmt(row['peer_episodes'], 0)]
                  if 'peer_gain_median' in row else [_MISSING, _MISSING])
      rows.append(cells)
    bindings = ', '.join(f'`{b}`' for b in data['gin_bindings']) or 'none'
    test = data['test_set']
    intro = (
        f'`{data["label"]}`: {", ".join(data["gin_files"])} with {bindings}; '
        f'{data["settings"]["minutes"]:g} minutes per seed, seeds '
        f'{", ".join(str(s) for s in seeds)}; test split: '
        f'{test["num_images"]} held-out {test["source"]} images '
        f'(split seed {test["split_seed"]}), centre {test["crop"]}-pixel '
        f'crops. Baselines on it: input {base["input"]:.2f}{unit}, random '
        f'agents {base["random_agents"]:.2f}{unit}, best fixed schedule '
        f'{base["best_fixed_schedule_label"]} '
        f'{base["best_fixed_schedule"]:.2f}{unit}{_sequence_text(base, unit)}'
        f'. Learned gain: median (min..max) over the seeds.' + (
            ' The first row is the configured initial weights before any '
            'update (layers no file sets drawn afresh per seed).'
            if data['summary'][0]['episodes'] == 0 else '') + (
            ' Top action share: at each step, the share of an image\'s '
            'pixels that take its most frequent action, averaged over the '
            'images (median over the seeds; 1.00: one action for the whole '
            'image).' if shares else ''))
    return intro + '\n\n' + markdown_table(header, rows)

  return render


# `bench/profile_training.py`'s parts in the order a run meets them (the
# triggers, by name, between the episodes and the final report).
_PROFILE_FIRST = ('set-up', 'first episode', 'episodes', 'data')
_PROFILE_LAST = ('final report',)
_PROFILE_INSIDE_EPISODES = ('data',)


def profile_table(data: Dict[str, Any]) -> str:
  """A training profile: each part's seconds, share and seconds per episode."""
  parts = data['seconds_by_part']
  wall = data['wall_seconds']
  episodes = max(data['episodes'], 1)
  triggers = sorted(set(parts) - set(_PROFILE_FIRST) - set(_PROFILE_LAST),
                    key=lambda part: -parts[part])
  rows = []
  for part in list(_PROFILE_FIRST) + triggers + list(_PROFILE_LAST):
    if part not in parts:
      continue
    name = (f'{part} (inside the episodes)'
            if part in _PROFILE_INSIDE_EPISODES else part)
    rows.append([name, fmt(parts[part], 1),
                 f'{100 * parts[part] / wall:.1f} %',
                 fmt(parts[part] / episodes, 3)])
  bindings = ', '.join(f'`{b}`' for b in data['gin_bindings']) or 'none'
  precision = data['mixed_precision'] or 'float32'
  intro = (f'`{data["label"]}`: {", ".join(data["gin_files"])} with '
           f'{bindings}; {data["episodes"]} episodes in '
           f'{data["wall_seconds"]:.0f} s ({precision}).')
  return intro + '\n\n' + markdown_table(
      ['part', 'seconds', 'share of the run', 'per episode (s)'], rows)


def _register_profiles() -> None:
  for path in sorted(RESULTS_DIR.glob('profile_*.json')):
    register_table(path.stem, lambda results, name=path.name: profile_table(
        results[name]), [path.name])


def _render_time_to_quality_probes(names: Sequence[str]) -> RenderFn:
  """One seed's point per file: gain and the greedy metric after each step.

  The files must share their test split and best fixed schedule (random
  agents differ with `t_max`). The best fixed sequence depends on `t_max`
  too: a file measured before the benchmark searched it is compared with
  the sequence another file of the same split and `t_max` measured.
  Columns a file does not have show a dash.
  """

  def render(results: Results) -> str:
    datas = [results[name] for name in names]
    base = datas[0]['baselines']
    for name, data in zip(names, datas):
      if (data['test_set'] != datas[0]['test_set'] or
          data['baselines']['best_fixed_schedule'] !=
          base['best_fixed_schedule']):
        raise TableError(f'{name} was measured on another split')
    unit = _ttq_unit(datas[0])
    sequences = {}
    for name, data in zip(names, datas):
      if 'best_fixed_sequence' in data['baselines']:
        t_max = len(data['runs'][0]['points'][-1]['per_step'])
        known = sequences.setdefault(t_max, data['baselines'])
        if (known['best_fixed_sequence'] !=
            data['baselines']['best_fixed_sequence']):
          raise TableError(f'{name} found another best fixed sequence')
    shares = any('top_action_share' in run['points'][-1]
                 for data in datas for run in data['runs'])
    steps = max(len(run['points'][-1]['per_step'])
                for data in datas for run in data['runs'])
    rows = []
    for data in datas:
      for run in data['runs']:
        point = run['points'][-1]
        bindings = '<br>'.join(f'`{b}`' for b in data['gin_bindings'])
        curve = [fmt(value) for value in point['per_step']]
        extra = []
        if sequences:
          sequence = sequences.get(len(point['per_step']))
          extra.append(_MISSING if sequence is None else '{:+.2f}'.format(
              _gain(point['at_inference_steps'],
                    sequence['best_fixed_sequence'], data)))
        if shares:
          extra.append(' / '.join(
              f'{share:.2f}' for share in point['top_action_share'])
                       if 'top_action_share' in point else _MISSING)
        rows.append([f'`{data["label"]}`', bindings or 'none',
                     str(run['seed']), fmt(point['train_seconds'] / 60, 1),
                     str(point['episode']), str(point['inference_steps']),
                     f'{point["gain"]:+.2f}'] + extra + curve +
                    [_MISSING] * (steps - len(curve)))
    sequence_text = ''.join(
        (f' (`t_max` {t_max})' if len(sequences) > 1 else '') +
        _sequence_text(found, unit)
        for t_max, found in sorted(sequences.items()))
    intro = (f'{", ".join(datas[0]["gin_files"])} with the bindings of each '
             f'row, one seed, evaluated once at the end of its budget. '
             f'Baselines: input {base["input"]:.2f}{unit}, best fixed '
             f'schedule '
             f'{base["best_fixed_schedule_label"]} '
             f'{base["best_fixed_schedule"]:.2f}{unit}{sequence_text}. '
             f'"Steps": the count the run would restore for (its last '
             f'validation\'s choice, else `t_max`); the gain is measured '
             f'there; t=k: the greedy metric after k steps.' + (
                 ' "Top action share": at each step, the share of an '
                 'image\'s pixels that take its most frequent action, '
                 'averaged over the images (1.00: one action for the whole '
                 'image).' if shares else ''))
    header = (['probe', 'bindings', 'seed', 'minutes', 'episodes', 'steps',
               'learned gain'] +
              (['over the sequence'] if sequences else []) +
              (['top action share'] if shares else []) +
              [f't={k}' for k in range(1, steps + 1)])
    return intro + '\n\n' + markdown_table(header, rows)

  return render


# Single-seed probes, one table per group: file name prefix -> table name.
_TTQ_PROBE_GROUPS = {
    'time_to_quality_probe_': 'time_to_quality_denoise_probes',
    'time_to_quality_tuned_probe_': 'time_to_quality_denoise_tuned_probes',
}


def _register_time_to_quality() -> None:
  probes = {prefix: [] for prefix in _TTQ_PROBE_GROUPS}
  for path in sorted(RESULTS_DIR.glob('time_to_quality_*.json')):
    prefix = next((p for p in _TTQ_PROBE_GROUPS if path.name.startswith(p)),
                  None)
    if prefix is not None:
      probes[prefix].append(path.name)
    else:
      register_table(path.stem, _render_time_to_quality(path.name),
                     [path.name])
  for prefix, names in probes.items():
    if names:
      register_table(_TTQ_PROBE_GROUPS[prefix],
                     _render_time_to_quality_probes(names), names)


def _register_all() -> None:
  _register_time_to_quality()
  _register_profiles()
  register_table('core_episodes', _render_core, _CORE_FILES)
  register_table('core_one_rollout', _render_one_rollout,
                 ['core_before_one_rollout.json',
                  'core_after_one_rollout.json'])
  register_table('peer', _render_peer, ['peer.json', 'core_fcn_b8_kept.json'])
  register_table('precision', _render_precision, ['precision.json'])
  register_table('training_runs', _render_training_runs, _TRAINING_FILES)
  for name in _TRAINING_FILES:
    register_table(name[:-len('.json')], _render_training_quality(name),
                   [name])
  register_table('training_denoise_rmc_quick_validation',
                 _render_validation_report,
                 ['training_denoise_rmc_quick.json'])
  register_table('learning_breakage', _render_breakage,
                 ['learning_breakage.json'])
  register_table('learning_breakage_seeds', _render_breakage_seeds,
                 ['learning_breakage.json'])
  register_table('kill_campaign', _render_kill_campaign,
                 ['kill_campaign.json'])
  register_table('addons_filters', _render_addons, ['addons.json'])
  register_table('addons_imports', _render_addons_imports, ['addons.json'])
  register_table('color_metric_variants', _render_color_metric_variants,
                 ['color_metric_variants.json'])


_register_all()


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Rewrites (or checks) the generated blocks; returns the exit status."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--check', action='store_true',
                      help='write nothing; exit 1 if a block is not current')
  parser.add_argument('--results_dir', default=str(RESULTS_DIR),
                      help='the folder of the result files')
  parser.add_argument('documents', nargs='*',
                      help='markdown files (default: docs/*.md, README.md)')
  args = parser.parse_args(argv)
  paths = [pathlib.Path(p) for p in args.documents] or None
  results_dir = pathlib.Path(args.results_dir)
  if args.check:
    problems = check(paths, results_dir)
    for line in problems:
      print(line)
    return 1 if problems else 0
  rewritten, errors = update(paths, results_dir)
  for line in rewritten + errors:
    print(line)
  return 1 if errors else 0


if __name__ == '__main__':
  sys.exit(main())

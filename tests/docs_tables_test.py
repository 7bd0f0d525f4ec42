"""The documentation's tables are generated from the benchmark result files.

`bench/docs_tables.py` renders every `<!-- generated: NAME -->` block of the
documents from `bench/results/*.json`; these tests call it in this process.
"""

import json
import shutil

import pytest

from conftest import PROJECT_ROOT, load_module_from_file

BENCHMARKS = PROJECT_ROOT / 'docs' / 'benchmarks.md'
RESULTS = PROJECT_ROOT / 'bench' / 'results'


docs_tables = load_module_from_file(PROJECT_ROOT / 'bench' / 'docs_tables.py')


@pytest.fixture
def results_copy(tmp_path):
  """A copy of the result files that a test may change."""
  copy = tmp_path / 'results'
  shutil.copytree(RESULTS, copy)
  return copy


def _block(name):
  return (docs_tables.START_MARKER.format(name=name) + '\n' +
          docs_tables.render_block(name) + docs_tables.END_MARKER + '\n')


def test_every_block_of_the_tree_matches_its_result_files():
  assert docs_tables.check() == []


def test_every_table_of_benchmarks_md_is_generated():
  outside, inside = [], False
  for number, line in enumerate(BENCHMARKS.read_text().splitlines(), 1):
    stripped = line.strip()
    if stripped.startswith('<!-- generated:'):
      inside = True
    elif stripped == docs_tables.END_MARKER:
      inside = False
    elif stripped.startswith('|') and not inside:
      outside.append(f'docs/benchmarks.md:{number}: {stripped[:60]}')
  assert not outside, 'tables written by hand:\n' + '\n'.join(outside)
  assert not inside, 'a generated block of docs/benchmarks.md has no end'


def test_a_changed_number_makes_the_check_report_its_block(results_copy):
  before = docs_tables.check([BENCHMARKS], results_copy)
  assert not any("table 'core_episodes'" in line for line in before)
  core = json.loads((results_copy / 'core.json').read_text())
  core['episodes'][0]['episode_s'] += 1.0
  (results_copy / 'core.json').write_text(json.dumps(core))

  after = docs_tables.check([BENCHMARKS], results_copy)
  stale = [line for line in after if "table 'core_episodes'" in line]
  assert len(stale) == 1 and 'differs from its rendering' in stale[0], after
  assert stale[0].startswith('docs/benchmarks.md:')
  # Only the block that reads the changed file.
  assert set(after) - set(before) == set(stale)


def test_the_rewrite_puts_the_new_number_in_and_then_checks_clean(
    tmp_path, results_copy):
  document = tmp_path / 'doc.md'
  document.write_text('# Title\n\ntext\n\n' + _block('precision') + '\nend\n')
  precision = json.loads((results_copy / 'precision.json').read_text())
  precision['rows']['float32']['psnr'] = 12.3456
  (results_copy / 'precision.json').write_text(json.dumps(precision))
  assert docs_tables.check([document], results_copy) == [
      f"{document}:5: table 'precision': differs from its rendering"]

  rewritten, errors = docs_tables.update([document], results_copy)
  assert errors == [] and len(rewritten) == 1
  text = document.read_text()
  assert '| float32 | 12.346 |' in text
  assert text.startswith('# Title\n\ntext\n\n') and text.endswith('\nend\n')
  assert docs_tables.check([document], results_copy) == []
  assert docs_tables.main(['--check', f'--results_dir={results_copy}',
                           str(document)]) == 0


def test_unknown_tables_missing_files_and_open_blocks_are_reported(
    tmp_path, capsys):
  empty = tmp_path / 'no_results'
  empty.mkdir()
  document = tmp_path / 'doc.md'
  document.write_text(
      '<!-- generated: no_such_table -->\n<!-- end generated -->\n'
      'text\n'
      '<!-- generated: precision -->\n| old |\n<!-- end generated -->\n'
      '<!-- generated: peer -->\nnever closed\n'
      '<!-- generated:precision-->\n')
  problems = docs_tables.check([document], empty)
  assert len(problems) == 4, problems
  assert problems[0].startswith(f"{document}:1: table 'no_such_table': "
                                "unknown table 'no_such_table'")
  assert problems[1] == (f"{document}:4: table 'precision': missing result "
                         'file bench/results/precision.json')
  assert problems[2].startswith(f"{document}:7: table 'peer': no "
                                f'"{docs_tables.END_MARKER}"')
  assert problems[3].startswith(f'{document}:9: malformed marker line')

  assert docs_tables.main(['--check', f'--results_dir={empty}',
                           str(document)]) == 1
  assert capsys.readouterr().out.splitlines() == problems
  # The rewrite reports the same and leaves those blocks as they are.
  text = document.read_text()
  assert docs_tables.main([f'--results_dir={empty}', str(document)]) == 1
  assert document.read_text() == text


def test_a_registered_table_is_rendered_with_its_source_line(
    tmp_path, results_copy):
  (results_copy / 'extra.json').write_text(json.dumps(
      {'machine': {'node': 'n1', 'cpu_model': 'CPU X', 'cpu_count': 4,
                   'cpu_flags': ['avx2'], 'gpus': [{'name': 'GPU Y'}],
                   'native_bfloat16': 'gpu'},
       'date': '2030-01-02T03:04:05', 'minutes': 1.25}))
  docs_tables.register_table(
      'extra_test_table',
      lambda results: docs_tables.markdown_table(
          ['what', 'minutes'],
          [['run', docs_tables.fmt(results['extra.json']['minutes'])]]),
      ['extra.json'])
  try:
    with pytest.raises(ValueError):
      docs_tables.register_table('extra_test_table', str, ['extra.json'])
    assert docs_tables.render_block('extra_test_table', results_copy) == (
        '| what | minutes |\n|---|---:|\n| run | 1.25 |\n\n'
        'Source: `bench/results/extra.json` (n1, CPU X, 4 cores (avx2), '
        'GPU Y; 2030-01-02).\n')
  finally:
    del docs_tables.TABLES['extra_test_table']


def _breakage_results(tmp_path):
  seeds = [1, 2]

  def per_seed(share, distance):
    return [{'seed': s, 'optimal_share': share, 'psnr': 20.0 + s,
             'schedule_is_poly': True,
             'bandit_probabilities': [0.09, 0.245, 0.665],
             'bandit_distance': distance} for s in seeds]
  breakages = {
      'none': {'per_seed': per_seed(0.9, 0.01),
               'median': {'optimal_share': 0.9, 'psnr': 21.5,
                          'bandit_distance': 0.01},
               'shift_test_passes': True, 'schedule_test_passes': True,
               'bandit_test_passes': True},
      'entropy_removed': {'per_seed': per_seed(0.8, 0.3),
                          'median': {'optimal_share': 0.8, 'psnr': 21.5,
                                     'bandit_distance': 0.3},
                          'shift_test_passes': True,
                          'schedule_test_passes': True,
                          'bandit_test_passes': False},
  }
  folder = tmp_path / 'breakage'
  folder.mkdir()
  (folder / 'learning_breakage.json').write_text(json.dumps({
      'machine': {'node': 'vm', 'cpu_model': 'AMD EPYC', 'cpu_count': 2,
                  'cpu_flags': ['avx2', 'fma'], 'gpus': [],
                  'native_bfloat16': ''},
      'date': '2026-12-01', 'tensorflow': '2.15.1', 'python': '3.11.7',
      'seeds': seeds,
      'settings': {'shift_episodes': 400, 'shift_learning_rate': 3e-3,
                   'bandit_episodes': 300, 'bandit_learning_rate': 1e-2,
                   'bandit_beta': 0.01, 'bandit_reward': 0.01,
                   'bandit_optimum': [0.09, 0.245, 0.665]},
      'thresholds': {'min_optimal_share': 0.65, 'min_psnr': 17.5,
                     'max_bandit_distance': 0.1},
      'breakages': breakages}))
  return folder


def test_the_learning_breakage_tables_read_the_per_seed_schema(tmp_path):
  folder = _breakage_results(tmp_path)
  medians = docs_tables.render_block('learning_breakage', folder)
  assert ('| entropy bonus removed | 0.800 | 21.50 | 0.300 | passes | '
          'passes | **fails** |') in medians
  assert 'at least 0.65' in medians and 'at most 0.1.' in medians
  assert medians.endswith('(vm, AMD EPYC, 2 cores (avx2 fma), no GPU; '
                          '2026-12-01).\n')
  seeds = docs_tables.render_block('learning_breakage_seeds', folder)
  assert '| nothing | 2 | 0.900 | 22.00 | poly | 0.090, 0.245, 0.665 | ' \
         '0.010 |' in seeds

  (folder / 'learning_breakage.json').write_text(json.dumps(
      {'none': {'optimal_share': 0.9, 'psnr': 22.0}}))
  with pytest.raises(docs_tables.TableError, match='rerun that script'):
    docs_tables.render_block('learning_breakage', folder)


def _time_to_quality_result(sequence):
  base = {'input': 20.0, 'random_agents': 24.0, 'best_fixed_schedule': 26.5,
          'best_fixed_schedule_label': 'bilateral_0.1 x3'}
  point = {'train_seconds': 120.0, 'episode': 80, 'inference_steps': 2,
           'per_step': [25.0, 27.0, 26.9], 'at_inference_steps': 27.0,
           'gain': 0.5}
  row = {'minutes': 2.0, 'episodes': 80.0, 'gain_median': 0.5,
         'gain_min': 0.25, 'gain_max': 0.75, 'metric_median': 27.0}
  if sequence:
    base.update(best_fixed_sequence=26.75, best_fixed_sequence_exhaustive=True,
                best_fixed_sequence_actions=['gaussian_0.5', 'bilateral_0.1'])
    point['gain_over_sequence'] = 0.25
    point['top_action_share'] = [1.0, 0.5, 0.875]
    row.update(sequence_gain_median=0.25, sequence_gain_min=0.0,
               sequence_gain_max=0.5)
  return {'label': 'x', 'gin_files': ['configs/denoise_quick.gin'],
          'gin_bindings': ['make_task.t_max = 3'], 'higher_is_better': True,
          'metric': 'psnr',
          'settings': {'minutes': 2, 'seeds': [1, 2]},
          'test_set': {'num_images': 16, 'source': 'bsd432', 'split_seed': 0,
                       'crop': 96},
          'baselines': base, 'summary': [row],
          'runs': [{'seed': 1, 'points': [point]}]}


def test_time_to_quality_tables_show_the_best_fixed_sequence_when_measured():
  with_sequence = _time_to_quality_result(True)
  curve = docs_tables._render_time_to_quality('a.json')(
      {'a.json': with_sequence})
  assert ('best fixed sequence gaussian_0.5, bilateral_0.1 26.75 dB.'
          in curve)
  assert ('| 2.0 | 80 | +0.50 (+0.25..+0.75) | 27.00 | +0.25 (+0.00..+0.50) '
          '| 1.00 / 0.50 / 0.88 |') in curve
  two_seeds = dict(with_sequence, runs=with_sequence['runs'] + [
      {'seed': 2, 'points': [dict(with_sequence['runs'][0]['points'][0],
                                  top_action_share=[0.5, 0.5, 0.25])]}])
  curve = docs_tables._render_time_to_quality('a.json')({'a.json': two_seeds})
  assert curve.splitlines()[-1].endswith('| 0.75 / 0.50 / 0.56 |')
  probes = docs_tables._render_time_to_quality_probes(['a.json'])(
      {'a.json': with_sequence})
  assert '| over the sequence | top action share | t=1 |' in probes
  assert ('| 2 | +0.50 | +0.25 | 1.00 / 0.50 / 0.88 | 25.00 | 27.00 | '
          '26.90 |') in probes

  # A run with its initial point: a first row at the initial weights.
  initial_point = dict(with_sequence['runs'][0]['points'][0], episode=0,
                       train_seconds=0.0, gain=-2.0,
                       top_action_share=[0.25, 0.25, 0.25])
  initial_row = dict(with_sequence['summary'][0], minutes=0.0, episodes=0.0,
                     gain_median=-2.0, gain_min=-2.5, gain_max=-1.5)
  started = dict(with_sequence, summary=[initial_row] + with_sequence[
      'summary'], runs=[{'seed': 1, 'points': [initial_point] + with_sequence[
          'runs'][0]['points']}])
  curve = docs_tables._render_time_to_quality('a.json')({'a.json': started})
  assert 'The first row is the configured initial weights' in curve
  rows = [line for line in curve.splitlines() if line.startswith('| ')]
  assert rows[-2].startswith('| 0 (initial weights) | 0 | -2.00 (-2.50..-1.50)')
  assert rows[-2].endswith('| 0.25 / 0.25 / 0.25 |')
  assert rows[-1].startswith('| 2.0 | 80 | +0.50 (+0.25..+0.75)')
  assert 'initial weights' not in docs_tables._render_time_to_quality(
      'a.json')({'a.json': with_sequence})

  # Files from before the sequence was measured keep their columns.
  older = _time_to_quality_result(False)
  curve = docs_tables._render_time_to_quality('b.json')({'b.json': older})
  assert 'sequence' not in curve
  assert curve.splitlines()[-1] == '| 2.0 | 80 | +0.50 (+0.25..+0.75) | 27.00 |'
  probes = docs_tables._render_time_to_quality_probes(['b.json'])(
      {'b.json': older})
  assert 'sequence' not in probes

  # Beside a file of the same split and t_max that measured the sequence,
  # an older file's gain over it is its metric minus the sequence's; the
  # share it did not measure is a dash.
  probes = docs_tables._render_time_to_quality_probes(['a.json', 'b.json'])(
      {'a.json': with_sequence, 'b.json': older})
  assert probes.count('| +0.50 | +0.25 |') == 2
  assert '| +0.50 | +0.25 | — | 25.00 |' in probes
  other = _time_to_quality_result(True)
  other['baselines']['best_fixed_sequence'] = 26.0
  with pytest.raises(docs_tables.TableError, match='another best fixed'):
    docs_tables._render_time_to_quality_probes(['a.json', 'c.json'])(
        {'a.json': with_sequence, 'c.json': other})

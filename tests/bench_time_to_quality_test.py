"""The time-to-quality benchmark, run for real on the tiny config.

Two seeds of `configs/tiny.gin` for a few seconds each, snapshots every few
seconds, evaluated on a held-out BSD432 split of two small crops (skipped
without ../shared/data). Checks what the result file promises: the machine,
the split, baselines, per-seed points whose learned gain is the model's
metric at its stored step count minus the best fixed schedule's, medians
over the seeds, the markdown table, and the plot (one line when files of
different grids are drawn together; a longer run on the same grid is cut
to the shorter one), and the initial point: the configured initial weights,
drawn afresh per seed where no file sets them.
"""

import json
import os
import statistics
import subprocess
import sys

import cv2
import gin
import numpy as np
import pytest
import tensorflow as tf

from conftest import (HANG_TIMEOUT_SECONDS, PROJECT_ROOT, load_module_from_file,
                      shared_data_path)

SCRIPT = str(PROJECT_ROOT / 'bench' / 'bench_time_to_quality.py')


def _strings(value):
  if isinstance(value, dict):
    return [s for item in value.values() for s in _strings(item)]
  if isinstance(value, list):
    return [s for item in value for s in _strings(item)]
  return [value] if isinstance(value, str) else []


def _bench(*args):
  return subprocess.run([sys.executable, SCRIPT, *args], cwd=PROJECT_ROOT,
                        capture_output=True, text=True,
                        timeout=HANG_TIMEOUT_SECONDS)


@pytest.fixture(scope='module')
def result(tmp_path_factory):
  shared_data_path('BSD432_gray_train')
  folder = tmp_path_factory.mktemp('ttq')
  output = folder / 'tiny.json'
  ran = _bench(f'--gin_file={PROJECT_ROOT / "configs" / "tiny.gin"}',
               '--label=tiny', '--minutes=0.3', '--eval_every_minutes=0.1',
               '--seeds=1,2', '--test_images=2', '--test_crop=24',
               '--gin_bindings=Cadence.eval_interval = 1000',
               '--gin_bindings=Optimization.num_episodes = 100000',
               f'--output_json={output}',
               f'--output_markdown={folder / "tiny.md"}',
               f'--output_png={folder / "tiny.png"}')
  assert ran.returncode == 0, ran.stderr[-3000:]
  return folder, json.loads(output.read_text()), ran.stdout


def test_the_file_records_the_machine_split_and_baselines(result):
  _, data, _ = result
  assert data['label'] == 'tiny' and data['metric'] == 'psnr'
  assert data['higher_is_better'] is True
  assert data['machine']['cpu_count'] >= 1 and 'cpu_flags' in data['machine']
  split = data['test_set']
  assert split['source'] == 'bsd432' and split['num_images'] == 2
  assert split['sizes'] == [[24, 24], [24, 24]]
  # No path of this machine: the data relative to the project root, the
  # benchmark's temporary folder by its placeholder.
  assert split['test_dir'] == os.path.relpath(
      shared_data_path('BSD432_gray_train'), PROJECT_ROOT)
  assert split['test_list'] == '<work>/test_list.txt'
  assert not [text for text in _strings(data) if os.path.isabs(text)]
  assert len(set(split['names'])) == 2
  base = data['baselines']
  # Denoising: every baseline improves on the noisy input, and the best
  # fixed schedule is the best of the filters, at least as good as its
  # first step alone (the label names a filter and a count 1..t_max).
  assert base['input'] < base['best_fixed_schedule']
  name, count = base['best_fixed_schedule_label'].rsplit(' x', 1)
  assert name and 1 <= int(count) <= 2  # tiny.gin: t_max 2
  # Every repeated schedule is one of the sequences, and with t_max 2 the
  # search is exhaustive, so the sequence is at least as good.
  assert base['best_fixed_sequence_exhaustive'] is True
  assert 1 <= len(base['best_fixed_sequence_actions']) <= 2
  assert base['best_fixed_sequence'] >= base['best_fixed_schedule'] - 1e-9


def test_points_gain_and_medians(result):
  _, data, _ = result
  runs = data['runs']
  assert [run['seed'] for run in runs] == [1, 2]
  best_fixed = data['baselines']['best_fixed_schedule']
  for run in runs:
    points = run['points']
    assert len(points) >= 3
    # The first point is the initial weights, before any update, restored
    # for t_max steps; every later one is after at least one episode.
    assert points[0]['episode'] == 0 and points[0]['train_seconds'] == 0.0
    assert points[0]['inference_steps'] == 2
    assert all(p['episode'] >= 1 for p in points[1:])
    seconds = [p['train_seconds'] for p in points]
    assert seconds == sorted(seconds)
    assert [p['episode'] for p in points] == sorted(
        p['episode'] for p in points)
    for point in points:
      assert len(point['per_step']) == 2
      assert point['at_inference_steps'] == point['per_step'][
          point['inference_steps'] - 1]
      assert point['gain'] == pytest.approx(
          point['at_inference_steps'] - best_fixed, abs=1e-9)
      # Equal-sized crops: a share over the split is the mean of the
      # images' shares, so it is at most the mean of their largest.
      shares, top = point['action_shares'], point['top_action_share']
      assert len(shares) == len(top) == 2
      for step_shares, step_top in zip(shares, top):
        assert sum(step_shares) == pytest.approx(1.0)
        assert max(step_shares) <= step_top + 1e-9 and step_top <= 1.0
      assert point['gain_over_sequence'] == pytest.approx(
          point['at_inference_steps'] -
          data['baselines']['best_fixed_sequence'], abs=1e-9)
  for index, row in enumerate(data['summary']):
    gains = [run['points'][index]['gain'] for run in runs
             if index < len(run['points'])]
    assert row['gain_median'] == pytest.approx(statistics.median(gains))
    assert row['gain_min'] == pytest.approx(min(gains))
    assert row['gain_max'] == pytest.approx(max(gains))
    over = [run['points'][index]['gain_over_sequence'] for run in runs
            if index < len(run['points'])]
    assert row['sequence_gain_median'] == pytest.approx(
        statistics.median(over))
    assert row['sequence_gain_min'] == pytest.approx(min(over))


def test_markdown_and_plot(result):
  folder, data, stdout = result
  table = (folder / 'tiny.md').read_text()
  assert table in stdout
  assert '| minutes | episodes |' in table
  assert 'gain over the sequence' in table and 'best fixed sequence' in table
  assert len([line for line in table.splitlines()
              if line.startswith('| ') and line[2].isdigit()]) == len(
                  data['summary'])
  image = cv2.imread(str(folder / 'tiny.png'))
  assert image.shape == (440, 720, 3)

  other = dict(data, label='other')
  other['settings'] = dict(
      data['settings'],
      eval_every_minutes=data['settings']['eval_every_minutes'] * 2,
      minutes=data['settings']['minutes'] * 2)
  (folder / 'other.json').write_text(json.dumps(other))
  refused = _bench('--plot', str(folder / 'tiny.json'),
                   str(folder / 'other.json'),
                   f'--output_png={folder / "both.png"}')
  assert refused.returncode == 1
  lines = refused.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: ') and (
      'same grid' in lines[0]), refused.stderr
  assert not (folder / 'both.png').exists()

  # A longer run on the same grid is drawn up to the shorter one's end.
  longer = dict(data, label='longer')
  last = data['summary'][-1]
  longer['summary'] = list(data['summary']) + [
      dict(last, minutes=last['minutes'] + 1.0)]
  (folder / 'longer.json').write_text(json.dumps(longer))
  drawn = _bench('--plot', str(folder / 'tiny.json'),
                 str(folder / 'longer.json'),
                 f'--output_png={folder / "longer.png"}')
  assert drawn.returncode == 0, drawn.stderr
  assert cv2.imread(str(folder / 'longer.png')).shape == (440, 720, 3)


def _load_bench():
  return load_module_from_file(SCRIPT)


def test_the_initial_point_is_the_configured_initialisation(tmp_path):
  bench = _load_bench()
  from pixelrl_tf.models import model_io  # pylint: disable=g-import-not-at-top
  config = model_io.ModelConfig(filters=8, t_max=2)
  image = np.full((8, 8, 1), 0.5, np.float32)
  evaluator = bench.Evaluator(config, [('a', image, image)], lab=False)
  gin.clear_config()
  # No initial file: the seed's draw, the same for the same seed.
  first = bench.initial_point(evaluator, 1)
  again = bench.initial_point(evaluator, 1)
  other = bench.initial_point(evaluator, 2)
  assert (first['episode'], first['train_seconds'],
          first['inference_steps']) == (0, 0.0, 2)
  assert all(np.array_equal(a, b)
             for a, b in zip(first['weights'], again['weights']))
  assert not all(np.array_equal(a, b)
                 for a, b in zip(first['weights'], other['weights']))
  # A configured checkpoint: exactly its weights, whatever the seed.
  source = model_io.build_network(config)
  source.create_variables()
  for variable in source.variables:
    variable.assign(tf.fill(variable.shape, 0.125) + tf.cast(
        tf.reshape(tf.range(tf.size(variable)), variable.shape),
        variable.dtype) * 1e-3)
  prefix = tf.train.Checkpoint(network=source).save(str(tmp_path / 'ckpt'))
  try:
    gin.bind_parameter('initialise_network.init_checkpoint', prefix)
    loaded = bench.initial_point(evaluator, 3)
  finally:
    gin.clear_config()
  expected = source.get_weights()
  assert len(loaded['weights']) == len(expected)
  assert all(np.array_equal(a, b)
             for a, b in zip(loaded['weights'], expected))


def test_the_port_is_matched_to_the_points_after_the_initial_one():
  bench = _load_bench()

  def point(episode, gain):
    return {'train_seconds': 60.0 * episode, 'episode': episode,
            'at_inference_steps': 25.0 + gain, 'gain': gain,
            'gain_over_sequence': gain - 0.5}

  runs = [{'points': [point(0, -2.0), point(10, 0.25), point(20, 0.5)],
           'peer': {'points': [{'gain': -0.75, 'episodes': 12},
                               {'gain': -0.25, 'episodes': 24}]}}]
  rows = bench.summarize(runs)
  assert [row['episodes'] for row in rows] == [0, 10, 20]
  assert 'peer_gain_median' not in rows[0]
  assert [row['peer_gain_median'] for row in rows[1:]] == [-0.75, -0.25]
  assert [row['peer_episodes'] for row in rows[1:]] == [12, 24]
  assert [row['episodes'] for row in bench.trained_rows(rows)] == [10, 20]

r"""Times training episodes and full-size restorations; reports peak memory.

  python bench/bench_core.py [--output_json=bench/results/core.json]

Measures, with the 64-channel ConvGRU network and the 9 denoising actions:
  * a training episode (t_max 5, 70x70 crops: collect + one update, the
    environment included) at batch 8, 16 and 64, split into network and
    environment time (the environment part is the 5 filter steps and
    rewards timed alone; network = total - environment), and into
    collection (the 5 sampled steps alone) and the update (the rest);
  * a 481x321 greedy 5-step restoration, split the same way;
  * the peak resident memory of a process that runs batch-64 episodes.
Each figure is the median over repeats after one warm-up (tracing) call.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import pixelrl_tf  # pylint: disable=g-import-not-at-top,unused-import
import tensorflow as tf

from pixelrl_tf.agents import pixel_a2c_agent
from pixelrl_tf.data import noise as noise_lib
from pixelrl_tf.environments import pixel_env
from pixelrl_tf.export import restoration_module
from pixelrl_tf.training import model_io
from pixelrl_tf.training import train_lib

T_MAX = 5
CROP = 70


def _median_seconds(fn, repeats):
  fn()  # trace / warm up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _environment_fn(action_set, shape):
  """The environment's share of an episode: t_max filter steps + rewards."""
  @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)] * 2)
  def run(images, targets):
    total = tf.constant(0.0)
    for t in range(T_MAX):
      actions = tf.random.stateless_uniform(
          shape[:3], [t, 0], maxval=action_set.num_actions, dtype=tf.int32)
      images, rewards = pixel_env.transition(images, actions, targets,
                                             action_set)
      total += tf.reduce_mean(rewards)
    return total
  return run


def bench_episode(batch_size, repeats, filters=64):
  config = model_io.ModelConfig(filters=filters)
  action_set = config.get_action_set()
  network = model_io.build_network(config)
  episode = tf.Variable(0, dtype=tf.int64)
  optimizer = tf.keras.optimizers.Adam(
      pixel_a2c_agent.poly_learning_rate(1e-3, 30000, episode), epsilon=1e-8)
  time_step_spec, action_spec = train_lib.specs_for(
      (CROP, CROP, 1), action_set.num_actions)
  agent = pixel_a2c_agent.PixelA2CAgent(time_step_spec, action_spec, network,
                                        optimizer)
  shape = [batch_size, CROP, CROP, 1]
  signature = [tf.TensorSpec(shape, tf.float32),
               tf.TensorSpec(shape, tf.float32), tf.TensorSpec([], tf.int64)]
  clean = tf.random.uniform(shape, seed=1)
  timings = {}
  for update in (True, False):
    runner = train_lib.EpisodeRunner(
        agent, action_set, noise_lib.parse_noise('gaussian:25'), T_MAX, T_MAX,
        seed=0, gamma=0.95, update=update)
    run = tf.function(runner.run, input_signature=signature)
    timings[update] = _median_seconds(
        lambda: run(clean, clean, tf.constant(0, tf.int64))[
            'episode_reward'].numpy(), repeats)
  total, collect = timings[True], timings[False]
  environment = _environment_fn(action_set, shape)
  env_time = _median_seconds(lambda: environment(clean, clean).numpy(),
                             repeats)
  return {'batch': batch_size, 'episode_s': total, 'collect_s': collect,
          'update_s': total - collect, 'environment_s': env_time,
          'network_s': total - env_time}


def bench_restore(repeats, filters=64, height=321, width=481):
  config = model_io.ModelConfig(filters=filters)
  action_set = config.get_action_set()
  network = model_io.build_network(config)
  shape = [1, height, width, 1]
  restore = tf.function(
      lambda x: restoration_module.greedy_restore(network, action_set, x,
                                                  T_MAX),
      input_signature=[tf.TensorSpec([1, None, None, 1], tf.float32)])
  image = tf.random.uniform(shape, seed=2)
  total = _median_seconds(lambda: restore(image)[0].numpy(), repeats)
  environment = _environment_fn(action_set, shape)
  env_time = _median_seconds(lambda: environment(image, image).numpy(),
                             repeats)
  return {'size': f'{width}x{height}', 'restore_s': total,
          'environment_s': env_time, 'network_s': total - env_time}


def peak_rss_gb(batch_size, episodes=2):
  """Runs episodes in a fresh process and returns its peak RSS in GB."""
  code = (
      'import sys, resource; sys.path.insert(0, %r);'
      'import bench_core as b; b.bench_episode(%d, %d);'
      'print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)'
      % (os.path.dirname(os.path.abspath(__file__)), batch_size, episodes))
  output = subprocess.run([sys.executable, '-c', code], check=True,
                          capture_output=True, text=True).stdout
  return int(output.strip().splitlines()[-1]) / 1024 ** 2


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output_json', default='bench/results/core.json')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--batches', default='8,16,64')
  parser.add_argument('--skip_memory', action='store_true')
  args = parser.parse_args()
  results = {
      'machine': f'{platform.node()} {platform.processor() or platform.machine()}'
                 f', {os.cpu_count()} cores',
      'date': time.strftime('%Y-%m-%d'),
      'tensorflow': tf.__version__,
      'episodes': [bench_episode(int(b), args.repeats)
                   for b in args.batches.split(',')],
      'restore': bench_restore(args.repeats),
  }
  if not args.skip_memory:
    results['peak_rss_gb_batch64'] = peak_rss_gb(64)
  header = (f'{"what":<36}{"total s":>9}{"network s":>11}{"env s":>8}'
            f'{"collect s":>11}{"update s":>10}')
  print(header)
  for row in results['episodes']:
    print(f'{"train episode, batch " + str(row["batch"]) + ", 70x70, T=5":<36}'
          f'{row["episode_s"]:>9.2f}{row["network_s"]:>11.2f}'
          f'{row["environment_s"]:>8.2f}{row["collect_s"]:>11.2f}'
          f'{row["update_s"]:>10.2f}')
  row = results['restore']
  print(f'{"greedy restore " + row["size"] + ", T=5":<36}'
        f'{row["restore_s"]:>9.2f}{row["network_s"]:>11.2f}'
        f'{row["environment_s"]:>8.2f}')
  if 'peak_rss_gb_batch64' in results:
    print(f'peak RSS, batch 64 episodes: '
          f'{results["peak_rss_gb_batch64"]:.2f} GB')
  os.makedirs(os.path.dirname(os.path.abspath(args.output_json)),
              exist_ok=True)
  with open(args.output_json, 'w') as f:
    json.dump(results, f, indent=2)


if __name__ == '__main__':
  main()

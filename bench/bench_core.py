r"""Times training episodes and full-size restorations; reports peak memory.

  python bench/bench_core.py [--output_json=bench/results/core.json]
      [--variant=gru|fcn] [--batches=8,16,64] [--update_recompute=auto]
      [--jit_compile] [--mixed_precision=mixed_bfloat16]

Measures, with the 64-channel network ("+convGRU" or the plain FCN) and the
9 denoising actions:
  * a training episode (t_max 5, 70x70 crops: the collect rollout and one
    update, environment included, through `drivers.learner`) at each batch
    size, split into collection (the 5 sampled steps alone, through
    `drivers.rollout`) and the update (the rest), and the environment's
    share (the 5 filter steps and rewards timed alone);
  * a 481x321 greedy 5-step restoration (`RestorationModule`);
  * useful-work efficiency: the arithmetic a no-recompute implementation
    needs (forward, plus twice the forward for the backward pass) divided
    by the GFLOP/s of one 64->64 3x3 convolution measured in the same run,
    divided by the time;
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
from pixelrl_tf.drivers import learner as learner_lib
from pixelrl_tf.drivers import rollout
from pixelrl_tf.environments import pixel_env
from pixelrl_tf.environments import tf_pixel_env
from pixelrl_tf.io import files  # pylint: disable=g-import-not-at-top
from pixelrl_tf.jobs import train_lib
from pixelrl_tf.models import model_io
from pixelrl_tf.serving import restoration_module

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


def forward_flops_per_pixel(filters=64, num_actions=9, channels=1,
                            use_conv_gru=True):
  """Multiply-adds x 2 of one network step, per image pixel."""
  conv = lambda cin, cout: 2 * 9 * cin * cout  # pylint: disable=g-long-lambda
  total = conv(channels, filters) + 3 * conv(filters, filters)  # trunk
  total += 4 * conv(filters, filters)  # both branches
  if use_conv_gru:
    total += 6 * conv(filters, filters)
  return total + conv(filters, num_actions) + conv(filters, 1)


def conv_gflops(repeats):
  """GFLOP/s of one 64->64 3x3 'same' convolution on a [8,70,70,64] batch."""
  images = tf.random.uniform([8, CROP, CROP, 64], seed=3)
  kernel = tf.random.normal([3, 3, 64, 64], seed=4)
  run = tf.function(lambda x: tf.nn.conv2d(x, kernel, 1, 'SAME'))
  seconds = _median_seconds(lambda: run(images).numpy(), max(repeats, 5))
  return 2 * 9 * 64 * 64 * 8 * CROP * CROP / seconds / 1e9


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


def _setup(batch_size, filters, use_conv_gru, mixed_precision):
  config = model_io.ModelConfig(filters=filters, use_conv_gru=use_conv_gru)
  action_set = config.get_action_set()
  network = model_io.build_network(config, dtype_policy=mixed_precision)
  optimizer = tf.keras.optimizers.Adam(1e-3, epsilon=1e-8)
  environment = tf_pixel_env.PixelTFEnvironment(
      action_set, image_size=(CROP, CROP), batch_size=batch_size,
      t_max=T_MAX)
  agent = pixel_a2c_agent.PixelA2CAgent(
      environment.time_step_spec(), environment.action_spec(), network,
      optimizer)
  optimizer.build(agent.trainable_variables_for_update())
  return action_set, environment, agent


def bench_episode(batch_size, repeats, filters=64, use_conv_gru=True,
                  update_recompute='auto', jit_compile=False,
                  mixed_precision=None):
  """Times a training episode and its collection alone."""
  action_set, environment, agent = _setup(batch_size, filters, use_conv_gru,
                                          mixed_precision)
  record = train_lib.choose_record_gradients(update_recompute, batch_size,
                                             CROP, filters, T_MAX)
  learner = learner_lib.EpisodeLearner(
      agent, environment, T_MAX, T_MAX, seed=0,
      noise_model=noise_lib.parse_noise('gaussian:25'),
      record_gradients=record)
  shape = [batch_size, CROP, CROP, 1]
  spec = tf.TensorSpec(shape, tf.float32)
  clean = tf.random.uniform(shape, seed=1)
  train = tf.function(learner.run, autograph=False,
                      jit_compile=jit_compile or None,
                      input_signature=[spec, spec,
                                       tf.TensorSpec([], tf.int64)])

  def collect(images):
    episode = rollout.run_episode(
        environment, agent.collect_policy, environment.start_episode(
            images, images), T_MAX, seed=tf.constant([0, 0], tf.int64))
    return tf.reduce_sum(episode.step_rewards)

  collect = tf.function(collect, autograph=False,
                        jit_compile=jit_compile or None,
                        input_signature=[spec])
  total = _median_seconds(
      lambda: train(clean, clean, tf.constant(0, tf.int64))[
          'episode_reward'].numpy(), repeats)
  collect_time = _median_seconds(lambda: collect(clean).numpy(), repeats)
  environment_fn = _environment_fn(action_set, shape)
  env_time = _median_seconds(
      lambda: environment_fn(clean, clean).numpy(), repeats)
  return {'batch': batch_size, 'episode_s': total, 'collect_s': collect_time,
          'update_s': total - collect_time, 'environment_s': env_time,
          'network_s': total - env_time, 'kept_activations': record}


def bench_restore(repeats, filters=64, use_conv_gru=True, height=321,
                  width=481, jit_compile=False, mixed_precision=None):
  config = model_io.ModelConfig(filters=filters, use_conv_gru=use_conv_gru)
  action_set = config.get_action_set()
  network = model_io.build_network(config, dtype_policy=mixed_precision)
  module = restoration_module.RestorationModule(
      network, action_set, T_MAX, jit_compile=jit_compile)
  shape = [1, height, width, 1]
  image = tf.random.uniform(shape, seed=2)
  total = _median_seconds(
      lambda: module.restore_steps(image)['images'].numpy(), repeats)
  environment_fn = _environment_fn(action_set, shape)
  env_time = _median_seconds(
      lambda: environment_fn(image, image).numpy(), repeats)
  return {'size': f'{width}x{height}', 'restore_s': total,
          'environment_s': env_time, 'network_s': total - env_time}


def peak_rss_gb(batch_size, episodes=2, update_recompute='auto'):
  """Runs episodes in a fresh process and returns its peak RSS in GB."""
  code = (
      'import sys, resource; sys.path.insert(0, %r);'
      'import bench_core as b; b.bench_episode(%d, %d, update_recompute=%r);'
      'print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)'
      % (os.path.dirname(os.path.abspath(__file__)), batch_size, episodes,
         update_recompute))
  output = subprocess.run([sys.executable, '-c', code], check=True,
                          capture_output=True, text=True).stdout
  return int(output.strip().splitlines()[-1]) / 1024 ** 2


def _recompute_flag(text):
  return {'auto': 'auto', 'true': True, 'false': False}[text.lower()]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output_json', default='bench/results/core.json')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--batches', default='8,16,64')
  parser.add_argument('--variant', choices=('gru', 'fcn'), default='gru')
  parser.add_argument('--update_recompute', default='auto',
                      help='auto, true or false')
  parser.add_argument('--jit_compile', action='store_true')
  parser.add_argument('--mixed_precision', default=None)
  parser.add_argument('--skip_memory', action='store_true')
  parser.add_argument('--skip_restore', action='store_true')
  args = parser.parse_args()
  use_conv_gru = args.variant == 'gru'
  options = dict(jit_compile=args.jit_compile,
                 mixed_precision=args.mixed_precision)
  gflops = conv_gflops(args.repeats)
  step_flops = forward_flops_per_pixel(use_conv_gru=use_conv_gru)
  results = {
      'machine': f'{platform.node()} {platform.processor() or platform.machine()}'
                 f', {os.cpu_count()} cores',
      'date': time.strftime('%Y-%m-%d'),
      'tensorflow': tf.__version__,
      'variant': args.variant,
      'update_recompute': args.update_recompute,
      **options,
      'conv_gflops': gflops,
      'episodes': [bench_episode(
          int(b), args.repeats, use_conv_gru=use_conv_gru,
          update_recompute=_recompute_flag(args.update_recompute), **options)
                   for b in args.batches.split(',')],
  }
  for row in results['episodes']:
    useful = 3 * step_flops * T_MAX * row['batch'] * CROP * CROP
    row['efficiency'] = useful / (gflops * 1e9) / row['episode_s']
  if not args.skip_restore:
    row = bench_restore(args.repeats, use_conv_gru=use_conv_gru, **options)
    row['efficiency'] = (step_flops * T_MAX * 481 * 321 / (gflops * 1e9) /
                         row['restore_s'])
    results['restore'] = row
  if not args.skip_memory:
    results['peak_rss_gb_batch64'] = peak_rss_gb(
        64, update_recompute=_recompute_flag(args.update_recompute))
  print(f'{args.variant} network; conv 64->64 3x3: {gflops:.1f} GFLOP/s; '
        f'jit_compile={args.jit_compile}, '
        f'mixed_precision={args.mixed_precision}')
  header = (f'{"what":<36}{"total s":>9}{"network s":>11}{"env s":>8}'
            f'{"collect s":>11}{"update s":>10}{"effic.":>8}{"kept":>6}')
  print(header)
  for row in results['episodes']:
    print(f'{"train episode, batch " + str(row["batch"]) + ", 70x70, T=5":<36}'
          f'{row["episode_s"]:>9.2f}{row["network_s"]:>11.2f}'
          f'{row["environment_s"]:>8.2f}{row["collect_s"]:>11.2f}'
          f'{row["update_s"]:>10.2f}{row["efficiency"]:>8.2f}'
          f'{str(row["kept_activations"]):>6}')
  if 'restore' in results:
    row = results['restore']
    print(f'{"greedy restore " + row["size"] + ", T=5":<36}'
          f'{row["restore_s"]:>9.2f}{row["network_s"]:>11.2f}'
          f'{row["environment_s"]:>8.2f}{"":>21}{row["efficiency"]:>8.2f}')
  if 'peak_rss_gb_batch64' in results:
    print(f'peak RSS, batch 64 episodes: '
          f'{results["peak_rss_gb_batch64"]:.2f} GB')
  files.write_text_atomically(args.output_json, json.dumps(results, indent=2))


if __name__ == '__main__':
  main()

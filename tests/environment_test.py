"""Tests of the batched PixelRL environment."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.drivers import dynamic_episode_driver
from tf_agents.environments import tf_py_environment
from tf_agents.environments import utils as env_utils
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.trajectories import time_step as ts

from pixelrl_tf.agents import pixel_a2c_agent
from pixelrl_tf.environments import pixel_env
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.networks import fcn_actor_critic


def _source(batch, height, width, channels=1, seed=0):
  rng = np.random.default_rng(seed)

  def episode_source():
    clean = rng.uniform(size=(batch, height, width, channels))
    noisy = clean + rng.normal(0, 25 / 255, size=clean.shape)
    return noisy.astype(np.float32), clean.astype(np.float32)

  return episode_source


def test_validate_py_environment():
  env = pixel_env.PixelEnvironment(_source(3, 8, 6), (8, 6, 1), 3, t_max=4)
  env_utils.validate_py_environment(env, episodes=3)
  assert env.batched and env.batch_size == 3
  assert env.action_spec().maximum == 8
  assert env.reward_spec().shape == (8, 6)


def test_rewards_and_episode_length():
  env = pixel_env.PixelEnvironment(_source(2, 5, 4), (5, 4, 1), 2, t_max=2)
  first = env.reset()
  assert np.all(first.step_type == ts.StepType.FIRST)
  noisy = first.observation.copy()
  clean = env.targets.copy()
  do_nothing = action_set_lib.DENOISE_ACTIONS.index('do_nothing')
  add_one = action_set_lib.DENOISE_ACTIONS.index('add_one')
  step = env.step(np.full((2, 5, 4), add_one, np.int32))
  assert np.all(step.step_type == ts.StepType.MID)
  np.testing.assert_allclose(step.observation, noisy + 1 / 255, atol=1e-7)
  want = 255 * ((clean - noisy) ** 2 - (clean - noisy - 1 / 255) ** 2)
  np.testing.assert_allclose(step.reward, want[..., 0], rtol=1e-4,
                             atol=1e-6)
  step = env.step(np.full((2, 5, 4), do_nothing, np.int32))
  assert np.all(step.step_type == ts.StepType.LAST)
  assert np.all(step.discount == 0)
  np.testing.assert_allclose(step.reward, 0.0, atol=1e-7)
  # Auto-reset after the last step: a new episode starts.
  step = env.step(np.full((2, 5, 4), do_nothing, np.int32))
  assert np.all(step.step_type == ts.StepType.FIRST)


def test_no_clipping_inside_the_episode():
  def source():
    clean = np.full((1, 4, 4, 1), 0.999, np.float32)
    return clean.copy(), clean

  env = pixel_env.PixelEnvironment(source, (4, 4, 1), 1, t_max=3)
  env.reset()
  add_one = action_set_lib.DENOISE_ACTIONS.index('add_one')
  for _ in range(2):
    step = env.step(np.full((1, 4, 4), add_one, np.int32))
  assert step.observation.max() > 1.0


def test_bad_source_shape_is_reported():
  env = pixel_env.PixelEnvironment(_source(2, 5, 5), (4, 4, 1), 2)
  try:
    env.reset()
  except ValueError as error:
    assert 'expects (2, 4, 4, 1)' in str(error)
  else:
    raise AssertionError('expected a ValueError')


def test_driver_and_agent_on_tf_py_environment():
  py_env = pixel_env.PixelEnvironment(_source(2, 8, 8), (8, 8, 1), 2,
                                      t_max=3)
  env = tf_py_environment.TFPyEnvironment(py_env)
  net = fcn_actor_critic.FcnActorCritic(
      tf.TensorSpec([None, None, 1], tf.float32), 9, filters=4)
  agent = pixel_a2c_agent.PixelA2CAgent(
      env.time_step_spec(), env.action_spec(), net,
      tf.keras.optimizers.Adam(1e-3))
  buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      agent.collect_data_spec, batch_size=2, max_length=8)
  driver = dynamic_episode_driver.DynamicEpisodeDriver(
      env, agent.collect_policy, observers=[buffer.add_batch], num_episodes=2)
  driver.run(policy_state=agent.collect_policy.get_initial_state(2))
  experience = buffer.gather_all()
  # FIRST, MID, MID, LAST (+ a boundary FIRST of the next episode).
  window = tf.nest.map_structure(lambda x: x[:, :4], experience)
  np.testing.assert_array_equal(window.step_type[0].numpy(), [0, 1, 1, 2])
  before = [v.numpy() for v in net.trainable_variables]
  info = agent.train(window)
  assert np.isfinite(info.loss.numpy())
  after = [v.numpy() for v in net.trainable_variables]
  assert any(np.abs(a - b).max() > 0 for a, b in zip(after, before))


def test_transition_matches_action_set():
  images = tf.random.uniform([2, 9, 7, 1])
  targets = tf.random.uniform([2, 9, 7, 1])
  actions = tf.random.uniform([2, 9, 7], 0, 9, dtype=tf.int32)
  next_images, rewards = pixel_env.transition(images, actions, targets)
  want = action_set_lib.apply_action_map(images, actions)
  np.testing.assert_allclose(next_images.numpy(), want.numpy())
  want_rewards = 255 * (tf.square(targets - images) -
                        tf.square(targets - want))[..., 0]
  np.testing.assert_allclose(rewards.numpy(), want_rewards.numpy(),
                             atol=1e-5)


def test_action_rewards_are_what_each_action_would_have_earned():
  from pixelrl_tf.environments import rewards as rewards_lib  # pylint: disable=g-import-not-at-top
  from pixelrl_tf.environments import tf_pixel_env  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(4)
  clean = rng.uniform(size=(2, 9, 11, 1)).astype(np.float32)
  noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
  actions = rng.integers(0, 9, size=(2, 9, 11)).astype(np.int32)
  table = action_set_lib.DENOISE_ACTIONS
  environment = tf_pixel_env.PixelTFEnvironment(table)
  environment.start_episode(noisy, clean)
  step = environment.step(actions)
  action_rewards = environment.action_rewards.numpy()
  assert action_rewards.shape == (2, 9, 11, 9)
  # Independently: a fresh episode in which every pixel takes action a.
  for action in range(9):
    environment.start_episode(noisy, clean)
    uniform = environment.step(np.full_like(actions, action))
    np.testing.assert_allclose(action_rewards[..., action],
                               uniform.reward.numpy(), atol=1e-6)
  # The taken actions' entries are the step's own rewards.
  taken = np.take_along_axis(action_rewards, actions[..., None], -1)[..., 0]
  np.testing.assert_allclose(taken, step.reward.numpy(), atol=1e-6)
  # A reward of the whole image has no per-action form.
  saliency = tf_pixel_env.PixelTFEnvironment(
      action_set_lib.get_action_set('color'), rewards_lib.SALIENCY,
      channels=3)
  saliency.start_episode(np.repeat(noisy, 3, -1), np.ones_like(noisy))
  saliency.step(np.zeros_like(actions))
  assert not rewards_lib.is_per_pixel(rewards_lib.SALIENCY)
  assert rewards_lib.is_per_pixel(rewards_lib.SQUARED_ERROR)
  with pytest.raises(ValueError, match='not per pixel'):
    _ = saliency.action_rewards

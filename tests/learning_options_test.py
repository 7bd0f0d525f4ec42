"""The learning tests pass with each gradient option of the agent.

`learning_test.py`'s two tasks (the shift task's multi-step credit and the
entropy-regularised bandit's stationary policy), trained the same way on the
same seeds and checked against the same thresholds, with each option of
`PixelA2CAgent` that `docs/training.md` derives:

- the all-actions policy gradient: an unbiased gradient with the same
  stationary policy, so both checks hold unchanged;
- the imitation warm start: a cross-entropy towards each pixel's best
  immediate action whose weight decays to zero at a third of the run. The
  shift task's best immediate action is its optimal one. On the bandit the
  target is `softmax(r / imitation_temperature)`; at the entropy weight
  `beta` that is the regularised optimum `pi*` itself, while a one-hot
  target (temperature 0) saturates the policy before the bonus can hold it
  (every seed ends deterministic), so the bandit runs with temperature
  `beta`.
"""

import pytest

import learning_test

ALL_ACTIONS = ('PixelA2CAgent.all_actions_policy_gradient = True',)


def _imitation(episodes, temperature):
  return ('PixelA2CAgent.imitation_coef = 1.0',
          f'PixelA2CAgent.imitation_updates = {episodes // 3}',
          f'PixelA2CAgent.imitation_temperature = {temperature}')


SHIFT_OPTIONS = {
    'all_actions_policy_gradient': ALL_ACTIONS,
    'imitation_warm_start': _imitation(learning_test.SHIFT_EPISODES, 0.0),
}
BANDIT_OPTIONS = {
    'all_actions_policy_gradient': ALL_ACTIONS,
    'imitation_warm_start': _imitation(learning_test.BANDIT_EPISODES,
                                       learning_test.BANDIT_BETA),
}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  return learning_test.write_data(tmp_path_factory.mktemp('shift_data'))


@pytest.mark.parametrize('option', sorted(SHIFT_OPTIONS))
def test_shift_task_learns_with_each_gradient_option(data, tmp_path, option):
  learning_test.assert_shift_task_learnt(data, [
      (seed, tmp_path / str(seed),
       learning_test.train_shift_task(tmp_path / str(seed), data, seed,
                                      SHIFT_OPTIONS[option]))
      for seed in learning_test.SEEDS])


@pytest.mark.parametrize('option', sorted(BANDIT_OPTIONS))
def test_the_bandit_reaches_the_regularised_optimum_with_each_option(
    data, tmp_path, option):
  learning_test.assert_bandit_at_the_regularised_optimum(
      data, tmp_path, BANDIT_OPTIONS[option])

"""Networks with reproducible weights whose greedy actions vary by pixel.

He-normal kernels and small biases drawn from a numpy generator make a model
reproducible; a scaled policy head spreads the argmax over many actions, so
that comparisons of action maps mean something.
"""

import numpy as np

from pixelrl_tf.models import model_io


def seed_weights(network, seed=0, head_scale=20.0):
  """Assigns the seeded weights to a built `FcnActorCritic` (in place)."""
  rng = np.random.default_rng(seed)
  for variable in network.variables:
    shape = variable.shape
    if len(shape) == 4:
      value = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[:3])), shape)
    else:
      value = rng.normal(0.0, 0.05, shape)
    variable.assign(value.astype(np.float32))
  head = network.layer_by_name('conv8_pi' if network.use_conv_gru
                               else 'conv7_pi')
  head.kernel.assign(head.kernel * head_scale)
  return network


def make_run(run_dir, config, seed=0, head_scale=20.0):
  """Saves a run directory of a seeded `config` model; returns its network."""
  network = seed_weights(model_io.build_network(config), seed, head_scale)
  model_io.save_model(run_dir, config, network,
                      reward_map=model_io.build_reward_map(config))
  return network

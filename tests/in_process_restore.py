"""The greedy restoration the exported and served models must equal.

An in-process episode of the one rollout with the greedy policy, built from
the package's public parts (the in-graph environment, the greedy policy of
`restoration_module`, `rollout.run_episode`) rather than through a
`RestorationModule`, so that the SavedModel's signatures are compared with
the rollout itself.
"""

from pixelrl_tf.drivers import rollout
from pixelrl_tf.environments import tf_pixel_env
from pixelrl_tf.serving import restoration_module


def greedy_restore(network, action_set, images, t_max):
  """Restores `[B,H,W,C]` 0..1 images greedily for `t_max` steps.

  Returns:
    `(restored [B,H,W,C] float32, unclipped; actions [B,T,H,W] int32)`.
  """
  images = restoration_module.check_images(network, images)
  environment = tf_pixel_env.PixelTFEnvironment(
      action_set, channels=int(network.input_tensor_spec.shape[-1]))
  episode = rollout.run_episode(
      environment, restoration_module.greedy_policy(network, environment),
      environment.start_episode(images), t_max, keep_images=False)
  return environment.images, episode.actions

"""What a trained model is on disk, and how to rebuild it.

A run directory (`--root_dir`) holds:

    model.json               ModelConfig: everything needed to rebuild the
                             network without gin (variant, channels, actions)
    train/ckpt-N.*           tf.train checkpoints (network, reward map,
                             optimizer, episode counter, RNG state)
    train/checkpoint         index of the checkpoints, written atomically
    operative_config.gin     the gin bindings the run used

Checkpoints written by `import_weights` have the same layout (no optimizer),
so `train`, `eval`, `export` and `restore` load them like any other.
"""

import dataclasses
import json
import os

import tensorflow as tf

from pixelrl_tf.agents import reward_map as reward_map_lib
from pixelrl_tf.filters import action_set as action_set_lib
from pixelrl_tf.filters import color_ops
from pixelrl_tf.networks import fcn_actor_critic

MODEL_CONFIG_FILE = 'model.json'
TRAIN_DIR = 'train'

# Transforms of the observation inside the network, before conv1: 'lab' is
# the colour models' input (BGR -> (L/100, a/127, b/127); further channels,
# e.g. a mask, pass unchanged).
INPUT_TRANSFORMS = {'none': None, 'lab': color_ops.bgr_to_scaled_lab}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The architecture of a PixelRL model.

  Attributes:
    channels: `C` of the images the model takes (1 gray, 3 colour).
    action_set: name of the action set (`'denoise'`, ...).
    filters: feature channels of the network.
    use_conv_gru: the "+convGRU" variant.
    use_reward_map_conv: the "+RMC" variant (a reward map kernel exists).
    reward_map_size: size of the RMC kernel.
    t_max: steps of one episode (restoration loop length at test time).
    input_transform: what the network does to its input before conv1, a
      key of `INPUT_TRANSFORMS` (`'none'`, or `'lab'` for colour models).
  """
  channels: int = 1
  action_set: str = 'denoise'
  filters: int = 64
  use_conv_gru: bool = True
  use_reward_map_conv: bool = False
  reward_map_size: int = 33
  t_max: int = 5
  input_transform: str = 'none'

  def __post_init__(self):
    if self.input_transform not in INPUT_TRANSFORMS:
      raise ValueError(
          f'unknown input_transform {self.input_transform!r}; use one of '
          f'{", ".join(sorted(INPUT_TRANSFORMS))}')

  @property
  def variant(self):
    if not self.use_conv_gru:
      return 'fcn'
    return 'gru_rmc' if self.use_reward_map_conv else 'gru'

  def get_action_set(self):
    return action_set_lib.get_action_set(self.action_set)

  def to_json(self):
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text):
    values = json.loads(text)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError(f'unknown model config keys: {", ".join(unknown)}')
    return cls(**values)


def build_network(config):
  """Returns the `FcnActorCritic` of `config`, variables created."""
  network = fcn_actor_critic.FcnActorCritic(
      tf.TensorSpec([None, None, config.channels], tf.float32),
      config.get_action_set().num_actions, filters=config.filters,
      use_conv_gru=config.use_conv_gru,
      preprocessing_fn=INPUT_TRANSFORMS[config.input_transform])
  network.create_variables()
  return network


def build_reward_map(config):
  """Returns the `RewardMapConv` of `config`, or None without RMC."""
  if not config.use_reward_map_conv:
    return None
  return reward_map_lib.RewardMapConv(config.reward_map_size)


def model_checkpoint(network, reward_map=None, **extra):
  """The checkpoint object graph shared by training, import and loading."""
  objects = dict(network=network, **extra)
  if reward_map is not None:
    objects['reward_map'] = reward_map
  return tf.train.Checkpoint(**objects)


def write_text_atomically(path, text):
  """Writes `text` to a temporary file beside `path`, then renames it."""
  tf.io.gfile.makedirs(os.path.dirname(os.path.abspath(path)))
  temp = path + '.tmp'
  with tf.io.gfile.GFile(temp, 'w') as f:
    f.write(text)
  tf.io.gfile.rename(temp, path, overwrite=True)


def write_model_config(run_dir, config):
  """Writes `model.json` atomically."""
  write_text_atomically(os.path.join(run_dir, MODEL_CONFIG_FILE),
                        config.to_json())


def read_model_config(run_dir):
  path = os.path.join(run_dir, MODEL_CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'{run_dir} is not a pixelrl_tf run directory '
                            f'(no {MODEL_CONFIG_FILE})')
  with tf.io.gfile.GFile(path) as f:
    return ModelConfig.from_json(f.read())


def save_model(run_dir, config, network, reward_map=None, step=0):
  """Writes `model.json` and a checkpoint `train/ckpt-<step>`; returns it."""
  write_model_config(run_dir, config)
  checkpoint = model_checkpoint(network, reward_map)
  manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(run_dir, TRAIN_DIR), max_to_keep=None)
  return manager.save(checkpoint_number=step)


def resolve_checkpoint(path):
  """Returns `(run_dir, checkpoint_prefix)` for a run dir or a checkpoint."""
  if tf.io.gfile.isdir(path):
    run_dir = path
    prefix = tf.train.latest_checkpoint(os.path.join(path, TRAIN_DIR))
    if prefix is None:
      raise FileNotFoundError(f'no checkpoint under {path}/{TRAIN_DIR}')
    return run_dir, prefix
  if tf.io.gfile.exists(path + '.index'):
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    return run_dir, path
  raise FileNotFoundError(f'{path} is neither a run directory nor a '
                          'checkpoint prefix')


def load_model(path):
  """Loads `(config, network, reward_map)` from a run dir or checkpoint."""
  run_dir, prefix = resolve_checkpoint(path)
  config = read_model_config(run_dir)
  network = build_network(config)
  reward_map = build_reward_map(config)
  status = model_checkpoint(network, reward_map).restore(prefix)
  status.expect_partial().assert_existing_objects_matched()
  return config, network, reward_map

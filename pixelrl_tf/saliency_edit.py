r"""Saliency-driven image editing: trains PixelRL on one image, then edits it.

  python -m pixelrl_tf.saliency_edit --image=IMG --mask=MASK --output=DIR \
      [--episodes=200] [--t_max=10] [--test_t_max=10] \
      [--init=RUN_DIR|NPZ|color_init] \
      [--gin_bindings='edit_image.filters=8']

Trains an agent on the image (paper Sec. VI-D: reward = change of OpenCV's
fine-grained saliency, increased inside the mask and decreased outside),
edits the image greedily with a guided filter after every step and writes
`NAME_edited.png`, `NAME_actions.png`, `NAME_saliency.png` and
`NAME_metrics.json` (Pearson CC of mask and saliency, SSIM to the input).
"""

from absl import app
from absl import flags

from pixelrl_tf import cli
from pixelrl_tf.jobs import saliency_lib

_IMAGE = flags.DEFINE_string('image', None, 'Colour image file.',
                             required=True)
_MASK = flags.DEFINE_string('mask', None, 'Mask file, same size (non-zero = '
                            'region to enhance).', required=True)
_OUTPUT = flags.DEFINE_string('output', None, 'Output folder.',
                              required=True)
_EPISODES = flags.DEFINE_integer('episodes', saliency_lib.DEFAULT_EPISODES,
                                 'Training episodes on the image.')
_T_MAX = flags.DEFINE_integer('t_max', saliency_lib.DEFAULT_T_MAX,
                              'Steps per episode (5, 10 or 15).')
_TEST_T_MAX = flags.DEFINE_integer('test_t_max', None,
                                   'Steps of the edit (default: t_max).')
_INIT = flags.DEFINE_string(
    'init', None, 'Colour run directory, checkpoint or .npz to start from: a '
    'path or a known name (e.g. color_init).')
_GIN_FILE = flags.DEFINE_multi_string('gin_file', [], 'Gin config files.')
_GIN_BINDINGS = flags.DEFINE_multi_string(
    'gin_bindings', [], 'Gin bindings, e.g. edit_image.filters=8.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  cli.parse_gin_or_exit(_GIN_FILE.value, _GIN_BINDINGS.value)
  try:
    report = saliency_lib.edit_image(
        _IMAGE.value, _MASK.value, _OUTPUT.value, episodes=_EPISODES.value,
        t_max=_T_MAX.value, test_t_max=_TEST_T_MAX.value, init=_INIT.value)
  except (saliency_lib.SaliencyEditError, ValueError, OSError) as error:
    cli.fail(error)
  before, after = report[saliency_lib.INPUT], report[saliency_lib.OUTPUT]
  for key in ('cc_fine_grained', 'cc_spectral_residual', 'ssim'):
    print(f'{key}: {before[key]} -> {after[key]}')


if __name__ == '__main__':
  cli.run(main)

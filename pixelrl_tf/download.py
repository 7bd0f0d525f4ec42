r"""Downloads known weights and data sets once, checked, into the cache.

  python -m pixelrl_tf.download gru_rmc_sigma25 bsd432 [--cache_dir=DIR]
  python -m pixelrl_tf.download --all
  python -m pixelrl_tf.download --list

Prints `name: path` per name. What the data root (PIXELRL_DATA_ROOT) or the
cache (PIXELRL_CACHE_DIR, default ~/.keras/pixelrl_tf) already holds is not
fetched again. The colour pairs (`fpop_train`) arrive as the source's 16-bit
TIFFs and are stored as the data root's 8-bit PNGs, both checked. See
docs/data.md.
"""

from absl import app
from absl import flags

from pixelrl_tf import cli
from pixelrl_tf.jobs import download_lib

_LIST = flags.DEFINE_boolean('list', False,
                             'List the known names and what is stored.')
_ALL = flags.DEFINE_boolean('all', False, 'Fetch every known name.')
_DATA_ROOT = flags.DEFINE_string(
    'data_root', None, 'Folder laid out like the shared data folder '
    '(default: $PIXELRL_DATA_ROOT).')
_CACHE_DIR = flags.DEFINE_string(
    'cache_dir', None, 'Cache folder (default: $PIXELRL_CACHE_DIR or '
    '~/.keras/pixelrl_tf).')
_BASE_URL = flags.DEFINE_string(
    'base_url', None, 'Replaces https://raw.githubusercontent.com.')
_TIMEOUT = flags.DEFINE_float('timeout', None,
                              'Seconds per connect or read (default 20).')
_CHECK_HASH = flags.DEFINE_boolean(
    'check_hash', False, 'Also check the sha256 of data-root copies.')


def main(argv):
  names = argv[1:]
  try:
    if _LIST.value:
      if names or _ALL.value:
        raise app.UsageError('--list takes no names and no --all')
      print(download_lib.list_text(_DATA_ROOT.value, _CACHE_DIR.value))
      return
    results = download_lib.download(
        names, all_names=_ALL.value, data_root=_DATA_ROOT.value,
        cache_dir=_CACHE_DIR.value, base_url=_BASE_URL.value,
        timeout=_TIMEOUT.value, check_hash=_CHECK_HASH.value)
  except (ValueError, OSError) as error:
    cli.fail(error)
  for name, path in results:
    print(f'{name}: {path}')


if __name__ == '__main__':
  cli.run(main)

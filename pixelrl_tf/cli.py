"""Shared plumbing of the command-line entry points: gin and one-line errors."""

import logging as std_logging
import os
import sys

from absl import logging
import gin


def parse_gin(gin_files, gin_bindings):
  """Parses gin files and bindings; unknown names are errors.

  `include` statements are resolved relative to the current directory and to
  the folders of the given files, so configs can include their siblings.
  """
  for path in gin_files or []:
    if not os.path.exists(path):
      raise FileNotFoundError(f'gin file {path} does not exist')
    gin.add_config_file_search_path(os.path.dirname(os.path.abspath(path)))
  verbosity = logging.get_verbosity()
  root_level = std_logging.getLogger().level
  # gin logs every place it looks for an included file; keep only the
  # errors it raises.
  logging.set_verbosity(logging.FATAL)
  std_logging.getLogger().setLevel(std_logging.CRITICAL)
  try:
    gin.parse_config_files_and_bindings(
        gin_files or [], gin_bindings or [], skip_unknown=False)
  finally:
    logging.set_verbosity(verbosity)
    std_logging.getLogger().setLevel(root_level)


def parse_gin_or_exit(gin_files, gin_bindings):
  """`parse_gin`, turning any gin error into one line and exit status 1."""
  try:
    parse_gin(gin_files, gin_bindings)
  except Exception as error:  # pylint: disable=broad-except
    fail(error, 'bad gin configuration')


def first_line(error):
  text = str(error).strip()
  if isinstance(error, KeyError) and text.startswith(("'", '"')):
    text = text[1:-1]
  return text.splitlines()[0] if text else type(error).__name__


def fail(error, prefix='error'):
  """Prints `prefix: <first line of error>` to stderr and exits with 1."""
  print(f'{prefix}: {first_line(error)}', file=sys.stderr)
  sys.exit(1)

"""Shared plumbing of the command-line entry points: gin, flags and errors.

Every command (`python -m pixelrl_tf.<command>`) starts with `cli.run(main)`
instead of `app.run(main)`, so that nothing it does ends in a Python
traceback:

  * a bad flag or a `UsageError` is one line, `error: <message> (see
    --help)`, and exit status 1;
  * the errors a job library documents (bad files, bad settings, a full
    disk) are caught by the main and passed to `fail`: one line
    `error: <first line of the message>`, exit status 1;
  * any other exception is one line `error: <type>: <first line> (run with
    --debug for the traceback)`, exit status 1;
  * Ctrl-C outside a job's own handling is `error: interrupted`, exit status
    130.

`--debug` (a flag of every command) or the environment variable
`PIXELRL_DEBUG=1` prints the full traceback before the one-line message.
"""

import functools
import logging as std_logging
import os
import sys
import traceback
from typing import Any, Callable, List, NoReturn, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import gin

DEBUG_ENV = 'PIXELRL_DEBUG'
DEBUG = flags.DEFINE_bool(
    'debug', False, 'Print the full Python traceback of an error before its '
    f'one-line message (also: {DEBUG_ENV}=1).')

_TRUE_WORDS = ('1', 'true', 'yes', 'on')
_HELP_HINT = ' (see --help)'
_DEBUG_HINT = ' (run with --debug for the traceback)'
_INTERRUPTED_STATUS = 130

Main = Callable[[List[str]], Any]


def config_folder() -> Optional[str]:
  """The folder of the package's gin configs, or None.

  Installed, the configs are package data (`pixelrl_tf/configs`); in a
  checkout they are the top-level `configs/` beside the package.
  """
  package = os.path.dirname(os.path.abspath(__file__))
  for folder in (os.path.join(package, 'configs'),
                 os.path.join(os.path.dirname(package), 'configs')):
    if os.path.isdir(folder):
      return folder
  return None


def resolve_gin_file(path: str) -> str:
  """A gin file's path: `path` itself, or a bare name among the package's configs.

  Args:
    path: a path to a gin file, or the bare name of one of the package's
      configs (`denoise_quick.gin`, or `denoise_quick`).

  Returns:
    The path to parse.

  Raises:
    FileNotFoundError: neither exists; names the configs that do.
  """
  if os.path.exists(path):
    return path
  folder = config_folder()
  bare = os.path.basename(path) == path
  if folder is not None and bare:
    for name in (path, path + '.gin'):
      candidate = os.path.join(folder, name)
      if os.path.isfile(candidate):
        return candidate
  message = f'gin file {path} does not exist'
  if folder is not None and bare:
    names = sorted(n for n in os.listdir(folder) if n.endswith('.gin'))
    message += f' (the package configs are {", ".join(names)})'
  raise FileNotFoundError(message)


def parse_gin(gin_files, gin_bindings):
  """Parses gin files and bindings; unknown names are errors.

  A gin file is a path or the bare name of one of the package's configs
  (`resolve_gin_file`). `include` statements are resolved relative to the
  current directory, to the folders of the given files and to the package's
  configs, so configs can include their siblings and a user's config can
  include a package config by name.
  """
  gin_files = [resolve_gin_file(path) for path in gin_files or []]
  for path in gin_files:
    gin.add_config_file_search_path(os.path.dirname(os.path.abspath(path)))
  package_configs = config_folder()
  if package_configs is not None:
    gin.add_config_file_search_path(package_configs)
  verbosity = logging.get_verbosity()
  root_level = std_logging.getLogger().level
  # gin logs every place it looks for an included file; keep only the
  # errors it raises.
  logging.set_verbosity(logging.FATAL)
  std_logging.getLogger().setLevel(std_logging.CRITICAL)
  try:
    gin.parse_config_files_and_bindings(
        gin_files, gin_bindings or [], skip_unknown=False)
  finally:
    logging.set_verbosity(verbosity)
    std_logging.getLogger().setLevel(root_level)


def parse_gin_or_exit(gin_files, gin_bindings,
                      hint_fn: Optional[Callable[[str], Optional[str]]] = None):
  """`parse_gin`, turning any gin error into one line and exit status 1.

  Args:
    gin_files: gin files (paths or package config names).
    gin_bindings: gin bindings.
    hint_fn: given gin's message, a line to add (e.g. where a setting that
      moved lives now), or None.
  """
  try:
    parse_gin(gin_files, gin_bindings)
  except Exception as error:  # pylint: disable=broad-except
    hint = hint_fn(str(error)) if hint_fn is not None else None
    if hint:
      error = ValueError(f'{first_line(error).rstrip(".")}; {hint}')
    fail(error, 'bad gin configuration')


def first_line(error: BaseException) -> str:
  """The first line of an exception's message (its type name if empty)."""
  text = str(error).strip()
  if isinstance(error, KeyError) and text.startswith(("'", '"')):
    text = text[1:-1]
  return text.splitlines()[0] if text else type(error).__name__


def debug_enabled() -> bool:
  """Whether `--debug` is set or `PIXELRL_DEBUG` is 1 (true, yes, on)."""
  if os.environ.get(DEBUG_ENV, '').strip().lower() in _TRUE_WORDS:
    return True
  return flags.FLAGS.is_parsed() and bool(DEBUG.value)


def _print_traceback(error: BaseException) -> None:
  traceback.print_exception(type(error), error, error.__traceback__,
                            file=sys.stderr)
  sys.stderr.flush()


def fail(error: BaseException, prefix: str = 'error') -> NoReturn:
  """Prints `prefix: <first line of error>` to stderr and exits with 1.

  With `--debug` (or `PIXELRL_DEBUG=1`) the full traceback comes first.
  """
  if debug_enabled():
    _print_traceback(error)
  print(f'{prefix}: {first_line(error)}', file=sys.stderr)
  sys.exit(1)


def fail_unexpected(error: BaseException) -> NoReturn:
  """Like `fail` for an exception no job documents: names its type."""
  line = f'error: {type(error).__name__}: {first_line(error)}'
  if debug_enabled():
    _print_traceback(error)
  else:
    line += _DEBUG_HINT
  print(line, file=sys.stderr)
  sys.exit(1)


def parse_flags(argv: Sequence[str]) -> List[str]:
  """Parses the command line; a bad flag is one line and exit status 1.

  Args:
    argv: the command line, program name first.

  Returns:
    The arguments that are not flags, program name first.
  """
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as error:
    print(f'error: {first_line(error)}{_HELP_HINT}', file=sys.stderr)
    sys.exit(1)


def guard(main: Main) -> Main:
  """`main` with every escaping exception turned into one line (see above)."""

  @functools.wraps(main)
  def guarded(argv: List[str]) -> Any:
    try:
      return main(argv)
    except app.UsageError as error:
      if debug_enabled():
        _print_traceback(error)
      print(f'error: {first_line(error)}{_HELP_HINT}', file=sys.stderr)
      sys.exit(1)
    except KeyboardInterrupt as error:
      if debug_enabled():
        _print_traceback(error)
      print('error: interrupted', file=sys.stderr)
      sys.exit(_INTERRUPTED_STATUS)
    except Exception as error:  # pylint: disable=broad-except
      fail_unexpected(error)

  return guarded


def run(main: Main, argv: Optional[Sequence[str]] = None) -> NoReturn:
  """`absl.app.run(main)` with one-line errors: every command's entry point.

  Args:
    main: the command's `main(argv)`.
    argv: the command line (default `sys.argv`).
  """
  app.run(guard(main), argv=None if argv is None else list(argv),
          flags_parser=parse_flags)

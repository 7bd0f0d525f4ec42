"""A dependency-free progress bar with rate and ETA, and interrupt handling."""

import signal
import sys
import time


def format_duration(seconds):
  seconds = max(0, int(round(seconds)))
  hours, rest = divmod(seconds, 3600)
  minutes, seconds = divmod(rest, 60)
  if hours:
    return f'{hours}:{minutes:02d}:{seconds:02d}'
  return f'{minutes:02d}:{seconds:02d}'


class ProgressBar:
  """Prints `episode i/N [####....] rate, ETA, metrics` to a stream.

  On a terminal the line is redrawn in place; otherwise (logs, CI) a line is
  printed at most every `log_every_seconds`.
  """

  def __init__(self, total, initial=0, stream=None, width=24,
               log_every_seconds=30.0, label='episode'):
    self._total = max(int(total), 1)
    self._done = int(initial)
    self._initial = int(initial)
    self._stream = stream or sys.stderr
    self._width = width
    self._interactive = getattr(self._stream, 'isatty', lambda: False)()
    self._log_every_seconds = log_every_seconds
    self._label = label
    self._start = time.monotonic()
    self._last_print = -float('inf')
    self._metrics = None
    self._last_printed_done = None

  @property
  def eta_seconds(self):
    elapsed = time.monotonic() - self._start
    done = self._done - self._initial
    if done <= 0:
      return float('nan')
    return elapsed / done * (self._total - self._done)

  def line(self, metrics=None):
    fraction = min(self._done / self._total, 1.0)
    filled = int(round(fraction * self._width))
    bar = '#' * filled + '.' * (self._width - filled)
    elapsed = time.monotonic() - self._start
    done = self._done - self._initial
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = self.eta_seconds
    eta_text = '--:--' if eta != eta else format_duration(eta)
    text = (f'{self._label} {self._done}/{self._total} [{bar}] '
            f'{rate:.2f}/s elapsed {format_duration(elapsed)} ETA {eta_text}')
    if metrics:
      text += ' ' + ' '.join(f'{k} {v:.4g}' for k, v in metrics.items())
    return text

  def update(self, done, metrics=None, force=False):
    self._done = int(done)
    now = time.monotonic()
    finished = self._done >= self._total
    if metrics is not None:
      self._metrics = metrics
    metrics = self._metrics
    if self._interactive:
      self._stream.write('\r' + self.line(metrics) + '\x1b[K')
      if finished or force:
        self._stream.write('\n')
      self._stream.flush()
    elif self._done != self._last_printed_done and (
        force or finished or
        now - self._last_print >= self._log_every_seconds):
      self._stream.write(self.line(metrics) + '\n')
      self._stream.flush()
      self._last_print = now
      self._last_printed_done = self._done



class StopRequest:
  """Turns SIGINT / SIGTERM into a flag checked between episodes.

  A second SIGINT restores Python's default behaviour (KeyboardInterrupt),
  so a user can still force an exit.
  """

  def __init__(self):
    self.signal_name = None
    self._previous = {}

  def __bool__(self):
    return self.signal_name is not None

  def _handle(self, signum, frame):
    del frame
    if self.signal_name is not None and signum == signal.SIGINT:
      signal.signal(signal.SIGINT, signal.default_int_handler)
      raise KeyboardInterrupt
    self.signal_name = signal.Signals(signum).name

  def __enter__(self):
    for signum in (signal.SIGINT, signal.SIGTERM):
      try:
        self._previous[signum] = signal.signal(signum, self._handle)
      except ValueError:  # not the main thread: leave signals alone
        pass
    return self

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous.clear()
    return False

"""The viewer's web server: one page, its files and a small JSON API.

Shapes: `T` steps, `H, W` height and width, `C` channels.

`serve` loads the models (`view_lib.load_models`), starts a
`http.server.ThreadingHTTPServer` (one thread per request; restorations run
on the `view_lib.Viewer`'s worker thread) and serves until Ctrl-C. The page
is plain HTML, CSS and JavaScript from `view_static/`, drawn with canvases;
nothing is fetched from elsewhere, so the viewer works offline.

Routes (ids are `secrets.token_urlsafe(16)`, 22 characters; steps and model
indices are decimal; everything else answers 404):

    GET  /                                  the page
    GET  /static/<name>                     its scripts and style sheet
    GET  /api/info                          models, actions, noise, limits
    POST /api/upload                        image file bytes
                                            (application/octet-stream,
                                            name in X-File-Name) -> {id, ...}
    POST /api/photograph                    {"name": "camera"} -> {id, ...}
    GET  /api/images/<id>.png               a decoded input
    POST /api/restore                       {"input": id, "target": id,
                                            "noise": {"level", "seed"}}
                                            -> {"job": id}
    GET  /api/jobs/<job>                    state, progress, result summary
    GET  /api/jobs/<job>/<m>/image/<t>.png  model m's image after step t
    GET  /api/jobs/<job>/<m>/actions/<t>.png  its action map of step t
    GET  /api/jobs/<job>/<m>/restored.png   downloads: the restored image,
    GET  /api/jobs/<job>/<m>/strip.png      the action strip,
    GET  /api/jobs/<job>/<m>/animation.gif  the animation,
    GET  /api/jobs/<job>/<m>/chart.png      the action-count chart
    GET  /api/jobs/<job>/difference/<image|actions>/<t>.png
    GET  /api/jobs/<job>/pixel?x=X&y=Y      a pixel's actions and values

Errors are JSON `{"error": "<one line>"}` with status 400 (bad request or
image), 403 (a Host header naming another site), 404, 405, 411, 413 (over
the upload limits), 415, 503 (too many restorations waiting) or 500 (a bug;
also printed on stderr); the server keeps serving.

Safety: the server binds to 127.0.0.1 unless `--host` says otherwise (with a
printed warning: the viewer has no authentication). Paths are matched
whole against fixed patterns, never joined to a folder: the static files
are read into memory when the server starts, so no request can name
another file (`..`, `%2e%2e%2f`, absolute paths all answer 404). On a
loopback address, requests must name the server in their Host header
(127.0.0.1, localhost or [::1] with its port), which keeps web pages of
other sites from reaching it through DNS rebinding; uploads and requests
must carry their own content type, which a cross-site form cannot send
without the browser asking first. Bodies over the upload limit are
refused with 413 before they are decoded.
"""

import http
import http.server
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import sys
import tempfile
import threading
import urllib.parse
from typing import Callable, Optional, Sequence

from pixelrl_tf import cli
from pixelrl_tf.jobs import restore_lib
from pixelrl_tf.jobs import view_lib

DEFAULT_HOST = '127.0.0.1'
DEFAULT_PORT = 8080
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'view_static')
PAGE = 'index.html'
_STATIC_NAME = re.compile(r'[a-z0-9_]+\.(?:css|html|js|png|svg)')
_MAX_JSON_BYTES = 64 * 1024
# A body over the limit is still read (and dropped) up to this many times
# the limit, so that the client gets the 413 answer rather than a reset.
_DRAIN_FACTOR = 4
_ID = r'([A-Za-z0-9_-]{16,64})'
_INDEX = r'(\d{1,3})'
_STEP = r'(\d{1,4})'
_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_CONTENT_TYPES = {'.css': 'text/css; charset=utf-8',
                  '.html': 'text/html; charset=utf-8',
                  '.js': 'text/javascript; charset=utf-8',
                  '.png': 'image/png', '.svg': 'image/svg+xml',
                  '.gif': 'image/gif', '.json': 'application/json'}


class _HttpError(Exception):
  """An answer other than 200, with its one-line message."""

  def __init__(self, status, message):
    super().__init__(message)
    self.status = status


def is_loopback(host: str) -> bool:
  """Whether `host` is a loopback address or `localhost`."""
  if host.lower() == 'localhost':
    return True
  try:
    return ipaddress.ip_address(host.strip('[]')).is_loopback
  except ValueError:
    return False


def host_warning(host: str) -> Optional[str]:
  """The warning printed when the viewer listens beyond this machine."""
  if is_loopback(host):
    return None
  return (f'warning: listening on {host}: anyone who can reach this machine '
          'can use the viewer and see its images (it has no login); use the '
          f'default --host={DEFAULT_HOST} to keep it to this machine')


def _url_host(host):
  return f'[{host}]' if ':' in host else host


def load_static_files(folder: str = STATIC_DIR):
  """`{name: (bytes, content type)}` of the page's files, read once."""
  files = {}
  for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    if _STATIC_NAME.fullmatch(name) and os.path.isfile(path):
      with open(path, 'rb') as f:
        files[name] = (f.read(), _CONTENT_TYPES[os.path.splitext(name)[1]])
  if PAGE not in files:
    raise FileNotFoundError(f'the viewer page {os.path.join(folder, PAGE)} '
                            'is missing')
  return files


class ViewerServer(http.server.ThreadingHTTPServer):
  """The viewer's HTTP server (see the module docstring).

  Attributes:
    viewer: the `view_lib.Viewer` it serves.
    url: `http://host:port/` with the port actually bound.
  """

  daemon_threads = True

  def __init__(self, viewer: view_lib.Viewer, host: str = DEFAULT_HOST,
               port: int = DEFAULT_PORT, log_fn: Callable[[str], None] = None):
    """Binds `host:port` (port 0: a free one) and reads the page's files.

    Raises:
      OSError: (one line) the address cannot be bound.
    """
    self.viewer = viewer
    self.static_files = load_static_files()
    self.log_fn = log_fn or (lambda line: print(line, file=sys.stderr))
    if ':' in host:
      self.address_family = socket.AF_INET6
    try:
      super().__init__((host, port), _Handler)
    except OSError as error:
      reason = error.strerror or str(error)
      raise OSError(f'cannot listen on {_url_host(host)}:{port}: {reason}'
                    + (' (choose another --port)' if error.errno in (
                        98, 48, 10048) else '')) from None
    self.host = host
    self.port = self.server_address[1]
    self.url = f'http://{_url_host(host)}:{self.port}/'
    self.allowed_hosts = None
    if is_loopback(host):
      self.allowed_hosts = {f'{name}:{self.port}' for name in (
          '127.0.0.1', 'localhost', '[::1]', _url_host(host))}


  def server_bind(self):
    """Binds without `HTTPServer`'s reverse name lookup of the address.

    (`socket.getfqdn` may wait for a DNS server, e.g. on 0.0.0.0 offline.)
    """
    socketserver.TCPServer.server_bind(self)
    self.server_name, self.server_port = self.server_address[:2]


def _json_bytes(value):
  return json.dumps(value, allow_nan=False).encode('utf-8')


class _Handler(http.server.BaseHTTPRequestHandler):
  """Routes one request (see the module docstring)."""

  server_version = 'pixelrl_tf-view'
  sys_version = ''
  protocol_version = 'HTTP/1.1'

  # Routes: (method, pattern of the whole path, handler name).
  ROUTES = [
      ('GET', re.compile(r'/'), '_page'),
      ('GET', re.compile(r'/static/([a-z0-9_]+\.[a-z]+)'), '_static'),
      ('GET', re.compile(r'/api/info'), '_info'),
      ('POST', re.compile(r'/api/upload'), '_upload'),
      ('POST', re.compile(r'/api/photograph'), '_photograph'),
      ('GET', re.compile(rf'/api/images/{_ID}\.png'), '_input_image'),
      ('POST', re.compile(r'/api/restore'), '_restore'),
      ('GET', re.compile(rf'/api/jobs/{_ID}'), '_job'),
      ('GET', re.compile(rf'/api/jobs/{_ID}/pixel'), '_pixel'),
      ('GET', re.compile(rf'/api/jobs/{_ID}/{_INDEX}/image/{_STEP}\.png'),
       '_step_image'),
      ('GET', re.compile(rf'/api/jobs/{_ID}/{_INDEX}/actions/{_STEP}\.png'),
       '_action_map'),
      ('GET', re.compile(rf'/api/jobs/{_ID}/{_INDEX}/(restored\.png|'
                         r'strip\.png|chart\.png|animation\.gif)'),
       '_download'),
      ('GET', re.compile(rf'/api/jobs/{_ID}/difference/(image|actions)/'
                         rf'{_STEP}\.png'), '_difference'),
  ]

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    del format, args  # One line per request would drown the console.

  def send_error(self, code, message=None, explain=None):
    """Malformed requests (bad syntax, HEAD, ...) get one line of JSON too."""
    del explain
    self.close_connection = True
    self._send_error(code, message or http.HTTPStatus(code).phrase)

  # Dispatch.

  def do_GET(self):  # pylint: disable=invalid-name
    self._dispatch('GET')

  def do_POST(self):  # pylint: disable=invalid-name
    self._dispatch('POST')

  def do_PUT(self):  # pylint: disable=invalid-name
    self._dispatch('PUT')

  def do_DELETE(self):  # pylint: disable=invalid-name
    self._dispatch('DELETE')

  def _dispatch(self, method):
    try:
      self._check_host()
      path, _, self.query = self.path.partition('?')
      allowed = []
      for route_method, pattern, name in self.ROUTES:
        match = pattern.fullmatch(path)
        if match:
          if route_method == method:
            getattr(self, name)(*match.groups())
            return
          allowed.append(route_method)
      if allowed:
        raise _HttpError(405, f'use {" or ".join(allowed)} here, not '
                              f'{method}')
      raise _HttpError(404, 'not found')
    except _HttpError as error:
      self._send_error(error.status, str(error))
    except view_lib.NotFoundError as error:
      self._send_error(404, cli.first_line(error))
    except view_lib.TooLargeError as error:
      self._send_error(413, cli.first_line(error))
    except view_lib.BusyError as error:
      self._send_error(503, cli.first_line(error))
    except ValueError as error:  # view_lib.ViewError included.
      self._send_error(400, cli.first_line(error))
    except (ConnectionError, TimeoutError):
      self.close_connection = True
    except Exception as error:  # pylint: disable=broad-except
      line = f'internal error: {type(error).__name__}: {cli.first_line(error)}'
      self.server.log_fn(f'{line} ({method} {self.path[:200]})')
      self._send_error(500, line)

  def _check_host(self):
    allowed = self.server.allowed_hosts
    if allowed is not None and self.headers.get('Host', '') not in allowed:
      raise _HttpError(403, 'this viewer answers requests for '
                            f'{_url_host(self.server.host)}:'
                            f'{self.server.port} or localhost:'
                            f'{self.server.port} only')

  # Answers.

  def _send(self, status, body, content_type, extra_headers=()):
    self.send_response(status)
    self.send_header('Content-Type', content_type)
    self.send_header('Content-Length', str(len(body)))
    self.send_header('Cache-Control', 'no-store')
    self.send_header('X-Content-Type-Options', 'nosniff')
    self.send_header('Referrer-Policy', 'no-referrer')
    for name, value in extra_headers:
      self.send_header(name, value)
    if self.close_connection:
      self.send_header('Connection', 'close')
    self.end_headers()
    self.wfile.write(body)

  def _send_json(self, value, status=200):
    self._send(status, _json_bytes(value), _CONTENT_TYPES['.json'])

  def _send_error(self, status, message):
    try:
      self._send_json({'error': message}, status)
    except (ConnectionError, TimeoutError):
      self.close_connection = True

  def _send_picture(self, data, suffix):
    self._send(200, data, _CONTENT_TYPES[suffix])

  def _body(self, content_type, limit, what):
    """The request body, after checking its type and length."""
    given = self.headers.get('Content-Type', '').split(';')[0].strip().lower()
    length_text = self.headers.get('Content-Length')
    if length_text is None:
      self.close_connection = True
      raise _HttpError(411, 'the request needs a Content-Length')
    try:
      length = int(length_text)
      if length < 0:
        raise ValueError
    except ValueError:
      self.close_connection = True
      raise _HttpError(400, f'bad Content-Length {length_text[:20]!r}'
                       ) from None
    if length > limit:
      self._drop_body(length, limit)
      raise _HttpError(
          413, f'{what} is {length:,} bytes; the viewer takes at most '
               f'{limit:,}' + (' (--max_upload_mb)' if what == 'the upload'
                               else ''))
    data = self.rfile.read(length)
    if len(data) != length:
      self.close_connection = True
      raise _HttpError(400, f'{what} was cut short ({len(data)} of {length} '
                            'bytes)')
    if given != content_type:
      raise _HttpError(415, f'send {what} as {content_type}, not '
                            f'{given or "no Content-Type"}')
    return data

  def _drop_body(self, length, limit):
    """Reads and drops a refused body, or closes when it is far too long."""
    self.close_connection = True
    if length > _DRAIN_FACTOR * limit:
      return
    remaining = length
    while remaining > 0:
      chunk = self.rfile.read(min(remaining, 1 << 16))
      if not chunk:
        break
      remaining -= len(chunk)

  def _json_body(self):
    data = self._body('application/json', _MAX_JSON_BYTES, 'the request')
    try:
      return json.loads(data.decode('utf-8'))
    except ValueError as error:
      raise _HttpError(400, f'the request is not JSON: {error}') from None

  def _query_int(self, name):
    values = urllib.parse.parse_qs(self.query).get(name)
    if not values or not re.fullmatch(r'-?\d{1,9}', values[0]):
      raise _HttpError(400, f'give the pixel as ?x=...&y=... (integers); '
                            f'{name} is missing or not an integer')
    return int(values[0])

  # Routes.

  def _page(self):
    data, content_type = self.server.static_files[PAGE]
    self._send(200, data, content_type, [
        ('Content-Security-Policy', _CONTENT_SECURITY_POLICY),
        ('X-Frame-Options', 'DENY')])

  def _static(self, name):
    found = self.server.static_files.get(name)
    if found is None:
      raise _HttpError(404, 'not found')
    self._send(200, *found)

  def _info(self):
    self._send_json(self.server.viewer.info())

  def _upload(self):
    viewer = self.server.viewer
    data = self._body('application/octet-stream', viewer.max_upload_bytes,
                      'the upload')
    name = urllib.parse.unquote(self.headers.get('X-File-Name', ''))
    self._send_json(viewer.add_upload(data, name))

  def _photograph(self):
    request = self._json_body()
    if not isinstance(request, dict) or not isinstance(request.get('name'),
                                                       str):
      raise _HttpError(400, 'send {"name": "<photograph>"}')
    self._send_json(self.server.viewer.add_photograph(request['name']))

  def _input_image(self, image_id):
    self._send_picture(self.server.viewer.input_png(image_id), '.png')

  def _restore(self):
    self._send_json(self.server.viewer.start_restoration(self._json_body()),
                    202)

  def _job(self, job_id):
    self._send_json(self.server.viewer.job_status(job_id))

  def _pixel(self, job_id):
    x, y = self._query_int('x'), self._query_int('y')
    self._send_json(self.server.viewer.pixel(job_id, x, y))

  def _step_image(self, job_id, index, step):
    self._send_picture(self.server.viewer.step_image_png(
        job_id, int(index), int(step)), '.png')

  def _action_map(self, job_id, index, step):
    self._send_picture(self.server.viewer.action_map_png(
        job_id, int(index), int(step)), '.png')

  def _download(self, job_id, index, name):
    viewer = self.server.viewer
    make = {'restored.png': viewer.restored_png,
            'strip.png': viewer.strip_png,
            'chart.png': viewer.chart_png,
            'animation.gif': viewer.animation_gif}[name]
    self._send_picture(make(job_id, int(index)), os.path.splitext(name)[1])

  def _difference(self, job_id, kind, step):
    self._send_picture(self.server.viewer.difference_png(
        job_id, kind, int(step)), '.png')


def _interrupt(signal_number, frame):
  del signal_number, frame
  raise KeyboardInterrupt


def serve(model_specs: Sequence[str], host: str = DEFAULT_HOST,
          port: int = DEFAULT_PORT,
          tile_size: Optional[int] = restore_lib.DEFAULT_TILE_SIZE,
          max_upload_mb: float = view_lib.DEFAULT_MAX_UPLOAD_MB,
          max_megapixels: float = view_lib.DEFAULT_MAX_MEGAPIXELS,
          log_fn: Callable[[str], None] = print) -> None:
  """Loads the models and serves the viewer until Ctrl-C (or SIGTERM).

  Args:
    model_specs: one or two models (see `view_lib.load_model`).
    host: the address to listen on; anything but a loopback address prints
      a warning.
    port: the port; 0 picks a free one (the printed URL says which).
    tile_size: side of the tile cores of large images.
    max_upload_mb: largest upload, in MiB.
    max_megapixels: largest image, in millions of pixels.
    log_fn: prints one line (loading, the URL, the warning, the end).

  Raises:
    ValueError, FileNotFoundError, restore_lib.RestoreError: (one line) the
      models cannot be loaded (see `view_lib.load_models`), or bad limits.
    OSError: (one line) the address cannot be bound.
  """
  if not max_upload_mb > 0 or not max_megapixels > 0:
    raise ValueError('--max_upload_mb and --max_megapixels must be positive')
  work_dir = tempfile.mkdtemp(prefix='pixelrl_view_')
  previous_handlers = {}
  if threading.current_thread() is threading.main_thread():
    # Ctrl-C (SIGINT) and `kill` (SIGTERM) stop the viewer, removing its
    # files; SIGINT too where the viewer was started with it ignored (a
    # background job of a shell script inherits SIGINT ignored).
    for signal_number in (signal.SIGINT, signal.SIGTERM):
      previous_handlers[signal_number] = signal.signal(signal_number,
                                                       _interrupt)
  try:
    models = view_lib.load_models(model_specs, work_dir, log_fn)
    viewer = view_lib.Viewer(
        models, tile_size=tile_size,
        max_upload_bytes=int(max_upload_mb * 2**20),
        max_pixels=int(max_megapixels * 1e6), work_dir=work_dir)
    try:
      server = ViewerServer(viewer, host, port)
      try:
        warning = host_warning(host)
        if warning:
          log_fn(warning)
        log_fn(f'pixelrl_tf viewer at {server.url} (Ctrl-C stops it)')
        server.serve_forever(poll_interval=0.25)
      except KeyboardInterrupt:
        log_fn('viewer stopped')
      finally:
        server.server_close()
    finally:
      viewer.close()
  finally:
    shutil.rmtree(work_dir, ignore_errors=True)
    for signal_number, handler in previous_handlers.items():
      if handler is not None:
        signal.signal(signal_number, handler)

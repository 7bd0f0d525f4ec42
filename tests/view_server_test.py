"""Tests of the viewer's server: endpoints, results, bad input and the CLI.

One tiny trained run (configs/tiny.gin) and its export are served together
by one module-wide server; every result is compared with what the library
computes for the same input, loaded apart from the viewer.
"""

import concurrent.futures
import http.client
import io
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import cv2
import gin
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT
from conftest import shared_data_path
from pixelrl_tf import cli
from pixelrl_tf import metrics
from pixelrl_tf.data import datasets
from pixelrl_tf.io import images as image_io
from pixelrl_tf.jobs import export_lib
from pixelrl_tf.jobs import import_weights_lib
from pixelrl_tf.jobs import restore_lib
from pixelrl_tf.jobs import train_lib
from pixelrl_tf.jobs import view_lib
from pixelrl_tf.jobs import view_server
from pixelrl_tf.models import model_io
from pixelrl_tf.models import restorers
from pixelrl_tf.serving import restoration_module
from pixelrl_tf.visualization import action_maps

TINY = str(PROJECT_ROOT / 'configs' / 'tiny.gin')
# Tiles of 32 pixels: a 64x80 input is 6 tiles whose windows (core plus the
# 36-pixel margin of two steps) are cut by the image on some sides only.
TILE_SIZE = 32
MAX_UPLOAD_BYTES = 200_000
MAX_PIXELS = 6_000


# ---------------------------------------------------------------------------
# Fixtures: a trained run, its export, the server, the library's restorers.


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory):
  run_dir = tmp_path_factory.mktemp('view') / 'run'
  gin.clear_config()
  cli.parse_gin([TINY], ['Optimization.num_episodes = 2', 'Cadence.eval_interval = 2',
                         'Cadence.checkpoint_interval = 2',
                         'Cadence.final_report = False'])
  with open(os.devnull, 'w') as stream:
    train_lib.train(str(run_dir), progress_stream=stream)
  gin.clear_config()
  return str(run_dir)


@pytest.fixture(scope='module')
def exported(trained_run, tmp_path_factory):
  return export_lib.export_model(
      trained_run, str(tmp_path_factory.mktemp('models')), 'tiny')


@pytest.fixture(scope='module')
def library(trained_run, exported):
  """The library's restorers of the two served models, loaded apart."""
  _, run_restorer = restorers.restorer_from_run(trained_run)
  return [run_restorer,
          restoration_module.restorer_from_saved_model(exported.model_dir)]


@pytest.fixture(scope='module')
def server(trained_run, exported, tmp_path_factory):
  """The run and the served model's folder (its latest version), compared."""
  work_dir = str(tmp_path_factory.mktemp('work'))
  models = view_lib.load_models(
      [trained_run, os.path.dirname(exported.model_dir)], work_dir)
  viewer = view_lib.Viewer(models, tile_size=TILE_SIZE,
                           max_upload_bytes=MAX_UPLOAD_BYTES,
                           max_pixels=MAX_PIXELS, work_dir=work_dir)
  httpd = view_server.ViewerServer(viewer, '127.0.0.1', 0)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield httpd
  httpd.shutdown()
  httpd.server_close()
  viewer.close()


# ---------------------------------------------------------------------------
# Helpers.


def request(server, method, path, body=None, headers=None, host=None):
  """Sends `path` exactly as given; returns (status, content type, body)."""
  connection = http.client.HTTPConnection('127.0.0.1', server.port,
                                          timeout=HANG_TIMEOUT_SECONDS)
  try:
    connection.putrequest(method, path, skip_host=True,
                          skip_accept_encoding=True)
    connection.putheader('Host', host or f'127.0.0.1:{server.port}')
    for name, value in (headers or {}).items():
      connection.putheader(name, value)
    if body is not None:
      connection.putheader('Content-Length', str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    return response.status, response.getheader('Content-Type'), response.read()
  finally:
    connection.close()


def get_json(server, path, status=200):
  code, content_type, body = request(server, 'GET', path)
  assert (code, content_type) == (status, 'application/json'), body
  return json.loads(body)


def post_json(server, path, value, status=200):
  code, _, body = request(server, 'POST', path, json.dumps(value).encode(),
                          {'Content-Type': 'application/json'})
  assert code == status, body
  return json.loads(body)


def upload(server, data, name='image.png', status=200):
  code, _, body = request(server, 'POST', '/api/upload', data, {
      'Content-Type': 'application/octet-stream', 'X-File-Name': name})
  assert code == status, body
  return json.loads(body)


def get_png(server, path):
  code, content_type, body = request(server, 'GET', path)
  assert (code, content_type) == (200, 'image/png'), body
  return cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)


def rgb_png(server, path):
  return get_png(server, path)[:, :, ::-1]


def restore(server, value):
  """Starts a restoration and waits for it; returns its status."""
  job = post_json(server, '/api/restore', value, status=202)['job']
  deadline = time.monotonic() + HANG_TIMEOUT_SECONDS
  while time.monotonic() < deadline:
    status = get_json(server, f'/api/jobs/{job}')
    if status['state'] in ('done', 'failed'):
      assert status['state'] == 'done', status['message']
      return status
    time.sleep(0.05)
  raise AssertionError(f'restoration {job} did not finish')


def png_bytes(image):
  ok, data = cv2.imencode('.png', image)
  assert ok
  return data.tobytes()


def gray_image(height, width, seed):
  return np.random.default_rng(seed).integers(
      0, 256, (height, width), dtype=np.uint8)


def action_indices(rgb, colors):
  """Maps an RGB picture of an action map back to action indices."""
  matches = np.all(rgb[:, :, None, :] == np.asarray(colors)[None, None],
                   axis=-1)
  assert matches.any(axis=-1).all(), 'a pixel has no action colour'
  return matches.argmax(axis=-1)


def library_steps(restorer, image):
  """`(images [T+1,H,W,C], actions [T,H,W])` of the untiled rollout."""
  steps = restorer.restore_steps_fn(image[None].astype(np.float32))
  return steps['images'][0], steps['actions'][0]


def assert_serving(server):
  """The server still answers."""
  assert get_json(server, '/api/info')['models']


# ---------------------------------------------------------------------------
# Information, the page and its files.


def test_info_describes_the_models(server, library, trained_run, exported):
  info = get_json(server, '/api/info')
  assert [model['name'] for model in info['models']] == [
      trained_run, os.path.dirname(exported.model_dir)]
  for model, restorer in zip(info['models'], library):
    assert model['steps'] == restorer.t_max == 2  # tiny.gin's t_max.
    assert model['channels'] == 1
    assert model['task'] == 'denoise'
    assert model['noise'] == {'kind': 'gaussian', 'level': 25.0,
                              'clip': False}
    assert [a['name'] for a in model['actions']] == list(
        restorer.action_names)
    assert [a['color'] for a in model['actions']] == [
        '#%02x%02x%02x' % tuple(color) for color in restorer.action_colors]
  assert 'SavedModel' in info['models'][1]['description']
  assert info['photographs'] == list(datasets.DEFAULT_IMAGE_NAMES)
  assert info['max_upload_bytes'] == MAX_UPLOAD_BYTES
  assert info['max_pixels'] == MAX_PIXELS


def test_page_and_static_files_are_served(server):
  status, content_type, page = request(server, 'GET', '/')
  assert (status, content_type) == (200, 'text/html; charset=utf-8')
  assert b'<script src="/static/viewer.js"' in page
  static = PROJECT_ROOT / 'pixelrl_tf' / 'jobs' / 'view_static'
  for name, kind in (('viewer.js', 'text/javascript; charset=utf-8'),
                     ('viewer.css', 'text/css; charset=utf-8'),
                     ('index.html', 'text/html; charset=utf-8')):
    status, content_type, body = request(server, 'GET', f'/static/{name}')
    assert (status, content_type) == (200, kind)
    assert body == (static / name).read_bytes()
  # Nothing on the page comes from elsewhere.
  for name in ('index.html', 'viewer.js', 'viewer.css'):
    text = (static / name).read_text()
    assert 'http://' not in text and 'https://' not in text, name


@pytest.mark.parametrize('path', [
    '/static/../view_lib.py',
    '/static/..%2fview_lib.py',
    '/static/..%2F..%2Fview_server.py',
    '/static/%2e%2e/%2e%2e/restore_lib.py',
    '/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fREADME.md',
    '/static/....//view_lib.py',
    '/static//etc/passwd',
    '/static/%2Fetc%2Fpasswd',
    '/static/..\\view_lib.py',
    '/static/viewer.js%00.py',
    '/static/viewer.js/../../view_lib.py',
    '/static/VIEWER.JS',
    '/../../../../etc/passwd',
    '/etc/passwd',
    '//etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/api/images/../../../etc/passwd',
    '/api/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd.png',
    'http://127.0.0.1/../../etc/passwd',
    '/static/index.html?/../../view_lib.py',
])
def test_paths_outside_the_page_are_not_served(server, path):
  status, content_type, body = request(server, 'GET', path)
  if path.startswith('/static/index.html?'):
    # The query is not part of the path: the page itself, nothing else.
    assert status == 200 and b'<!doctype html>' in body
    return
  assert status == 404, (path, body)
  assert content_type == 'application/json'
  assert json.loads(body) == {'error': 'not found'}
  assert b'root:' not in body and b'import' not in body
  assert_serving(server)


def test_requests_for_other_hosts_are_refused(server):
  for host in ('evil.example', f'evil.example:{server.port}',
               f'127.0.0.1:{server.port + 1}'):
    status, _, body = request(server, 'GET', '/api/info', host=host)
    assert status == 403, host
    assert 'answers requests for' in json.loads(body)['error']
  status, _, _ = request(server, 'GET', '/api/info',
                         host=f'localhost:{server.port}')
  assert status == 200


# ---------------------------------------------------------------------------
# Restorations against the library.


def test_restoration_equals_the_library(server, library):
  pixels = gray_image(64, 80, seed=1)
  uploaded = upload(server, png_bytes(pixels), 'noisy photo.png')
  assert uploaded['name'] == 'noisy photo.png'
  assert (uploaded['width'], uploaded['height'], uploaded['channels'],
          uploaded['notes']) == (80, 64, 1, [])
  assert len(uploaded['id']) >= 22
  np.testing.assert_array_equal(
      get_png(server, f'/api/images/{uploaded["id"]}.png'), pixels)
  status = restore(server, {'input': uploaded['id']})
  assert status['progress'] == 1.0
  job, result = status['job'], status['result']
  assert (result['width'], result['height'], result['steps']) == (80, 64, 2)
  assert result['stem'] == 'noisy_photo'
  image = (pixels / np.float32(255.0))[:, :, None]
  for index, restorer in enumerate(library):
    model = result['models'][index]
    assert model['metrics'] is None  # No target.
    images, actions = library_steps(restorer, image)
    tiled = restore_lib.restore_image(restorer, image, TILE_SIZE,
                                      with_steps=True)
    # Tiles give the untiled rollout (actions exactly, values to rounding).
    np.testing.assert_array_equal(tiled['actions'], actions)
    np.testing.assert_allclose(tiled['images'], images, rtol=0, atol=1e-5)
    assert len(np.unique(actions)) >= 2  # Varied enough to compare.
    for step in range(3):
      served = get_png(server, f'/api/jobs/{job}/{index}/image/{step}.png')
      np.testing.assert_array_equal(
          served, image_io.quantize_uint8(tiled['images'][step][:, :, 0]))
    colors = restorer.action_colors
    for step in (1, 2):
      served = rgb_png(server, f'/api/jobs/{job}/{index}/actions/{step}.png')
      np.testing.assert_array_equal(action_indices(served, colors),
                                    actions[step - 1])
    counts = np.array([np.bincount(a.ravel(), minlength=len(colors))
                       for a in actions])
    np.testing.assert_array_equal(model['counts'], counts)
    restored = get_png(server, f'/api/jobs/{job}/{index}/restored.png')
    np.testing.assert_array_equal(restored, tiled['restored_uint8'][:, :, 0])
    np.testing.assert_array_equal(
        tiled['restored_uint8'], image_io.quantize_uint8(images[-1]))
    strip = rgb_png(server, f'/api/jobs/{job}/{index}/strip.png')
    np.testing.assert_array_equal(strip, action_maps.action_strip(
        tiled['images'], tiled['actions'], restorer.action_names, colors))
    chart = rgb_png(server, f'/api/jobs/{job}/{index}/chart.png')
    np.testing.assert_array_equal(chart, action_maps.action_count_chart(
        counts, restorer.action_names, colors))
    code, content_type, gif = request(
        server, 'GET', f'/api/jobs/{job}/{index}/animation.gif')
    assert (code, content_type) == (200, 'image/gif')
    frame = restore_lib.gif_frames(tiled['images'], tiled['actions'],
                                   restorer, False)[0]
    with Image.open(io.BytesIO(gif)) as picture:
      assert picture.n_frames == 2
      assert picture.size == (frame.shape[1], frame.shape[0])
    for x, y in ((0, 0), (79, 63), (17, 41)):
      pixel = get_json(server, f'/api/jobs/{job}/pixel?x={x}&y={y}')
      assert (pixel['x'], pixel['y']) == (x, y)
      assert pixel['models'][index]['actions'] == actions[:, y, x].tolist()
      np.testing.assert_allclose(pixel['models'][index]['values'],
                                 images[:, y, x, :], rtol=0, atol=1e-5)
  # Run and SavedModel are the same model: no difference anywhere.
  difference = result['difference']
  assert difference['max_abs'] == [0.0, 0.0, 0.0]
  assert difference['actions_differ'] == [0.0, 0.0]
  for step in range(3):
    served = get_png(server, f'/api/jobs/{job}/difference/image/{step}.png')
    assert served.shape == (64, 80) and not served.any()
  served = rgb_png(server, f'/api/jobs/{job}/difference/actions/1.png')
  assert (served == view_lib.SAME_ACTION_RGB).all()


def test_noise_is_the_tasks_noise_seeded(server, library):
  pixels = gray_image(32, 48, seed=2)
  clean = (pixels / np.float32(255.0))[:, :, None]
  uploaded = upload(server, png_bytes(pixels))
  status = restore(server, {'input': uploaded['id'],
                            'noise': {'level': 30, 'seed': 7}})
  job, result = status['job'], status['result']
  assert (result['noise'], result['seed']) == ('gaussian:30', 7)
  # N(0, 30/255) from the stateless seed (7, 0), as eval corrupts image 0.
  noise = tf.random.stateless_normal(
      [1, 32, 48, 1], tf.constant([7, 0], tf.int64)).numpy()[0]
  noisy = clean + noise * (np.float32(30.0) / np.float32(255.0))
  np.testing.assert_array_equal(
      get_png(server, f'/api/jobs/{job}/0/image/0.png'),
      image_io.quantize_uint8(noisy)[:, :, 0])
  # Metrics against the clean image, at every step.
  images, _ = library_steps(library[0], noisy)
  measured = result['models'][0]['metrics']
  error = (image_io.quantize_uint8(noisy).astype(float) -
           pixels[:, :, None].astype(float))
  assert measured['psnr'][0] == pytest.approx(
      20 * np.log10(255.0 / np.sqrt(np.mean(error**2))), abs=1e-9)
  np.testing.assert_allclose(
      measured['psnr'], [metrics.psnr(clean, step) for step in images],
      atol=1e-6)
  np.testing.assert_allclose(
      measured['ssim'], [metrics.ssim(clean, step) for step in images],
      atol=1e-6)
  assert 'lab' not in measured
  # The same seed gives the same input; another seed another.
  again = restore(server, {'input': uploaded['id'],
                           'noise': {'level': 30, 'seed': 7}})
  other = restore(server, {'input': uploaded['id'],
                           'noise': {'level': 30, 'seed': 8}})
  first = get_png(server, f'/api/jobs/{job}/0/image/0.png')
  np.testing.assert_array_equal(
      get_png(server, f'/api/jobs/{again["job"]}/0/image/0.png'), first)
  assert (get_png(server, f'/api/jobs/{other["job"]}/0/image/0.png')
          != first).any()


def test_clean_target_gives_metrics(server, library):
  noisy_pixels = gray_image(32, 48, seed=3)
  clean_pixels = gray_image(32, 48, seed=4)
  noisy = upload(server, png_bytes(noisy_pixels), 'noisy.png')
  target = upload(server, png_bytes(clean_pixels), 'clean.png')
  result = restore(server, {'input': noisy['id'],
                            'target': target['id']})['result']
  assert (result['target'], result['noise']) == ('clean.png', None)
  clean = (clean_pixels / np.float32(255.0))[:, :, None]
  images, _ = library_steps(library[1], (noisy_pixels / np.float32(255.0))[
      :, :, None])
  np.testing.assert_allclose(
      result['models'][1]['metrics']['psnr'],
      [metrics.psnr(clean, step) for step in images], atol=1e-6)
  # A target of another size, or a target with noise, is refused.
  other = upload(server, png_bytes(gray_image(30, 48, seed=5)))
  error = post_json(server, '/api/restore', {
      'input': noisy['id'], 'target': other['id']}, status=400)['error']
  assert error == ("the clean target 'image.png' is 48x30 but the input "
                   "'noisy.png' is 48x32; they must be the same size")
  error = post_json(server, '/api/restore', {
      'input': noisy['id'], 'target': target['id'],
      'noise': {'level': 25}}, status=400)['error']
  assert 'not both' in error


def test_two_clients_at_once_get_their_own_results(server, library):
  def client(seed):
    pixels = gray_image(32, 48, seed=100 + seed)
    uploaded = upload(server, png_bytes(pixels), f'client{seed}.png')
    status = restore(server, {'input': uploaded['id']})
    job = status['job']
    return (seed, pixels, job, status['result']['input'],
            rgb_png(server, f'/api/jobs/{job}/0/actions/2.png'),
            get_png(server, f'/api/jobs/{job}/0/image/2.png'))

  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    outcomes = list(pool.map(client, range(4)))
  jobs = [outcome[2] for outcome in outcomes]
  assert len(set(jobs)) == 4 and all(len(job) >= 22 for job in jobs)
  for seed, pixels, _, name, actions_rgb, image in outcomes:
    assert name == f'client{seed}.png'
    images, actions = library_steps(
        library[0], (pixels / np.float32(255.0))[:, :, None])
    np.testing.assert_array_equal(
        action_indices(actions_rgb, library[0].action_colors), actions[1])
    np.testing.assert_array_equal(
        image, image_io.quantize_uint8(images[2][:, :, 0]))


# ---------------------------------------------------------------------------
# Bad input: one line in the answer, and the server keeps serving.


def _png_declaring(width, height):
  """A PNG whose header declares `width x height` (its data is a stub)."""
  def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data)))
  header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
  return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) +
          chunk(b'IDAT', zlib.compress(b'\0' * 16)) + chunk(b'IEND', b''))


def _bad_uploads():
  valid = png_bytes(gray_image(16, 16, seed=6))
  return [
      ('text', b'hello, this is not an image', 400,
       "cannot decode uploaded file 'bad.bin' (truncated, corrupt or not an "
       'image)'),
      ('truncated', valid[:len(valid) // 2], 400,
       "cannot decode uploaded file 'bad.bin' (truncated or corrupt PNG: a "
       'chunk runs past the end of the data)'),
      ('empty', b'', 400, "uploaded file 'bad.bin' is empty"),
      ('too_many_bytes', b'\0' * (MAX_UPLOAD_BYTES + 1), 413,
       'the upload is 200,001 bytes; the viewer takes at most 200,000 '
       '(--max_upload_mb)'),
      ('too_many_pixels', png_bytes(np.zeros((80, 80), np.uint8)), 413,
       "uploaded file 'bad.bin' is 80x80 = 6,400 pixels; the viewer takes "
       'at most 6,000 (--max_megapixels)'),
      ('bomb', _png_declaring(100_000, 100_000), 413,
       "uploaded file 'bad.bin' is over 179 million pixels; the viewer takes "
       'at most 6,000 (--max_megapixels)'),
  ]


@pytest.mark.parametrize('kind,data,status,message', _bad_uploads(),
                         ids=[case[0] for case in _bad_uploads()])
def test_bad_uploads_get_one_line(server, kind, data, status, message):
  del kind
  assert upload(server, data, 'bad.bin', status=status) == {'error': message}
  assert_serving(server)


def test_upload_needs_its_content_type(server):
  status, _, body = request(server, 'POST', '/api/upload', b'abc',
                            {'Content-Type': 'text/plain'})
  assert status == 415
  assert json.loads(body)['error'] == ('send the upload as '
                                       'application/octet-stream, not '
                                       'text/plain')
  assert_serving(server)


def test_sixteen_bit_and_alpha_uploads_are_read_as_restore_reads_them(server):
  # 16-bit: scaled by 1/65535 (the preview is its 8-bit quantisation).
  values = np.random.default_rng(8).integers(0, 65536, (12, 20),
                                             dtype=np.uint16)
  uploaded = upload(server, png_bytes(values), 'deep.png')
  assert uploaded['notes'] == []
  np.testing.assert_array_equal(
      get_png(server, f'/api/images/{uploaded["id"]}.png'),
      image_io.quantize_uint8(values.astype(np.float32) / np.float32(65535)))
  # RGBA: the alpha channel is dropped, then the colour converted to gray
  # for the gray models (OpenCV's luminance on the stored 8-bit values).
  bgra = np.random.default_rng(9).integers(0, 256, (12, 20, 4),
                                           dtype=np.uint8)
  uploaded = upload(server, png_bytes(bgra), 'alpha.png')
  assert uploaded['notes'] == ['dropped the alpha channel',
                               'colour image converted to gray']
  np.testing.assert_array_equal(
      get_png(server, f'/api/images/{uploaded["id"]}.png'),
      cv2.cvtColor(bgra[:, :, :3], cv2.COLOR_BGR2GRAY))
  # Colour without alpha: converted to gray, with a note.
  uploaded = upload(server, png_bytes(bgra[:, :, :3]), 'colour.png')
  assert uploaded['notes'] == ['colour image converted to gray']
  np.testing.assert_array_equal(
      get_png(server, f'/api/images/{uploaded["id"]}.png'),
      cv2.cvtColor(bgra[:, :, :3], cv2.COLOR_BGR2GRAY))
  # Gray with alpha: the alpha channel is dropped.
  gray_alpha = Image.fromarray(
      np.dstack([values.astype(np.uint8), values.astype(np.uint8)]), 'LA')
  buffer = io.BytesIO()
  gray_alpha.save(buffer, 'PNG')
  uploaded = upload(server, buffer.getvalue(), 'la.png')
  assert uploaded['notes'] == ['dropped the alpha channel']
  np.testing.assert_array_equal(
      get_png(server, f'/api/images/{uploaded["id"]}.png'),
      values.astype(np.uint8))


def test_bad_requests_get_one_line(server):
  uploaded = upload(server, png_bytes(gray_image(16, 16, seed=10)))
  job = restore(server, {'input': uploaded['id']})['job']
  unknown = 'A' * 22
  cases = [
      ('POST', '/api/restore', {'input': unknown}, 404,
       f"no input image '{unknown}' (unknown or expired; choose the image "
       'again)'),
      ('POST', '/api/restore', {'input': 3}, 400,
       'input image must be an image id, got 3'),
      ('POST', '/api/restore', {'input': uploaded['id'], 'speed': 1}, 400,
       'unknown request fields: speed'),
      ('POST', '/api/restore', {'input': uploaded['id'],
                                'noise': {'level': -1}}, 400,
       'gaussian sigma must be >= 0 (0..255 scale), got -1.0'),
      ('POST', '/api/restore', {'input': uploaded['id'],
                                'noise': {'level': 'high'}}, 400,
       "noise level must be a number, got 'high'"),
      ('POST', '/api/restore', {'input': uploaded['id'],
                                'noise': {'seed': 1.5}}, 400,
       'noise seed must be an integer, got 1.5'),
      ('POST', '/api/restore', [1, 2], 400,
       'the request must be a JSON object'),
      ('POST', '/api/photograph', {'name': 'nothing'}, 404,
       "no photograph 'nothing'; choose one of " +
       ', '.join(datasets.DEFAULT_IMAGE_NAMES)),
      # The photographs are larger than this server's pixel limit.
      ('POST', '/api/photograph', {'name': 'camera'}, 413,
       "'camera' is 512x512 = 262,144 pixels; the viewer takes at most "
       '6,000 (--max_megapixels)'),
      ('GET', f'/api/jobs/{unknown}', None, 404,
       f"no restoration '{unknown}' (unknown or expired; run it again)"),
      ('GET', f'/api/jobs/{job}/0/image/3.png', None, 404,
       'no step 3; steps are 0..2'),
      ('GET', f'/api/jobs/{job}/0/actions/0.png', None, 404,
       'no step 0; steps are 1..2'),
      ('GET', f'/api/jobs/{job}/2/restored.png', None, 404,
       'no model 2; there are 2'),
      ('GET', f'/api/jobs/{job}/pixel?x=16&y=0', None, 404,
       'no pixel (16, 0) in a 16x16 image'),
      ('GET', f'/api/jobs/{job}/pixel?x=1', None, 400,
       'give the pixel as ?x=...&y=... (integers); y is missing or not an '
       'integer'),
      ('GET', '/api/restore', None, 405, 'use POST here, not GET'),
      ('PUT', '/api/info', None, 405, 'use GET here, not PUT'),
  ]
  for method, path, value, status, message in cases:
    body = None if value is None else json.dumps(value).encode()
    headers = {} if value is None else {'Content-Type': 'application/json'}
    code, _, answer = request(server, method, path, body, headers)
    assert (code, json.loads(answer)) == (status, {'error': message}), path
  code, _, answer = request(server, 'POST', '/api/restore', b'{"input": ',
                            {'Content-Type': 'application/json'})
  assert code == 400
  assert json.loads(answer)['error'].startswith('the request is not JSON')
  assert_serving(server)


def test_photographs_are_the_default_images(server):
  viewer = view_lib.Viewer(server.viewer.models, max_pixels=10**6)
  try:
    added = viewer.add_photograph('camera')
    assert (added['width'], added['height'], added['notes']) == (512, 512, [])
    camera = dict(datasets.default_images(channels=1))['camera']
    np.testing.assert_array_equal(
        cv2.imdecode(np.frombuffer(viewer.input_png(added['id']), np.uint8),
                     cv2.IMREAD_UNCHANGED),
        image_io.quantize_uint8(camera)[:, :, 0])
  finally:
    viewer.close()


def test_the_oldest_inputs_are_forgotten(server):
  viewer = view_lib.Viewer(server.viewer.models, kept_images=2)
  try:
    ids = [viewer.add_upload(png_bytes(gray_image(8, 8, seed)))['id']
           for seed in range(3)]
    with pytest.raises(view_lib.NotFoundError, match='unknown or expired'):
      viewer.input_png(ids[0])
    viewer.input_png(ids[2])
  finally:
    viewer.close()


def test_models_must_take_the_same_images(trained_run, tmp_path):
  colour_run = str(tmp_path / 'colour')
  config = model_io.ModelConfig(channels=3, filters=4, t_max=1,
                                action_set='color', task='color_enhance',
                                input_transform='lab')
  model_io.save_model(colour_run, config, model_io.build_network(config))
  with pytest.raises(view_lib.ViewError, match=(
      r'the models take different images \(.*: gray and .*: colour BGR\); '
      'compare models of the same kind')):
    view_lib.load_models([trained_run, colour_run], str(tmp_path))
  with pytest.raises(view_lib.ViewError, match='at most 2 models, got 3'):
    view_lib.load_models([trained_run] * 3, str(tmp_path))
  colour = view_lib.load_model(colour_run, str(tmp_path))
  assert colour.bgr and colour.lab_metric and colour.noise is None


def test_host_warning():
  for host in ('127.0.0.1', 'localhost', '::1', '127.0.0.2'):
    assert view_server.host_warning(host) is None
  warning = view_server.host_warning('0.0.0.0')
  assert warning.startswith('warning: listening on 0.0.0.0: anyone who can '
                            'reach this machine can use the viewer')


# ---------------------------------------------------------------------------
# Models by every name; the command line.


def test_exported_version_folder_and_run_best(exported, trained_run,
                                              tmp_path):
  version = view_lib.load_model(exported.model_dir, str(tmp_path))
  assert version.description == f'SavedModel {exported.model_dir}'
  assert version.task.name == 'denoise'  # From assets.extra/model.json.
  best = view_lib.load_model(os.path.join(trained_run, 'best'),
                             str(tmp_path))
  assert best.t_max == 2 and best.task.name == 'denoise'
  with pytest.raises(restorers.RestoreError, match='holds no SavedModel'):
    view_lib.load_model(str(tmp_path), str(tmp_path))


def test_released_model_by_name(tmp_path):
  shared_data_path('official_weights', 'denoise_with_convGRU_and_RMC',
                   'pretrained_25.npz')
  work_dir = tmp_path / 'work'
  work_dir.mkdir()
  model = view_lib.load_model('gru_rmc_sigma25', str(work_dir))
  assert model.description.startswith('released gru_rmc model ')
  assert model.noise.level == 25.0 and model.t_max == 5
  # The same weights imported and restored by the library, apart.
  import_weights_lib.import_npz('gru_rmc_sigma25', str(tmp_path / 'run'))
  _, restorer = restorers.restorer_from_run(str(tmp_path / 'run'))
  viewer = view_lib.Viewer([model], work_dir=str(work_dir))
  try:
    pixels = gray_image(24, 24, seed=11)
    image_id = viewer.add_upload(png_bytes(pixels), 'x.png')['id']
    job = viewer.start_restoration({'input': image_id})['job']
    deadline = time.monotonic() + HANG_TIMEOUT_SECONDS
    while viewer.job_status(job)['state'] != 'done':
      assert viewer.job_status(job)['state'] != 'failed'
      assert time.monotonic() < deadline
      time.sleep(0.05)
    images, actions = library_steps(
        restorer, (pixels / np.float32(255.0))[:, :, None])
    for step in range(1, 6):
      served = cv2.imdecode(np.frombuffer(
          viewer.action_map_png(job, 0, step), np.uint8), cv2.IMREAD_COLOR)
      np.testing.assert_array_equal(
          action_indices(served[:, :, ::-1], restorer.action_colors),
          actions[step - 1])
    served = cv2.imdecode(np.frombuffer(viewer.step_image_png(job, 0, 5),
                                        np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(
        served, image_io.quantize_uint8(images[5][:, :, 0]))
  finally:
    viewer.close()
  with pytest.raises(ValueError, match='not a known name'):
    view_lib.load_model('gru_rmc_sigma99', str(work_dir))


def _environment():
  environment = dict(os.environ)
  environment.pop('PIXELRL_DEBUG', None)
  return environment


class _Viewer:
  """`python -m pixelrl_tf.view` in a subprocess, its stdout read by lines."""

  def __init__(self, model, tmp_dir, sigint_ignored=False):
    """Starts it; `sigint_ignored`: as a shell script's background job is."""
    environment = _environment()
    environment['TMPDIR'] = str(tmp_dir)  # Where its work folder goes.
    self.process = subprocess.Popen(
        [sys.executable, '-m', 'pixelrl_tf.view', f'--model={model}',
         '--port=0'], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=environment,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        if sigint_ignored else None)
    self.lines = queue.Queue()
    self.reader = threading.Thread(
        target=lambda: [self.lines.put(line) for line in self.process.stdout],
        daemon=True)
    self.reader.start()

  def url(self):
    """The URL it prints once it serves."""
    deadline = time.monotonic() + HANG_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
      line = self.lines.get(timeout=HANG_TIMEOUT_SECONDS)
      if line.startswith('pixelrl_tf viewer at '):
        return line.split()[3]
    raise AssertionError('the viewer printed no URL')

  def stop(self, signal_number):
    """Sends the signal; returns (exit status, later stdout lines, stderr)."""
    try:
      self.process.send_signal(signal_number)
      self.process.wait(timeout=HANG_TIMEOUT_SECONDS)
    finally:
      if self.process.poll() is None:
        self.process.kill()
        self.process.wait()
    stderr = self.process.stderr.read()
    self.reader.join(timeout=HANG_TIMEOUT_SECONDS)
    lines = []
    while not self.lines.empty():
      lines.append(self.lines.get())
    return self.process.returncode, lines, stderr


def test_cli_serves_and_stops_on_sigint_or_sigterm(trained_run, exported,
                                                    tmp_path):
  # A run's best checkpoint stopped by Ctrl-C, an exported model's folder
  # by `kill`, started side by side.
  cases = []
  for name, model, signal_number in (
      ('best', os.path.join(trained_run, 'best'), signal.SIGINT),
      ('export', os.path.dirname(exported.model_dir), signal.SIGTERM)):
    tmp_dir = tmp_path / name
    tmp_dir.mkdir()
    # Started with SIGINT ignored, Ctrl-C's signal still stops it.
    cases.append((_Viewer(model, tmp_dir,
                          sigint_ignored=signal_number == signal.SIGINT),
                  model, signal_number, tmp_dir))
  try:
    for viewer, model, signal_number, tmp_dir in cases:
      url = viewer.url()
      assert url.startswith('http://127.0.0.1:') and url.endswith('/'), url
      connection = http.client.HTTPConnection(
          '127.0.0.1', int(url[:-1].rsplit(':', 1)[1]), timeout=HANG_TIMEOUT_SECONDS)
      connection.request('GET', '/api/info')
      response = connection.getresponse()
      assert response.status == 200
      assert json.loads(response.read())['models'][0]['name'] == model
      connection.close()
      assert len(os.listdir(tmp_dir)) == 1  # The work folder.
  finally:
    outcomes = [viewer.stop(signal_number)
                for viewer, _, signal_number, _ in cases]
  for (returncode, lines, stderr), (_, _, _, tmp_dir) in zip(outcomes, cases):
    assert returncode == 0, stderr
    assert lines[-1:] == ['viewer stopped\n']
    assert 'Traceback' not in stderr, stderr
    assert os.listdir(tmp_dir) == []  # The work folder is removed.


def test_cli_bad_model_is_one_line(tmp_path):
  missing = tmp_path / 'missing_run'
  result = subprocess.run(
      [sys.executable, '-m', 'pixelrl_tf.view', f'--model={missing}',
       '--port=0'], cwd=PROJECT_ROOT, capture_output=True, text=True,
      env=_environment(), timeout=HANG_TIMEOUT_SECONDS, check=False)
  assert result.returncode == 1
  assert result.stderr.splitlines() == [
      f"error: model '{missing}' does not exist"]


def test_malformed_requests_get_one_line(server):
  with socket.create_connection(('127.0.0.1', server.port), timeout=60) as s:
    s.sendall(b'GET /api/info HTTP/1.1\r\n' +
              b''.join(b'X-%d: 1\r\n' % i for i in range(101)) + b'\r\n')
    answer = b''
    while chunk := s.recv(4096):
      answer += chunk
  head, _, body = answer.partition(b'\r\n\r\n')
  assert head.startswith(b'HTTP/1.1 431 ')
  assert json.loads(body) == {'error': 'Too many headers'}
  assert_serving(server)

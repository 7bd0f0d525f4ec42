"""A real browser drives the viewer's page: headless Chromium of the system.

Selenium starts the distribution's chromedriver (`/usr/bin/chromedriver`)
with its Chromium (`/usr/bin/chromium`); Selenium Manager, which would look
for or download a driver, is never asked (the test fails if it is). The
tests skip, saying why, where either program is absent; `.ci/run` installs
both. The page is read back as drawn: canvas pixels through `getImageData`,
mapped through the action colours, and compared with the library's rollout
of the same input.

The screenshot of the page is saved under the test's temporary folder; set
`PIXELRL_VIEWER_SCREENSHOT=docs/images/viewer.png` to also write it there
(the README's picture):

  PIXELRL_VIEWER_SCREENSHOT=docs/images/viewer.png \
      python -m pytest -q tests/view_browser_test.py -n 0
"""

import json
import os
import pathlib
import shutil
import threading
from unittest import mock

import cv2
import numpy as np
import pytest
import tensorflow as tf
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.selenium_manager import SeleniumManager
from selenium.webdriver.support.ui import WebDriverWait

import seeded_models
from conftest import HANG_TIMEOUT_SECONDS, PROJECT_ROOT
from pixelrl_tf import metrics
from pixelrl_tf.data import datasets
from pixelrl_tf.io import images as image_io
from pixelrl_tf.jobs import view_lib
from pixelrl_tf.jobs import view_server
from pixelrl_tf.models import model_io
from pixelrl_tf.models import restorers

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
SCREENSHOT_ENV = 'PIXELRL_VIEWER_SCREENSHOT'
# Without these Chromium waits for the network, a GPU or a first-run dialog.
CHROMIUM_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu',
                  '--disable-quic', '--no-first-run',
                  '--disable-background-networking',
                  '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--window-size=1360,1500')
T_MAX = 3
SIZE = 64
MAX_UPLOAD_BYTES = 100_000

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason=f'needs {CHROMIUM} and {CHROMEDRIVER} (Debian: apt-get install '
    'chromium chromium-driver)')


def make_run(run_dir, seed):
  """A gray model with seeded weights whose greedy actions vary by pixel."""
  seeded_models.make_run(run_dir, model_io.ModelConfig(filters=8,
                                                       t_max=T_MAX), seed)
  return run_dir


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  base = tmp_path_factory.mktemp('runs')
  return [make_run(str(base / f'model{seed}'), seed) for seed in (0, 1)]


@pytest.fixture(scope='module')
def server(runs, tmp_path_factory):
  work_dir = str(tmp_path_factory.mktemp('work'))
  viewer = view_lib.Viewer(view_lib.load_models(runs, work_dir),
                           max_upload_bytes=MAX_UPLOAD_BYTES,
                           work_dir=work_dir)
  httpd = view_server.ViewerServer(viewer, '127.0.0.1', 0)
  threading.Thread(target=httpd.serve_forever, daemon=True).start()
  yield httpd
  httpd.shutdown()
  httpd.server_close()
  viewer.close()


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for flag in CHROMIUM_FLAGS:
    options.add_argument(flag)
  options.add_argument(
      f'--user-data-dir={tmp_path_factory.mktemp("chromium_profile")}')
  refuse = mock.patch.object(
      SeleniumManager, 'driver_location',
      side_effect=AssertionError('Selenium Manager must not be asked'))
  with refuse:
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
  driver.set_page_load_timeout(HANG_TIMEOUT_SECONDS)
  driver.set_script_timeout(HANG_TIMEOUT_SECONDS)
  yield driver
  driver.quit()


def wait_for(driver, script, *args):
  """Waits until `script` returns something true; returns it."""
  return WebDriverWait(driver, HANG_TIMEOUT_SECONDS, poll_frequency=0.05).until(
      lambda d: d.execute_script(script, *args))


def open_page(driver, server):
  driver.get(server.url)
  wait_for(driver, "return document.body.dataset.ready === 'true';")


def error_text(driver):
  return driver.execute_script(
      "const e = document.getElementById('error'); "
      "return e.hidden ? '' : e.textContent;")


# Reads a canvas back as the page drew it: the colour at the centre of every
# image pixel (the canvas is the image zoomed by an integer factor).
_CANVAS_PIXELS = """
const [canvas, width, height] = arguments;
const zoom = canvas.width / width;
const data = canvas.getContext('2d').getImageData(
    0, 0, canvas.width, canvas.height).data;
const out = [];
for (let y = 0; y < height; y++) {
  for (let x = 0; x < width; x++) {
    const i = (Math.floor((y + 0.5) * zoom) * canvas.width +
               Math.floor((x + 0.5) * zoom)) * 4;
    out.push(data[i], data[i + 1], data[i + 2]);
  }
}
return out;
"""


def canvas_rgb(driver, canvas, height, width):
  values = driver.execute_script(_CANVAS_PIXELS, canvas, width, height)
  return np.asarray(values, np.uint8).reshape(height, width, 3)


def action_indices(rgb, colors):
  matches = np.all(rgb[:, :, None, :] == np.asarray(colors)[None, None],
                   axis=-1)
  assert matches.any(axis=-1).all(), 'a drawn pixel has no action colour'
  return matches.argmax(axis=-1)


def column(driver, index):
  return driver.find_element(By.CSS_SELECTOR,
                             f'.column[data-model="{index}"]')


def test_a_bad_upload_is_answered_in_the_page(browser, server, tmp_path):
  open_page(browser, server)
  text = tmp_path / 'notes.txt'
  text.write_text('not an image')
  browser.find_element(By.ID, 'input-file').send_keys(str(text))
  wait_for(browser, "return !document.getElementById('error').hidden;")
  assert error_text(browser) == ("cannot decode uploaded file 'notes.txt' "
                                 '(truncated, corrupt or not an image)')
  assert not browser.find_element(By.ID, 'restore').is_enabled()
  # Too large: the page refuses it before sending, in the server's words.
  large = tmp_path / 'large.png'
  large.write_bytes(b'\0' * (MAX_UPLOAD_BYTES + 1))
  browser.find_element(By.ID, 'input-file').send_keys(str(large))
  wait_for(browser, "return document.getElementById('error').textContent"
                    ".includes('large.png');")
  assert error_text(browser) == (
      "uploaded file 'large.png' is 100,001 bytes; the viewer takes at most "
      '100,000 (--max_upload_mb)')
  # The server goes on: a good image is taken.
  good = tmp_path / 'good.png'
  cv2.imwrite(str(good), np.full((8, 8), 128, np.uint8))
  browser.find_element(By.ID, 'input-file').send_keys(str(good))
  wait_for(browser, "return !document.getElementById('input-info').hidden;")
  assert error_text(browser) == ''
  assert browser.find_element(By.ID, 'restore').is_enabled()


def test_the_page_shows_what_the_library_computes(browser, server, runs,
                                                  tmp_path):
  # A 64x64 crop of the camera man, corrupted in the page with the model's
  # Gaussian noise (sigma 25, seed 3).
  camera = dict(datasets.default_images(channels=1))['camera']
  pixels = image_io.quantize_uint8(camera[60:60 + SIZE, 210:210 + SIZE, 0])
  path = tmp_path / 'camera_crop.png'
  cv2.imwrite(str(path), pixels)
  open_page(browser, server)
  browser.find_element(By.ID, 'input-file').send_keys(str(path))
  wait_for(browser, "return document.getElementById('input-text')"
                    ".textContent.startsWith('camera_crop.png: 64x64');")
  browser.find_element(By.ID, 'add-noise').click()
  seed = browser.find_element(By.ID, 'noise-seed')
  seed.clear()
  seed.send_keys('3')
  assert browser.find_element(By.ID, 'noise-level').get_attribute(
      'value') == '25'
  browser.find_element(By.ID, 'restore').click()
  state = wait_for(browser, """
      const s = document.getElementById('status').dataset.state;
      return (s === 'done' || s === 'failed') ? s : null;""")
  assert state == 'done', error_text(browser)
  wait_for(browser, "return document.getElementById('results')"
                    f".dataset.drawnStep === '{T_MAX}';")

  # The library's rollout of the same noisy input, computed here.
  clean = (pixels / np.float32(255.0))[:, :, None]
  noise = tf.random.stateless_normal(
      [1, SIZE, SIZE, 1], tf.constant([3, 0], tf.int64)).numpy()[0]
  noisy = clean + noise * (np.float32(25.0) / np.float32(255.0))
  expected = []
  for run in runs:
    _, restorer = restorers.restorer_from_run(run)
    steps = restorer.restore_steps_fn(noisy[None])
    expected.append((restorer, steps['images'][0], steps['actions'][0]))
  assert (expected[0][2] != expected[1][2]).any()

  # Move the slider with the keyboard to step 2.
  slider = browser.find_element(By.ID, 'step')
  slider.send_keys(Keys.HOME)
  slider.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
  wait_for(browser, "return document.getElementById('results')"
                    ".dataset.drawnStep === '2';")
  assert browser.find_element(By.ID, 'step-label').text == f'2 of {T_MAX}'
  for index, (restorer, images, actions) in enumerate(expected):
    panel = column(browser, index)
    drawn = canvas_rgb(browser,
                       panel.find_element(By.CSS_SELECTOR, '.actions-canvas'),
                       SIZE, SIZE)
    np.testing.assert_array_equal(
        action_indices(drawn, restorer.action_colors), actions[1])
    drawn = canvas_rgb(browser,
                       panel.find_element(By.CSS_SELECTOR, '.image-canvas'),
                       SIZE, SIZE)
    np.testing.assert_array_equal(
        drawn, np.repeat(image_io.quantize_uint8(images[2]), 3, axis=-1))
    # The metrics row of step 2 is the current one, with the PSNR measured
    # against the clean crop.
    row = panel.find_element(By.CSS_SELECTOR,
                             'table.metrics tr.current')
    assert row.get_attribute('data-step') == '2'
    psnr = row.find_elements(By.TAG_NAME, 'td')[1].text
    assert psnr == f'{metrics.psnr(clean, images[2]):.2f}'
    legend = [item.text for item in panel.find_elements(
        By.CSS_SELECTOR, '.legend li')]
    assert legend == list(restorer.action_names)
  # The difference view marks the pixels whose actions differ.
  drawn = canvas_rgb(browser, browser.find_element(By.ID,
                                                   'difference-actions'),
                     SIZE, SIZE)
  differ = expected[0][2][1] != expected[1][2][1]
  np.testing.assert_array_equal(
      np.all(drawn == view_lib.OTHER_ACTION_RGB, axis=-1), differ)

  # Hover over a pixel: its action at every step and its value after each.
  x, y = 21, 37
  canvas = column(browser, 0).find_element(By.CSS_SELECTOR, '.image-canvas')
  box = browser.execute_script(
      'const r = arguments[0].getBoundingClientRect(); '
      'return [r.width, r.height];', canvas)
  scale = box[0] / SIZE
  ActionChains(browser).move_to_element_with_offset(
      canvas, round((x + 0.5) * scale - box[0] / 2),
      round((y + 0.5) * scale - box[1] / 2)).perform()
  wait_for(browser, "const p = document.getElementById('pixel'); "
                    f"return p.dataset.x === '{x}' && p.dataset.y === '{y}';")
  for index, (restorer, images, actions) in enumerate(expected):
    table = browser.find_element(By.CSS_SELECTOR,
                                 f'.pixel-table[data-model="{index}"]')
    rows = table.find_elements(By.CSS_SELECTOR, 'tr[data-step]')
    assert len(rows) == T_MAX + 1
    shown = [int(row.find_element(By.CSS_SELECTOR, 'td.action')
                 .get_attribute('data-action')) for row in rows[1:]]
    assert shown == actions[:, y, x].tolist()
    names = [row.find_element(By.CSS_SELECTOR, 'td.action').text
             for row in rows[1:]]
    assert names == [restorer.action_names[a] for a in actions[:, y, x]]
    values = [json.loads(row.get_attribute('data-value')) for row in rows]
    np.testing.assert_allclose(values, images[:, y, x, :], rtol=0,
                               atol=1e-6)

  # Zoom: 8x draws every image pixel as 8x8 canvas pixels.
  browser.find_element(By.CSS_SELECTOR, '#zoom option[value="8"]').click()
  wait_for(browser, "return document.querySelector('.column .image-canvas')"
                    f".width === {SIZE * 8};")
  wait_for(browser, "return document.getElementById('results')"
                    ".dataset.drawnStep === '2';")
  drawn = canvas_rgb(browser, column(browser, 1).find_element(
      By.CSS_SELECTOR, '.actions-canvas'), SIZE, SIZE)
  np.testing.assert_array_equal(
      action_indices(drawn, expected[1][0].action_colors), expected[1][2][1])
  browser.find_element(By.CSS_SELECTOR, '#zoom option[value="0"]').click()

  # The download links point at the results.
  links = {link.text: link.get_attribute('href') for link in
           column(browser, 0).find_elements(By.CSS_SELECTOR, '.downloads a')}
  assert links['restored image (PNG)'].endswith('/0/restored.png')
  assert links['animation (GIF)'].endswith('/0/animation.gif')
  assert links['action map of this step (PNG)'].endswith('/0/actions/2.png')

  # The screenshot of the whole page (a test artefact, and the README's
  # picture on request).
  height = browser.execute_script(
      'return document.documentElement.scrollHeight;')
  browser.set_window_size(1360, min(height + 200, 4000))
  browser.execute_script('window.scrollTo(0, 0);')
  screenshot = tmp_path / 'viewer.png'
  assert browser.save_screenshot(str(screenshot))
  picture = cv2.imread(str(screenshot))
  assert picture is not None and picture.shape[1] >= 1000
  target = os.environ.get(SCREENSHOT_ENV)
  if target:
    target = pathlib.Path(target)
    if not target.is_absolute():
      target = PROJECT_ROOT / target
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, target)

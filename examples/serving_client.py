r"""A minimal REST client for a PixelRL model served by TF Serving.

Needs only the standard library and numpy. It builds the predict request for
the `serving_default` signature (float32 images on 0..1) or `restore_uint8`
(8-bit images), posts it to

    http://HOST:8501/v1/models/NAME[/versions/V]:predict

and writes the restored image and the action maps it gets back.

  # print the request body instead of sending it
  python examples/serving_client.py --input=noisy.pgm --dry_run
  # restore through a running server
  python examples/serving_client.py --server=http://localhost:8501 \
      --model_name=pixelrl_denoise --input=noisy.pgm --output=restored.pgm

Inputs are binary PGM (gray) or PPM (colour) files, `.npy` arrays (`[H,W]` or
`[H,W,C]`, float on 0..1 or uint8), or `--random=HxW` for a test image.
Colour PPM files are RGB while models trained on OpenCV images take BGR,
so the channels of a PPM input (and of the PPM output) are reversed unless
`--no-bgr`; `.npy` inputs are sent in their own channel order.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

import numpy as np


def read_netpbm(path):
  """Reads a binary PGM (P5) or PPM (P6) file as uint8 `[H,W,C]`."""
  with open(path, 'rb') as f:
    data = f.read()
  fields = []
  position = 0
  while len(fields) < 4:
    while data[position:position + 1].isspace():
      position += 1
    if data[position:position + 1] == b'#':
      position = data.index(b'\n', position) + 1
      continue
    end = position
    while not data[end:end + 1].isspace():
      end += 1
    fields.append(data[position:end])
    position = end
  magic, width, height, max_value = fields
  if magic not in (b'P5', b'P6') or int(max_value) > 255:
    raise ValueError(f'{path}: only 8-bit binary PGM (P5) / PPM (P6)')
  channels = 1 if magic == b'P5' else 3
  pixels = np.frombuffer(data, np.uint8, offset=position + 1,
                         count=int(width) * int(height) * channels)
  return pixels.reshape(int(height), int(width), channels)


def write_netpbm(path, image):
  """Writes uint8 `[H,W,1]` as PGM or `[H,W,3]` as PPM."""
  height, width, channels = image.shape
  magic = b'P5' if channels == 1 else b'P6'
  with open(path, 'wb') as f:
    f.write(b'%s\n%d %d\n255\n' % (magic, width, height))
    f.write(np.ascontiguousarray(image, np.uint8).tobytes())


def load_image(args):
  """The input image `[H,W,C]`, uint8 or float32 on 0..1."""
  if args.random:
    height, width = (int(v) for v in args.random.lower().split('x'))
    rng = np.random.default_rng(0)
    return rng.random((height, width, args.channels)).astype(np.float32)
  if args.input.endswith('.npy'):
    image = np.load(args.input)
  else:
    image = read_netpbm(args.input)
  if image.ndim == 2:
    image = image[..., None]
  return image


def build_request(image, signature_name):
  """The predict request body (row format, one instance) for an image.

  Args:
    image: `[H,W,C]` uint8 (for `restore_uint8`) or float (on 0..1, for
      `serving_default`).
    signature_name: `serving_default` or `restore_uint8`.

  Returns:
    The JSON-serialisable body.
  """
  if signature_name == 'restore_uint8':
    if image.dtype != np.uint8:
      image = np.floor(np.clip(image, 0.0, 1.0) * 255.0 + 0.5)
    values = np.asarray(image, np.uint8).tolist()
  else:
    if image.dtype == np.uint8:
      image = image.astype(np.float32) / np.float32(255.0)
    # float32 values printed in full round-trip exactly to the server.
    values = np.asarray(image, np.float32).astype(np.float64).tolist()
  return {'signature_name': signature_name, 'instances': [values]}


def decode_response(body):
  """`(restored_uint8 [H,W,C], restored [H,W,C], actions [T,H,W])`.

  Accepts both the row (`predictions`) and the columnar (`outputs`) answer.
  """
  if 'error' in body:
    raise RuntimeError(f'server error: {body["error"]}')
  if 'predictions' in body:
    outputs = body['predictions'][0]
  else:
    outputs = {key: value[0] for key, value in body['outputs'].items()}
  return (np.asarray(outputs['restored_uint8'], np.uint8),
          np.asarray(outputs['restored'], np.float32),
          np.asarray(outputs['actions'], np.int32))


def predict(server, model_name, body, version=None, timeout=300):
  """Posts `body` to the predict endpoint; returns the decoded JSON."""
  url = f'{server.rstrip("/")}/v1/models/{model_name}'
  if version is not None:
    url += f'/versions/{version}'
  request = urllib.request.Request(
      url + ':predict', data=json.dumps(body).encode('utf-8'),
      headers={'Content-Type': 'application/json'}, method='POST')
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      return json.loads(response.read())
  except urllib.error.HTTPError as error:
    return json.loads(error.read() or b'{"error": "HTTP error"}')


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--server', default='http://localhost:8501')
  parser.add_argument('--model_name', default='pixelrl')
  parser.add_argument('--version', type=int, default=None)
  parser.add_argument('--signature', default='serving_default',
                      choices=['serving_default', 'restore_uint8'])
  parser.add_argument('--input', help='PGM/PPM or .npy image')
  parser.add_argument('--random', help='HxW random test image instead')
  parser.add_argument('--channels', type=int, default=1,
                      help='channels of the --random image')
  parser.add_argument('--bgr', default=None,
                      action=argparse.BooleanOptionalAction,
                      help='reverse the channels of colour PPM files')
  parser.add_argument('--output', help='restored image (.pgm/.ppm/.npy)')
  parser.add_argument('--actions_output', help='.npy file for [T,H,W]')
  parser.add_argument('--dry_run', action='store_true',
                      help='print the request body and exit')
  args = parser.parse_args()
  if not args.input and not args.random:
    parser.error('give --input or --random')

  image = load_image(args)
  is_netpbm = bool(args.input) and not args.input.endswith('.npy')
  reverse = image.shape[-1] == 3 and (
      is_netpbm if args.bgr is None else args.bgr)
  if reverse:
    image = image[..., ::-1]
  body = build_request(image, args.signature)
  if args.dry_run:
    json.dump(body, sys.stdout)
    sys.stdout.write('\n')
    return
  try:
    response = predict(args.server, args.model_name, body, args.version)
    restored_uint8, restored, actions = decode_response(response)
  except (urllib.error.URLError, RuntimeError) as error:
    sys.exit(f'error: {args.server}: {getattr(error, "reason", error)}')
  if reverse:
    restored_uint8 = restored_uint8[..., ::-1]
    restored = restored[..., ::-1]
  print(f'restored {restored.shape[1]}x{restored.shape[0]}, '
        f'{actions.shape[0]} steps; action counts per step:')
  for step, step_actions in enumerate(actions, start=1):
    print(f'  t={step}: {np.bincount(step_actions.ravel()).tolist()}')
  if args.output:
    if args.output.endswith('.npy'):
      np.save(args.output, restored)
    else:
      write_netpbm(args.output, restored_uint8)
  if args.actions_output:
    np.save(args.actions_output, actions)


if __name__ == '__main__':
  main()

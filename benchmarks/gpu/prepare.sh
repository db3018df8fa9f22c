#!/usr/bin/env bash
# On this machine (registry access): the pure-Python wheels the GPU machine lacks, for its Python.
# They are fetched once into .gpu/wheels (git-ignored), carried to the device, never at run time.
set -euo pipefail
cd "$(dirname "$0")/../.."
python_version="${GPU_PYTHON:-3.12}"
mkdir -p .gpu/wheels
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/wheels \
    keras==3.15.1 namex==0.1.0 optree==0.20.0
ls -l .gpu/wheels

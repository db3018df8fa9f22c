#!/usr/bin/env bash
# On the GPU machine: install the carried wheels over its own JAX (or PyTorch), then benchmark.
#   bash benchmarks/gpu/run.sh [jax|torch] [bench_gpu.py arguments...]
set -euo pipefail
cd "$(dirname "$0")/../.."
export KERAS_BACKEND="${1:-jax}"
shift || true
python3 -m pip install -q --no-index --no-deps --target .gpu/site .gpu/wheels/*.whl
export PYTHONPATH="$PWD/.gpu/site:$PWD"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu/bench_gpu.py "$@"

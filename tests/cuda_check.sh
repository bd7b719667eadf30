#!/usr/bin/env bash
# GPU verification in one command (run from the repository root on a machine with an NVIDIA GPU,
# CuPy and torch with CUDA): the cuda-marked tests, then the GPU bench (one JSON line).
set -u
cd "$(dirname "$0")/.."
python -c "import dtorch, sys; sys.exit(0 if dtorch.cuda.is_available() else 'no CUDA device: install cupy and run on a GPU')" || exit 2
PYTHONPATH=. python -m pytest -m cuda tests -p no:cacheprovider -q -rs
tests_rc=$?
PYTHONPATH=. python tests/cuda/cpp_extension_seed.py || tests_rc=1  # the seed's nvcc-built C++/CUDA extension
PYTHONPATH=. python bench/gpu_step.py "$@"
bench_rc=$?
echo "cuda tests rc=$tests_rc, bench rc=$bench_rc"
exit $(( tests_rc != 0 || bench_rc != 0 ))

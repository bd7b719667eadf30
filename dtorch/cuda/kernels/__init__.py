"""CUDA kernel sources, built as strings (no cupy needed to build or inspect them).

Each module returns the source of its kernels for one dtype, so a CPU test can read the
generated code (and compile it with nvcc where one is installed) while a GPU test compares
the compiled kernels with the numpy reference. Compiling happens in :mod:`dtorch.cuda._compile`.
"""
from __future__ import annotations

from string import Template

import numpy as np

BLOCK = 256  # threads per block of the row-wise kernels (a power of two: the tree reductions need it)
# the grid-stride loop header of the flat kernels (over ``i`` in [0, n))
FOR_EACH_I = ("for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; "
              "i += (long long)blockDim.x * gridDim.x)")

_C_TYPES = {"float32": "float", "float64": "double"}
_NEG_INF = {"float32": "__int_as_float(0xff800000)", "float64": "__longlong_as_double(0xfff0000000000000ULL)"}


def dtype_name(dtype) -> str:
    """numpy's name of ``dtype`` ('float32')."""
    return np.dtype(dtype).name


def raw_supported(dtype) -> bool:
    """Whether the raw (hand-written C) kernels have a version for ``dtype``: float32 and float64."""
    return dtype_name(dtype) in _C_TYPES


def c_type(dtype) -> str:
    """The C type of a raw kernel's elements ('float', 'double')."""
    name = dtype_name(dtype)
    if name not in _C_TYPES:
        raise TypeError(f"no raw CUDA kernel for dtype {name}")
    return _C_TYPES[name]


def render(template: str, dtype) -> str:
    """Fill ``$T`` (element type), ``$ACC`` (accumulator), ``$NEG_INF``, ``$BLOCK``, ``$SUFFIX`` (the type,
    for kernel names) and ``$FOR_EACH_I`` (grid-stride loop) in a source."""
    name = dtype_name(dtype)
    t = c_type(dtype)
    return Template(template).substitute(T=t, ACC=t, NEG_INF=_NEG_INF[name], BLOCK=BLOCK, SUFFIX=t,
                                     FOR_EACH_I=FOR_EACH_I)


# Block-wide reductions shared by the row-wise kernels: blockDim.x must be $BLOCK.
BLOCK_REDUCE = r"""
__device__ __forceinline__ $ACC block_sum($ACC v, $ACC* buf) {
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
        __syncthreads();
    }
    $ACC r = buf[0];
    __syncthreads();
    return r;
}

__device__ __forceinline__ $ACC block_max($ACC v, $ACC* buf) {
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            $ACC o = buf[threadIdx.x + s];
            if (o > buf[threadIdx.x] || o != o) buf[threadIdx.x] = o;  // NaN wins, as numpy's max
        }
        __syncthreads();
    }
    $ACC r = buf[0];
    __syncthreads();
    return r;
}
"""

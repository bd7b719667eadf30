"""Lazy compilation of the kernel sources in :mod:`dtorch.cuda.kernels` (cupy imported on first use).

Kernels are compiled once per (source, name) and kept for the process; CuPy caches the
binaries on disk too (``~/.cupy/kernel_cache``), so a later process only loads them.
"""
from __future__ import annotations

import numpy as np

from .._device import require_cupy
from .kernels import BLOCK
from .kernels.gelu import ElementwiseSpec

_RAW: dict = {}
_ELEMENTWISE: dict = {}
_MAX_GRID = 65535 * 16  # grid-stride kernels need no more blocks than this


def raw_kernel(source: str, name: str):
    """The compiled ``extern "C" __global__`` function ``name`` of ``source``."""
    key = (name, source)
    k = _RAW.get(key)
    if k is None:
        k = _RAW[key] = require_cupy().RawKernel(source, name)
    return k


def elementwise_kernel(spec: ElementwiseSpec):
    """A ``cupy.ElementwiseKernel`` built from ``spec``."""
    k = _ELEMENTWISE.get(spec)
    if k is None:
        k = _ELEMENTWISE[spec] = require_cupy().ElementwiseKernel(
            spec.in_params, spec.out_params, spec.operation, spec.name)
    return k


def launch_rows(kernel, rows: int, args: tuple) -> None:
    """One block of BLOCK threads per row."""
    kernel((rows,), (BLOCK,), args)


def launch_flat(kernel, n: int, args: tuple, threads: int = 256) -> None:
    """A grid-stride kernel over ``n`` items."""
    blocks = max(1, min((n + threads - 1) // threads, _MAX_GRID))
    kernel((blocks,), (threads,), args)


def i64(x: int):
    return np.int64(x)


def i32(x) -> np.int32:
    return np.int32(int(x))


def f64(x: float) -> np.float64:
    return np.float64(x)

"""``gemm``: ``c = a @ b + beta * c`` on 2-D float32/float64 views, through the BLAS numpy itself loaded.

numpy's ``matmul`` cannot accumulate into its output; BLAS can (``beta = 1``), which lets a convolution sum its
kernel taps' products straight into one output block, each product on a plain row-range view of the input.
The library is the OpenBLAS numpy's wheel bundles (``scipy-openblas``, 64-bit integers), found among the
libraries loaded in the process; without it (another build, a macOS Accelerate numpy) or for operands BLAS
cannot take, ``gemm`` computes the same result with numpy.
"""
from __future__ import annotations

import ctypes
import functools
import os

import numpy as np

# the ILP64 CBLAS symbols (64-bit integers) of numpy's bundled OpenBLAS, newest naming first
_SYMBOLS = {np.dtype(np.float32): ("scipy_cblas_sgemm64_", "cblas_sgemm64_"),
            np.dtype(np.float64): ("scipy_cblas_dgemm64_", "cblas_dgemm64_")}
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _numpy_dir() -> str:
    return os.path.dirname(os.path.realpath(np.__file__))


def _bind(lib: ctypes.CDLL, dtype: np.dtype):
    real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    for name in _SYMBOLS[dtype]:
        fn = getattr(lib, name, None)
        if fn is not None:
            i64, ptr, enum = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
            fn.argtypes = [enum, enum, enum, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64]
            fn.restype = None
            return fn
    return None


@functools.cache
def _library() -> ctypes.CDLL | None:
    """numpy's own BLAS (the first library it loaded that has a CBLAS gemm of ours), or None."""
    from threadpoolctl import threadpool_info

    root = os.path.dirname(_numpy_dir())
    for info in threadpool_info():
        path = os.path.realpath(info.get("filepath") or "")
        if info.get("user_api") != "blas" or not path.startswith(os.path.join(root, "numpy")):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if any(getattr(lib, name, None) is not None for names in _SYMBOLS.values() for name in names):
            return lib
    return None


@functools.cache
def _functions() -> dict:
    """dtype -> the CBLAS gemm of numpy's own BLAS; empty when there is none to use."""
    lib = _library()
    return {} if lib is None else {dt: fn for dt in _SYMBOLS if (fn := _bind(lib, dt)) is not None}


@functools.cache
def _thread_count():
    lib = _library()
    for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
        fn = getattr(lib, name, None) if lib is not None else None
        if fn is not None:
            fn.argtypes, fn.restype = [], ctypes.c_int
            return fn
    return None


def threads() -> int | None:
    """The threads numpy's BLAS runs a GEMM on now (``set_num_threads`` changes it), None where unknown."""
    fn = _thread_count()
    return None if fn is None else fn()


def available(dtype) -> bool:
    """Whether :func:`gemm` accumulates in BLAS for ``dtype`` (otherwise numpy, with a temporary)."""
    return np.dtype(dtype) in _functions()


def _lead(a, rows: int, cols: int):
    """The leading dimension of row-major ``(rows, cols)`` ``a`` (unit column stride), or None."""
    isz = a.itemsize
    if cols > 1 and a.strides[1] != isz:
        return None
    if rows == 1:
        return max(1, cols)
    ld, rem = divmod(a.strides[0], isz)
    return ld if not rem and ld >= max(1, cols) else None


def _operand(a, rows: int, cols: int):
    """``(transposed, leading dimension)`` of a BLAS operand holding ``(rows, cols)``, or None."""
    ld = _lead(a, rows, cols)
    if ld is not None:
        return False, ld
    ld = _lead(a.T, cols, rows)
    return None if ld is None else (True, ld)


def gemm_sum(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    """``c += sum_i a[i] @ b[i]`` over the leading dim of 3-D ``a`` and ``b`` (each ``a[i]``, ``b[i]`` as :func:`gemm`
    takes them): the operands are checked once and BLAS is called per product with offset pointers."""
    m, n = c.shape
    k = a.shape[2]
    fn = _functions().get(c.dtype) if a.dtype == b.dtype == c.dtype else None
    ldc = _lead(c, m, n) if fn is not None and m and n and k and c.flags.writeable else None
    pa = _operand(a[0], m, k) if ldc is not None and len(a) else None
    pb = _operand(b[0], k, n) if pa is not None else None
    if pb is None:
        for ai, bi in zip(a, b):
            gemm(ai, bi, c)
        return
    ta, tb = _TRANS if pa[0] else _NO_TRANS, _TRANS if pb[0] else _NO_TRANS
    a0, b0, c0 = a.ctypes.data, b.ctypes.data, c.ctypes.data
    for i in range(a.shape[0]):
        fn(_ROW_MAJOR, ta, tb, m, n, k, 1.0, a0 + i * a.strides[0], pa[1], b0 + i * b.strides[0], pb[1], 1.0, c0, ldc)


def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: float = 1.0) -> None:
    """``c[...] = a @ b + beta * c`` (``beta`` 0 or 1) for 2-D arrays of one float dtype; ``a`` and ``b`` may
    be transposed or overlapping views (each row of ``a`` a run of memory), ``c`` a row-strided view."""
    m, n = c.shape
    k = a.shape[1]
    fn = _functions().get(c.dtype) if a.dtype == b.dtype == c.dtype else None
    ldc = _lead(c, m, n) if fn is not None and m and n and k and c.flags.writeable else None
    if ldc is not None:
        pa, pb = _operand(a, m, k), _operand(b, k, n)
        if pa is not None and pb is not None:
            fn(_ROW_MAJOR, _TRANS if pa[0] else _NO_TRANS, _TRANS if pb[0] else _NO_TRANS, m, n, k, 1.0,
               a.ctypes.data, pa[1], b.ctypes.data, pb[1], float(beta), c.ctypes.data, ldc)
            return
    if beta:
        c += a @ b
    else:
        np.matmul(a, b, out=c)

"""softmax and log_softmax: single graph nodes with stable forwards and closed-form backwards.

On the CPU, softmax over the last axis of float32/float64 (the attention case: many short rows) skips
the row max when it can: ``exp(x) / rowsum(exp(x))`` equals the max-shifted form to rounding whenever no
``exp`` overflows and every row total is at least sqrt(finfo.tiny) (an entry that underflows is then off
by under finfo.smallest_subnormal / sqrt(tiny), ~2**-86 for float32); rows outside that range (large
scores, NaN, all -inf) go through the max-shifted form. numpy's reductions along a short last axis pay
per row, so row sums are one matrix-vector product and row dot products one einsum.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import _dtype
from .._device import xp_of
from .._dispatch import ARRAY_NS, apply_unary, defop, tensor_fn
from ..tensor import Tensor, _wrap_dim
from ._helpers import attach
from .convert import to_dtype

__all__ = [
    "softmax",
    "log_softmax",
]


_BLAS_ROWS = 4096   # rows up to this long are summed by a matrix-vector product
_ONES: dict = {}


def row_sums(a):
    """``a.sum(-1, keepdims=True)`` for a numpy array; short float rows in one BLAS call."""
    n = a.shape[-1] if a.ndim else 0
    if not (a.dtype in (np.float32, np.float64) and 1 < n <= _BLAS_ROWS and a.flags.c_contiguous):
        return a.sum(axis=-1, keepdims=True)
    ones = _ONES.get((n, a.dtype))
    if ones is None:
        if len(_ONES) >= 64:
            _ONES.clear()
        ones = np.ones((n, 1), a.dtype)
        ones.flags.writeable = False
        _ONES[(n, a.dtype)] = ones
    return (a.reshape(-1, n) @ ones).reshape(a.shape[:-1] + (1,))


def row_dots(a, b):
    """``(a * b).sum(-1, keepdims=True)`` for numpy arrays, without the product array."""
    return np.einsum("...i,...i->...", a, b)[..., None]


def softmax_last(a, safe: bool = False, scratch: bool = False):
    """Softmax over the last axis of a numpy float32/float64 array (see the module docstring). ``safe``: rows
    that are all -inf give zeros (attention's safe softmax) instead of NaN; ``scratch``: ``a`` may be
    overwritten."""
    if a.size == 0:
        return a if scratch else a.copy()
    with np.errstate(over="ignore", under="ignore"):
        e = np.exp(a)
    total = row_sums(e)
    lo, hi = total.min(), total.max()
    if lo >= _LOW[a.dtype] and hi <= _HIGH[a.dtype]:
        return np.divide(e, total, out=e)
    del e
    m = a.max(axis=-1, keepdims=True)
    if safe:
        m[np.isneginf(m)] = 0
    with np.errstate(invalid="ignore"):    # inf - inf: NaN, as torch
        e = np.subtract(a, m, out=a if scratch else None)
    np.exp(e, out=e)
    total = e.sum(axis=-1, keepdims=True)
    if safe:
        total[total == 0] = 1
    return np.divide(e, total, out=e)


_LOW = {np.dtype(t): float(np.sqrt(np.finfo(t).tiny)) for t in (np.float32, np.float64)}
_HIGH = {np.dtype(t): float(np.finfo(t).max) for t in (np.float32, np.float64)}


def _last_axis(a, dim) -> bool:
    return xp_of(a) is np and a.dtype in (np.float32, np.float64) and dim == (a.ndim - 1,)


def _shifted(a, dim):
    """a minus its max along dim, so exp never overflows (a slice of -inf gives NaN, as torch)."""
    with np.errstate(invalid="ignore"):
        return a - a.max(axis=dim, keepdims=True)


@defop("softmax", save_out=True)
def _softmax(a, dim):
    if a.size == 0:
        return a.copy()
    if _last_axis(a, dim):
        return softmax_last(a)
    e = xp_of(a).exp(_shifted(a, dim))
    return e / e.sum(axis=dim, keepdims=True)


@_softmax.backward
def _softmax_bw(ns, ctx, g, y):
    dim = ctx._args["dim"]
    if ns is ARRAY_NS and _last_axis(y, dim) and g.dtype == y.dtype and g.shape == y.shape:
        gx = np.subtract(g, row_dots(g, y))
        return (np.multiply(gx, y, out=gx),)
    return (y * (g - ns.sum(g * y, dim=dim, keepdim=True)),)


@defop("log_softmax", save_out=True)
def _log_softmax(a, dim):
    if a.size == 0:
        return a.copy()
    xp = xp_of(a)
    s = _shifted(a, dim)
    return s - xp.log(xp.exp(s).sum(axis=dim, keepdims=True))


@_log_softmax.backward
def _log_softmax_bw(ns, ctx, g, y):
    dim = ctx._args["dim"]
    return (g - ns.exp(y) * ns.sum(g, dim=dim, keepdim=True),)


def _legacy_dim(name: str, ndim: int) -> int:
    """torch's implicit dim for softmax(dim=None): deprecated, with a warning."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include "
                  "dim=X as an argument.", UserWarning, stacklevel=4)
    return 0 if ndim in (0, 1, 3) else 1


def _apply(op, name: str, input: Tensor, dim, dtype) -> Tensor:
    if dtype is not None:
        input = to_dtype(input, _dtype.to_dtype(dtype))
    nd = input._data.ndim
    if dim is None:
        dim = _legacy_dim(name, nd)
    d = _wrap_dim(int(dim), nd)
    if input._data.dtype.kind not in "fV":
        raise NotImplementedError(f'"{name}_lastdim_kernel_impl" not implemented for \'{input.dtype.scalar_name}\'')
    return apply_unary(op, input, {"dim": (d,) if nd else None})


def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim, computed with the max subtracted."""
    return _apply(_softmax, "softmax", input, dim, dtype)


def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """x - logsumexp(x) along dim, computed with the max subtracted."""
    return _apply(_log_softmax, "log_softmax", input, dim, dtype)


tensor_fn("softmax", softmax)
tensor_fn("log_softmax", log_softmax)
attach(__name__, {"softmax": softmax, "log_softmax": log_softmax})

# CUDA: fused row kernels (dtorch/cuda/fused/softmax.py); the numpy formulas above stay the reference
from ..cuda.fused import softmax as _cuda_softmax  # noqa: E402

_cuda_softmax.install(_softmax, log_mode=False)
_cuda_softmax.install(_log_softmax, log_mode=True)

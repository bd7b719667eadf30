"""softmax and log_softmax: single graph nodes with stable forwards and closed-form backwards."""
from __future__ import annotations

import warnings

import numpy as np

from .. import _dtype
from .._device import xp_of
from .._dispatch import apply_unary, defop, tensor_fn
from ..tensor import Tensor, _wrap_dim
from ._helpers import attach
from .convert import to_dtype

__all__ = [
    "softmax",
    "log_softmax",
]


def _shifted(a, dim):
    """a minus its max along dim, so exp never overflows (a slice of -inf gives NaN, as torch)."""
    with np.errstate(invalid="ignore"):
        return a - a.max(axis=dim, keepdims=True)


@defop("softmax", save_out=True)
def _softmax(a, dim):
    if a.size == 0:
        return a.copy()
    e = xp_of(a).exp(_shifted(a, dim))
    return e / e.sum(axis=dim, keepdims=True)


@_softmax.backward
def _softmax_bw(ns, ctx, g, y):
    dim = ctx._args["dim"]
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

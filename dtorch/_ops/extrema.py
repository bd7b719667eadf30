"""Extrema: max/min (whole, along a dim with indices, or elementwise with another tensor), amax/amin,
aminmax, argmax/argmin; and routing gradients through saved indices, which sorting.py shares.

Ops that pick input elements keep their indices as ``extra`` on the node; the gradient
scatters back through them (``scatter_along_dim``, whose adjoint is ``gather_along_dim``).
"""
from __future__ import annotations

import collections

import numpy as np

from .._device import xp_of
from .._dispatch import apply_unary, defop
from ..tensor import Tensor, _make
from ._helpers import attach, coords_along
from .compare import maximum, minimum
from .reduction import _as_array, _check_nonempty, _dims, _has_nan, _one_dim, _reduced_params, _unsqueeze_back

__all__ = [
    "max",
    "min",
    "amax",
    "amin",
    "aminmax",
    "argmax",
    "argmin",
]


def return_type(name: str, fields: tuple = ("values", "indices")) -> type:
    """A tuple type with named fields, like ``torch.return_types.max``."""
    cls = collections.namedtuple(name, fields)
    cls.__module__ = "dtorch.return_types"
    return cls


_MaxResult = return_type("max")
_MinResult = return_type("min")
_AminmaxResult = return_type("aminmax", ("min", "max"))


# ---- gradient routing through saved indices ----------------------------------------------------
@defop("scatter_along_dim")
def _scatter_along_dim(g, index, dim, shape):
    if g.ndim == 0:
        return g.copy()
    out = xp_of(g).zeros(shape, g.dtype)
    out[coords_along(index, dim)] = g
    return out


@_scatter_along_dim.backward
def _scatter_along_dim_bw(ns, ctx, g):
    a = ctx._args
    return (ns.gather_along_dim(g, index=a["index"], dim=a["dim"]),)


@defop("gather_along_dim")
def _gather_along_dim(a, index, dim):
    return a.copy() if a.ndim == 0 else a[coords_along(index, dim)]


@_gather_along_dim.backward
def _gather_along_dim_bw(ns, ctx, g):
    a = ctx._args
    return (ns.scatter_along_dim(g, index=a["index"], dim=a["dim"], shape=ctx._in_meta[0][0]),)


def index_backward(ns, ctx, g, dim: int, keepdim: bool = True):
    """Gradient of an op that picked input elements at ``ctx._extra`` (indices, keepdim form) along dim."""
    shape = ctx._in_meta[0][0]
    if not shape:
        return g
    if not keepdim:
        g = g.reshape(shape[:dim] + (1,) + shape[dim + 1:])
    return ns.scatter_along_dim(g, index=ctx._extra, dim=dim, shape=shape)


def evenly_backward(ns, ctx, g, a, out):
    """Gradient of max/amax-like reductions: split evenly among the inputs equal to the result."""
    shape = ctx._in_meta[0][0]
    args = ctx._args or {}
    dims, keep = args.get("dim"), args.get("keepdim", False)
    g = _unsqueeze_back(g, shape, dims, keep)
    out = _unsqueeze_back(out, shape, dims, keep)
    mask = a == out
    if _has_nan(out):
        mask = mask | (ns.isnan(a) & ns.isnan(out))
    count = ns.sum(mask, dim=dims, keepdim=True)
    return g * mask / count


# ---- amax / amin and full max / min ------------------------------------------------------------
@defop("amax", save=(0,), save_out=True)
def _amax(a, dim=None, keepdim=False):
    return _as_array(a, a.max(axis=dim, keepdims=keepdim))


@defop("amin", save=(0,), save_out=True)
def _amin(a, dim=None, keepdim=False):
    return _as_array(a, a.min(axis=dim, keepdims=keepdim))


@defop("max", save=(0,), save_out=True)
def _max_all(a):
    return _as_array(a, a.max())


@defop("min", save=(0,), save_out=True)
def _min_all(a):
    return _as_array(a, a.min())


def _evenly_bw(ns, ctx, g, a, out):
    return (evenly_backward(ns, ctx, g, a, out),)


_amax.backward(_evenly_bw)
_amin.backward(_evenly_bw)
_max_all.backward(_evenly_bw, "MaxBackward1")
_min_all.backward(_evenly_bw, "MinBackward1")


def _amax_amin(op, name: str, input: Tensor, dim, keepdim: bool) -> Tensor:
    if input._data.dtype.kind == "c":
        raise NotImplementedError(f"\"{op.name[1:]}_values_cpu\" not implemented for '{input.dtype.scalar_name}'")
    dims = _dims(input, dim)
    _check_nonempty(name, input, dims)
    return apply_unary(op, input, _reduced_params(dims, keepdim))


def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    return _amax_amin(_amax, "amax", input, dim, keepdim)


def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    return _amax_amin(_amin, "amin", input, dim, keepdim)


def aminmax(input: Tensor, *, dim=None, keepdim: bool = False) -> tuple:
    return _AminmaxResult(_amax_amin(_amin, "aminmax", input, dim, keepdim),
                          _amax_amin(_amax, "aminmax", input, dim, keepdim))


# ---- max / min along a dim (values and indices) --------------------------------------------------
def _select_dim(a, dim, keepdim, largest: bool):
    """(values, indices in keepdim form) of the max (largest) or min along dim; the first on ties."""
    xp = xp_of(a)
    if a.ndim == 0:
        return a.copy(), xp.zeros((), np.int64)
    pick = xp.argmax if largest else xp.argmin
    idx = xp.expand_dims(pick(a, axis=dim), dim).astype(np.int64)
    vals = xp.take_along_axis(a, idx, axis=dim)
    return (vals if keepdim else vals.squeeze(dim)), idx


@defop("max_dim", extra=True)
def _max_dim(a, dim, keepdim=False):
    return _select_dim(a, dim, keepdim, True)


@defop("min_dim", extra=True)
def _min_dim(a, dim, keepdim=False):
    return _select_dim(a, dim, keepdim, False)


def _select_dim_bw(ns, ctx, g):
    return (index_backward(ns, ctx, g, ctx._args["dim"], ctx._args["keepdim"]),)


_max_dim.backward(_select_dim_bw, "MaxBackward0")
_min_dim.backward(_select_dim_bw, "MinBackward0")


def values_indices(op, input: Tensor, params: dict, result_type: type, keepdim: bool, dim: int):
    """Run an ``extra=True`` op returning (values, keepdim-form indices) and build the named result."""
    values, idx = apply_unary(op, input, params)
    if not keepdim and idx.ndim:
        idx = idx.squeeze(dim)
    return result_type(values, _make(idx))


def _max_min(name: str, full_op, dim_op, result_type, other_fn, input: Tensor, dim, keepdim: bool):
    if isinstance(dim, Tensor):
        return other_fn(input, dim)  # max(a, b): elementwise maximum
    if input._data.dtype.kind == "c":
        if dim is None:
            raise NotImplementedError(f"\"{name}_all\" not implemented for '{input.dtype.scalar_name}'")
        raise RuntimeError(f"{name}(): does not support complex input")
    if dim is None:
        _check_nonempty(name, input, None)
        return apply_unary(full_op, input)
    d = _one_dim(input, dim)
    _check_nonempty(name, input, (d,))
    return values_indices(dim_op, input, {"dim": d, "keepdim": keepdim}, result_type, keepdim, d)


def max(input: Tensor, dim=None, keepdim: bool = False):
    """max(input) -> 0-d tensor; max(input, dim, keepdim) -> (values, indices); max(input, other) -> maximum."""
    return _max_min("max", _max_all, _max_dim, _MaxResult, maximum, input, dim, keepdim)


def min(input: Tensor, dim=None, keepdim: bool = False):
    """min(input) -> 0-d tensor; min(input, dim, keepdim) -> (values, indices); min(input, other) -> minimum."""
    return _max_min("min", _min_all, _min_dim, _MinResult, minimum, input, dim, keepdim)


# ---- argmax / argmin (not differentiable) ------------------------------------------------------
def _arg_pick(a, dim, keepdim: bool, largest: bool):
    xp = xp_of(a)
    pick = xp.argmax if largest else xp.argmin
    if dim is None:
        r = xp.asarray(pick(a.reshape(-1)), dtype=np.int64)
        return r.reshape((1,) * a.ndim) if keepdim else r
    if a.ndim == 0:
        return xp.zeros((), np.int64)
    r = pick(a, axis=dim).astype(np.int64)
    return xp.expand_dims(r, dim) if keepdim else r


@defop("argmax")
def _argmax(a, dim=None, keepdim=False):
    return _arg_pick(a, dim, keepdim, True)


@defop("argmin")
def _argmin(a, dim=None, keepdim=False):
    return _arg_pick(a, dim, keepdim, False)


def _arg_reduce(op, name: str, input: Tensor, dim, keepdim: bool) -> Tensor:
    if input._data.dtype.kind == "c":
        raise RuntimeError(f"{name}(): does not support complex input")
    if dim is None:
        if input._data.size == 0:
            raise IndexError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
        return apply_unary(op, input, {"keepdim": keepdim} if keepdim else None)
    d = _one_dim(input, dim)
    _check_nonempty(name, input, (d,))
    return apply_unary(op, input, {"dim": d, "keepdim": keepdim})


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _arg_reduce(_argmax, "argmax", input, dim, keepdim)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _arg_reduce(_argmin, "argmin", input, dim, keepdim)


attach(__name__, {
    "max": max, "min": min, "amax": amax, "amin": amin, "aminmax": aminmax, "argmax": argmax, "argmin": argmin,
})

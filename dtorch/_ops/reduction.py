"""Reductions: sum, mean and friends, and the sum_to used to undo broadcasting."""
from __future__ import annotations

import numpy as np

from .. import _dtype
from .._dispatch import apply, defop, tensor_fn
from ..tensor import Tensor
from ._helpers import dims_tuple, method, xp_of

__all__ = [
    "sum",
    "mean",
]


def _unsqueeze_back(g, shape, dims, keepdim: bool):
    """Reshape a reduced gradient so it broadcasts against the input ``shape``."""
    if keepdim or dims is None:
        if dims is None and not keepdim:
            return g.reshape((1,) * len(shape)) if len(shape) else g
        return g
    kept = list(shape)
    for d in dims:
        kept[d] = 1
    return g.reshape(tuple(kept))


# ---- sum -----------------------------------------------------------------------------------
@defop("sum")
def _sum(a, dim=None, keepdim=False, dtype=None):
    r = a.sum(axis=dim, keepdims=keepdim, dtype=dtype)
    return r if hasattr(r, "shape") and type(r) is type(a) else xp_of(a).asarray(r)


@_sum.backward
def _sum_bw(ns, ctx, g):
    shape = ctx._in_meta[0][0]
    args = ctx._args or {}
    g = _unsqueeze_back(g, shape, args.get("dim"), args.get("keepdim", False))
    return (ns.expand(g, shape),)


@method("sum")
def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    dims = dims_tuple(dim, input._data.ndim)
    np_dtype = None
    if dtype is not None:
        np_dtype = _dtype.to_dtype(dtype).np
    elif input._data.dtype.kind in "biu":
        np_dtype = np.int64  # torch sums integers and bools in int64
    if dims is None and not keepdim and np_dtype is None:
        return apply(_sum, (input,))
    return apply(_sum, (input,), {"dim": dims, "keepdim": keepdim, "dtype": np_dtype})


tensor_fn("sum", sum)


def sum_to(t: Tensor, shape) -> Tensor:
    """Sum ``t`` down to ``shape`` (the inverse of broadcasting), recorded."""
    shape = tuple(shape)
    if t.shape == shape:
        return t
    lead = t.dim() - len(shape)
    dims = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and t.shape[i + lead] != 1)
    r = sum(t, dims, keepdim=True) if dims else t
    return r.reshape(shape)


def sum_to_array(g, shape, node=None, i: int = 0):
    """Array version of :func:`sum_to`; a shape that cannot broadcast is an engine error."""
    lead = g.ndim - len(shape)
    if lead < 0 or any(s != 1 and s != gs for s, gs in zip(shape, g.shape[lead:])):
        name = node.name() if node is not None else "backward"
        raise RuntimeError(
            f"Function {name} returned an invalid gradient at index {i} - got {list(g.shape)} but expected "
            f"shape compatible with {list(shape)}"
        )
    dims = tuple(range(lead)) + tuple(k + lead for k, s in enumerate(shape) if s == 1 and g.shape[k + lead] != 1)
    if dims:
        g = g.sum(axis=dims, keepdims=True)
    return g.reshape(shape)


# ---- mean ----------------------------------------------------------------------------------
@defop("mean")
def _mean(a, dim=None, keepdim=False, dtype=None):
    r = a.mean(axis=dim, keepdims=keepdim, dtype=dtype)
    return r if type(r) is type(a) else xp_of(a).asarray(r, dtype=a.dtype if dtype is None else dtype)


@_mean.backward
def _mean_bw(ns, ctx, g):
    shape = ctx._in_meta[0][0]
    args = ctx._args or {}
    dims = args.get("dim")
    n = 1
    for d in (range(len(shape)) if dims is None else dims):
        n *= shape[d]
    g = _unsqueeze_back(g, shape, dims, args.get("keepdim", False))
    return (ns.expand(g / n, shape),)


@method("mean")
def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if input._data.dtype.kind != "f" and dtype is None:
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point or complex "
            f"dtype. Got: {_dtype._FROM_NP[input._data.dtype].name.capitalize()}"
        )
    dims = dims_tuple(dim, input._data.ndim)
    np_dtype = _dtype.to_dtype(dtype).np if dtype is not None else None
    if dims is None and not keepdim and np_dtype is None:
        return apply(_mean, (input,))
    return apply(_mean, (input,), {"dim": dims, "keepdim": keepdim, "dtype": np_dtype})


tensor_fn("mean", mean)

"""Joining tensors: cat/stack and the h/v/d/column stacks, meshgrid, broadcast_tensors, cartesian_prod.

Like torch, cat and stack produce new tensors, while meshgrid and broadcast_tensors return
views of their inputs.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _dtype
from .._device import xp_of
from .._dispatch import apply, defop
from ..tensor import Size, Tensor, _make, _wrap_dim
from ._helpers import broadcast_shape, index_along
from .view import expand, reshape

__all__ = [
    "cat",
    "concat",
    "concatenate",
    "stack",
    "hstack",
    "vstack",
    "row_stack",
    "dstack",
    "column_stack",
    "meshgrid",
    "broadcast_tensors",
    "broadcast_shapes",
    "cartesian_prod",
]


def _common_dtype(tensors) -> np.dtype:
    dt = None
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type(t).__name__}")
        d = _dtype._FROM_NP[t._data.dtype]
        dt = d if dt is None else _dtype.promote_types(dt, d)
    return dt.np


# ---- cat / stack ------------------------------------------------------------------------------
@defop("cat")
def _cat(*arrays, dim):
    return xp_of(arrays[0]).concatenate(arrays, axis=dim)


@_cat.backward
def _cat_bw(ns, ctx, g):
    d = ctx._args["dim"]
    grads, start = [], 0
    for (shape, _), (fn, _) in zip(ctx._in_meta, ctx.next_functions):
        n = shape[d]
        grads.append(ns.slice(g, index=index_along(d, slice(start, start + n))) if fn is not None else None)
        start += n
    return tuple(grads)


def _is_legacy_empty(t: Tensor) -> bool:
    # torch still skips 1-D empty tensors whatever the other inputs' shapes
    return t._data.ndim == 1 and t._data.shape[0] == 0


def _check_cat_shapes(tensors: list, positions: list, d: int) -> None:
    ref = tensors[0]._data.shape
    for t, pos in zip(tensors[1:], positions[1:]):
        s = t._data.shape
        if len(s) != len(ref):
            raise RuntimeError(f"Tensors must have same number of dimensions: got {len(ref)} and {len(s)}")
        for k, (x, y) in enumerate(zip(ref, s)):
            if k != d and x != y:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. Expected size {x} but got "
                                   f"size {y} for tensor number {pos} in the list.")


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along an existing dimension, promoting dtypes across the inputs as torch."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    np_dt = _common_dtype(tensors)
    for i, t in enumerate(tensors):
        if t._data.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    kept = [(i, t) for i, t in enumerate(tensors) if not _is_legacy_empty(t)]
    if not kept:
        return _make(xp_of(tensors[0]._data).empty((0,), np_dt))
    positions, kept = [i for i, _ in kept], [t for _, t in kept]
    d = _wrap_dim(dim, kept[0]._data.ndim)
    _check_cat_shapes(kept, positions, d)
    return apply(_cat, tuple(kept), {"dim": d}, np_dt)


concat = cat


def concatenate(tensors, axis: int = 0) -> Tensor:
    return cat(tensors, axis)


@defop("stack")
def _stack(*arrays, dim):
    return xp_of(arrays[0]).stack(arrays, axis=dim)


@_stack.backward
def _stack_bw(ns, ctx, g):
    d = ctx._args["dim"]
    return tuple(ns.slice(g, index=index_along(d, i)) if fn is not None else None
                 for i, (fn, _) in enumerate(ctx.next_functions))


def stack(tensors, dim: int = 0) -> Tensor:
    """Join equally shaped tensors along a new dimension."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    np_dt = _common_dtype(tensors)
    ref = tensors[0]._data.shape
    for i, t in enumerate(tensors[1:], 1):
        if t._data.shape != ref:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(ref)} at entry 0 and "
                               f"{list(t._data.shape)} at entry {i}")
    d = _wrap_dim(dim, len(ref) + 1)
    return apply(_stack, tuple(tensors), {"dim": d}, np_dt)


def _atleast(t: Tensor, n: int) -> Tensor:
    """torch.atleast_1d/2d/3d as views: (k,) -> (1, k) -> (1, k, 1); (m, k) -> (m, k, 1)."""
    s = t._data.shape
    if len(s) >= n:
        return t
    if n == 3 and len(s) == 2:
        return reshape(t, s + (1,))
    if n == 3 and len(s) == 1:
        return reshape(t, (1,) + s + (1,))
    return reshape(t, (1,) * (n - len(s)) + s)


def hstack(tensors) -> Tensor:
    tensors = [_atleast(t, 1) for t in tensors]
    return cat(tensors, 0 if tensors and tensors[0]._data.ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    return cat([_atleast(t, 2) for t in tensors], 0)


row_stack = vstack


def dstack(tensors) -> Tensor:
    return cat([_atleast(t, 3) for t in tensors], 2)


def column_stack(tensors) -> Tensor:
    cols = [reshape(t, (t._data.size, 1)) if t._data.ndim <= 1 else t for t in tensors]
    return hstack(cols)


# ---- meshgrid / broadcasting ---------------------------------------------------------------------
def _tensor_list(tensors) -> list:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return list(tensors[0])
    return list(tensors)


def meshgrid(*tensors, indexing: str | None = None) -> tuple:
    """Coordinate grids (views of the inputs); 'xy' swaps the first two output dimensions."""
    tensors = _tensor_list(tensors)
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument.",
                      UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
    for t in tensors:
        if t._data.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t}")
        if t._data.dtype != tensors[0]._data.dtype:
            raise RuntimeError("meshgrid expects all tensors to have the same dtype")
        if t.device != tensors[0].device:
            raise RuntimeError("meshgrid expects all tensors to have the same device")
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        order[0], order[1] = 1, 0
    sizes = [tensors[i]._data.size for i in order]
    grids = []
    for i, t in enumerate(tensors):
        pos = order.index(i)
        view_shape = tuple(sizes[k] if k == pos else 1 for k in range(len(sizes)))
        grids.append(expand(reshape(t, view_shape), tuple(sizes)))
    return tuple(grids)


def broadcast_shapes(*shapes) -> Size:
    """The shape all ``shapes`` broadcast to."""
    return Size(broadcast_shape(*((s,) if isinstance(s, int) else s for s in shapes)))


def broadcast_tensors(*tensors) -> tuple:
    """Expand every tensor (as a view) to their common broadcast shape."""
    tensors = _tensor_list(tensors)
    shape = broadcast_shapes(*(t._data.shape for t in tensors))
    return tuple(expand(t, shape) for t in tensors)


def cartesian_prod(*tensors) -> Tensor:
    """All combinations of the elements of 1-D tensors, one per row."""
    tensors = _tensor_list(tensors)
    for t in tensors:
        if t._data.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t._data.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    n = math.prod(t._data.shape[0] for t in tensors)
    return stack([reshape(g, (n,)) for g in grids], 1)

"""Indexing: ``x[i]``, ``x[i] = v``, ``iter(x)`` and index_put; the take/put kernels scatter.py builds on.

Basic indexing (ints, slices, None, Ellipsis) returns a view through view.py's "slice"
op. An index with tensors/lists/masks is *advanced*: the basic part is applied first as
a view (ints remove their dim there, as torch does), then the "index" op gathers with one
int64 array per indexed dim. Its backward scatter-adds into zeros ("index_backward",
duplicates accumulate), whose own backward is "index" again, so ``create_graph=True`` works.

Every index reaching a kernel is normalised first: int64 arrays on the input's device,
bounds-checked and non-negative, masks turned into nonzero() arrays. The ops here and in
scatter.py are one of two shapes of kernel: *take* (``a[index]``: index, gather,
index_select, take, masked_select) or *put* (``out = a.copy(); out[index] = v`` or ``+= v``:
index_put, scatter, scatter_add, index_add/copy/fill, masked_scatter).
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Callable

import numpy as np

from .._device import device_of, move_array, xp_of
from .._dispatch import OpDef, _type_name, apply, defop, device_mismatch
from ..tensor import Tensor
from ._helpers import attach, scalar
from ._inplace import check_inplace_allowed, needs_record, rebase
from .fill import copy_
from .view import basic_index, expand, reshape

__all__ = [
    "index_put",
]

_ALL = slice(None)


# ---- array helpers -----------------------------------------------------------------------
def add_at(z, index, v) -> None:
    """``z[index] += v`` with repeated indices accumulating."""
    xp = xp_of(z)
    if hasattr(xp.add, "at"):  # numpy; cupy >= 13
        xp.add.at(z, index, v)
    else:
        import cupyx

        cupyx.scatter_add(z, index, v)


def on_device_of(arr, like):
    return move_array(arr, device_of(like))


def checked_index(arr, size: int, error: Callable[[int], Exception], negative: bool = True):
    """A copy of ``arr`` as int64 with negative indices wrapped; ``error(value)`` for one out of range.

    A copy, because nodes keep the index: changing the caller's index tensor in place
    later must not change the gradient.
    """
    arr = arr.astype(np.int64)
    if arr.size == 0:
        return arr
    lo, hi = int(arr.min()), int(arr.max())
    lowest = -size if negative else 0
    if lo < lowest or hi >= size:
        bad = arr[(arr < lowest) | (arr >= size)]
        raise error(int(bad.reshape(-1)[0]))
    if lo < 0:
        arr = xp_of(arr).where(arr < 0, arr + size, arr)
    return arr


def _indexed_shape(shape: tuple, full: tuple) -> tuple:
    """The shape of ``a[full]`` for a tuple of full slices and int arrays (numpy's rule)."""
    pos = [i for i, f in enumerate(full) if not isinstance(f, slice)]
    if not pos:
        return tuple(shape)
    b = tuple(np.broadcast_shapes(*(full[i].shape for i in pos)))
    if pos == list(range(pos[0], pos[-1] + 1)):
        return tuple(shape[:pos[0]]) + b + tuple(shape[pos[-1] + 1:])
    return b + tuple(s for i, s in enumerate(shape) if i not in pos)


def _put_array(a, v, index, accumulate: bool = False, alpha=1) -> None:
    if alpha != 1:
        v = v * alpha
    if accumulate:
        add_at(a, index, v)
    else:
        a[index] = v


# ---- the two op families: take (a[index]) and put (a[index] = v) -------------------------
def _take_kernel(a, index):
    return a[index]


def _take_bw(ns, ctx, g):
    return (ns.index_backward(g, shape=ctx._in_meta[0][0], index=ctx._args["index"]),)


def _put_kernel(a, v, index, accumulate=False, alpha=1):
    out = a.copy()
    _put_array(out, v, index, accumulate, alpha)
    return out


def _put_bw(ns, ctx, g):
    args = ctx._args
    index = args["index"]
    nf = ctx.next_functions
    ga = gv = None
    if nf[0][0] is not None:
        ga = g if args.get("accumulate") else ns.index_put(g, 0.0, index=index)
    if len(nf) > 1 and nf[1][0] is not None:
        gv = ns.index(g, index=index)
        alpha = args.get("alpha", 1)
        if alpha != 1:
            gv = gv * alpha
    return ga, gv


def take_op(name: str) -> OpDef:
    op = defop(name)(_take_kernel)
    op.backward(_take_bw)
    return op


def put_op(name: str) -> OpDef:
    op = defop(name)(_put_kernel)
    op.backward(_put_bw)
    return op


_index = take_op("index")
_index_put = put_op("index_put")


@defop("index_backward")
def _index_backward(g, shape, index):
    z = xp_of(g).zeros(shape, g.dtype)
    add_at(z, index, g)
    return z


@_index_backward.backward
def _index_backward_bw(ns, ctx, g):
    return (ns.index(g, index=ctx._args["index"]),)


def put(target: Tensor, op: OpDef, values, params: dict, inplace: bool) -> Tensor:
    """``target[params['index']] = values`` (or ``+=``): out of place, or in place with autograd."""
    full = params["index"]
    if isinstance(values, Tensor):
        values = _fit_values(values, _indexed_shape(target._data.shape, full), target)
    if not inplace:
        return apply(op, (target, values), params)
    if not needs_record(target, values):
        v = values._data if isinstance(values, Tensor) else values
        _put_array(target._data, v, **params)
        target._vc[0] += 1
        return target
    check_inplace_allowed(target)
    return rebase(target, apply(op, (target, values), params))


def _strip_leading_ones(values: Tensor, ndim: int) -> Tensor:
    """torch lets assigned values carry extra leading size-1 dims: drop them."""
    vshape = values._data.shape
    k = 0
    while len(vshape) - k > ndim and vshape[k] == 1:
        k += 1
    return reshape(values, vshape[k:]) if k else values


def _fit_values(values: Tensor, shape: tuple, target: Tensor) -> Tensor:
    """``values`` ready to be put into a region of ``shape`` of ``target``, with torch's shape error."""
    vshape = values._data.shape
    values = _strip_leading_ones(values, len(shape))
    trimmed = values._data.shape
    off = len(shape) - len(trimmed)
    if off < 0 or any(s != 1 and s != shape[off + i] for i, s in enumerate(trimmed)):
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(vshape)} cannot be broadcast to indexing "
                           f"result of shape {list(shape)}")
    if type(values._data) is not type(target._data):
        if values._data.ndim:
            raise device_mismatch(target, values, "argument of index_put_")
        values = values.to(target.device)  # a 0-d value may live on another device, as in torch
    return values


# ---- parsing x[index] ----------------------------------------------------------------------
def _items(index) -> tuple:
    if isinstance(index, tuple):
        return index
    if isinstance(index, list) and len(index) < 32 and any(
            i is None or i is Ellipsis or isinstance(i, (slice, Tensor, list, tuple, np.ndarray)) for i in index):
        return tuple(index)  # torch still reads x[[0, slice(None)]] as x[0, :]
    return (index,)


def _slice_item(s: slice) -> slice:
    start, stop, step = (None if v is None else operator.index(v) for v in (s.start, s.stop, s.step))
    if step is not None and step <= 0:
        raise ValueError("step must be greater than zero")
    return slice(start, stop, step)


def _classify(item) -> tuple:
    """(kind, value): kind is one of none, ellipsis, int, slice, idx (int array), mask (bool array)."""
    if item is None:
        return "none", None
    if item is Ellipsis:
        return "ellipsis", None
    if isinstance(item, slice):
        return "slice", _slice_item(item)
    if isinstance(item, (bool, np.bool_)):
        return "mask", np.asarray(bool(item))
    if isinstance(item, (int, np.integer)):
        return "int", int(item)
    if isinstance(item, Tensor):
        arr = item._data
    elif isinstance(item, range):
        arr = np.arange(item.start, item.stop, item.step, dtype=np.int64)
    elif isinstance(item, (list, tuple, np.ndarray, Sequence)) and not isinstance(item, (str, bytes)):
        arr = np.asarray(item if isinstance(item, (list, tuple, np.ndarray)) else list(item))
        if arr.size == 0 and arr.dtype.kind in "fV":
            arr = arr.astype(np.int64)  # x[[]]
    elif hasattr(type(item), "__index__"):
        return "int", operator.index(item)
    else:
        raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid "
                         f"indices (got {type(item).__name__})")
    kind = arr.dtype.kind
    if kind in "iu" and arr.ndim == 0:
        return "int", int(arr)  # a 0-d integer tensor indexes like an int: a view
    if kind == "b" or arr.dtype == np.uint8:
        return "mask", arr.astype(np.bool_, copy=False)
    if kind in "iu":
        return "idx", arr
    raise IndexError("tensors used as indices must be long, int, byte or bool tensors")


def _plan(x: Tensor, index) -> tuple[tuple, list]:
    """Split ``index`` into a basic tuple (a view of x) and advanced entries on that view.

    Advanced entries are ``(dim in the view, int array, checked)``; mask entries come
    from nonzero() and need no bounds check.
    """
    items = [_classify(i) for i in _items(index)]
    shape = x._data.shape
    nd = len(shape)
    used = sum(1 if k in ("int", "slice", "idx") else (v.ndim if k == "mask" else 0) for k, v in items)
    if sum(k == "ellipsis" for k, _ in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if used > nd:
        if nd == 0:
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` "
                             "in C++ to convert a 0-dim tensor to a number")
        raise IndexError(f"too many indices for tensor of dimension {nd}")
    basic: list = []
    adv: list = []
    src = res = 0  # the dim in x, the dim in the basic view
    for kind, v in items:
        if kind == "int":
            n = shape[src]
            if not -n <= v < n:
                raise IndexError(f"index {v} is out of bounds for dimension {src} with size {n}")
            basic.append(v)
            src += 1
        elif kind == "slice":
            basic.append(v)
            src, res = src + 1, res + 1
        elif kind == "none":
            basic.append(None)
            res += 1
        elif kind == "ellipsis":
            basic.extend([_ALL] * (nd - used))
            src, res = src + nd - used, res + nd - used
        elif kind == "idx":
            basic.append(_ALL)
            adv.append((res, v, True))
            src, res = src + 1, res + 1
        elif v.ndim == 0:  # x[True] adds a dim of size 1, x[False] one of size 0
            basic.append(None)
            adv.append((res, np.arange(1 if bool(v) else 0), False))
            res += 1
        else:
            _check_mask(v, shape, src)
            basic.extend([_ALL] * v.ndim)
            for j, nz in enumerate(xp_of(v).nonzero(v)):
                adv.append((res + j, nz, False))
            src, res = src + v.ndim, res + v.ndim
    return tuple(basic), adv


def _check_mask(mask, shape: tuple, dim: int) -> None:
    for j, s in enumerate(mask.shape):
        if s != shape[dim + j]:
            raise IndexError(f"The shape of the mask {list(mask.shape)} at index {j} does not match the shape of the "
                             f"indexed tensor {list(shape)} at index {dim + j}")


def _is_trivial(basic: tuple) -> bool:
    return all(isinstance(b, slice) and b == _ALL for b in basic)


def _basic_view(x: Tensor, basic: tuple) -> Tensor:
    # the trailing Ellipsis makes numpy return a 0-d view, not a scalar copy, for x[i, j]
    return basic_index(x, basic + (Ellipsis,))


def _full_index(view: Tensor, adv: list) -> tuple:
    """One normalised int64 array per indexed dim of ``view`` (full slices elsewhere)."""
    shape = view._data.shape
    full: list = [_ALL] * (max(d for d, _, _ in adv) + 1)
    for k, (d, arr, check) in enumerate(adv):
        arr = on_device_of(arr, view._data)
        if check:
            n = shape[d]
            arr = checked_index(arr, n, lambda v, k=k, n=n: IndexError(
                f"index {v} is out of bounds for dimension {k} with size {n}"))
        else:
            arr = arr.astype(np.int64, copy=False)
        full[d] = arr
    shapes = [a.shape for a in full if not isinstance(a, slice)]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise IndexError("shape mismatch: indexing tensors could not be broadcast together with shapes "
                         + ", ".join(str(list(s)) for s in shapes)) from None
    return tuple(full)


def _getitem(self: Tensor, index) -> Tensor:
    basic, adv = _plan(self, index)
    if not adv:
        return _basic_view(self, basic)
    view = self if _is_trivial(basic) else _basic_view(self, basic)
    return apply(_index, (view,), {"index": _full_index(view, adv)})


def _setitem_value(self: Tensor, value):
    if isinstance(value, Tensor):
        return value
    try:
        return scalar(value)
    except TypeError:
        raise TypeError(f"can't assign a {type(value).__name__} to a {_type_name(self)}") from None


def _setitem(self: Tensor, index, value) -> None:
    value = _setitem_value(self, value)
    basic, adv = _plan(self, index)
    if not adv:
        view = _basic_view(self, basic)
        if isinstance(value, Tensor):
            value = _fit_basic_value(value, view._data.shape)
        copy_(view, value)
        return
    if isinstance(value, Tensor):
        _check_same_dtype(self, value)
    if needs_record(self, value):
        check_inplace_allowed(self)
    view = self if _is_trivial(basic) else _basic_view(self, basic)
    put(view, _index_put, value, {"index": _full_index(view, adv)}, inplace=True)


def _fit_basic_value(value: Tensor, shape: tuple) -> Tensor:
    """Strip leading 1s and expand to the view's shape (torch's copy_ errors)."""
    value = _strip_leading_ones(value, len(shape))
    if value._data.shape != shape:
        value = expand(value, shape)
    return value


def _check_same_dtype(self: Tensor, values: Tensor) -> None:
    if values._data.dtype != self._data.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got {self.dtype.scalar_name} "
                           f"for the destination and {values.dtype.scalar_name} for the source.")


def _iter(self: Tensor):
    if self._data.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (_basic_view(self, (i,)) for i in range(self._data.shape[0]))


# ---- index_put -------------------------------------------------------------------------------
def _index_put_full(input: Tensor, indices, values) -> tuple:
    if not isinstance(indices, (tuple, list)):
        raise TypeError(f"index_put(): argument 'indices' (position 2) must be tuple of Tensors, not "
                        f"{type(indices).__name__}")
    for i, t in enumerate(indices):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 1, but got {type(t).__name__}")
    if not isinstance(values, Tensor):
        raise TypeError(f"index_put(): argument 'values' (position 3) must be Tensor, not {type(values).__name__}")
    nd = input._data.ndim
    if len(indices) > nd:
        raise IndexError(f"too many indices for tensor of dimension {nd} (got {len(indices)})")
    _check_same_dtype(input, values)
    basic, adv = _plan(input, tuple(indices))
    if not _is_trivial(basic):
        raise IndexError("index_put(): 0-dim boolean indices are not supported")
    return _full_index(input, adv) if adv else ()


def index_put(input: Tensor, indices, values: Tensor, accumulate: bool = False) -> Tensor:
    full = _index_put_full(input, indices, values)
    return put(input, _index_put, values, put_params(full, accumulate), inplace=False)


def index_put_(self: Tensor, indices, values: Tensor, accumulate: bool = False) -> Tensor:
    full = _index_put_full(self, indices, values)
    return put(self, _index_put, values, put_params(full, accumulate), inplace=True)


def put_params(full: tuple, accumulate: bool = False, alpha=1) -> dict:
    params = {"index": full}
    if accumulate:
        params["accumulate"] = True
    if alpha != 1:
        params["alpha"] = alpha
    return params


attach(__name__, {
    "__getitem__": _getitem, "__setitem__": _setitem, "__iter__": _iter, "index_put": index_put,
    "index_put_": index_put_,
})



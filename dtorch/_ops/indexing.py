"""Indexing: ``x[i]``, ``x[i] = v``, gather/scatter, index_* and masked_* ops, where, nonzero.

Basic indexing (ints, slices, None, Ellipsis) returns a view through shape.py's
"slice" op. An index with tensors/lists/masks is *advanced*: the basic part is applied
first as a view (ints remove their dim there, as torch does), then the "index" op
gathers with one int64 array per indexed dim. Its backward scatter-adds into zeros
("index_backward", duplicates accumulate), whose own backward is "index" again, so
``create_graph=True`` works.

Every index reaching a kernel is normalised first: int64 arrays on the input's device,
bounds-checked and non-negative, masks turned into nonzero() arrays. Most ops below are
one of two shapes of kernel: *take* (``a[index]``: gather, index_select, take,
masked_select) or *put* (``out = a.copy(); out[index] = v`` or ``+= v``: index_put,
scatter, scatter_add, index_add/copy/fill, masked_scatter).
"""
from __future__ import annotations

import operator
from typing import Callable

import numpy as np

from .. import _dtype
from .._device import device_of, move_array
from .._dispatch import OpDef, _type_name, apply, defop, device_mismatch, promoted, tensor_fn
from ..tensor import Tensor, _make, _wrap_dim
from ._helpers import method, scalar, xp_of
from ._inplace import _type_word, check_inplace_allowed, needs_record, rebase
from .convert import copy_, to_dtype
from .shape import basic_index, expand, reshape

__all__ = [
    "gather",
    "scatter",
    "scatter_add",
    "index_select",
    "index_add",
    "index_copy",
    "index_fill",
    "index_put",
    "masked_fill",
    "masked_select",
    "masked_scatter",
    "take",
    "take_along_dim",
    "where",
    "nonzero",
    "argwhere",
]

_ALL = slice(None)
_INT_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
# torch names mask dtypes by their C++ type in masked_fill's error
_CPP_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "int64": "long int",
              "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char"}


# ---- array helpers -----------------------------------------------------------------------
def _add_at(z, index, v) -> None:
    """``z[index] += v`` with repeated indices accumulating."""
    xp = xp_of(z)
    if hasattr(xp.add, "at"):  # numpy; cupy >= 13
        xp.add.at(z, index, v)
    else:
        import cupyx

        cupyx.scatter_add(z, index, v)


def _on_device_of(arr, like):
    return move_array(arr, device_of(like))


def _checked(arr, size: int, error: Callable[[int], Exception], negative: bool = True):
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


def _broadcast_shape(*shapes) -> tuple:
    """Broadcast shapes with torch's error message."""
    out: list = []
    for shp in shapes:
        shp = tuple(shp)
        if len(shp) > len(out):
            out = [1] * (len(shp) - len(out)) + out
        off = len(out) - len(shp)
        for i, s in enumerate(shp):
            cur = out[off + i]
            if cur != s and cur != 1 and s != 1:
                raise RuntimeError(f"The size of tensor a ({cur}) must match the size of tensor b ({s}) at "
                                   f"non-singleton dimension {off + i}")
            if cur == 1:
                out[off + i] = s
    return tuple(out)


def _indexed_shape(shape: tuple, full: tuple) -> tuple:
    """The shape of ``a[full]`` for a tuple of full slices and int arrays (numpy's rule)."""
    pos = [i for i, f in enumerate(full) if not isinstance(f, slice)]
    if not pos:
        return tuple(shape)
    b = tuple(np.broadcast_shapes(*(full[i].shape for i in pos)))
    if pos == list(range(pos[0], pos[-1] + 1)):
        return tuple(shape[:pos[0]]) + b + tuple(shape[pos[-1] + 1:])
    return b + tuple(s for i, s in enumerate(shape) if i not in pos)


def _coords(index, dim: int) -> tuple:
    """gather/scatter's index as a full coordinate tuple: ``a[_coords(i, d)] == gather(a, d, i)``."""
    xp = xp_of(index)
    nd = index.ndim
    out = []
    for d in range(nd):
        if d == dim:
            out.append(index)
        else:
            shape = [1] * nd
            shape[d] = index.shape[d]
            out.append(xp.arange(index.shape[d]).reshape(shape))
    return tuple(out)


def _put_array(a, v, index, accumulate: bool = False, alpha=1) -> None:
    if alpha != 1:
        v = v * alpha
    if accumulate:
        _add_at(a, index, v)
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


def _take_op(name: str) -> OpDef:
    op = defop(name)(_take_kernel)
    op.backward(_take_bw)
    return op


def _put_op(name: str) -> OpDef:
    op = defop(name)(_put_kernel)
    op.backward(_put_bw)
    return op


_index = _take_op("index")
_gather = _take_op("gather")
_index_select = _take_op("index_select")
_take = _take_op("take")
_masked_select = _take_op("masked_select")
_index_put = _put_op("index_put")
_scatter = _put_op("scatter")
_scatter_add = _put_op("scatter_add")
_index_add = _put_op("index_add")
_index_copy = _put_op("index_copy")
_index_fill = _put_op("index_fill")
_masked_scatter = _put_op("masked_scatter")


@defop("index_backward")
def _index_backward(g, shape, index):
    z = xp_of(g).zeros(shape, g.dtype)
    _add_at(z, index, g)
    return z


@_index_backward.backward
def _index_backward_bw(ns, ctx, g):
    return (ns.index(g, index=ctx._args["index"]),)


def _put(target: Tensor, op: OpDef, values, params: dict, inplace: bool) -> Tensor:
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
    elif isinstance(item, (list, tuple, np.ndarray)):
        arr = np.asarray(item)
        if arr.size == 0 and arr.dtype.kind == "f":
            arr = arr.astype(np.int64)  # x[[]]
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
        arr = _on_device_of(arr, view._data)
        if check:
            n = shape[d]
            arr = _checked(arr, n, lambda v, k=k, n=n: IndexError(
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


@method("__getitem__")
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


@method("__setitem__")
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
    _put(view, _index_put, value, {"index": _full_index(view, adv)}, inplace=True)


def _fit_basic_value(value: Tensor, shape: tuple) -> Tensor:
    """Strip leading 1s and expand to the view's shape (torch's copy_ errors)."""
    value = _strip_leading_ones(value, len(shape))
    if value._data.shape != shape:
        value = expand(value, shape)
    return value


def _check_same_dtype(self: Tensor, values: Tensor) -> None:
    if values._data.dtype != self._data.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{_word(self)} for the destination and {_word(values)} for the source.")


def _word(t: Tensor) -> str:
    return _type_word(_dtype._FROM_NP[t._data.dtype])


@method("__iter__")
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
    return _put(input, _index_put, values, _put_params(full, accumulate), inplace=False)


def index_put_(self: Tensor, indices, values: Tensor, accumulate: bool = False) -> Tensor:
    full = _index_put_full(self, indices, values)
    return _put(self, _index_put, values, _put_params(full, accumulate), inplace=True)


def _put_params(full: tuple, accumulate: bool = False, alpha=1) -> dict:
    params = {"index": full}
    if accumulate:
        params["accumulate"] = True
    if alpha != 1:
        params["alpha"] = alpha
    return params


Tensor.index_put, Tensor.index_put_ = index_put, index_put_


# ---- gather / scatter ---------------------------------------------------------------------------
def _check_index_dtype(index: Tensor, msg: str, allowed=_INT_DTYPES, exc=RuntimeError) -> None:
    if not isinstance(index, Tensor):
        raise TypeError(f"expected a Tensor as index, got {type(index).__name__}")
    if index._data.dtype not in allowed:
        raise exc(msg.format(_word(index)))


def _dim_checked(input: Tensor, dim: int, index: Tensor):
    """index as int64 on input's device, within [0, size of dim) (torch's RuntimeError otherwise)."""
    n = input._data.shape[dim]
    arr = _on_device_of(index._data, input._data)
    return _checked(arr, n, lambda v: RuntimeError(f"index {v} is out of bounds for dimension {dim} with size {n}"),
                    negative=False)


@method("gather")
def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    _check_index_dtype(index, "gather(): Expected dtype int32/int64 for index")
    nd = input._data.ndim
    d = _wrap_dim(dim, nd)
    if nd == 0 or index._data.ndim == 0:
        flat = gather(reshape(input, (-1,)), 0, reshape(index, (-1,)))
        return reshape(flat, index.shape)
    if index._data.ndim != nd:
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    ishape, shape = index._data.shape, input._data.shape
    for k in range(nd):
        if k != d and ishape[k] > shape[k]:
            raise RuntimeError(f"Size does not match at dimension {k} expected index {list(ishape)} to be no larger "
                               f"than self {list(shape)} apart from dimension {d}")
    idx = _dim_checked(input, d, index)
    return apply(_gather, (input,), {"index": _coords(idx, d)})


def _scatter_prepare(name: str, input: Tensor, dim: int, index: Tensor, src) -> tuple:
    """(coordinate tuple, values) for scatter-like ops, with torch's checks."""
    _check_index_dtype(index, name + "(): Expected dtype int32/int64 for index")
    nd = input._data.ndim
    d = _wrap_dim(dim, nd)
    ishape, shape = index._data.shape, input._data.shape
    if index._data.ndim != nd:
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    is_src = isinstance(src, Tensor)
    if is_src:
        if src._data.ndim != nd:
            raise RuntimeError("Index tensor must have the same number of dimensions as src tensor")
        if src._data.dtype != input._data.dtype:
            raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype")
    too_big = any(k != d and ishape[k] > shape[k] for k in range(nd))
    if too_big or (is_src and any(i > s for i, s in zip(ishape, src._data.shape))):
        msg = f"Expected index {list(ishape)} to be no larger than self {list(shape)} apart from dimension {d}"
        raise RuntimeError(msg + (f" and to be no larger size than src {list(src.shape)}" if is_src else ""))
    idx = _dim_checked(input, d, index)
    if is_src and src._data.shape != ishape:
        src = basic_index(src, tuple(slice(0, s) for s in ishape))
    return _coords(idx, d), src


def _scatter_impl(input: Tensor, dim: int, index: Tensor, src, reduce, inplace: bool) -> Tensor:
    if src is None:
        raise TypeError("scatter() missing required argument 'src' or 'value'")
    src = src if isinstance(src, Tensor) else scalar(src)
    coords, src = _scatter_prepare("scatter", input, dim, index, src)
    if reduce is None:
        return _put(input, _scatter, src, {"index": coords}, inplace)
    if reduce not in ("add", "multiply"):
        raise RuntimeError("reduce argument must be either add or multiply.")
    params = {"index": coords, "reduce": reduce}
    if not inplace:
        return apply(_scatter_reduce, (input, src), params)
    if not needs_record(input, src):
        _scatter_reduce_array(input._data, src._data if isinstance(src, Tensor) else src, coords, reduce)
        input._vc[0] += 1
        return input
    check_inplace_allowed(input)
    return rebase(input, apply(_scatter_reduce, (input, src), params))


def _scatter_reduce_array(a, v, index, reduce: str) -> None:
    if reduce == "add":
        _add_at(a, index, v)
    else:
        xp_of(a).multiply.at(a, index, v)


@defop("scatter_reduce_legacy")
def _scatter_reduce(a, v, index, reduce):
    out = a.copy()
    _scatter_reduce_array(out, v, index, reduce)
    return out


@_scatter_reduce.backward
def _scatter_reduce_bw(ns, ctx, g):
    raise RuntimeError("derivative for aten::scatter is not implemented")


@method("scatter")
def scatter(input: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce: str | None = None) -> Tensor:
    return _scatter_impl(input, dim, index, src if src is not None else value, reduce, inplace=False)


def scatter_(self: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce: str | None = None) -> Tensor:
    return _scatter_impl(self, dim, index, src if src is not None else value, reduce, inplace=True)


def _scatter_add_impl(input: Tensor, dim: int, index: Tensor, src: Tensor, inplace: bool) -> Tensor:
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add(): argument 'src' (position 4) must be Tensor, not {type(src).__name__}")
    coords, src = _scatter_prepare("scatter_add", input, dim, index, src)
    return _put(input, _scatter_add, src, _put_params(coords, accumulate=True), inplace)


@method("scatter_add")
def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    return _scatter_add_impl(input, dim, index, src, inplace=False)


def scatter_add_(self: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    return _scatter_add_impl(self, dim, index, src, inplace=True)


Tensor.scatter_, Tensor.scatter_add_ = scatter_, scatter_add_


# ---- index_select / index_add / index_copy / index_fill ----------------------------------------
def _along(dim: int, idx) -> tuple:
    return (_ALL,) * dim + (idx,)


@method("index_select")
def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    _check_index_dtype(index, "index_select(): Expected dtype int32 or int64 for index")
    if index._data.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if input._data.ndim == 0:
        return reshape(index_select(reshape(input, (1,)), dim, index), ())
    d = _wrap_dim(dim, input._data.ndim)
    n = input._data.shape[d]
    arr = _on_device_of(index._data.reshape(-1), input._data)
    idx = _checked(arr, n, lambda v: IndexError("index out of range in self"), negative=False)
    return apply(_index_select, (input,), {"index": _along(d, idx)})


def _source_checks(name: str, input: Tensor, d: int, n_idx: int, source: Tensor) -> None:
    """Shared index_add/index_copy check: source is input with dim ``d`` resized to len(index)."""
    shape, sshape = input._data.shape, source._data.shape
    s_dim = sshape[d] if source._data.ndim > d else 1
    if s_dim != n_idx:
        if name == "index_add_":
            raise RuntimeError(f"index_add_(): Number of indices ({n_idx}) should be equal to source.size(dim): "
                               f"({s_dim}), for dim: {d}")
        raise IndexError(f"index_copy_(): Number of indices ({n_idx}) should be equal to source.size(dim) ({s_dim})")
    if len(sshape) != len(shape) or any(k != d and a != b for k, (a, b) in enumerate(zip(shape, sshape))):
        if name == "index_add_":
            raise RuntimeError(f"source tensor shape must match self tensor shape, excluding the specified dimension. "
                               f"Got self.shape = {list(shape)} source.shape = {list(sshape)}")
        dst = [s for k, s in enumerate(shape) if k != d]
        src = [s for k, s in enumerate(sshape) if k != d]
        raise RuntimeError(f"index_copy_(): Source/destination tensor must have same slice shapes. Destination "
                           f"slice shape: {', '.join(map(str, dst))} at dimension {d} and source slice shape: "
                           f"{', '.join(map(str, src))} at dimension {d}.")


def _index_add_impl(input: Tensor, dim: int, index: Tensor, source: Tensor, alpha, inplace: bool) -> Tensor:
    if index._data.ndim > 1:
        raise IndexError(f"index_add_(): Index is supposed to be a vector, but got dim: {index._data.ndim} with "
                         f"type: {_word(index)} and size: {list(index.shape)}")
    _check_index_dtype(index, "index_add_(): Expected dtype int32/int64 for index but got: {}")
    if source._data.dtype != input._data.dtype:
        raise RuntimeError(f"index_add_(): self ({_word(input)}) and source ({_word(source)}) must have the same "
                           "scalar type")
    d = _wrap_dim(dim, input._data.ndim)
    _source_checks("index_add_", input, d, index._data.size, source)
    idx = _dim_checked(input, d, reshape(index, (-1,)))
    return _put(input, _index_add, source, _put_params(_along(d, idx), True, alpha), inplace)


@method("index_add")
def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    return _index_add_impl(input, dim, index, source, alpha, inplace=False)


def index_add_(self: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    return _index_add_impl(self, dim, index, source, alpha, inplace=True)


def _index_copy_impl(input: Tensor, dim: int, index: Tensor, source: Tensor, inplace: bool) -> Tensor:
    if index._data.ndim > 1:
        raise IndexError(f"index_copy_(): Index should have dimension 1 or 0 (got {index._data.ndim})")
    _check_index_dtype(index, "index_copy_(): Expected a long tensor for index, but got {}", (np.dtype(np.int64),))
    if source._data.dtype != input._data.dtype:
        raise RuntimeError(f"index_copy_(): self and source expected to have the same dtype, but got (self) "
                           f"{_word(input)} and (source) {_word(source)}")
    d = _wrap_dim(dim, input._data.ndim)
    _source_checks("index_copy_", input, d, index._data.size, source)
    n = input._data.shape[d]
    arr = _on_device_of(index._data.reshape(-1), input._data)
    idx = _checked(arr, n, lambda v: IndexError(
        f"index_copy_(): index {v} is out of bounds for dimension {d} with size {n}"), negative=False)
    return _put(input, _index_copy, source, {"index": _along(d, idx)}, inplace)


@method("index_copy")
def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    return _index_copy_impl(input, dim, index, source, inplace=False)


def index_copy_(self: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    return _index_copy_impl(self, dim, index, source, inplace=True)


def _index_fill_impl(input: Tensor, dim: int, index: Tensor, value, inplace: bool) -> Tensor:
    _check_index_dtype(index, "index_fill_(): Expected dtype int64 for index.", (np.dtype(np.int64),), IndexError)
    if index._data.ndim > 1:
        raise RuntimeError("Index has to be a vector/scalar")
    if isinstance(value, Tensor):
        if value._data.ndim:
            raise RuntimeError(f"index_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value._data.ndim} dimension(s).")
    else:
        value = scalar(value)
    d = _wrap_dim(dim, input._data.ndim)
    n = input._data.shape[d]
    arr = _on_device_of(index._data.reshape(-1), input._data)
    idx = _checked(arr, n, lambda v: IndexError(f"index {v} is out of bounds for dimension {d} with size {n}"))
    return _put(input, _index_fill, value, {"index": _along(d, idx)}, inplace)


@method("index_fill")
def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    return _index_fill_impl(input, dim, index, value, inplace=False)


def index_fill_(self: Tensor, dim: int, index: Tensor, value) -> Tensor:
    return _index_fill_impl(self, dim, index, value, inplace=True)


Tensor.index_add_, Tensor.index_copy_, Tensor.index_fill_ = index_add_, index_copy_, index_fill_


# ---- take / take_along_dim -----------------------------------------------------------------------
@method("take")
def take(input: Tensor, index: Tensor) -> Tensor:
    _check_index_dtype(index, "take(): Expected a long tensor for index, but got {}", (np.dtype(np.int64),))
    n = input._data.size
    arr = _on_device_of(index._data, input._data)
    idx = _checked(arr, n, lambda v: IndexError(f"out of range: tried to access index {v} on a tensor of {n} "
                                                "elements."))
    return apply(_take, (reshape(input, (-1,)),), {"index": (idx,)})


@method("take_along_dim")
def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    _check_index_dtype(indices, "torch.take_along_dim(): dtype of indices should be Long but got {}",
                       (np.dtype(np.int64),))
    if dim is None:
        return gather(reshape(input, (-1,)), 0, reshape(indices, (-1,)))
    nd = input._data.ndim
    d = _wrap_dim(dim, nd)
    if indices._data.ndim != nd:
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same number of dimensions, "
                           f"but got {nd} dimensions for input, and {indices._data.ndim} dimensions for indices")
    shape = list(input._data.shape)
    shape[d] = indices._data.shape[d]
    bshape = list(_broadcast_shape(shape, indices._data.shape))
    if tuple(bshape) != indices._data.shape:
        indices = expand(indices, bshape)
    bshape[d] = input._data.shape[d]
    if tuple(bshape) != input._data.shape:
        input = expand(input, bshape)
    return gather(input, d, indices)


# ---- masked_fill / masked_select / masked_scatter --------------------------------------------------
@defop("masked_fill", save=(1,))
def _masked_fill(a, mask, value):
    return xp_of(a).where(mask, value, a).astype(a.dtype, copy=False)


@_masked_fill.backward
def _masked_fill_bw(ns, ctx, g, mask):
    nf = ctx.next_functions
    ga = ns.where(mask, 0.0, g) if nf[0][0] is not None else None
    gv = ns.where(mask, g, 0.0) if nf[2][0] is not None else None
    return ga, None, gv


def _mask_arg(input: Tensor, mask: Tensor, msg: str) -> Tensor:
    if mask._data.dtype != np.bool_:
        raise RuntimeError(msg)
    if type(mask._data) is not type(input._data):
        mask = mask.to(input.device)
    return mask


def _fill_value(input: Tensor, value, name: str):
    if isinstance(value, Tensor):
        if value._data.ndim:
            raise RuntimeError(f"{name} only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value._data.ndim} dimension(s).")
        if type(value._data) is not type(input._data):
            value = value.to(input.device)
        return value
    return scalar(value)


def _masked_fill_args(input: Tensor, mask: Tensor, value) -> tuple:
    name = _CPP_NAMES.get(mask._data.dtype.name, mask._data.dtype.name)
    mask = _mask_arg(input, mask, f"masked_fill_ only supports boolean masks, but got mask with dtype {name}")
    return mask, _fill_value(input, value, "masked_fill_")


@method("masked_fill")
def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    mask, value = _masked_fill_args(input, mask, value)
    _broadcast_shape(input._data.shape, mask._data.shape)
    return apply(_masked_fill, (input, mask, value))


def masked_fill_(self: Tensor, mask: Tensor, value) -> Tensor:
    mask, value = _masked_fill_args(self, mask, value)
    _check_inplace_broadcast(self, mask)
    if not needs_record(self, value):
        v = value._data if isinstance(value, Tensor) else value
        xp_of(self._data).copyto(self._data, v, casting="unsafe", where=mask._data)
        self._vc[0] += 1
        return self
    check_inplace_allowed(self)
    return rebase(self, apply(_masked_fill, (self, mask, value)))


Tensor.masked_fill_ = masked_fill_


def _check_inplace_broadcast(self: Tensor, other: Tensor) -> None:
    b = _broadcast_shape(self._data.shape, other._data.shape)
    if b != self._data.shape:
        raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(b)}")


def _nonzero_index(mask) -> tuple:
    return tuple(i.astype(np.int64, copy=False) for i in xp_of(mask).nonzero(mask))


def _broadcast_input(input: Tensor, shape: tuple) -> Tensor:
    return input if input._data.shape == shape else expand(input, shape)


@method("masked_select")
def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    mask = _mask_arg(input, mask, "masked_select: expected BoolTensor for mask")
    shape = _broadcast_shape(input._data.shape, mask._data.shape)
    if not shape:
        input, mask = reshape(input, (1,)), reshape(mask, (1,))
        shape = (1,)
    m = xp_of(mask._data).broadcast_to(mask._data, shape)
    return apply(_masked_select, (_broadcast_input(input, shape),), {"index": _nonzero_index(m)})


def _masked_scatter_impl(input: Tensor, mask: Tensor, source: Tensor, inplace: bool) -> Tensor:
    mask = _mask_arg(input, mask, f"masked_scatter_ only supports boolean masks, but got mask with dtype "
                                  f"{_word(mask)}")
    if source._data.dtype != input._data.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but got{_word(input)} and "
                           f"{_word(source)}")
    if inplace:
        _check_inplace_broadcast(input, mask)
        shape = input._data.shape
    else:
        shape = _broadcast_shape(input._data.shape, mask._data.shape)
        input = _broadcast_input(input, shape)
    index = _nonzero_index(xp_of(mask._data).broadcast_to(mask._data, shape))
    count = index[0].size if index else int(mask._data.any())
    if source._data.size < count:
        raise RuntimeError("Number of elements of source < number of ones in mask")
    part = basic_index(reshape(source, (-1,)), (slice(0, count),))
    return _put(input, _masked_scatter, part, {"index": index}, inplace)


@method("masked_scatter")
def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    return _masked_scatter_impl(input, mask, source, inplace=False)


def masked_scatter_(self: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    return _masked_scatter_impl(self, mask, source, inplace=True)


Tensor.masked_scatter_ = masked_scatter_


# ---- where / nonzero / argwhere ------------------------------------------------------------------
@defop("where", save=(0,))
def _where(cond, a, b, dtype=None):
    out = xp_of(cond).where(cond, a, b)
    return out if dtype is None or out.dtype == dtype else out.astype(dtype)


@_where.backward
def _where_bw(ns, ctx, g, cond):
    nf = ctx.next_functions
    ga = ns.where(cond, g, 0.0) if nf[1][0] is not None else None
    gb = ns.where(cond, 0.0, g) if nf[2][0] is not None else None
    return None, ga, gb


def _as_dtype(x, dt: _dtype.dtype):
    return to_dtype(x, dt) if isinstance(x, Tensor) and x._data.dtype != dt.np else x


def where(condition: Tensor, input=None, other=None):
    """``where(c, x, y)`` picks x where c else y (broadcast, promoted); ``where(c)`` is nonzero(c, as_tuple=True)."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where() takes a condition and two values (input, other), or the condition alone")
    cdt = condition._data.dtype
    if cdt == np.uint8:
        condition = to_dtype(condition, _dtype.bool_)
    elif cdt != np.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                           f"{_word(condition)}")
    a, b = scalar(input), scalar(other)
    _, rdt = promoted(a, b)
    a, b = _as_dtype(a, rdt), _as_dtype(b, rdt)
    shapes = [t._data.shape for t in (condition, a, b) if isinstance(t, Tensor)]
    _broadcast_shape(*shapes)
    return apply(_where, (condition, a, b), {"dtype": rdt.np})


tensor_fn("where", where)


def _where_method(self: Tensor, condition: Tensor, other) -> Tensor:
    return where(condition, self, other)


Tensor.where = _where_method


@method("nonzero")
def nonzero(input: Tensor, *, out=None, as_tuple: bool = False):
    a = input._data
    xp = xp_of(a)
    if as_tuple:
        if a.ndim == 0:
            return (_make(xp.arange(1 if bool(a) else 0, dtype=np.int64)),)
        return tuple(_make(i) for i in _nonzero_index(a))
    return _make(xp.argwhere(a).astype(np.int64, copy=False))


@method("argwhere")
def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)


# ---- one_hot (re-exported by nn.functional) ---------------------------------------------------------
def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices (int64) -> one-hot int64 tensor with a new last dim of ``num_classes``."""
    a = tensor._data
    if a.dtype != np.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    xp = xp_of(a)
    if a.size == 0:
        if num_classes <= 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        return _make(xp.zeros(a.shape + (num_classes,), np.int64))
    if int(a.min()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        num_classes = int(a.max()) + 1
    elif int(a.max()) >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    return _make((a[..., None] == xp.arange(num_classes)).astype(np.int64))


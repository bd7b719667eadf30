"""Gather and scatter: gather/scatter/scatter_add, index_select/index_add/index_copy/index_fill, take,
take_along_dim, masked_fill/masked_select/masked_scatter, where, nonzero/argwhere, one_hot.

The kernels are indexing.py's take (``a[index]``) and put (``a[index] = v``) families, with
the index normalised to int64 coordinates on the input's device first.
"""
from __future__ import annotations

import numpy as np

from .. import _dtype
from .._device import xp_of
from .._dispatch import apply, defop, promoted, tensor_fn
from ..tensor import Tensor, _make, _wrap_dim
from ._helpers import attach, broadcast_shape, coords_along, index_along, scalar
from ._inplace import check_inplace_allowed, needs_record, rebase
from .convert import to_dtype
from .indexing import add_at, checked_index, on_device_of, put, put_op, put_params, take_op
from .view import basic_index, expand, reshape

__all__ = [
    "gather",
    "scatter",
    "scatter_add",
    "index_select",
    "index_add",
    "index_copy",
    "index_fill",
    "masked_fill",
    "masked_select",
    "masked_scatter",
    "take",
    "take_along_dim",
    "where",
    "nonzero",
    "argwhere",
]

_INT_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
_gather = take_op("gather")
_index_select = take_op("index_select")
_take = take_op("take")
_masked_select = take_op("masked_select")
_scatter = put_op("scatter")
_scatter_add = put_op("scatter_add")
_index_add = put_op("index_add")
_index_copy = put_op("index_copy")
_index_fill = put_op("index_fill")
_masked_scatter = put_op("masked_scatter")


# ---- gather / scatter ---------------------------------------------------------------------------
def _check_index_dtype(index: Tensor, msg: str, allowed=_INT_DTYPES, exc=RuntimeError) -> None:
    if not isinstance(index, Tensor):
        raise TypeError(f"expected a Tensor as index, got {type(index).__name__}")
    if index._data.dtype not in allowed:
        raise exc(msg.format(index.dtype.scalar_name))


def _dimchecked_index(input: Tensor, dim: int, index: Tensor):
    """index as int64 on input's device, within [0, size of dim) (torch's RuntimeError otherwise)."""
    n = input._data.shape[dim]
    arr = on_device_of(index._data, input._data)
    return checked_index(arr, n, lambda v: RuntimeError(f"index {v} is out of bounds for dimension {dim} with size "
                                                        f"{n}"), negative=False)


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
    idx = _dimchecked_index(input, d, index)
    return apply(_gather, (input,), {"index": coords_along(idx, d)})


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
    idx = _dimchecked_index(input, d, index)
    if is_src and src._data.shape != ishape:
        src = basic_index(src, tuple(slice(0, s) for s in ishape))
    return coords_along(idx, d), src


def _scatter_impl(input: Tensor, dim: int, index: Tensor, src, reduce, inplace: bool) -> Tensor:
    if src is None:
        raise TypeError("scatter() missing required argument 'src' or 'value'")
    src = src if isinstance(src, Tensor) else scalar(src)
    coords, src = _scatter_prepare("scatter", input, dim, index, src)
    if reduce is None:
        return put(input, _scatter, src, {"index": coords}, inplace)
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
        add_at(a, index, v)
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


def scatter(input: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce: str | None = None) -> Tensor:
    return _scatter_impl(input, dim, index, src if src is not None else value, reduce, inplace=False)


def scatter_(self: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce: str | None = None) -> Tensor:
    return _scatter_impl(self, dim, index, src if src is not None else value, reduce, inplace=True)


def _scatter_add_impl(input: Tensor, dim: int, index: Tensor, src: Tensor, inplace: bool) -> Tensor:
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add(): argument 'src' (position 4) must be Tensor, not {type(src).__name__}")
    coords, src = _scatter_prepare("scatter_add", input, dim, index, src)
    return put(input, _scatter_add, src, put_params(coords, accumulate=True), inplace)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    return _scatter_add_impl(input, dim, index, src, inplace=False)


def scatter_add_(self: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    return _scatter_add_impl(self, dim, index, src, inplace=True)


# ---- index_select / index_add / index_copy / index_fill ----------------------------------------
def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    _check_index_dtype(index, "index_select(): Expected dtype int32 or int64 for index")
    if index._data.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if input._data.ndim == 0:
        return reshape(index_select(reshape(input, (1,)), dim, index), ())
    d = _wrap_dim(dim, input._data.ndim)
    n = input._data.shape[d]
    arr = on_device_of(index._data.reshape(-1), input._data)
    idx = checked_index(arr, n, lambda v: IndexError("index out of range in self"), negative=False)
    return apply(_index_select, (input,), {"index": index_along(d, idx)})


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
                         f"type: {index.dtype.scalar_name} and size: {list(index.shape)}")
    _check_index_dtype(index, "index_add_(): Expected dtype int32/int64 for index but got: {}")
    if source._data.dtype != input._data.dtype:
        raise RuntimeError(f"index_add_(): self ({input.dtype.scalar_name}) and source ({source.dtype.scalar_name}) "
                           "must have the same scalar type")
    d = _wrap_dim(dim, input._data.ndim)
    _source_checks("index_add_", input, d, index._data.size, source)
    idx = _dimchecked_index(input, d, reshape(index, (-1,)))
    return put(input, _index_add, source, put_params(index_along(d, idx), True, alpha), inplace)


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
                           f"{input.dtype.scalar_name} and (source) {source.dtype.scalar_name}")
    d = _wrap_dim(dim, input._data.ndim)
    _source_checks("index_copy_", input, d, index._data.size, source)
    n = input._data.shape[d]
    arr = on_device_of(index._data.reshape(-1), input._data)
    idx = checked_index(arr, n, lambda v: IndexError(
        f"index_copy_(): index {v} is out of bounds for dimension {d} with size {n}"), negative=False)
    return put(input, _index_copy, source, {"index": index_along(d, idx)}, inplace)


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
    arr = on_device_of(index._data.reshape(-1), input._data)
    idx = checked_index(arr, n, lambda v: IndexError(f"index {v} is out of bounds for dimension {d} with size {n}"))
    return put(input, _index_fill, value, {"index": index_along(d, idx)}, inplace)


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    return _index_fill_impl(input, dim, index, value, inplace=False)


def index_fill_(self: Tensor, dim: int, index: Tensor, value) -> Tensor:
    return _index_fill_impl(self, dim, index, value, inplace=True)


# ---- take / take_along_dim -----------------------------------------------------------------------
def take(input: Tensor, index: Tensor) -> Tensor:
    _check_index_dtype(index, "take(): Expected a long tensor for index, but got {}", (np.dtype(np.int64),))
    n = input._data.size
    arr = on_device_of(index._data, input._data)
    idx = checked_index(arr, n, lambda v: IndexError(f"out of range: tried to access index {v} on a tensor of {n} "
                                                "elements."))
    return apply(_take, (reshape(input, (-1,)),), {"index": (idx,)})


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
    bshape = list(broadcast_shape(shape, indices._data.shape))
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
    name = mask.dtype.cpp_name
    mask = _mask_arg(input, mask, f"masked_fill_ only supports boolean masks, but got mask with dtype {name}")
    return mask, _fill_value(input, value, "masked_fill_")


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    mask, value = _masked_fill_args(input, mask, value)
    broadcast_shape(input._data.shape, mask._data.shape)
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


def _check_inplace_broadcast(self: Tensor, other: Tensor) -> None:
    b = broadcast_shape(self._data.shape, other._data.shape)
    if b != self._data.shape:
        raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(b)}")


def _nonzero_index(mask) -> tuple:
    return tuple(i.astype(np.int64, copy=False) for i in xp_of(mask).nonzero(mask))


def _broadcast_input(input: Tensor, shape: tuple) -> Tensor:
    return input if input._data.shape == shape else expand(input, shape)


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    mask = _mask_arg(input, mask, "masked_select: expected BoolTensor for mask")
    shape = broadcast_shape(input._data.shape, mask._data.shape)
    if not shape:
        input, mask = reshape(input, (1,)), reshape(mask, (1,))
        shape = (1,)
    m = xp_of(mask._data).broadcast_to(mask._data, shape)
    return apply(_masked_select, (_broadcast_input(input, shape),), {"index": _nonzero_index(m)})


def _masked_scatter_impl(input: Tensor, mask: Tensor, source: Tensor, inplace: bool) -> Tensor:
    mask = _mask_arg(input, mask, f"masked_scatter_ only supports boolean masks, but got mask with dtype "
                                  f"{mask.dtype.scalar_name}")
    if source._data.dtype != input._data.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but "
                           f"got{input.dtype.scalar_name} and {source.dtype.scalar_name}")
    if inplace:
        _check_inplace_broadcast(input, mask)
        shape = input._data.shape
    else:
        shape = broadcast_shape(input._data.shape, mask._data.shape)
        input = _broadcast_input(input, shape)
    index = _nonzero_index(xp_of(mask._data).broadcast_to(mask._data, shape))
    count = index[0].size if index else int(mask._data.any())
    if source._data.size < count:
        raise RuntimeError("Number of elements of source < number of ones in mask")
    part = basic_index(reshape(source, (-1,)), (slice(0, count),))
    return put(input, _masked_scatter, part, {"index": index}, inplace)


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    return _masked_scatter_impl(input, mask, source, inplace=False)


def masked_scatter_(self: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    return _masked_scatter_impl(self, mask, source, inplace=True)


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
                           f"{condition.dtype.scalar_name}")
    a, b = scalar(input), scalar(other)
    _, rdt = promoted(a, b)
    a, b = _as_dtype(a, rdt), _as_dtype(b, rdt)
    shapes = [t._data.shape for t in (condition, a, b) if isinstance(t, Tensor)]
    broadcast_shape(*shapes)
    return apply(_where, (condition, a, b), {"dtype": rdt.np})


tensor_fn("where", where)


def _where_method(self: Tensor, condition: Tensor, other) -> Tensor:
    return where(condition, self, other)


def nonzero(input: Tensor, *, out=None, as_tuple: bool = False):
    a = input._data
    xp = xp_of(a)
    if as_tuple:
        if a.ndim == 0:
            return (_make(xp.arange(1 if bool(a) else 0, dtype=np.int64)),)
        return tuple(_make(i) for i in _nonzero_index(a))
    return _make(xp.argwhere(a).astype(np.int64, copy=False))


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


attach(__name__, {
    "gather": gather, "scatter": scatter, "scatter_": scatter_, "scatter_add": scatter_add,
    "scatter_add_": scatter_add_, "index_select": index_select, "index_add": index_add, "index_add_": index_add_,
    "index_copy": index_copy, "index_copy_": index_copy_, "index_fill": index_fill, "index_fill_": index_fill_,
    "take": take, "take_along_dim": take_along_dim, "masked_fill": masked_fill, "masked_fill_": masked_fill_,
    "masked_select": masked_select, "masked_scatter": masked_scatter, "masked_scatter_": masked_scatter_,
    "where": _where_method, "nonzero": nonzero, "argwhere": argwhere,
})

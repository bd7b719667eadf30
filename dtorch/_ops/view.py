"""Views: ops whose output shares storage with their input (view, reshape, transpose, expand,
squeeze, slicing by narrow/select/split/chunk, as_strided, ``view(dtype)``).

Every view op is registered with ``view=True``: its output shares storage and the
version counter with its base, as in torch. In-place ops on views rebase the base's
history through ``_inplace.CopySlices``. ``reshape`` is a view when the strides allow it.
"""
from __future__ import annotations

import numpy as np

from .. import _dtype
from .._device import xp_of
from .._dispatch import ARRAY_NS, apply, defop, tensor_fn
from ..tensor import Size, Tensor, _make, _wrap_dim
from ._helpers import attach, int_tuple

__all__ = [
    "view_as",
    "reshape",
    "flatten",
    "unflatten",
    "permute",
    "transpose",
    "swapaxes",
    "swapdims",
    "t",
    "movedim",
    "moveaxis",
    "broadcast_to",
    "unsqueeze",
    "squeeze",
    "narrow",
    "select",
    "unbind",
    "split",
    "chunk",
    "tensor_split",
    "as_strided",
]


def infer_shape(shape: tuple, numel: int) -> tuple:
    """Resolve one -1 in ``shape``; torch's error when the sizes do not fit."""
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def view_strides(old_shape: tuple, old_strides: tuple, new_shape: tuple):
    """Strides (in bytes) viewing ``old`` as ``new_shape`` without a copy, or None (torch's computeStride)."""
    if not old_shape:
        return tuple(1 for _ in new_shape)
    numel = 1
    for s in old_shape:
        numel *= s
    if numel == 0:
        return None if old_shape != new_shape else old_strides
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base_stride = old_strides[-1]
    tensor_numel = 1
    view_numel = 1
    for tensor_d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[tensor_d]
        if tensor_d == 0 or (old_shape[tensor_d - 1] != 1 and
                             old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base_stride = old_strides[tensor_d - 1]
                tensor_numel = 1
                view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


def _as_strided_array(a, shape, strides_bytes, offset_bytes=0):
    xp = xp_of(a)
    if offset_bytes:
        flat = a.reshape(-1) if a.flags.c_contiguous else None
        if flat is None:
            raise RuntimeError("as_strided with an offset needs a contiguous input")
        a = flat[offset_bytes // a.itemsize:]
    return xp.lib.stride_tricks.as_strided(a, shape, strides_bytes)


# ---- view / reshape ----------------------------------------------------------------------
@defop("view", view=True)
def _view(a, shape):
    if a.flags.c_contiguous:
        return a.reshape(shape)
    st = view_strides(a.shape, a.strides, shape)
    if st is None:
        raise RuntimeError(
            "view size is not compatible with input tensor's size and stride (at least one dimension spans "
            "across two contiguous subspaces). Use .reshape(...) instead."
        )
    return _as_strided_array(a, shape, st)


@_view.backward
def _view_bw(ns, ctx, g):
    return (ns.reshape(g, shape=ctx._in_meta[0][0]),)


@defop("reshape")
def _reshape_copy(a, shape):
    return a.reshape(shape)


_reshape_copy.backward(_view_bw, "UnsafeViewBackward0")


def _reshape_ns(t: Tensor, shape) -> Tensor:
    return reshape(t, shape)


tensor_fn("reshape", _reshape_ns)


def view(self: Tensor, *shape) -> Tensor:
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list, Size)):
        return view_as_dtype(self, shape[0])
    shape = infer_shape(int_tuple(shape), self._data.size)
    return apply(_view, (self,), {"shape": shape})


def reshape(input: Tensor, *shape) -> Tensor:
    shape = infer_shape(int_tuple(shape), input._data.size)
    a = input._data
    if shape == a.shape or a.flags.c_contiguous or view_strides(a.shape, a.strides, shape) is not None:
        return apply(_view, (input,), {"shape": shape})
    return apply(_reshape_copy, (input,), {"shape": shape})


def view_as(self: Tensor, other: Tensor) -> Tensor:
    return view(self, other.shape)


def reshape_as(self: Tensor, other: Tensor) -> Tensor:
    return reshape(self, other.shape)


def view_as_dtype(self: Tensor, dt) -> Tensor:
    """``t.view(dtype)``: reinterpret the bytes (not differentiable)."""
    dt = _dtype.to_dtype(dt)
    out = _make(self._data.view(dt.np))
    out._vc = self._vc
    out._base = self._base if self._base is not None else self
    return out


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    nd = input._data.ndim
    if nd == 0:
        return reshape(input, (1,))
    s, e = _wrap_dim(start_dim, nd), _wrap_dim(end_dim, nd)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return input
    shp = input._data.shape
    return reshape(input, shp[:s] + (-1,) + shp[e + 1:]) if input._data.size else \
        reshape(input, shp[:s] + (int(np.prod(shp[s:e + 1])),) + shp[e + 1:])


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    d = _wrap_dim(dim, input._data.ndim)
    shp = input._data.shape
    sizes = tuple(int(n) for n in sizes)
    try:
        sizes = infer_shape(sizes, shp[d])
    except RuntimeError:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
                           f"({shp[d]}) in the input tensor") from None
    return view(input, shp[:d] + sizes + shp[d + 1:])


# ---- transpose / permute -------------------------------------------------------------------
@defop("permute", view=True)
def _permute(a, dims):
    return a.transpose(dims)


@_permute.backward
def _permute_bw(ns, ctx, g):
    dims = ctx._args["dims"]
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return (ns.permute(g, dims=tuple(inv)),)


@defop("transpose", view=True)
def _transpose(a, dim0, dim1):
    return a.swapaxes(dim0, dim1)


@_transpose.backward
def _transpose_bw(ns, ctx, g):
    return (ns.transpose(g, dim0=ctx._args["dim0"], dim1=ctx._args["dim1"]),)


def permute(input: Tensor, *dims) -> Tensor:
    nd = input._data.ndim
    dims = tuple(_wrap_dim(d, nd) for d in int_tuple(dims))
    if len(dims) != nd:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the length of the "
            f"desired ordering of dimensions i.e. input.dim() = {nd} is not equal to len(dims) = {len(dims)}"
        )
    if sorted(dims) != list(range(nd)):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return apply(_permute, (input,), {"dims": dims})


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    nd = input._data.ndim
    d0, d1 = _wrap_dim(dim0, nd), _wrap_dim(dim1, nd)
    return apply(_transpose, (input,), {"dim0": d0, "dim1": d1})


swapaxes = swapdims = transpose
tensor_fn("transpose", lambda t, dim0, dim1: transpose(t, dim0, dim1))


@defop("t", view=True)
def _t(a):
    return a.T


@_t.backward
def _t_bw(ns, ctx, g):
    return (ns.t(g),)


def t(input: Tensor) -> Tensor:
    nd = input._data.ndim
    if nd > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
    return apply(_t, (input,))


def movedim(input: Tensor, source, destination) -> Tensor:
    nd = input._data.ndim
    src = [_wrap_dim(s, nd) for s in ((source,) if isinstance(source, int) else source)]
    dst = [_wrap_dim(d, nd) for d in ((destination,) if isinstance(destination, int) else destination)]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, tuple(order))


moveaxis = movedim


# ---- expand / squeeze / unsqueeze ------------------------------------------------------------
@defop("expand", view=True)
def _expand(a, shape):
    return xp_of(a).broadcast_to(a, shape)


def _expand_grad(a, shape):
    """ARRAY_NS.expand for backward formulas: no view semantics needed there, and for small
    numpy results a filled array is ~7x cheaper than broadcast_to's view."""
    if a.size == 1 and type(a) is np.ndarray and a.ndim <= len(shape):
        n = 1
        for s in shape:
            n *= s
        if n <= 4096:
            out = np.empty(shape, a.dtype)
            out.fill(a.reshape(()))
            return out
    return xp_of(a).broadcast_to(a, shape)


ARRAY_NS.expand = _expand_grad


@_expand.backward
def _expand_bw(ns, ctx, g):
    return (g,)  # the engine sums the gradient back to the input's shape


def expand(input: Tensor, *sizes) -> Tensor:
    sizes = int_tuple(sizes)
    shp = input._data.shape
    if len(sizes) < len(shp):
        raise RuntimeError(
            f"expand(torch.FloatTensor{{{list(shp)}}}, size={list(sizes)}): the number of sizes provided "
            f"({len(sizes)}) must be greater or equal to the number of dimensions in the tensor ({len(shp)})"
        )
    lead = len(sizes) - len(shp)
    out = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                raise RuntimeError(f"The expanded size of the tensor ({s}) isn't allowed in a leading, "
                                   "non-existing dimension 0")
            out.append(s)
            continue
        cur = shp[i - lead]
        if s == -1:
            s = cur
        elif cur != 1 and cur != s:
            raise RuntimeError(
                f"The expanded size of the tensor ({s}) must match the existing size ({cur}) at non-singleton "
                f"dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(shp)}"
            )
        out.append(s)
    return apply(_expand, (input,), {"shape": tuple(out)})


def expand_as(self: Tensor, other: Tensor) -> Tensor:
    return expand(self, other.shape)


def broadcast_to(input: Tensor, shape) -> Tensor:
    return expand(input, tuple(shape))


def _back_to_input_shape(ns, ctx, g):
    return (ns.reshape(g, shape=ctx._in_meta[0][0]),)


@defop("unsqueeze", view=True)
def _unsqueeze(a, dim):
    return xp_of(a).expand_dims(a, dim)


_unsqueeze.backward(_back_to_input_shape)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    return apply(_unsqueeze, (input,), {"dim": _wrap_dim(dim, input._data.ndim + 1)})


def _squeeze_kernel(a, dims):
    return xp_of(a).squeeze(a, axis=dims)


# torch names the three overloads' nodes apart: squeeze(), squeeze(dim), squeeze(dims)
_squeeze_ops = []
for _i, _name in enumerate(("squeeze", "squeeze_dim", "squeeze_dims")):
    _op = defop(_name, view=True)(_squeeze_kernel)
    _op.backward(_back_to_input_shape, f"SqueezeBackward{_i}")
    _squeeze_ops.append(_op)


def squeeze(input: Tensor, dim=None) -> Tensor:
    shp = input._data.shape
    nd = len(shp)
    if dim is None:
        overload, dims = 0, tuple(i for i, s in enumerate(shp) if s == 1)
    else:
        overload = 1 if isinstance(dim, (int, np.integer)) else 2
        wanted = (dim,) if overload == 1 else tuple(dim)
        dims = tuple(sorted({_wrap_dim(int(d), nd) for d in wanted})) if nd else ()
        dims = tuple(d for d in dims if shp[d] == 1)
    return apply(_squeeze_ops[overload], (input,), {"dims": dims})


# ---- basic indexing (ints, slices, None, Ellipsis): a view ---------------------------------
@defop("slice", view=True)
def _slice(a, index):
    return a[index]


@_slice.backward
def _slice_bw(ns, ctx, g):
    return (ns.slice_backward(g, shape=ctx._in_meta[0][0], index=ctx._args["index"]),)


@defop("slice_backward")
def _slice_backward(g, shape, index):
    z = xp_of(g).zeros(shape, g.dtype)
    z[index] = g
    return z


@_slice_backward.backward
def _slice_backward_bw(ns, ctx, g):
    return (ns.slice(g, index=ctx._args["index"]),)


def basic_index(input: Tensor, index: tuple) -> Tensor:
    return apply(_slice, (input,), {"index": index})


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    d = _wrap_dim(dim, input._data.ndim)
    size = input._data.shape[d]
    if isinstance(start, Tensor):
        start = int(start.item())
    if start < 0:
        start += size
    if start < 0 or start + length > size or length < 0:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return basic_index(input, (slice(None),) * d + (slice(start, start + length),))


@defop("select", view=True)
def _select(a, index):
    return a[index + (Ellipsis,)]  # the Ellipsis keeps numpy from turning a 0-d view into a scalar copy


_select.backward(_slice_bw, "SelectBackward0")


def select(input: Tensor, dim: int, index: int) -> Tensor:
    nd = input._data.ndim
    if nd == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, nd)
    size = input._data.shape[d]
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
                         f"dimension {d}")
    return apply(_select, (input,), {"index": (slice(None),) * d + (int(index),)})


def unbind(input: Tensor, dim: int = 0) -> tuple:
    d = _wrap_dim(dim, input._data.ndim)
    return tuple(select(input, d, i) for i in range(input._data.shape[d]))


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    d = _wrap_dim(dim, tensor._data.ndim)
    size = tensor._data.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and size:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
        bounds = [(s, min(s + step, size)) for s in range(0, size, step)] if size else [(0, 0)]
    else:
        sections = list(split_size_or_sections)
        if sum(sections) != size:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size at "
                f"dimension {d}), but got split_sizes={sections}"
            )
        bounds, s = [], 0
        for n in sections:
            bounds.append((s, s + n))
            s += n
    pre = (slice(None),) * d
    return tuple(basic_index(tensor, pre + (slice(a, b),)) for a, b in bounds)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    size = input._data.shape[_wrap_dim(dim, input._data.ndim)]
    if size == 0:  # torch gives `chunks` empty pieces
        return split(input, [0] * chunks, dim)
    return split(input, -(-size // chunks), dim)


def tensor_split(input: Tensor, indices_or_sections, dim: int = 0) -> tuple:
    d = _wrap_dim(dim, input._data.ndim)
    size = input._data.shape[d]
    if isinstance(indices_or_sections, int):
        n = indices_or_sections
        q, r = divmod(size, n)
        sizes = [q + 1] * r + [q] * (n - r)
    else:
        idx = [0] + list(indices_or_sections) + [size]
        sizes = [max(0, min(b, size) - min(a, size)) for a, b in zip(idx[:-1], idx[1:])]
    return split(input, sizes, d)


# ---- as_strided and in-place on views -------------------------------------------------------
@defop("as_strided", view=True)
def _as_strided(a, size, stride, storage_offset=0):
    isz = a.itemsize
    return _as_strided_array(a, size, tuple(s * isz for s in stride), storage_offset * isz)


@_as_strided.backward
def _as_strided_bw(ns, ctx, g):
    a = ctx._args
    return (ns.as_strided_backward(g, shape=ctx._in_meta[0][0], size=a["size"], stride=a["stride"],
                                   storage_offset=a.get("storage_offset", 0)),)


def _strided_positions(xp, size, stride, storage_offset):
    """The storage position of every element of an as_strided view, in the view's shape."""
    pos = xp.full(tuple(size), storage_offset, dtype=np.int64)
    for d, (n, st) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[d] = n
        pos = pos + xp.arange(n, dtype=np.int64).reshape(shape) * st
    return pos


@defop("as_strided_backward")
def _as_strided_backward(g, shape, size, stride, storage_offset=0):
    """Scatter-add ``g`` into a zero tensor of ``shape`` at the view's positions (they may overlap)."""
    xp = xp_of(g)
    n = 1
    for s in shape:
        n *= s
    out = xp.zeros(n, g.dtype)
    pos = _strided_positions(xp, size, stride, storage_offset).reshape(-1)
    if xp is np:
        np.add.at(out, pos, g.reshape(-1))
    else:
        import cupyx

        cupyx.scatter_add(out, pos, g.reshape(-1))
    return out.reshape(shape)


@_as_strided_backward.backward
def _as_strided_backward_bw(ns, ctx, gg):
    a = ctx._args
    gg = gg.contiguous() if isinstance(gg, Tensor) else xp_of(gg).ascontiguousarray(gg)
    return (ns.as_strided(gg, size=a["size"], stride=a["stride"], storage_offset=a.get("storage_offset", 0)),)


@defop("as_strided_scatter")
def _as_strided_scatter(base, src, size, stride, storage_offset=0):
    out = base.copy()
    region = _as_strided.default(out, size, stride, storage_offset)
    region[...] = src
    return out


@_as_strided_scatter.backward
def _as_strided_scatter_bw(ns, ctx, g):
    a = ctx._args
    geo = dict(size=a["size"], stride=a["stride"], storage_offset=a.get("storage_offset", 0))
    zeros_src = ns.as_strided(g, **geo) * 0
    return ns.as_strided_scatter(g, zeros_src, **geo), ns.as_strided(g, **geo)


def as_strided(input: Tensor, size, stride, storage_offset: int = 0) -> Tensor:
    size, stride = tuple(size), tuple(stride)
    if not input._data.flags.c_contiguous:
        raise RuntimeError("as_strided on a non-contiguous tensor is not supported; call .contiguous() first")
    return apply(_as_strided, (input,), {"size": size, "stride": stride, "storage_offset": storage_offset})


attach(__name__, {
    "view": view, "view_as": view_as, "reshape": reshape, "reshape_as": reshape_as, "flatten": flatten,
    "unflatten": unflatten, "permute": permute, "transpose": transpose, "swapaxes": transpose, "swapdims": transpose,
    "t": t, "T": property(lambda self: permute(self, tuple(range(self._data.ndim - 1, -1, -1)))),
    "mT": property(lambda self: transpose(self, -2, -1)), "movedim": movedim, "moveaxis": movedim,
    "expand": expand, "expand_as": expand_as, "broadcast_to": broadcast_to, "unsqueeze": unsqueeze,
    "squeeze": squeeze, "narrow": narrow, "select": select, "unbind": unbind, "split": split, "chunk": chunk,
    "tensor_split": tensor_split, "as_strided": as_strided,
})

"""Layout of the elements: flip/roll, repeat/tile/repeat_interleave, tril/triu, diagonals (diag, diagonal,
diag_embed) and trace.

Like torch, these produce new tensors, except ``diagonal``, a view of its input.
"""
from __future__ import annotations

import numpy as np

from .._device import xp_of
from .._dispatch import apply_unary, defop
from ..tensor import Tensor, _make, _wrap_dim
from ._helpers import attach, index_along, int_tuple, unique_dims
from ._inplace import inplace_unary
from .view import reshape

__all__ = [
    "flip",
    "fliplr",
    "flipud",
    "roll",
    "tile",
    "repeat_interleave",
    "tril",
    "triu",
    "diag",
    "diagonal",
    "diag_embed",
    "trace",
]


# ---- flip / roll ---------------------------------------------------------------------------------
@defop("flip")
def _flip(a, dims):
    return xp_of(a).flip(a, axis=dims).copy()  # torch's flip copies


@_flip.backward
def _flip_bw(ns, ctx, g):
    return (ns.flip(g, dims=ctx._args["dims"]),)


def flip(input: Tensor, *dims) -> Tensor:
    """Reverse the order of elements along ``dims`` (a copy, as torch)."""
    dims = unique_dims(int_tuple(dims), input._data.ndim)
    return apply_unary(_flip, input, {"dims": dims})


def fliplr(input: Tensor) -> Tensor:
    if input._data.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, (1,))


def flipud(input: Tensor) -> Tensor:
    if input._data.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, (0,))


@defop("roll")
def _roll(a, shifts, dims=None):
    return xp_of(a).roll(a, shifts, axis=dims)


@_roll.backward
def _roll_bw(ns, ctx, g):
    shifts = ctx._args["shifts"]
    back = -shifts if isinstance(shifts, int) else tuple(-s for s in shifts)
    return (ns.roll(g, shifts=back, dims=ctx._args["dims"]),)


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """Rotate elements along ``dims``; without dims, along the flattened tensor."""
    shifts = (int(shifts),) if isinstance(shifts, (int, np.integer)) else tuple(int(s) for s in shifts)
    dims = () if dims is None else ((int(dims),) if isinstance(dims, (int, np.integer)) else tuple(dims))
    if not shifts:
        raise RuntimeError("`shifts` required")
    if not dims:
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        return apply_unary(_roll, input, {"shifts": shifts[0], "dims": None})
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    dims = tuple(_wrap_dim(d, input._data.ndim) for d in dims)
    return apply_unary(_roll, input, {"shifts": shifts, "dims": dims})


# ---- repeat / tile / repeat_interleave -----------------------------------------------------------
@defop("repeat")
def _repeat(a, repeats):
    return xp_of(a).tile(a, repeats)


@_repeat.backward
def _repeat_bw(ns, ctx, g):
    shape = ctx._in_meta[0][0]
    reps = ctx._args["repeats"]
    padded = (1,) * (len(reps) - len(shape)) + tuple(shape)
    # view the gradient as (r0, s0, r1, s1, ...) and sum the copies
    split = tuple(x for r, s in zip(reps, padded) for x in (r, s))
    g = ns.reshape(g, shape=split)
    g = ns.sum(g, dim=tuple(range(0, len(split), 2)), keepdim=False)
    return (ns.reshape(g, shape=tuple(shape)),)


def repeat(self: Tensor, *sizes) -> Tensor:
    """Tile the tensor ``sizes[i]`` times along each dimension (leading sizes add dimensions)."""
    reps = int_tuple(sizes)
    if len(reps) < self._data.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of "
                           "tensor")
    return apply_unary(_repeat, self, {"repeats": reps})


def tile(input: Tensor, dims) -> Tensor:
    """``repeat`` where missing leading repetitions count as 1."""
    dims = int_tuple((dims,))
    return repeat(input, (1,) * (input._data.ndim - len(dims)) + dims)


@defop("repeat_interleave")
def _repeat_interleave(a, repeats, dim):
    return xp_of(a).repeat(a, repeats, axis=dim)


@_repeat_interleave.backward
def _repeat_interleave_bw(ns, ctx, g):
    a = ctx._args
    return (ns.repeat_interleave_backward(g, repeats=a["repeats"], dim=a["dim"], size=ctx._in_meta[0][0][a["dim"]]),)


@defop("repeat_interleave_backward")
def _repeat_interleave_backward(g, repeats, dim, size):
    """Sum each run of repeated slices back into one slice."""
    xp = xp_of(g)
    if isinstance(repeats, int):
        return g.reshape(g.shape[:dim] + (size, repeats) + g.shape[dim + 1:]).sum(axis=dim + 1)
    reps = np.asarray(repeats)
    out = xp.zeros(g.shape[:dim] + (size,) + g.shape[dim + 1:], g.dtype)
    if xp is np:
        nonzero = np.flatnonzero(reps)
        if nonzero.size:
            starts = (np.cumsum(reps) - reps)[nonzero]
            out[index_along(dim, nonzero)] = np.add.reduceat(g, starts, axis=dim)
        return out
    import cupyx

    owner = xp.asarray(np.repeat(np.arange(size), reps))
    moved = xp.moveaxis(out, dim, 0)
    cupyx.scatter_add(moved, owner, xp.moveaxis(g, dim, 0))
    return out


@_repeat_interleave_backward.backward
def _repeat_interleave_backward_bw(ns, ctx, g):
    a = ctx._args
    return (ns.repeat_interleave(g, repeats=a["repeats"], dim=a["dim"]),)


def _repeats_arg(repeats, size: int, dim: int):
    """An int (same count for every slice) or a tuple of per-slice counts, checked as torch."""
    if isinstance(repeats, Tensor):
        if repeats._data.dtype.kind not in "iu":
            raise NotImplementedError(f"\"repeat_interleave_cpu\" not implemented for "
                                      f"'{repeats.dtype.scalar_name}'")
        if repeats._data.ndim > 1:
            raise RuntimeError("repeats must be 0-dim or 1-dim tensor")
        values = [int(v) for v in repeats.detach().cpu().numpy().reshape(-1)]
        if len(values) == 1:
            repeats = values[0]
        else:
            if len(values) != size:
                raise RuntimeError(f"repeats must have the same size as input along dim, but got repeats.size(0) = "
                                   f"{len(values)} and input.size({dim}) = {size}")
            if any(v < 0 for v in values):
                raise RuntimeError("repeats can not be negative")
            return tuple(values)
    repeats = int(repeats)
    if repeats < 0:
        raise RuntimeError("repeats can not be negative")
    return repeats


def _repeat_indices(repeats: Tensor) -> Tensor:
    """``repeat_interleave(repeats)``: index i repeated ``repeats[i]`` times."""
    if repeats._data.ndim != 1:
        raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
    reps = _repeats_arg(repeats, repeats._data.shape[0], 0)
    xp = xp_of(repeats._data)
    return _make(xp.repeat(xp.arange(repeats._data.shape[0], dtype=np.int64), reps))


def repeat_interleave(input: Tensor, repeats=None, dim: int | None = None, *, output_size: int | None = None) -> Tensor:
    """Repeat each slice along ``dim`` (the flattened tensor when dim is None) ``repeats`` times."""
    if repeats is None:
        return _repeat_indices(input)
    if dim is None:
        input = reshape(input, (-1,))
        dim = 0
    d = _wrap_dim(dim, input._data.ndim)
    size = input._data.shape[d]
    reps = _repeats_arg(repeats, size, d)
    if output_size is not None:
        total = reps * size if isinstance(reps, int) else sum(reps)
        if total != output_size:
            raise RuntimeError(f"repeat_interleave: Invalid output_size, expected {total} but got {output_size}")
    return apply_unary(_repeat_interleave, input, {"repeats": reps, "dim": d})


# ---- tril / triu -------------------------------------------------------------------------------
def _triangle(name: str):
    """The public function and its in-place form for tril/triu."""
    op = defop(name)(lambda a, diagonal=0: getattr(xp_of(a), name)(a, diagonal))
    op.backward(lambda ns, ctx, g: (getattr(ns, name)(g, diagonal=ctx._args["diagonal"]),))

    def check(input: Tensor) -> None:
        if input._data.ndim < 2:
            raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")

    def public(input: Tensor, diagonal: int = 0) -> Tensor:
        check(input)
        return apply_unary(op, input, {"diagonal": int(diagonal)})

    def inplace(self: Tensor, diagonal: int = 0) -> Tensor:
        check(self)
        return inplace_unary(op, self, {"diagonal": int(diagonal)})

    public.__name__ = name
    public.__doc__ = f"The {'lower' if name == 'tril' else 'upper'} triangle of the last two dimensions."
    return public, inplace


tril, tril_ = _triangle("tril")
triu, triu_ = _triangle("triu")


# ---- diagonals -----------------------------------------------------------------------------------
def _diagonal_view(a, offset: int, dim1: int, dim2: int):
    """A writable view of a diagonal (numpy's own diagonal() is read-only); the diagonal is the last dim."""
    dim1, dim2 = dim1 % a.ndim, dim2 % a.ndim  # as_strided below must never see a negative dim
    if offset >= 0:
        a = a[index_along(dim2, slice(offset, None))]
    else:
        a = a[index_along(dim1, slice(-offset, None))]
    length = min(a.shape[dim1], a.shape[dim2])
    rest = [i for i in range(a.ndim) if i not in (dim1, dim2)]
    shape = tuple(a.shape[i] for i in rest) + (length,)
    strides = tuple(a.strides[i] for i in rest) + (a.strides[dim1] + a.strides[dim2],)
    return xp_of(a).lib.stride_tricks.as_strided(a, shape, strides)


@defop("diagonal", view=True)
def _diagonal(a, offset=0, dim1=0, dim2=1):
    return _diagonal_view(a, offset, dim1, dim2)


@_diagonal.backward
def _diagonal_bw(ns, ctx, g):
    return (ns.diagonal_backward(g, shape=ctx._in_meta[0][0], **ctx._args),)


def _place_on_diagonal(g, shape, offset, dim1, dim2):
    out = xp_of(g).zeros(shape, g.dtype)
    _diagonal_view(out, offset, dim1, dim2)[...] = g
    return out


@defop("diagonal_backward")
def _diagonal_backward(g, shape, offset=0, dim1=0, dim2=1):
    return _place_on_diagonal(g, shape, offset, dim1, dim2)


def _take_diagonal_bw(ns, ctx, g):
    a = ctx._args
    return (ns.diagonal(g, offset=a["offset"], dim1=a["dim1"], dim2=a["dim2"]),)


_diagonal_backward.backward(_take_diagonal_bw)


def _embed_shape(shape: tuple, offset: int, dim1: int, dim2: int) -> tuple:
    n = shape[-1] + abs(offset)
    out = list(shape[:-1])
    for d in sorted((dim1, dim2)):
        out.insert(d, n)
    return tuple(out)


@defop("diag_embed")
def _diag_embed(a, offset=0, dim1=-2, dim2=-1):
    dim1, dim2 = dim1 % (a.ndim + 1), dim2 % (a.ndim + 1)
    return _place_on_diagonal(a, _embed_shape(a.shape, offset, dim1, dim2), offset, dim1, dim2)


_diag_embed.backward(_take_diagonal_bw)


@defop("diagonal_copy")
def _diagonal_copy(a, offset=0, dim1=0, dim2=1):
    return _diagonal_view(a, offset, dim1, dim2).copy()


_diagonal_copy.backward(_diagonal_bw, "DiagonalBackward0_copy")


def _diag_dims(ndim: int, dim1: int, dim2: int) -> tuple[int, int]:
    d1, d2 = _wrap_dim(dim1, ndim), _wrap_dim(dim2, ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return d1, d2


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the (dim1, dim2) planes as a view, appended as the last dimension."""
    d1, d2 = _diag_dims(input._data.ndim, dim1, dim2)
    return apply_unary(_diagonal, input, {"offset": int(offset), "dim1": d1, "dim2": d2})


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices (in dims dim1, dim2 of the result) whose diagonal is the last dimension of input."""
    d1, d2 = _diag_dims(input._data.ndim + 1, dim1, dim2)
    return apply_unary(_diag_embed, input, {"offset": int(offset), "dim1": d1, "dim2": d2})


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """1-D: a square matrix with input on a diagonal; 2-D: a copy of a diagonal."""
    nd = input._data.ndim
    if nd == 1:
        return diag_embed(input, diagonal, 0, 1)
    if nd == 2:
        return apply_unary(_diagonal_copy, input, {"offset": int(diagonal), "dim1": 0, "dim2": 1})
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {nd}D")


@defop("trace")
def _trace(a):
    return xp_of(a).trace(a, dtype=np.int64 if a.dtype.kind in "iu" else None)


@_trace.backward
def _trace_bw(ns, ctx, g):
    shape = ctx._in_meta[0][0]
    diag_len = min(shape)
    return (ns.diagonal_backward(ns.expand(g, shape=(diag_len,)), shape=shape, offset=0, dim1=0, dim2=1),)


def trace(input: Tensor) -> Tensor:
    """Sum of the main diagonal of a matrix (integers sum in int64)."""
    if input._data.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input._data.ndim}")
    if input._data.dtype == np.bool_:
        raise NotImplementedError("\"trace\" not implemented for 'Bool'")
    return apply_unary(_trace, input)


attach(__name__, {
    "flip": flip, "fliplr": fliplr, "flipud": flipud, "roll": roll, "repeat": repeat, "tile": tile,
    "repeat_interleave": repeat_interleave, "tril": tril, "tril_": tril_, "triu": triu, "triu_": triu_,
    "diagonal": diagonal, "diag_embed": diag_embed, "diag": diag, "trace": trace,
})

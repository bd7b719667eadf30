"""max_pool1d/2d/3d, avg_pool1d/2d/3d, adaptive_avg_pool1d/2d, adaptive_max_pool1d/2d.

Pooling loops over the ``prod(kernel)`` kernel positions (never over pixels): each
position is one strided view of the padded input of the output's shape. Every op comes
with its adjoint as a registered op (max: scatter <-> gather of the argmax; avg: pool
<-> spread), so backward formulas are ops again and ``create_graph=True`` works.
"""
from __future__ import annotations

import math

import numpy as np

from ..._dispatch import apply, defop, tensor_fn
from ..._device import xp_of
from ...tensor import Tensor, _make
from ._conv_cols import pad_zeros
from .conv import ntuple

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "max_pool1d_with_indices", "max_pool2d_with_indices"]


# ---- geometry ------------------------------------------------------------------------------------
def pool_out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _padded(x, kernel, stride, padding, dilation, out, fill):
    """``x`` padded by ``padding`` low and as much high as the last window needs, with ``fill``."""
    nd = len(kernel)
    size = x.shape[-nd:]
    pairs = tuple((p, max(0, (o - 1) * s + d * (k - 1) + 1 - n - p))
                  for n, k, s, p, d, o in zip(size, kernel, stride, padding, dilation, out))
    if fill == 0:
        return pad_zeros(x, pairs), pairs
    if not any(lo or hi for lo, hi in pairs):
        return x, pairs
    shape = x.shape[:-nd] + tuple(n + lo + hi for n, (lo, hi) in zip(size, pairs))
    buf = xp_of(x).full(shape, fill, x.dtype)
    buf[(Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(size, pairs))] = x
    return buf, pairs


def _positions(kernel):
    return [tuple(int(i) for i in np.unravel_index(p, kernel)) for p in range(math.prod(kernel))]


def _slice_at(pos, stride, dilation, out) -> tuple:
    """The strided slice of the padded input that kernel position ``pos`` sees for every output."""
    return (Ellipsis,) + tuple(slice(q * d, q * d + s * (o - 1) + 1, s)
                               for q, s, d, o in zip(pos, stride, dilation, out))


def _crop(a, pairs, size):
    return a[(Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(size, pairs))]


def _lowest(dtype):
    return -np.inf if dtype.kind in "fV" else np.iinfo(dtype).min


# ---- max pooling -----------------------------------------------------------------------------------
@defop("max_pool", extra=True)
def _max_pool(x, kernel, stride, padding, dilation, out):
    """Running max over the kernel positions; ``extra`` is the winning position per output."""
    xp = xp_of(x)
    xpad, _ = _padded(x, kernel, stride, padding, dilation, out, _lowest(x.dtype))
    views = [xpad[_slice_at(pos, stride, dilation, out)] for pos in _positions(kernel)]
    best = views[0].copy()
    small = len(views) < 256
    idx = xp.zeros(best.shape, np.uint8 if small else np.int32)
    for p, v in enumerate(views[1:], 1):
        upd = v > best
        xp.maximum(best, v, out=best)
        # positions come in increasing order, so "the last update wins" is a running max of p * upd
        xp.maximum(idx, upd.view(np.uint8) * np.uint8(p) if small else upd * np.int32(p), out=idx)
    if x.dtype.kind in "fV" and xp.isnan(best).any():
        best, idx = _max_pool_nan(views, xp, idx.dtype)
    return best, idx


def _max_pool_nan(views, xp, idx_dtype):
    """As torch: a NaN in a window wins (the last one)."""
    best = views[0].copy()
    idx = xp.zeros(best.shape, idx_dtype)
    for p, v in enumerate(views[1:], 1):
        upd = (v > best) | xp.isnan(v)
        xp.copyto(best, v, where=upd)
        xp.copyto(idx, p, where=upd, casting="unsafe")
    return best, idx


def _disjoint(kernel, stride, dilation) -> bool:
    """Whether every input position lies in at most one (window, kernel position) pair."""
    return all(s >= d * (k - 1) + 1 and (k == 1 or d == 1) for k, s, d in zip(kernel, stride, dilation))


def _scatter_params(ctx) -> dict:
    a = ctx._args
    return {"idx": ctx._extra, "size": ctx._in_meta[0][0], "kernel": a["kernel"], "stride": a["stride"],
            "padding": a["padding"], "dilation": a["dilation"], "out": a["out"]}


@_max_pool.backward
def _max_pool_bw(ns, ctx, g):
    return (ns.max_pool_scatter(g, **_scatter_params(ctx)),)


_max_pool.backward(_max_pool_bw, "MaxPool2DWithIndicesBackward0")


@defop("max_pool_scatter")
def _max_pool_scatter(g, idx, size, kernel, stride, padding, dilation, out):
    """Route each output gradient to its window's argmax (adds where windows overlap)."""
    xp = xp_of(g)
    nd = len(kernel)
    pairs = tuple((p, max(0, (o - 1) * s + d * (k - 1) + 1 - n - p))
                  for n, k, s, p, d, o in zip(size[-nd:], kernel, stride, padding, dilation, out))
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(size[-nd:], pairs))
    disjoint = _disjoint(kernel, stride, dilation)
    # windows that tile the padded input write every entry below: no zero fill needed
    tiled = disjoint and all(k == s and o * s == n for k, s, o, n in zip(kernel, stride, out, padded))
    acc = (xp.empty if tiled else xp.zeros)(tuple(size[:-nd]) + padded, g.dtype)
    for p, pos in enumerate(_positions(kernel)):
        sl = _slice_at(pos, stride, dilation, out)
        if disjoint:
            xp.multiply(g, idx == p, out=acc[sl])
        else:
            acc[sl] += g * (idx == p)
    return xp.ascontiguousarray(_crop(acc, pairs, size[-nd:]))


@_max_pool_scatter.backward
def _max_pool_scatter_bw(ns, ctx, gg):
    a = ctx._args
    return (ns.max_pool_gather(gg, **{k: a[k] for k in ("idx", "kernel", "stride", "padding", "dilation", "out")}),)


@defop("max_pool_gather")
def _max_pool_gather(x, idx, kernel, stride, padding, dilation, out):
    """The values at the recorded argmax positions (the adjoint of the scatter)."""
    xpad, _ = _padded(x, kernel, stride, padding, dilation, out, 0)
    res = xp_of(x).zeros(idx.shape, x.dtype)
    for p, pos in enumerate(_positions(kernel)):
        xp_of(x).copyto(res, xpad[_slice_at(pos, stride, dilation, out)], where=idx == p)
    return res


@_max_pool_gather.backward
def _max_pool_gather_bw(ns, ctx, g):
    a = dict(ctx._args)
    a["size"] = ctx._in_meta[0][0]
    return (ns.max_pool_scatter(g, **a),)


def _flat_indices(idx, size, kernel, stride, padding, dilation, out):
    """torch's return_indices: the flat index of the argmax within each input plane."""
    xp = xp_of(idx)
    nd = len(kernel)
    pos = xp.asarray(np.array(_positions(kernel), dtype=np.int64).reshape(-1, nd))[idx.astype(np.int64)]
    flat = xp.zeros(idx.shape, np.int64)
    for i in range(nd):
        o = xp.arange(out[i], dtype=np.int64).reshape((-1,) + (1,) * (nd - 1 - i))
        coord = o * stride[i] - padding[i] + pos[..., i] * dilation[i]
        flat = flat * size[i] + coord
    return flat


def _pool_args(n: int, kernel_size, stride, padding, dilation=1) -> tuple:
    kernel = ntuple(kernel_size, n, "kernel_size")
    stride = kernel if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else \
        ntuple(stride, n, "stride")
    return kernel, stride, ntuple(padding, n, "padding"), ntuple(dilation, n, "dilation")


def _check_pool_input(input: Tensor, n: int) -> bool:
    shp = input._data.shape
    if input._data.ndim not in (n + 1, n + 2) or any(s == 0 for s in shp[1:]):
        if n == 2:
            raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
        raise RuntimeError(f"non-empty {n + 1}D or {n + 2}D (batch mode) tensor expected for input")
    return input._data.ndim == n + 1


def _out_shape(input: Tensor, n: int, kernel, stride, padding, dilation, ceil_mode: bool) -> tuple:
    if any(s == 0 for s in stride):
        raise RuntimeError("stride should not be zero")
    if any(k <= 0 for k in kernel):
        raise RuntimeError("kernel size should be greater than zero")
    for k, p, d in zip(kernel, padding, dilation):
        if ((k - 1) * d + 1) // 2 < p:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p}, "
                               f"kernel_size={k} and dilation={d}")
    size = input._data.shape[-n:]
    out = tuple(pool_out_size(*a, ceil_mode) for a in zip(size, kernel, stride, padding, dilation))
    if any(o <= 0 for o in out):
        lead = input._data.shape[-n - 1]
        raise RuntimeError(f"Given input size: ({'x'.join(str(s) for s in (lead,) + tuple(size))}). Calculated "
                           f"output size: ({'x'.join(str(s) for s in (lead,) + out)}). Output size is too small")
    return out


def _max_pool_nd(n: int, input: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool,
                 return_indices: bool):
    _check_pool_input(input, n)
    kernel, stride, padding, dilation = _pool_args(n, kernel_size, stride, padding, dilation)
    if any(d <= 0 for d in dilation):
        raise RuntimeError("dilation should be greater than zero")
    out = _out_shape(input, n, kernel, stride, padding, dilation, ceil_mode)
    params = {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation, "out": out}
    res, idx = apply(_max_pool, (input,), params)
    if not return_indices:
        return res
    flat = _flat_indices(idx, input._data.shape[-n:], kernel, stride, padding, dilation, out)
    return res, _make(flat)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """1-D max pooling over ``(N, C, L)`` (or ``(C, L)``)."""
    return _max_pool_nd(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """2-D max pooling over ``(N, C, H, W)`` (or ``(C, H, W)``); ties go to the first maximum."""
    return _max_pool_nd(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """3-D max pooling over ``(N, C, D, H, W)``."""
    return _max_pool_nd(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = True):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


# ---- average pooling ---------------------------------------------------------------------------------
def _avg_divisor(xp, dtype, size, kernel, stride, padding, out, count_include_pad: bool, divisor_override):
    """The divisor of every output, as an array broadcasting over the output (separable per dim)."""
    if divisor_override:
        return dtype.type(divisor_override)
    div = None
    nd = len(kernel)
    for i, (n, k, s, p, o) in enumerate(zip(size, kernel, stride, padding, out)):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if not count_include_pad:
            end = np.minimum(end, n)
            start = np.maximum(start, 0)
        cnt = (end - start).astype(np.float64).reshape((-1,) + (1,) * (nd - 1 - i))
        div = cnt if div is None else div * cnt
    return xp.asarray(div.astype(dtype))


@defop("avg_pool")
def _avg_pool(x, kernel, stride, padding, out, count_include_pad, divisor_override):
    xp = xp_of(x)
    ones = (1,) * len(kernel)
    xpad, _ = _padded(x, kernel, stride, padding, ones, out, 0)
    acc = None
    for pos in _positions(kernel):
        v = xpad[_slice_at(pos, stride, ones, out)]
        acc = v.copy() if acc is None else xp.add(acc, v, out=acc)
    acc /= _avg_divisor(xp, x.dtype, x.shape[-len(kernel):], kernel, stride, padding, out, count_include_pad,
                        divisor_override)
    return acc


@_avg_pool.backward
def _avg_pool_bw(ns, ctx, g):
    return (ns.avg_pool_spread(g, size=ctx._in_meta[0][0], **ctx._args),)


_avg_pool.backward(_avg_pool_bw, "AvgPool2DBackward0")


@defop("avg_pool_spread")
def _avg_pool_spread(g, size, kernel, stride, padding, out, count_include_pad, divisor_override):
    """The adjoint of avg_pool: each output's gradient / divisor, added over its window."""
    xp = xp_of(g)
    nd = len(kernel)
    ones = (1,) * nd
    g = g / _avg_divisor(xp, g.dtype, size[-nd:], kernel, stride, padding, out, count_include_pad,
                         divisor_override)
    pairs = tuple((p, max(0, (o - 1) * s + k - n - p)) for n, k, s, p, o in zip(size[-nd:], kernel, stride, padding,
                                                                                out))
    acc = xp.zeros(tuple(size[:-nd]) + tuple(n + lo + hi for n, (lo, hi) in zip(size[-nd:], pairs)), g.dtype)
    for pos in _positions(kernel):
        acc[_slice_at(pos, stride, ones, out)] += g
    return xp.ascontiguousarray(_crop(acc, pairs, size[-nd:]))


@_avg_pool_spread.backward
def _avg_pool_spread_bw(ns, ctx, gg):
    a = dict(ctx._args)
    del a["size"]
    return (ns.avg_pool(gg, **a),)


def _avg_pool_nd(n: int, input: Tensor, kernel_size, stride, padding, ceil_mode: bool, count_include_pad: bool,
                 divisor_override) -> Tensor:
    _check_pool_input(input, n)
    kernel, stride, padding, _ = _pool_args(n, kernel_size, stride, padding)
    for k, p in zip(kernel, padding):
        if k // 2 < p:
            raise RuntimeError(f"pad should be smaller than or equal to half of kernel size, but got padW = {p}, "
                               f"padH = {p}, kW = {k}, kH = {k}" if n == 2 else
                               "pad should be at most half of kernel size")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    out = _out_shape(input, n, kernel, stride, padding, (1,) * n, ceil_mode)
    params = {"kernel": kernel, "stride": stride, "padding": padding, "out": out,
              "count_include_pad": bool(count_include_pad), "divisor_override": divisor_override}
    return apply(_avg_pool, (input,), params)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling."""
    return _avg_pool_nd(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """2-D average pooling (``count_include_pad``, ``ceil_mode`` and ``divisor_override`` as torch)."""
    return _avg_pool_nd(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """3-D average pooling."""
    return _avg_pool_nd(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


# ---- adaptive pooling: separable linear maps ----------------------------------------------------------
def _bins(n: int, o: int) -> list[tuple[int, int]]:
    return [((i * n) // o, ((i + 1) * n + o - 1) // o) for i in range(o)]


def _mean_matrix(n: int, o: int, dtype) -> np.ndarray:
    m = np.zeros((o, n), dtype)
    for i, (a, b) in enumerate(_bins(n, o)):
        m[i, a:b] = 1.0 / (b - a)
    return m


def apply_mats(x, mats):
    """Apply one matrix per trailing dim: ``x[..., n_i, ...] -> x[..., o_i, ...]`` with ``mats[i]`` (o_i, n_i)."""
    xp = xp_of(x)
    nd = len(mats)
    for i, m in enumerate(mats):
        axis = x.ndim - nd + i
        if axis == x.ndim - 1:
            x = xp.matmul(x, m.T)
        elif axis == x.ndim - 2:
            x = xp.matmul(m, x)
        else:
            x = xp.moveaxis(xp.tensordot(m, x, axes=([1], [axis])), 0, axis)
    return xp.ascontiguousarray(x)


@defop("resample")
def _resample(x, mats):
    return apply_mats(x, mats)


@_resample.backward
def _resample_bw(ns, ctx, g):
    return (ns.resample(g, mats=tuple(m.T for m in ctx._args["mats"])),)


def linear_map(name: str, node_name: str):
    """Register a separable linear map op (its backward is ``resample`` with transposed matrices)."""
    op = defop(name)(lambda x, mats: apply_mats(x, mats))
    op.backward(_resample_bw, node_name)
    return op


_adaptive_avg = linear_map("adaptive_avg_pool", "AdaptiveAvgPool2DBackward0")


def _mats_for(input: Tensor, mats):
    xp = xp_of(input._data)
    return tuple(xp.asarray(m) for m in mats)


def _adaptive_size(input: Tensor, output_size, n: int) -> tuple:
    size = input._data.shape[-n:]
    if isinstance(output_size, (list, tuple)):
        if len(output_size) != n:
            raise ValueError(f"adaptive_avg_pool{n}d: output_size must be {n}")
        return tuple(s if o is None else int(o) for s, o in zip(size, output_size))
    return (int(output_size),) * n


def _adaptive_avg_nd(n: int, input: Tensor, output_size) -> Tensor:
    nd = input._data.ndim
    if nd not in (n + 1, n + 2) or any(s == 0 for s in input._data.shape[-n:]):
        raise RuntimeError(f"adaptive_avg_pool{n}d(): Expected {n + 1}D or {n + 2}D tensor, but got "
                           f"{list(input._data.shape)}")
    out = _adaptive_size(input, output_size, n)
    dt = input._data.dtype
    mats = _mats_for(input, [_mean_matrix(s, o, dt) for s, o in zip(input._data.shape[-n:], out)])
    return apply(_adaptive_avg, (input,), {"mats": mats})


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average over ``output_size`` adaptive bins (torch's floor/ceil bin edges)."""
    return _adaptive_avg_nd(1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average over adaptive bins; ``output_size`` an int or (h, w), ``None`` keeps that size."""
    return _adaptive_avg_nd(2, input, output_size)


@defop("adaptive_max_pool", extra=True)
def _adaptive_max_pool(x, out):
    """Max over each adaptive bin, one bin at a time (bins are few); ``extra``: flat argmax per plane."""
    xp = xp_of(x)
    n = len(out)
    size = x.shape[-n:]
    lead = x.shape[:-n]
    grids = [_bins(s, o) for s, o in zip(size, out)]
    vals = xp.empty(lead + (math.prod(out),), x.dtype)
    idx = xp.empty(lead + (math.prod(out),), np.int64)
    for j, cell in enumerate(np.ndindex(*out)):
        sl = tuple(slice(*grids[i][c]) for i, c in enumerate(cell))
        win = x[(Ellipsis,) + sl].reshape(lead + (-1,))
        k = xp.argmax(win, axis=-1)
        vals[..., j] = xp.take_along_axis(win, k[..., None], -1)[..., 0]
        coords = np.unravel_index(k, tuple(s.stop - s.start for s in sl)) if xp is np else \
            xp.unravel_index(k, tuple(s.stop - s.start for s in sl))
        flat = 0
        for i, c in enumerate(coords):
            flat = flat * size[i] + c + sl[i].start
        idx[..., j] = flat
    return vals.reshape(lead + tuple(out)), idx.reshape(lead + tuple(out))


@_adaptive_max_pool.backward
def _adaptive_max_pool_bw(ns, ctx, g):
    return (ns.plane_scatter(g, idx=ctx._extra, size=ctx._in_meta[0][0], n=len(ctx._args["out"])),)


_adaptive_max_pool.backward(_adaptive_max_pool_bw, "AdaptiveMaxPool2DBackward0")


@defop("plane_scatter")
def _plane_scatter(g, idx, size, n):
    """Add ``g`` at the flat positions ``idx`` within each ``n``-d plane of a zero tensor of ``size``."""
    xp = xp_of(g)
    rows = math.prod(size[:-n])
    acc = xp.zeros((rows, math.prod(size[-n:])), g.dtype)
    gi = g.reshape(rows, -1)
    ii = idx.reshape(rows, -1)
    r = xp.arange(rows)
    for j in range(gi.shape[1]):  # one output cell at a time: no repeated index within one statement
        acc[r, ii[:, j]] += gi[:, j]
    return acc.reshape(size)


@_plane_scatter.backward
def _plane_scatter_bw(ns, ctx, gg):
    return (ns.plane_gather(gg, idx=ctx._args["idx"], n=ctx._args["n"]),)


@defop("plane_gather")
def _plane_gather(x, idx, n):
    """The values at flat positions ``idx`` within each ``n``-d plane (the adjoint of plane_scatter)."""
    rows = math.prod(x.shape[:-n])
    flat = x.reshape(rows, -1)
    return xp_of(x).take_along_axis(flat, idx.reshape(rows, -1), 1).reshape(idx.shape)


@_plane_gather.backward
def _plane_gather_bw(ns, ctx, g):
    a = ctx._args
    return (ns.plane_scatter(g, idx=a["idx"], size=ctx._in_meta[0][0], n=a["n"]),)


def _adaptive_max_nd(n: int, input: Tensor, output_size, return_indices: bool):
    nd = input._data.ndim
    if nd not in (n + 1, n + 2) or any(s == 0 for s in input._data.shape[-n:]):
        raise RuntimeError(f"adaptive_max_pool{n}d(): Expected {n + 1}D or {n + 2}D tensor, but got "
                           f"{list(input._data.shape)}")
    out = _adaptive_size(input, output_size, n)
    res, idx = apply(_adaptive_max_pool, (input,), {"out": out})
    if not return_indices:
        return res
    return res, _make(idx)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Max over adaptive bins."""
    return _adaptive_max_nd(1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max over adaptive bins (one small op per output cell; meant for small outputs)."""
    return _adaptive_max_nd(2, input, output_size, return_indices)


tensor_fn("resample", lambda x, mats: apply(_resample, (x,), {"mats": mats}))

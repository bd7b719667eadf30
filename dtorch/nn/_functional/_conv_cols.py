"""The column layout of conv.py: ``im2col`` (every receptive field as a column, ``(N, groups, C/groups *
prod(kernel), L)`` or batch-minor) and its adjoint ``col2im``, plus the geometry helpers they share.

1-D and 2-D float arrays on the CPU go through the C kernels of :mod:`._conv_c`; everything else (3-D, other
dtypes, CuPy, a machine without a C compiler) through numpy: one strided copy or add per kernel position, with
the outputs that read the padding zeroed instead, so no padded copy of the input is made.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..._device import xp_of
from . import _conv_c


def pad_zeros(x, padding):
    """Zero-pad the trailing ``len(padding)`` dims of ``x`` by ``(lo, hi)`` pairs (non-negative)."""
    if not any(lo or hi for lo, hi in padding):
        return x
    nd = len(padding)
    lead = x.shape[:x.ndim - nd]
    shape = lead + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[-nd:], padding))
    out = xp_of(x).zeros(shape, x.dtype)
    out[(Ellipsis,) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape[-nd:], padding))] = x
    return out


def out_size(size, kernel, stride, padding, dilation) -> tuple:
    return tuple((s + lo + hi - d * (k - 1) - 1) // st + 1
                 for s, k, st, (lo, hi), d in zip(size, kernel, stride, padding, dilation))


def _positions(kernel) -> list[tuple]:
    """Every kernel position, row-major (the order of the weight's trailing dims)."""
    pos = [()]
    for k in kernel:
        pos = [p + (i,) for p in pos for i in range(k)]
    return pos


def _clipped(pos, size, stride, padding, dilation, out) -> tuple:
    """For kernel position ``pos``: per dim, the ``[o0, o1)`` range of outputs whose input lies inside
    the unpadded input, and the strided input slice they read."""
    ranges, src = [], []
    for q, n, s, (lo, _), d, o in zip(pos, size, stride, padding, dilation, out):
        off = q * d - lo  # input index read by output 0
        o0 = min(o, max(0, -(off // s)))
        o1 = max(o0, min(o, (n - 1 - off) // s + 1))
        ranges.append((o0, o1))
        src.append(slice(o0 * s + off, (o1 - 1) * s + off + 1, s) if o1 > o0 else slice(0, 0))
    return ranges, (Ellipsis,) + tuple(src)


def _inner(ranges) -> tuple:
    return (Ellipsis,) + tuple(slice(a, b) for a, b in ranges)


def _outside(ranges, out) -> tuple:
    """Index tuples of the trailing dims outside ``ranges`` (the outputs that read padding)."""
    nd, idx = len(ranges), []
    for i, ((o0, o1), n) in enumerate(zip(ranges, out)):
        lead = (Ellipsis,) + (slice(None),) * i
        tail = (slice(None),) * (nd - 1 - i)
        if o0:
            idx.append(lead + (slice(0, o0),) + tail)
        if o1 < n:
            idx.append(lead + (slice(o1, n),) + tail)
    return tuple(idx)


def _plan(kernel, size, stride, padding, dilation, out) -> tuple:
    """Per kernel position: the input slice it reads, the outputs that read inside the input, and the
    outputs that read padding; cached per geometry (every batch chunk and step reuses it)."""
    return _cached_plan(tuple(kernel), tuple(size), tuple(stride), tuple(tuple(p) for p in padding),
                        tuple(dilation), tuple(out))


@functools.lru_cache(maxsize=256)
def _cached_plan(kernel, size, stride, padding, dilation, out) -> tuple:
    plan = []
    for pos in _positions(kernel):
        ranges, src = _clipped(pos, size, stride, padding, dilation, out)
        plan.append((src, _inner(ranges), _outside(ranges, out)))
    return tuple(plan)


def im2col(x, kernel, stride, padding, dilation, groups: int, batch_minor: bool = False, ones_row: bool = False):
    """Contiguous columns and the output size: ``(N, groups, C/groups * prod(kernel), L)``, or with
    ``batch_minor`` ``(groups, C/groups * prod(kernel), N * L)`` (the whole batch in one GEMM operand).
    ``ones_row`` (one group, per-sample columns) appends a row of ones to each sample's columns, so that a bias
    appended to the weight's rows is added by the GEMM itself.

    One strided copy per kernel position straight from ``x``; the outputs that read the
    padding are zeroed instead, so no padded copy of ``x`` is made.
    """
    n, c = x.shape[:2]
    size = x.shape[2:]
    out = out_size(size, kernel, stride, padding, dilation)
    kk = math.prod(kernel)
    length = math.prod(out)
    rows = c * kk + ones_row
    if _conv_c.available(x, len(size)):
        cols = np.empty((c * kk, n, length) if batch_minor else (n, rows, length), x.dtype)
        _conv_c.im2col_into(x, cols, kernel, stride, padding, dilation, out,
                            (length, n * length) if batch_minor else (rows * length, length))
    elif batch_minor:
        cols = xp_of(x).empty((c, kk, n) + out, x.dtype)
        _fill_columns(x.swapaxes(0, 1), cols.swapaxes(0, 1), True, kernel, stride, padding, dilation, out)
    else:
        cols = xp_of(x).empty((n, rows, length), x.dtype)
        body = cols[:, :c * kk].reshape((n, c, kk) + out)  # a view: rows split, L unfolded
        _fill_columns(x, body.swapaxes(0, 2), False, kernel, stride, padding, dilation, out)
    if batch_minor:
        return cols.reshape(groups, -1, n * length), out
    if ones_row:
        cols[:, -1] = 1
    return cols.reshape(n, groups, -1, length), out


def _fill_columns(x, planes, batch_minor: bool, kernel, stride, padding, dilation, out) -> None:
    """numpy's columns: one strided copy per kernel position into ``planes`` (indexed by position first)."""
    size = x.shape[2:]
    for p, (src, inner, outside) in enumerate(_plan(kernel, size, stride, padding, dilation, out)):
        plane = planes[p] if batch_minor else planes[p].swapaxes(0, 1)
        for idx in outside:
            plane[idx] = 0
        plane[inner] = x[src]


def col2im(cols, channels: int, size, kernel, stride, padding, dilation, out=None, batch_minor: bool = False):
    """Adjoint of :func:`im2col`: add every column entry back into its input position.

    cols: ``(N, C * prod(kernel), L)`` (``batch_minor``: ``(C * prod(kernel), N * L)`` and ``out`` given);
    one strided add per kernel position into a contiguous ``(N, C, *size)`` result, ``out`` when given
    (entries that fall on the padding are dropped).
    """
    osize = out_size(size, kernel, stride, padding, dilation)
    kk = math.prod(kernel)
    if _conv_c.available(cols, len(size)):
        if out is None:
            out = np.empty((cols.shape[0], channels) + tuple(size), cols.dtype)
        length = math.prod(osize)
        _conv_c.col2im_into(np.ascontiguousarray(cols), out, kernel, stride, padding, dilation, osize,
                            (length, out.shape[0] * length) if batch_minor else (channels * kk * length, length))
        return out
    if out is None:
        out = xp_of(cols).zeros((cols.shape[0], channels) + tuple(size), cols.dtype)
    else:
        out[...] = 0
    if batch_minor:
        planes = cols.reshape((channels, kk, out.shape[0]) + osize).swapaxes(0, 1)
        dst_arr = out.swapaxes(0, 1)
    else:
        planes = cols.reshape((cols.shape[0], channels, kk) + osize).swapaxes(0, 2).swapaxes(1, 2)
        dst_arr = out
    for p, (dst, inner, _) in enumerate(_plan(kernel, size, stride, padding, dilation, osize)):
        dst_arr[dst] += planes[p][inner]
    return out

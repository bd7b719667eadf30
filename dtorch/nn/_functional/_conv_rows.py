"""Channels-last rows for the convolution kernels of conv.py (groups == 1, on the CPU, channels x kernel width
wide enough).

The columns of conv.py gather one output row (``out_w`` strided floats) per copy: for a strided layer with few
output columns, numpy's copy loop runs a few floats at a time. Rows are the transposed layout, ``(N * L,
prod(kernel) * C)`` gathered from a channels-last copy of the input, where each copy moves ``kernel_w * C``
contiguous floats: one channels-last pass over the input buys gathers several times faster, and the products
are GEMMs with the whole chunk of the batch as their long side. Results come back to NCHW in the output's
one transpose.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import _conv_c, _conv_taps, _gemm_c

# rows pay off once a kernel row of channels (kernel_w * C floats) is this many floats
ROWS_MIN_RUN = 32
# below this many input channels the strided input gradient's scatter-add (runs of C floats) loses to
# the sub-pixel gather, whose extra window row and column cost more at wider C (DCGAN's 4x4 stride 2, numpy's
# scatter: faster at 32 channels, slower at 48; the C scatter of _conv_c: 3.2 against 3.9 ms at 32, even at 16);
# the gather's GEMM has prod(stride) * C columns, far below BLAS's speed under SUBPIXEL_MIN_COLS (DCGAN's RGB
# layer: 3x slower)
SUBPIXEL_MAX_C = {"numpy": 48, "c": 32}
# the stride-1 input gradient as a full correlation while the input has at most this many times g's pixels
FULL_MAX_GROWTH = 1.5
SUBPIXEL_MIN_COLS = 64


def use_rows(x, channels: int, kernel, groups: int) -> bool:
    return groups == 1 and isinstance(x, np.ndarray) and channels * kernel[-1] >= ROWS_MIN_RUN


def _channels_last(x, padding):
    """``(N, C, *S)`` -> a contiguous zero-padded ``(N, *S_padded, C)``."""
    if x.ndim == 4 and _conv_c.available(x, 2):
        return _conv_c.channels_last(x, padding)
    shape = (x.shape[0],) + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], padding)) + (x.shape[1],)
    out = np.empty(shape, x.dtype) if not any(lo or hi for lo, hi in padding) else np.zeros(shape, x.dtype)
    inner = (slice(None),) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape[2:], padding))
    out[inner] = np.moveaxis(x, 1, -1)
    return out


def _window(xh, kernel, stride, dilation, out):
    """The read-only ``(N, *out, *kernel, C)`` view of every receptive field of channels-last ``xh``."""
    st = xh.strides
    sp = st[1:-1]
    strides = (st[0],) + tuple(s * k for s, k in zip(sp, stride)) + tuple(s * d for s, d in zip(sp, dilation))
    return as_strided(xh, (xh.shape[0],) + tuple(out) + tuple(kernel) + (xh.shape[-1],), strides + (st[-1],),
                      writeable=False)


def im2row(x, kernel, stride, padding, dilation, out):
    """Contiguous rows ``(N * L, prod(kernel) * C)``, the columns in ``(kernel..., C)`` order."""
    if len(kernel) == 2 and _conv_c.available(x, 2):
        return _conv_c.im2row(x, kernel, stride, padding, dilation, out)
    win = _window(_channels_last(x, padding), kernel, stride, dilation, out)
    rows = np.empty(win.shape, x.dtype)
    np.copyto(rows, win)
    return rows.reshape(x.shape[0] * math.prod(out), -1)


def row2im_into(rows, y, kernel, stride, padding, dilation, out) -> None:
    """Adjoint of :func:`im2row`: add every row entry back into its input position, written to NCHW ``y``."""
    if len(kernel) == 2 and _conv_c.available(y, 2):
        _conv_c.row2im_into(np.ascontiguousarray(rows), y, kernel, stride, padding, dilation, out)
        return
    n, c = y.shape[:2]
    size = y.shape[2:]
    buf = np.zeros((n,) + tuple(s + lo + hi for s, (lo, hi) in zip(size, padding)) + (c,), rows.dtype)
    planes = rows.reshape((n,) + tuple(out) + (math.prod(kernel), c))
    for p, pos in enumerate(np.ndindex(*kernel)):
        dst = (slice(None),) + tuple(slice(q * d, q * d + s * (o - 1) + 1, s)
                                     for q, d, s, o in zip(pos, dilation, stride, out))
        buf[dst] += planes[..., p, :]
    inner = (slice(None),) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(size, padding))
    y[...] = np.moveaxis(buf[inner], -1, 1)


def weight_rows(w):
    """``(O, C, *kernel)`` -> ``(O, prod(kernel) * C)``, the rows' column order."""
    return np.ascontiguousarray(np.moveaxis(w, 1, -1)).reshape(w.shape[0], -1)


def rows_weight(gw, shape):
    """Inverse of :func:`weight_rows`: ``(O, prod(kernel) * C)`` -> contiguous ``(O, C, *kernel)``."""
    o, c = shape[:2]
    return np.ascontiguousarray(np.moveaxis(gw.reshape((o,) + tuple(shape[2:]) + (c,)), -1, 1))


def to_rows(a):
    """``(N, O, *spatial)`` -> contiguous ``(N * L, O)``."""
    n, o = a.shape[:2]
    return np.ascontiguousarray(a.reshape(n, o, -1).swapaxes(1, 2)).reshape(-1, o)


def from_rows(r, y) -> None:
    """Write ``(N * L, O)`` into NCHW ``y`` (a view of any strides)."""
    np.moveaxis(y, 1, -1)[...] = r.reshape(y.shape[:1] + y.shape[2:] + y.shape[1:2])


# ---- the three kernels of conv.py on rows; ``chunks``: slices of the batch --------------------------------
def forward(x, w, y, stride, padding, dilation, chunks) -> None:
    """``y = conv(x, w)`` into NCHW ``y``."""
    kernel, out = w.shape[2:], y.shape[2:]
    wt = weight_rows(w).T
    direct = _gemm_c.conv_serves(x, w.shape[0], dilation)
    if direct:
        wt = np.ascontiguousarray(wt)
    for sl in chunks:
        if direct:
            rows = _gemm_c.conv_forward(_channels_last(x[sl], padding), wt, kernel, stride, dilation, out)
        else:
            rows = _gemm_c.matmul(im2row(x[sl], kernel, stride, padding, dilation, out), wt)
        from_rows(rows, y[sl])


def _full_correlation(g, kernel, stride, padding, dilation):
    """At stride 1 the input gradient is the full correlation of ``g`` with the flipped kernel: its padding,
    or None where the conv's padding passes the kernel's reach (that would crop), ``g`` is too narrow, or
    the input has many more pixels than ``g`` (DCGAN's 1x1 noise to 4x4: the GEMM would multiply by 16x
    more, mostly zero, rows than the scatter's)."""
    full = tuple((d * (k - 1) - lo, d * (k - 1) - hi) for k, d, (lo, hi) in zip(kernel, dilation, padding))
    if not all(s == 1 for s in stride) or min(min(f) for f in full) < 0:
        return None
    size = math.prod(n + lo + hi - d * (k - 1) for n, (lo, hi), k, d in zip(g.shape[2:], full, kernel, dilation))
    if size > FULL_MAX_GROWTH * math.prod(g.shape[2:]) or not use_rows(g, g.shape[1], kernel, 1):
        return None
    return full


def _subpixel_fits(g, channels: int, kernel, stride, dilation, groups: int) -> bool:
    """Strided, the kernel a multiple of the stride, and few input channels (the scatter-add's runs)."""
    return (groups == 1 and any(s > 1 for s in stride) and SUBPIXEL_MIN_COLS <= channels * math.prod(stride)
            and channels < SUBPIXEL_MAX_C["c" if _conv_c.available(g, len(kernel)) else "numpy"]
            and all(d == 1 and k % s == 0 for k, s, d in zip(kernel, stride, dilation))
            and use_rows(g, g.shape[1], tuple(k // s for k, s in zip(kernel, stride)), 1))


def input_grad_fits(g, channels: int, kernel, stride, dilation, groups: int) -> bool:
    """Whether :func:`input_grad` serves the input gradient with ``channels`` input channels."""
    return use_rows(g, channels, kernel, groups) or _subpixel_fits(g, channels, kernel, stride, dilation, groups)


def input_grad(g, w, y, stride, padding, dilation, chunks) -> None:
    """The adjoint of conv in its input (the transposed convolution of ``g``) into NCHW ``y``: at stride 1 by
    kernel rows (:mod:`._conv_taps`) or as a full correlation, for a kernel a multiple of the stride and few
    channels by sub-pixel phases (gathers of rows), else the GEMM's rows scatter-added back (row2im)."""
    kernel = w.shape[2:]
    full = _full_correlation(g, kernel, stride, padding, dilation)
    if full is not None and _conv_taps.fits(g, y.shape[1], y.shape[2:], kernel, stride, padding, dilation, 1):
        _conv_taps.input_grad(g, w, y, padding, dilation)
        return
    if full is not None:
        flip = (slice(None), slice(None)) + (slice(None, None, -1),) * len(kernel)
        forward(g, w[flip].swapaxes(0, 1), y, stride, full, dilation, chunks)
        return
    if _subpixel_fits(g, y.shape[1], kernel, stride, dilation, 1):
        _input_grad_subpixel(g, w, y, stride, padding, chunks)
        return
    wr = weight_rows(w)
    for sl in chunks:
        row2im_into(_gemm_c.matmul(to_rows(g[sl]), wr), y[sl], w.shape[2:], stride, padding, dilation, g.shape[2:])


def _subpixel_weight(w, stride):
    """``(O, C, *kernel)`` -> ``(prod(kernel / stride) * O, prod(stride) * C)``: for each phase ``r`` (the
    columns) the flipped sub-kernel ``w[..., r::s]`` in the rows' ``(window..., O)`` order."""
    o, c, kernel = w.shape[0], w.shape[1], w.shape[2:]
    nd = len(kernel)
    split = w.reshape((o, c) + tuple(x for k, s in zip(kernel, stride) for x in (k // s, s)))
    split = split[(slice(None), slice(None)) + (slice(None, None, -1), slice(None)) * nd]
    window, phase = tuple(2 + 2 * i for i in range(nd)), tuple(3 + 2 * i for i in range(nd))
    wc = split.transpose(window + (0,) + phase + (1,))
    return np.ascontiguousarray(wc).reshape(math.prod(kernel) // math.prod(stride) * o, -1)


def _input_grad_subpixel(g, w, y, stride, padding, chunks) -> None:
    """The input gradient of a stride-s conv whose kernel is a multiple of s (DCGAN's 4x4 stride 2).

    Input ``i = q * s + r - lo`` (per dim) gets ``sum_m g[q - m] w[r + s m]``: every phase ``r`` reads the
    same window of ``g`` ending at ``q``, so one gather of ``(k / s)``-wide windows and one GEMM against
    all phases' flipped sub-kernels give every input, and a depth-to-space copy puts them in place.
    """
    size, osize, kernel = y.shape[2:], g.shape[2:], w.shape[2:]
    nd = len(kernel)
    kq = tuple(k // s for k, s in zip(kernel, stride))
    qmin = tuple((lo // s) for s, (lo, _) in zip(stride, padding))  # q0 of the last phase, the lowest
    qmax = tuple((n - 1 + lo) // s for n, s, (lo, _) in zip(size, stride, padding))
    pads = [(k - 1 - a, b - og + 1) for k, a, b, og in zip(kq, qmin, qmax, osize)]
    crop = (slice(None), slice(None)) + tuple(slice(max(0, -lo), og - max(0, -hi)) for (lo, hi), og in zip(pads, osize))
    pads = tuple((max(0, lo), max(0, hi)) for lo, hi in pads)
    gc = g[crop]
    q = tuple(b - a + 1 for a, b in zip(qmin, qmax))
    wc = _subpixel_weight(w, stride)
    start = tuple(lo - a * s for a, s, (lo, _) in zip(qmin, stride, padding))
    for sl in chunks:
        t = _gemm_c.matmul(im2row(gc[sl], kq, (1,) * nd, pads, (1,) * nd, q), wc)
        _depth_to_space_into(t.reshape((t.shape[0] // math.prod(q),) + q + tuple(stride) + (y.shape[1],)),
                             y[sl], start)


def _depth_to_space_into(t, y, start) -> None:
    """``y[:, :, i...] = t[:, Q..., r..., :]`` for ``i = Q * s + r - start`` (per dim) inside ``y``: one strided
    copy per phase ``r``, straight from the GEMM's rows."""
    nd = y.ndim - 2
    q, stride = t.shape[1:1 + nd], t.shape[1 + nd:1 + 2 * nd]
    yl = np.moveaxis(y, 1, -1)
    for r in np.ndindex(*stride):
        src, dst = [slice(None)], [slice(None)]
        for qn, s, ri, st, n in zip(q, stride, r, start, y.shape[2:]):
            q0 = max(0, -((ri - st) // s))  # the first Q whose row Q * s + r - start is >= 0
            q1 = max(q0, min(qn, (n - 1 - ri + st) // s + 1))
            src.append(slice(q0, q1))
            dst.append(slice(q0 * s + ri - st, q1 * s + ri - st, s) if q1 > q0 else slice(0, 0))
        yl[tuple(dst)] = t[tuple(src) + tuple(r) + (slice(None),)]


def weight_grad(x, g, kernel, stride, padding, dilation, chunks):
    """The adjoint of conv in its weight: ``(O, C, *kernel)``."""
    out = g.shape[2:]
    gwt = np.zeros((math.prod(kernel) * x.shape[1], g.shape[1]), g.dtype)
    direct = _gemm_c.conv_serves(x, g.shape[1], dilation)
    for sl in chunks:
        if direct:
            _gemm_c.conv_weight_grad_add(_channels_last(x[sl], padding), to_rows(g[sl]), gwt, kernel, stride,
                                         dilation, out)
        else:
            _gemm_c.add_tn(im2row(x[sl], kernel, stride, padding, dilation, out), to_rows(g[sl]), gwt)
    return rows_weight(gwt.T, (g.shape[1], x.shape[1]) + tuple(kernel))

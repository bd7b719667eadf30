"""The stride-1 input gradient as one GEMM per kernel row, summed by BLAS (groups == 1, CPU, 2+ spatial dims).

``_conv_rows`` serves this gradient as a full correlation of the padded ``g``: patches of ``prod(kernel) * O``
columns (the im2row copy of the largest operand of the step) and a GEMM whose result is only ``C`` wide. Here
``g`` is laid out channels-last at "full height" (every padded input row ``q``, zeros past the output rows),
and kernel row ``kh`` adds ``g_rows @ w[:, :, kh]`` — ``(O, prod(kernel[1:]) * C)``, a wide result — into the
window rows ``[kh * dilation * span, ...)``: one GEMM per kernel row on plain row-range views, accumulated by
BLAS (``beta = 1``, :mod:`._blas`). The windows (one row per input row and output position of the other dims,
``prod(kernel[1:])`` input pixels wide) are then folded back onto the padded input with one strided add per
position of ``kernel[1:]``.
"""
from __future__ import annotations

import math

import numpy as np

from ._blas import gemm

# a window row (prod(kernel[1:]) * C floats) at least this wide: narrower GEMMs run far below BLAS's speed
TAPS_MIN_K = 32
# bytes of g rows + windows per batch chunk: the chunk's products run at BLAS's peak while they stay in cache
CHUNK_BYTES = 1 << 21


def _span(size, kernel, padding, dilation) -> int:
    """Output positions per input row: the product of the output sizes of every spatial dim but the first."""
    return math.prod(s + lo + hi - d * (k - 1)
                     for s, k, (lo, hi), d in zip(size[1:], kernel[1:], padding[1:], dilation[1:]))


def fits(g, channels: int, size, kernel, stride, padding, dilation, groups: int) -> bool:
    """Stride 1, and the GEMMs' rows (every padded input row times ``span``) no more than the full
    correlation's (every input pixel): so padding wider than the kernel's reach goes the full way."""
    if groups != 1 or not isinstance(g, np.ndarray) or len(kernel) < 2 or any(s != 1 for s in stride):
        return False
    if channels * math.prod(kernel[1:]) < TAPS_MIN_K:
        return False
    rows = (size[0] + sum(padding[0])) * _span(size, kernel, padding, dilation)
    return rows <= math.prod(size)


def _weight_rows(w):
    """``(O, C, k0, *k_rest)`` -> ``(k0, O, prod(k_rest) * C)``: each kernel row in the windows' column order."""
    o, _, k0 = w.shape[:3]
    return np.ascontiguousarray(np.moveaxis(np.moveaxis(w, 1, -1), 1, 0)).reshape(k0, o, -1)


def _full_height(g, q: int):
    """``(N, O, *out)`` -> contiguous ``(N * q * span, O)`` rows, zero past the ``out[0]`` output rows."""
    n, o = g.shape[:2]
    rows = np.empty((n, q) + g.shape[3:] + (o,), g.dtype)
    rows[:, :g.shape[2]] = np.moveaxis(g, 1, -1)
    rows[:, g.shape[2]:] = 0
    return rows.reshape(-1, o)


def _fold(dxc, windows, kernel_rest, dilation_rest, out_rest) -> None:
    """Add every window row's entries back onto channels-last padded ``dxc`` ``(N, q, *padded_rest, C)``."""
    n, q, c = dxc.shape[0], dxc.shape[1], dxc.shape[-1]
    planes = windows.reshape((n, q) + tuple(out_rest) + (math.prod(kernel_rest), c))
    for j, pos in enumerate(np.ndindex(*kernel_rest)):
        dst = (slice(None), slice(None)) + tuple(slice(i * d, i * d + o) for i, d, o in
                                                 zip(pos, dilation_rest, out_rest))
        dxc[dst] += planes[..., j, :]


def input_grad(g, w, y, padding, dilation) -> None:
    """The adjoint of a stride-1 conv in its input, written to NCHW ``y``."""
    size, kernel = y.shape[2:], w.shape[2:]
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, padding))
    q, span = padded[0], math.prod(g.shape[3:])
    wr = _weight_rows(w)
    k_rest = wr.shape[2]
    last = (kernel[0] - 1) * dilation[0] * span
    crop = (slice(None),) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(size, padding))
    step = max(1, CHUNK_BYTES // max(1, q * span * (k_rest + g.shape[1]) * g.itemsize))
    for start in range(0, g.shape[0], step):
        sl = slice(start, min(g.shape[0], start + step))
        n = sl.stop - sl.start
        m = n * q * span - last  # the last sample's final rows are past every output row
        rows = _full_height(g[sl], q)[:m]
        windows = np.empty((n * q * span, k_rest), g.dtype)
        windows[m:] = 0  # kernel row 0 sets rows [0, m), the others add
        for kh in range(kernel[0]):
            off = kh * dilation[0] * span
            gemm(rows, wr[kh], windows[off:off + m], beta=1.0 if kh else 0.0)
        dxc = np.zeros((n,) + padded + (y.shape[1],), g.dtype)
        _fold(dxc, windows, kernel[1:], dilation[1:], g.shape[3:])
        np.moveaxis(y[sl], 1, -1)[...] = dxc[crop]

"""layer_norm on CUDA: fused row kernels for the forward (y, xhat, rstd) and the input gradient."""
from __future__ import annotations

import math

from ..._dispatch import OpDef
from .._backward import register_backward_kernel
from .._compile import f64, i32, i64, launch_rows, raw_kernel
from ..._device import require_cupy
from ..kernels import layer_norm as src
from ..kernels import raw_supported


def _kernels(dtype):
    fwd, bwd = src.names(dtype)
    code = src.source(dtype)
    return raw_kernel(code, fwd), raw_kernel(code, bwd)


def _fits(x, w, b) -> bool:
    same = all(t is None or (t.dtype == x.dtype and t.flags.c_contiguous) for t in (w, b))
    return x.size > 0 and raw_supported(x.dtype) and x.flags.c_contiguous and same


def forward(x, w, b, n_axes: int, eps: float):
    """(y, (xhat, rstd)) as the reference kernel returns them: xhat shaped like x, rstd [rows, 1]."""
    cp = require_cupy()
    n = math.prod(x.shape[x.ndim - n_axes:])
    rows = x.size // n
    y, xhat = cp.empty_like(x), cp.empty_like(x)
    rstd = cp.empty((rows, 1), x.dtype)
    launch_rows(_kernels(x.dtype)[0], rows, (x, x if w is None else w, x if b is None else b, y, xhat, rstd,
                                             i64(n), f64(eps), i32(w is not None), i32(b is not None)))
    return y, (xhat, rstd)


def input_grad(g, xhat, rstd, w):
    cp = require_cupy()
    g = cp.ascontiguousarray(g, dtype=xhat.dtype)
    n = xhat.size // rstd.size
    gx = cp.empty_like(xhat)
    launch_rows(_kernels(xhat.dtype)[1], rstd.size, (g, xhat, rstd, xhat if w is None else w, gx, i64(n),
                                                     i32(w is not None)))
    return gx


def install(op: OpDef) -> None:
    """Register the fused layer norm on ``op`` (native_layer_norm: inputs x, weight, bias)."""
    reference = op.cuda_kernel

    def kernel(x, w, b, n_axes, eps):
        return forward(x, w, b, n_axes, eps) if _fits(x, w, b) else reference(x, w, b, n_axes, eps)

    def bw(ctx, g, x, w):
        xhat, rstd = ctx._extra
        if not _fits(x, w, None) or xhat.dtype != x.dtype:
            return NotImplemented
        need = ctx.needs_input_grad
        n = xhat.size // rstd.size
        gx = input_grad(g, xhat, rstd, w).reshape(x.shape) if need[0] else None
        g2 = g.reshape(-1, n)
        gw = (g2 * xhat.reshape(-1, n)).sum(axis=0).reshape(w.shape) if w is not None and need[1] else None
        gb = g2.sum(axis=0).reshape(ctx._in_meta[2][0]) if len(need) > 2 and need[2] else None
        return gx, gw, gb

    op.register_kernel("cuda", kernel)
    register_backward_kernel(op, bw)

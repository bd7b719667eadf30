"""softmax / log_softmax on CUDA: one fused kernel per direction over the last, contiguous axis."""
from __future__ import annotations

from ..._dispatch import OpDef
from .._backward import register_backward_kernel
from .._compile import i32, i64, launch_rows, raw_kernel
from ..._device import require_cupy
from ..kernels import raw_supported
from ..kernels import softmax as src


def _fits(a, dim) -> bool:
    return a.size > 0 and raw_supported(a.dtype) and dim == (a.ndim - 1,) and a.flags.c_contiguous


def _kernels(dtype):
    fwd, bwd = src.names(dtype)
    code = src.source(dtype)
    return raw_kernel(code, fwd), raw_kernel(code, bwd)


def forward(a, dim, log_mode: bool):
    """softmax (or log_softmax) of a contiguous array along its last axis."""
    cp = require_cupy()
    n = a.shape[-1]
    out = cp.empty_like(a)
    launch_rows(_kernels(a.dtype)[0], a.size // n, (a, out, i64(n), i32(log_mode)))
    return out


def backward(g, y, log_mode: bool):
    cp = require_cupy()
    g = cp.ascontiguousarray(g, dtype=y.dtype)
    n = y.shape[-1]
    gx = cp.empty_like(y)
    launch_rows(_kernels(y.dtype)[1], y.size // n, (g, y, gx, i64(n), i32(log_mode)))
    return gx


def install(op: OpDef, log_mode: bool) -> None:
    """Register the fused forward and backward of softmax (``log_mode`` False) or log_softmax."""
    reference = op.cuda_kernel

    def kernel(a, dim):
        return forward(a, dim, log_mode) if _fits(a, dim) else reference(a, dim)

    def bw(ctx, g, y):
        if not _fits(y, ctx._args["dim"]):
            return NotImplemented
        return (backward(g, y, log_mode),)

    op.register_kernel("cuda", kernel)
    register_backward_kernel(op, bw)

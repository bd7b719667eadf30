"""GELU on CUDA: one elementwise kernel forward, one backward (no saved CDF)."""
from __future__ import annotations

from ..._dispatch import OpDef
from .._backward import register_backward_kernel
from .._compile import elementwise_kernel
from ..kernels import gelu as src

_DTYPES = ("float16", "float32", "float64")


def forward(a, approximate: str = "none"):
    return elementwise_kernel(src.forward(a.dtype, approximate))(a)


def backward(g, a, approximate: str = "none"):
    return elementwise_kernel(src.backward(a.dtype, approximate))(g.astype(a.dtype, copy=False), a)


def install(op: OpDef) -> None:
    """Register the fused GELU on ``op`` (kernel returns ``(out, extra)``; extra None here)."""
    reference = op.cuda_kernel

    def kernel(a, approximate="none"):
        if a.dtype.name not in _DTYPES:
            return reference(a, approximate)
        return forward(a, approximate), None

    def bw(ctx, g, a):
        if a.dtype.name not in _DTYPES:
            return NotImplemented
        approximate = (ctx._args or {}).get("approximate", "none")
        return (backward(g, a, approximate),)

    op.register_kernel("cuda", kernel)
    register_backward_kernel(op, bw)

"""GradScaler's check-and-unscale on CUDA: one fused kernel per gradient, one host sync in all."""
from __future__ import annotations

from .._compile import f64, i64, launch_flat, raw_kernel
from ..._device import require_cupy
from ..kernels import amp as src
from ..kernels import raw_supported


def unscale_(grads: list, inv: float) -> bool:
    """Multiply each cupy gradient by ``inv`` in place; True when any result is inf or NaN."""
    cp = require_cupy()
    found = cp.zeros(1, cp.int32)
    for g in grads:
        if g.size == 0:
            continue
        if raw_supported(g.dtype) and g.flags.c_contiguous:
            k = raw_kernel(src.source(g.dtype), src.name(g.dtype))
            launch_flat(k, g.size, (g, i64(g.size), f64(inv), found))
        else:  # float16/bfloat16 or strided gradients: array ops, the flag still stays on the device
            g *= g.dtype.type(inv)
            found |= (~cp.isfinite(g)).any().astype(cp.int32)
    return bool(found.get()[0])

"""Per-device backward kernels: on CUDA arrays an op's backward formula can be replaced by a fused kernel.

The registry (``_dispatch.py``) overrides forward kernels per device; backward formulas are shared.
:func:`register_backward_kernel` wraps a node class's formula so that, on the fast path
(``ns is ARRAY_NS``, cupy gradients), ``fn(ctx, g, *saved)`` runs instead; it may return
``NotImplemented`` to fall back to the formula. ``create_graph=True`` always uses the formula.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .._dispatch import ARRAY_NS, OpDef


def register_backward_kernel(op: OpDef, fn: Callable) -> None:
    """Run ``fn(ctx, g, *saved)`` instead of ``op``'s backward formula on CUDA arrays."""
    formula = op.node_cls._bw

    def backward(ns, ctx, g, *saved):
        if ns is ARRAY_NS and g is not None and type(g) is not np.ndarray:
            out = fn(ctx, g, *saved)
            if out is not NotImplemented:
                return out
        return formula(ns, ctx, g, *saved)

    backward.__wrapped__ = formula
    op.node_cls._bw = staticmethod(backward)

"""Rprop: resilient backpropagation, per-coordinate step sizes grown or shrunk by the gradient's sign."""
from __future__ import annotations

from typing import Iterable

from ..tensor import Tensor
from ._flat_optimizer import to_scalar
from ._kernel_optimizer import KernelOptimizer, check_lr

__all__ = ["Rprop"]


class Rprop(KernelOptimizer):
    """Step sizes times ``etas[1]`` where the gradient keeps its sign, times ``etas[0]`` where it flips."""

    _keys = ("prev", "step_size")

    def __init__(self, params: Iterable, lr: float | Tensor = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _fill(self, group: dict, key: str) -> float:
        return to_scalar(group["lr"]) if key == "step_size" else 0.0

    def _l2(self, group: dict) -> float:
        return 0

    def _update(self, group: dict, xp, P, g, S: dict, scalars: dict, step: float, tmp) -> dict:
        etaminus, etaplus = group["etas"]
        lo, hi = group["step_sizes"]
        prev, size = S["prev"], S["step_size"]
        t = tmp("t")
        xp.multiply(g, prev, out=t)
        flipped = t < 0
        factor = xp.where(t > 0, t.dtype.type(etaplus), t.dtype.type(1))
        factor[flipped] = etaminus
        xp.multiply(size, factor, out=size)
        xp.clip(size, lo, hi, out=size)
        prev[...] = g
        prev[flipped] = 0
        xp.sign(prev, out=t)
        xp.multiply(t, size, out=t)
        xp.subtract(P, t, out=P)
        return {}

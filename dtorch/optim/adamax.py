"""Adamax: Adam with the infinity norm of past gradients in place of the second moment (torch's rule)."""
from __future__ import annotations

from typing import Iterable

from ..tensor import Tensor
from ._flat_optimizer import to_scalar
from ._kernel_optimizer import KernelOptimizer, check_betas, check_lr
from ._math import addcdiv_, lerp_

__all__ = ["Adamax"]


class Adamax(KernelOptimizer):
    """Adam's first moment, divided by an exponentially weighted infinity norm."""

    _keys = ("exp_avg", "exp_inf")

    def __init__(self, params: Iterable, lr: float | Tensor = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        check_lr(lr)
        check_betas(betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _update(self, group: dict, xp, P, g, S: dict, scalars: dict, step: float, tmp) -> dict:
        beta1, beta2 = group["betas"]
        m, u = S["exp_avg"], S["exp_inf"]
        t = tmp("t")
        lerp_(xp, m, g, 1 - beta1, t)
        xp.multiply(u, beta2, out=u)
        xp.abs(g, out=t)
        xp.add(t, group["eps"], out=t)
        xp.maximum(u, t, out=u)
        clr = to_scalar(group["lr"]) / (1 - beta1 ** step)
        addcdiv_(xp, P, m, u, -clr, t)
        return {}

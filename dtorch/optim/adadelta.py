"""Adadelta: torch's update rule (running averages of squared gradients and of squared updates)."""
from __future__ import annotations

from typing import Iterable

from ..tensor import Tensor
from . import _fused_cpu
from ._flat_optimizer import to_scalar
from ._kernel_optimizer import KernelOptimizer, check_lr
from ._math import add_scaled_, addcmul_

__all__ = ["Adadelta"]


class Adadelta(KernelOptimizer):
    """An adaptive learning rate method (Zeiler, 2012); ``lr`` scales the update."""

    _keys = ("square_avg", "acc_delta")

    def __init__(self, params: Iterable, lr: float | Tensor = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False) -> None:
        check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update(self, group: dict, xp, P, g, S: dict, scalars: dict, step: float, tmp) -> dict:
        rho, eps = group["rho"], group["eps"]
        sq, acc = S["square_avg"], S["acc_delta"]
        if _fused_cpu.adadelta(P, g, sq, acc, rho, eps, -to_scalar(group["lr"])):
            return {}
        std, delta = tmp("t"), tmp("u")
        xp.multiply(sq, rho, out=sq)
        addcmul_(xp, sq, g, g, 1 - rho, std)
        xp.add(sq, eps, out=std)
        xp.sqrt(std, out=std)
        xp.add(acc, eps, out=delta)
        xp.sqrt(delta, out=delta)
        xp.divide(delta, std, out=delta)
        xp.multiply(delta, g, out=delta)
        xp.multiply(acc, rho, out=acc)
        addcmul_(xp, acc, delta, delta, 1 - rho, std)
        add_scaled_(xp, P, delta, -to_scalar(group["lr"]), std)
        return {}

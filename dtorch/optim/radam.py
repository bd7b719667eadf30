"""RAdam: Adam with torch's variance rectification (plain momentum SGD while the variance is untrusted)."""
from __future__ import annotations

from typing import Iterable

from ..tensor import Tensor
from ._flat_optimizer import to_scalar
from ._kernel_optimizer import KernelOptimizer, check_betas, check_lr
from ._math import addcmul_, lerp_

__all__ = ["RAdam"]


class RAdam(KernelOptimizer):
    """Rectified Adam (Liu et al., 2019); ``decoupled_weight_decay`` gives RAdamW."""

    _keys = ("exp_avg", "exp_avg_sq")
    _group_defaults = KernelOptimizer._group_defaults + (("decoupled_weight_decay", False),)

    def __init__(self, params: Iterable, lr: float | Tensor = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        check_lr(lr)
        check_betas(betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _update(self, group: dict, xp, P, g, S: dict, scalars: dict, step: float, tmp) -> dict:
        lr = to_scalar(group["lr"])
        beta1, beta2 = group["betas"]
        self._decay_(group, xp, P)
        m, v = S["exp_avg"], S["exp_avg_sq"]
        t = tmp("t")
        lerp_(xp, m, g, 1 - beta1, t)
        xp.multiply(v, beta2, out=v)
        addcmul_(xp, v, g, g, 1 - beta2, t)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
        xp.divide(m, bias_correction1, out=t)
        xp.multiply(t, lr, out=t)
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            u = tmp("u")
            xp.sqrt(v, out=u)
            xp.add(u, group["eps"], out=u)
            xp.reciprocal(u, out=u)  # torch's scalar / tensor is reciprocal() * scalar
            xp.multiply(u, bias_correction2 ** 0.5, out=u)
            xp.multiply(t, u, out=t)
            xp.multiply(t, rect, out=t)
        xp.subtract(P, t, out=P)
        return {}

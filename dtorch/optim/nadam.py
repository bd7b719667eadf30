"""NAdam: Adam with Nesterov momentum and torch's momentum-decay schedule (``mu_product`` state)."""
from __future__ import annotations

from typing import Iterable

from ..tensor import Tensor
from ._flat_optimizer import to_scalar
from ._kernel_optimizer import KernelOptimizer, check_betas, check_lr
from ._math import addcdiv_, addcmul_, lerp_

__all__ = ["NAdam"]


class NAdam(KernelOptimizer):
    """Nesterov-accelerated Adam (Dozat, 2016); ``decoupled_weight_decay`` gives NAdamW."""

    _keys = ("exp_avg", "exp_avg_sq")
    _scalar_keys = ("mu_product",)
    _capturable_names = "params, mu_products and state_steps"
    _group_defaults = KernelOptimizer._group_defaults + (("decoupled_weight_decay", False),)

    def __init__(self, params: Iterable, lr: float | Tensor = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False) -> None:
        check_lr(lr)
        check_betas(betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _scalar_init(self, group: dict) -> dict[str, float]:
        return {"mu_product": 1.0}

    def _update(self, group: dict, xp, P, g, S: dict, scalars: dict, step: float, tmp) -> dict:
        lr = to_scalar(group["lr"])
        beta1, beta2 = group["betas"]
        self._decay_(group, xp, P)
        bias_correction2 = 1 - beta2 ** step
        decay = group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * decay)))
        mu_product = float(scalars["mu_product"] * mu)  # in the state tensor's dtype, as torch's ``*=``
        m, v = S["exp_avg"], S["exp_avg_sq"]
        t, denom = tmp("t"), tmp("u")
        lerp_(xp, m, g, 1 - beta1, t)
        xp.multiply(v, beta2, out=v)
        addcmul_(xp, v, g, g, 1 - beta2, t)
        xp.divide(v, bias_correction2, out=denom)
        xp.sqrt(denom, out=denom)
        xp.add(denom, group["eps"], out=denom)
        addcdiv_(xp, P, g, denom, -lr * (1.0 - mu) / (1.0 - mu_product), t)
        addcdiv_(xp, P, m, denom, (-lr * mu_next) / (1.0 - mu_product * mu_next), t)
        return {"mu_product": mu_product}

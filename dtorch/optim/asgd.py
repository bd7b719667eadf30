"""ASGD: averaged stochastic gradient descent with torch's ``eta``/``mu`` schedules (0-d float32 state)."""
from __future__ import annotations

from typing import Iterable

from ..tensor import Tensor
from ._flat_optimizer import to_scalar
from ._kernel_optimizer import KernelOptimizer, check_lr
from ._math import add_scaled_

__all__ = ["ASGD"]


class ASGD(KernelOptimizer):
    """SGD with a decaying step size; ``ax`` holds the running average of the iterates after ``t0`` steps."""

    _keys = ("ax",)
    _scalar_keys = ("eta", "mu")
    _capturable_names = "params, mus, etas, and state_steps"

    def __init__(self, params: Iterable, lr: float | Tensor = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        check_lr(lr)
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _scalar_init(self, group: dict) -> dict[str, float]:
        return {"eta": to_scalar(group["lr"]), "mu": 1.0}

    def _update(self, group: dict, xp, P, g, S: dict, scalars: dict, step: float, tmp) -> dict:
        lr, lambd = to_scalar(group["lr"]), group["lambd"]
        eta, mu = float(scalars["eta"]), float(scalars["mu"])
        t = tmp("t")
        xp.multiply(P, 1 - lambd * eta, out=P)
        add_scaled_(xp, P, g, -eta, t)
        ax = S["ax"]
        if mu != 1:
            xp.subtract(P, ax, out=t)
            xp.multiply(t, mu, out=t)
            xp.add(ax, t, out=ax)
        else:
            ax[...] = P
        return {"eta": lr / ((1 + lambd * lr * step) ** group["alpha"]), "mu": 1 / max(1, step - group["t0"])}

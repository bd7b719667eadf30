"""SGD with momentum, dampening, Nesterov, weight decay and maximize (torch's update rule)."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ..cuda.fused.optim import sgd_step as cuda_sgd_step
from ..tensor import Tensor, _make
from ._flat import FlatBucket
from ._flat_optimizer import FlatOptimizer, to_scalar
from ._math import add_scaled_, flat_grad, ref_grad
from .optimizer import check_fused, required

__all__ = ["SGD"]


class SGD(FlatOptimizer):
    """Stochastic gradient descent; the momentum buffer starts as a copy of the first gradient."""

    def __init__(self, params: Iterable, lr: float | Tensor = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float | Tensor = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        check_fused(fused, differentiable, foreach)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)

    def _tensor_keys(self, group: dict) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _reference(self, group: dict, params: list[Tensor]) -> None:
        lr = to_scalar(group["lr"])
        wd = to_scalar(group["weight_decay"])
        momentum, dampening = group["momentum"], group["dampening"]
        for p in params:
            d = p._data
            g = ref_grad(p._grad._data, d, group["maximize"], wd)
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = _make(g.copy())
                else:
                    b = buf._data
                    b *= momentum
                    b += (1 - dampening) * g if dampening != 0 else g
                g = g + momentum * buf._data if group["nesterov"] else buf._data
            d += -lr * g
            p._vc[0] += 1

    def _flat_update(self, group: dict, b: FlatBucket, grads: list, init: bool) -> None:
        xp = b.xp
        if xp is not np and cuda_sgd_step(group, b, grads, init, self.state):
            return
        lr = to_scalar(group["lr"])
        momentum, dampening = group["momentum"], group["dampening"]
        wd, maximize = to_scalar(group["weight_decay"]), group["maximize"]
        t = b.scratch("t")
        if momentum != 0 and not init and wd == 0 and not maximize and not group["nesterov"]:
            # the common case: read each gradient once, straight into the momentum buffer
            buf = b.state_flat["momentum_buffer"]
            xp.multiply(buf, momentum, out=buf)
            for sl, g in b.pairs(grads):
                add_scaled_(xp, buf[sl], g, 1 - dampening, t[sl])
            add_scaled_(xp, b.flat, buf, -lr, t)
            return
        g = flat_grad(b, grads, maximize, wd)
        if momentum != 0:
            if init:
                buf = b.new_state(self.state, "momentum_buffer", source=g)
            else:
                buf = b.state_flat["momentum_buffer"]
                xp.multiply(buf, momentum, out=buf)
                add_scaled_(xp, buf, g, 1 - dampening, t)
            if group["nesterov"]:
                xp.multiply(buf, momentum, out=t)
                xp.add(g, t, out=t)
                g = t
            else:
                g = buf
        add_scaled_(xp, b.flat, g, -lr, t)

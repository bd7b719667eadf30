"""RMSprop with momentum, centering, weight decay and maximize (torch's update rule)."""
from __future__ import annotations

from typing import Iterable

from .._device import xp_of
from ..tensor import Tensor, _make
from ._flat import FlatBucket
from ._flat_optimizer import FlatOptimizer, to_scalar
from ._math import add_scaled_, addcdiv_, addcmul_, flat_grad, lerp, lerp_, ref_grad
from .adam import new_step
from .optimizer import required

__all__ = ["RMSprop"]


class RMSprop(FlatOptimizer):
    """Divides the gradient by a running root mean square of recent gradients."""

    _has_step = True

    def __init__(self, params: Iterable, lr: float | Tensor = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr is not required and not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, default in (("momentum", 0), ("centered", False), ("foreach", None), ("maximize", False),
                                 ("differentiable", False), ("capturable", False)):
                group.setdefault(key, default)

    def _tensor_keys(self, group: dict) -> tuple[str, ...]:
        keys = ("square_avg",)
        if group["momentum"] > 0:
            keys += ("momentum_buffer",)
        if group["centered"]:
            keys += ("grad_avg",)
        return keys

    def _reference(self, group: dict, params: list[Tensor]) -> None:
        lr, alpha, eps = to_scalar(group["lr"]), group["alpha"], group["eps"]
        momentum = group["momentum"]
        for p in params:
            d = p._data
            xp = xp_of(d)
            state = self.state[p]
            if len(state) == 0:
                state["step"] = new_step()
                for key in self._tensor_keys(group):
                    state[key] = _make(xp.zeros_like(d))
            g = ref_grad(p._grad._data, d, group["maximize"], group["weight_decay"])
            state["step"]._data += 1
            sq = state["square_avg"]._data
            sq *= alpha
            sq += (1 - alpha) * g * g
            if group["centered"]:
                ga = state["grad_avg"]._data
                ga[...] = lerp(ga, g, 1 - alpha)
                avg = xp.sqrt(sq + (-1 * ga) * ga)
            else:
                avg = xp.sqrt(sq)
            avg += eps
            if momentum > 0:
                buf = state["momentum_buffer"]._data
                buf *= momentum
                buf += g / avg
                d += -lr * buf
            else:
                d += -lr * (g / avg)
            p._vc[0] += 1

    def _flat_update(self, group: dict, b: FlatBucket, grads: list, init: bool) -> None:
        xp = b.xp
        lr, alpha, eps = to_scalar(group["lr"]), group["alpha"], group["eps"]
        momentum = group["momentum"]
        if init:
            b.new_steps(self.state)
            for key in self._tensor_keys(group):
                b.new_state(self.state, key)
        b.steps += 1
        g = flat_grad(b, grads, group["maximize"], group["weight_decay"])
        t, avg = b.scratch("t"), b.scratch("u")
        sq = b.state_flat["square_avg"]
        xp.multiply(sq, alpha, out=sq)
        addcmul_(xp, sq, g, g, 1 - alpha, t)
        if group["centered"]:
            ga = b.state_flat["grad_avg"]
            lerp_(xp, ga, g, 1 - alpha, t)
            avg[...] = sq
            addcmul_(xp, avg, ga, ga, -1, t)
            xp.sqrt(avg, out=avg)
        else:
            xp.sqrt(sq, out=avg)
        xp.add(avg, eps, out=avg)
        if momentum > 0:
            buf = b.state_flat["momentum_buffer"]
            xp.multiply(buf, momentum, out=buf)
            addcdiv_(xp, buf, g, avg, 1, t)
            add_scaled_(xp, b.flat, buf, -lr, t)
        else:
            addcdiv_(xp, b.flat, g, avg, -lr, t)

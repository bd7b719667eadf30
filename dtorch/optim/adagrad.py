"""Adagrad with learning-rate decay, weight decay, initial accumulator and maximize."""
from __future__ import annotations

from typing import Iterable

from .._device import xp_of
from ..tensor import Tensor, _make
from ._flat import FlatBucket
from ._flat_optimizer import FlatOptimizer, lr_div
from ._math import addcdiv_, addcmul_, flat_grad, ref_grad
from .adam import new_step
from .optimizer import check_fused, required

__all__ = ["Adagrad"]


class Adagrad(FlatOptimizer):
    """Scales each coordinate by the root of its accumulated squared gradients."""

    _has_step = True

    def __init__(self, params: Iterable, lr: float | Tensor = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr is not required and not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        check_fused(fused, differentiable, foreach)
        # torch creates Adagrad's state up front, not at the first step
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = new_step()
                d = p._data
                acc = xp_of(d).full_like(d, initial_accumulator_value)
                state["sum"] = _make(acc)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, default in (("foreach", None), ("maximize", False), ("differentiable", False),
                                 ("fused", None)):
                group.setdefault(key, default)

    def _tensor_keys(self, group: dict) -> tuple[str, ...]:
        return ("sum",)

    def _clr(self, group: dict, step: float) -> float:
        return lr_div(group["lr"], 1 + (step - 1) * group["lr_decay"])

    def _reference(self, group: dict, params: list[Tensor]) -> None:
        eps = group["eps"]
        for p in params:
            d = p._data
            state = self.state[p]
            state["step"]._data += 1
            clr = self._clr(group, float(state["step"]._data))
            g = ref_grad(p._grad._data, d, group["maximize"], group["weight_decay"])
            acc = state["sum"]._data
            acc += 1 * g * g
            std = xp_of(d).sqrt(acc) + eps
            d += -clr * (g / std)
            p._vc[0] += 1

    def _flat_update(self, group: dict, b: FlatBucket, grads: list, init: bool) -> None:
        xp = b.xp
        if init:  # state was dropped (e.g. loaded empty): recreate it as torch's constructor does
            b.new_steps(self.state)
            b.new_state(self.state, "sum", fill=group["initial_accumulator_value"])
        b.steps += 1
        clr = self._clr(group, float(b.steps[0]))
        g = flat_grad(b, grads, group["maximize"], group["weight_decay"])
        t, std = b.scratch("t"), b.scratch("u")
        acc = b.state_flat["sum"]
        addcmul_(xp, acc, g, g, 1, t)
        xp.sqrt(acc, out=std)
        xp.add(std, group["eps"], out=std)
        addcdiv_(xp, b.flat, g, std, -clr, t)

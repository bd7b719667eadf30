"""Adam (and, with decoupled weight decay, AdamW): torch's update rule and state layout."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .. import _creation
from .._device import xp_of
from .._dtype import float32
from ..cuda.fused import optim as cuda_optim
from ..tensor import Tensor, _make
from . import _fused_cpu
from ._flat import FlatBucket
from ._flat_optimizer import FlatOptimizer, check_tensor_lr, lr_div, one_minus_lr_times, to_scalar
from ._math import addcdiv_, addcmul_, flat_grad, lerp, lerp_, ref_grad
from .optimizer import check_fused, required

__all__ = ["Adam"]


def new_step() -> Tensor:
    """A fresh ``state['step']``: a float32 0-d CPU tensor, as torch's."""
    return _make(np.zeros((), np.float32))


class Adam(FlatOptimizer):
    """Adam with bias corrections, AMSGrad, maximize, L2 or decoupled weight decay."""

    _has_step = True

    def __init__(self, params: Iterable, lr: float | Tensor = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False) -> None:
        check_tensor_lr(lr, foreach, capturable)
        if lr is not required and not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not ((isinstance(betas[0], float) and isinstance(betas[1], float))
                or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))):
            raise ValueError("betas must be either both floats or both Tensors")
        for i, beta in enumerate(betas):
            if isinstance(beta, Tensor):
                if not capturable and foreach:
                    raise ValueError(
                        f"betas[{i}] as a Tensor is not supported for capturable=False and foreach=True"
                    )
                if beta.numel() != 1:
                    raise ValueError(f"Tensor betas[{i}] must be 1-element")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
                        fused=fused, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)
        check_fused(fused, differentiable, foreach)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, default in (("amsgrad", False), ("maximize", False), ("foreach", None),
                                 ("capturable", False), ("differentiable", False),
                                 ("decoupled_weight_decay", False), ("fused", None)):
                group.setdefault(key, default)
            for p in group["params"]:
                s = self.state.get(p)
                if s and not isinstance(s["step"], Tensor):
                    s["step"] = _creation.tensor(float(s["step"]), dtype=float32)

    def _check_group(self, group: dict) -> None:
        if group["foreach"] and isinstance(group["lr"], Tensor) and not group["capturable"]:
            raise RuntimeError("lr as a Tensor is not supported for capturable=False and foreach=True")

    def _tensor_keys(self, group: dict) -> tuple[str, ...]:
        keys = ("exp_avg", "exp_avg_sq")
        return keys + ("max_exp_avg_sq",) if group["amsgrad"] else keys

    def _hyper(self, group: dict) -> tuple:
        beta1, beta2 = (to_scalar(b) for b in group["betas"])
        return group["lr"], beta1, beta2, group["eps"], to_scalar(group["weight_decay"])

    def _reference(self, group: dict, params: list[Tensor]) -> None:
        lr, beta1, beta2, eps, wd = self._hyper(group)
        decoupled = group["decoupled_weight_decay"]
        for p in params:
            state = self.state[p]
            d = p._data
            xp = xp_of(d)
            if len(state) == 0:
                state["step"] = new_step()
                state["exp_avg"] = _make(xp.zeros_like(d))
                state["exp_avg_sq"] = _make(xp.zeros_like(d))
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = _make(xp.zeros_like(d))
            g = p._grad._data
            if group["maximize"]:
                g = -g
            state["step"]._data += 1
            if wd != 0:
                if decoupled:
                    d *= one_minus_lr_times(lr, wd)
                else:
                    g = ref_grad(g, d, False, wd)
            m = state["exp_avg"]._data
            v = state["exp_avg_sq"]._data
            m[...] = lerp(m, g, 1 - beta1)
            v *= beta2
            v += (1 - beta2) * g * g
            step = float(state["step"]._data)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            step_size = lr_div(lr, bias_correction1)
            if group["amsgrad"]:
                vmax = state["max_exp_avg_sq"]._data
                xp.maximum(vmax, v, out=vmax)
                v = vmax
            denom = xp.sqrt(v) / bias_correction2 ** 0.5 + eps
            d += -step_size * (m / denom)
            p._vc[0] += 1

    def _flat_update(self, group: dict, b: FlatBucket, grads: list, init: bool) -> None:
        xp = b.xp
        lr, beta1, beta2, eps, wd = self._hyper(group)
        state = self.state
        if init:
            b.new_steps(state)
            for key in self._tensor_keys(group):
                b.new_state(state, key)
        steps = b.steps
        steps += 1
        step = float(steps[0])
        if xp is not np:
            scalars = cuda_optim.adam_step(group, b, self._hyper(group), step)
            if scalars is not None:
                cuda_optim.adam_launch(group, b, grads, scalars)
                return
        P = b.flat
        decoupled = group["decoupled_weight_decay"]
        if wd != 0 and decoupled:
            xp.multiply(P, one_minus_lr_times(lr, wd), out=P)
        g = flat_grad(b, grads, group["maximize"], 0 if decoupled else wd)
        m, v = b.state_flat["exp_avg"], b.state_flat["exp_avg_sq"]
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr_div(lr, bias_correction1)
        vmax = b.state_flat["max_exp_avg_sq"] if group["amsgrad"] else None
        if _fused_cpu.adam(P, g, m, v, vmax, 1 - beta1, beta2, bias_correction2 ** 0.5, eps, -step_size):
            return
        t = b.scratch("t")
        lerp_(xp, m, g, 1 - beta1, t)
        xp.multiply(v, beta2, out=v)
        addcmul_(xp, v, g, g, 1 - beta2, t)
        if vmax is not None:
            xp.maximum(vmax, v, out=vmax)
            v = vmax
        xp.sqrt(v, out=t)
        xp.divide(t, bias_correction2 ** 0.5, out=t)
        xp.add(t, eps, out=t)
        addcdiv_(xp, P, m, t, -step_size, t)

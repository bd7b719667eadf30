"""The base of Adadelta, Adamax, NAdam, RAdam, ASGD and Rprop: one update kernel, two layouts.

Each optimizer writes its update once, as ``_update(group, xp, P, g, S, scalars, step, tmp)`` on
arrays: ``P`` the parameter, ``g`` the gradient (already negated for ``maximize`` and with L2 weight
decay added), ``S`` its tensor state by key, ``scalars`` its 0-d per-parameter state (NAdam's
``mu_product``, ASGD's ``eta`` and ``mu``) as numpy scalars of their tensors' dtype, ``tmp(name)``
a work array. The fast path calls it once per flat bucket (``_flat.py``), ``foreach=False`` once per parameter, with
torch's state keys, their order and dtypes either way.
"""
from __future__ import annotations

import numpy as np

from .._device import device_of, xp_of
from ..tensor import Tensor, _make
from ._flat import FlatBucket
from ._flat_optimizer import FlatOptimizer, to_scalar
from ._math import flat_grad, ref_grad
from .adam import new_step

__all__ = ["KernelOptimizer", "check_lr", "check_betas"]


def check_lr(lr) -> None:
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


def check_betas(betas, eps: float, weight_decay: float) -> None:
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def _scalar(value: float) -> Tensor:
    """A 0-d float32 CPU state tensor, as torch keeps ``step``/``mu_product``/``eta``/``mu``."""
    return _make(np.array(value, np.float32))


class KernelOptimizer(FlatOptimizer):
    """See the module docstring; subclasses set the class attributes and write ``_update``."""

    _has_step = True
    _keys: tuple[str, ...] = ()          # tensor state, shaped like the parameter
    _scalar_keys: tuple[str, ...] = ()   # 0-d float32 state besides ``step``
    _capturable_names = "params and state_steps"
    _group_defaults: tuple = (("foreach", None), ("maximize", False), ("differentiable", False),
                              ("capturable", False))

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, default in self._group_defaults:
                group.setdefault(key, default)
            for p in group["params"]:
                s = self.state.get(p)
                for key in ("step",) + self._scalar_keys:
                    if s and not isinstance(s.get(key, 0.0), Tensor):
                        s[key] = _scalar(float(s[key]))

    # ---- what a subclass gives --------------------------------------------------------------------
    def _fill(self, group: dict, key: str) -> float:
        """The initial value of tensor state ``key``."""
        return 0.0

    def _scalar_init(self, group: dict) -> dict[str, float]:
        return {}

    def _l2(self, group: dict) -> float:
        """The weight decay folded into the gradient (0 where it is decoupled or absent)."""
        return 0 if group.get("decoupled_weight_decay") else group.get("weight_decay", 0)

    @staticmethod
    def _decay_(group: dict, xp, P) -> None:
        """Decoupled weight decay (NAdamW, RAdamW): ``P *= 1 - lr * weight_decay`` before the update."""
        wd = group["weight_decay"]
        if wd != 0 and group.get("decoupled_weight_decay"):
            xp.multiply(P, 1 - to_scalar(group["lr"]) * wd, out=P)

    def _update(self, group: dict, xp, P, g, S: dict, scalars: dict, step: float, tmp) -> dict[str, float]:
        """One step in place on arrays; returns the new scalar state."""
        raise NotImplementedError

    # ---- the driver ------------------------------------------------------------------------------
    def _tensor_keys(self, group: dict) -> tuple[str, ...]:
        return self._keys

    def _check_group(self, group: dict) -> None:
        if group.get("capturable") and any(device_of(p._data).type != "cuda" for p in group["params"]):
            raise AssertionError(f"If capturable=True, {self._capturable_names} must be on supported devices: "
                                 "['cuda'].")

    def _init_scalars(self, group: dict, params: list[Tensor]) -> None:
        for key, value in self._scalar_init(group).items():
            for p in params:
                self.state[p][key] = _scalar(value)

    def _reference(self, group: dict, params: list[Tensor]) -> None:
        for p in params:
            state = self.state[p]
            d = p._data
            xp = xp_of(d)
            if len(state) == 0:
                state["step"] = new_step()
                self._init_scalars(group, [p])
                for key in self._keys:
                    state[key] = _make(xp.full_like(d, self._fill(group, key)))
            state["step"]._data += 1
            g = ref_grad(p._grad._data, d, group["maximize"], self._l2(group))
            scratch: dict = {}

            def tmp(name: str, d=d, scratch=scratch):
                if name not in scratch:
                    scratch[name] = xp_of(d).empty_like(d)
                return scratch[name]

            scalars = {k: state[k]._data[()] for k in self._scalar_keys}
            new = self._update(group, xp, d, g, {k: state[k]._data for k in self._keys}, scalars,
                               float(state["step"]._data), tmp)
            for key, value in new.items():
                state[key]._data[...] = value
            p._vc[0] += 1

    def _flat_update(self, group: dict, b: FlatBucket, grads: list, init: bool) -> None:
        state = self.state
        if init:
            b.new_steps(state)
            self._init_scalars(group, b.params)
            for key in self._keys:
                b.new_state(state, key, fill=self._fill(group, key))
        scalars = {}
        for key in self._scalar_keys:
            values = [state[p][key]._data[()] for p in b.params]
            if any(v != values[0] or v.dtype != values[0].dtype for v in values):
                self._reference(group, b.params)  # per-parameter scalar state differs: one at a time
                return
            scalars[key] = values[0]
        b.steps += 1
        g = flat_grad(b, grads, group["maximize"], self._l2(group))
        new = self._update(group, b.xp, b.flat, g, b.state_flat, scalars, float(b.steps[0]), b.scratch)
        for key, value in new.items():
            for p in b.params:
                state[p][key]._data[...] = value

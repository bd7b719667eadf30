"""GradScaler: dynamic loss scaling for float16 training, with torch's growth/backoff rules."""
from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from .._creation import tensor
from ..autograd.grad_mode import no_grad
from ..cuda.fused import amp as cuda_amp
from ..tensor import Tensor

_READY, _UNSCALED, _STEPPED = 0, 1, 2


class GradScaler:
    """``scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()``, as torch.amp.GradScaler."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True) -> None:
        if growth_factor <= 1.0:
            raise ValueError("The growth factor must be > 1.0.")
        if backoff_factor >= 1.0:
            raise ValueError("The backoff factor must be < 1.0.")
        self._device = device
        self._enabled = enabled
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer: dict[int, dict] = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def scale(self, outputs: Any) -> Any:
        """Multiply a tensor (or a nested list/tuple of tensors) by the current scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def _state(self, optimizer) -> dict:
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _READY, "found_inf": False})

    def unscale_(self, optimizer) -> None:
        """Divide the optimizer's gradients by the scale in place and record whether any is inf/NaN."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["stage"] == _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv = 1.0 / self._scale
        with no_grad():
            # an optimizer that keeps its own gradients (ZeRO's shards) unscales them itself
            own = getattr(optimizer, "_unscale_grads_", None)
            cuda_grads = _cuda_param_grads(optimizer) if own is None else None
            if cuda_grads:  # fused unscale + inf check, one device->host read
                found_inf = cuda_amp.unscale_(cuda_grads, inv)
            else:
                grads = own(inv) if own is not None else _unscale_param_grads(optimizer, inv)
                # one sum per gradient, one check overall: any inf/NaN makes the total non-finite
                found_inf = not math.isfinite(sum(float(g.sum(dtype=np.float64)) for g in grads))
        state["found_inf"] = _agree_across_ranks(found_inf)
        state["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale if needed, then ``optimizer.step()`` unless a gradient was inf/NaN."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        state = self._state(optimizer)
        if state["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] == _READY:
            self.unscale_(optimizer)
        result = None if state["found_inf"] else optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Back off after an overflow; grow after ``growth_interval`` clean steps (torch's rule)."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if isinstance(new_scale, Tensor) else new_scale)
        else:
            found = [s["found_inf"] for s in self._per_optimizer.values() if s["stage"] != _READY]
            if not found:
                raise AssertionError("No inf checks were recorded prior to update.")
            if any(found):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer.clear()

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])


def _unscale_param_grads(optimizer, inv: float) -> list:
    """Multiply every ``p.grad`` of the optimizer's groups by ``inv`` in place; return the arrays."""
    grads = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is None:
                continue
            g = p.grad._data
            g *= g.dtype.type(inv)
            p.grad._vc[0] += 1
            grads.append(g)
    return grads


def _cuda_param_grads(optimizer) -> list | None:
    """The optimizer's gradient arrays when they all live on a GPU (bumping their versions), else None."""
    grads = (p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None)
    first = next(grads, None)
    if first is None or type(first._data) is np.ndarray:  # CPU: decided by the first gradient
        return None
    grads = [first, *grads]
    if any(type(g._data) is np.ndarray for g in grads):
        return None
    for g in grads:
        g._vc[0] += 1
    return [g._data for g in grads]


def _agree_across_ranks(found_inf: bool) -> bool:
    """Under a process group, skip the step on every rank if any rank overflowed.

    amp sits below dtorch.distributed and does not import it: no process group exists unless it was imported.
    """
    dist = sys.modules.get("dtorch.distributed")
    if dist is None or not dist.is_initialized() or dist.get_world_size() == 1:
        return found_inf
    flag = tensor([1.0 if found_inf else 0.0])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())

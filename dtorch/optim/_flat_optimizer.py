"""The step driver shared by the built-in optimizers: fast flat path or per-parameter reference.

A subclass gives its per-parameter update (``_reference``: torch's single-tensor algorithm,
used with ``foreach=False``) and its whole-bucket update (``_flat_update``: a few ufunc calls
with ``out=`` on flat buffers, see ``_flat.py``). By default (``foreach=None`` or ``True``)
each group is split into buckets of one dtype/device; a bucket takes the flat path when every
parameter has a gradient and their state is in step, else the reference path.
"""
from __future__ import annotations

from typing import Callable

from ..autograd.grad_mode import enable_grad, no_grad
from ..tensor import Tensor
from ._flat import FlatBucket, bucket_key, flattenable
from .optimizer import Optimizer


def to_scalar(x) -> float:
    """A hyper-parameter as a Python number (a 0-d/1-element tensor lr is read with .item())."""
    return x.item() if isinstance(x, Tensor) else x


def lr_div(lr, x: float) -> float:
    """``lr / x``, rounded to lr's dtype when lr is a tensor (torch computes it as a tensor op)."""
    if isinstance(lr, Tensor):
        t = lr._data.dtype.type
        return float(t(lr.item()) / t(x))
    return lr / x


def one_minus_lr_times(lr, x: float) -> float:
    """``1 - lr * x``, rounded like :func:`lr_div`."""
    if isinstance(lr, Tensor):
        t = lr._data.dtype.type
        return float(t(1) - t(lr.item()) * t(x))
    return 1 - lr * x


def check_tensor_lr(lr, foreach, capturable: bool = False) -> None:
    if isinstance(lr, Tensor):
        if foreach and not capturable:
            raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
        if lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")


class _Layout:
    """A group's buckets (flattenable params by dtype/device) and its loose params."""

    __slots__ = ("params", "buckets", "loose", "stale")

    def __init__(self, params: list[Tensor]) -> None:
        self.params = list(params)
        self.stale = False
        groups: dict[tuple, list[Tensor]] = {}
        self.loose: list[Tensor] = []
        for p in params:
            if flattenable(p):
                groups.setdefault(bucket_key(p), []).append(p)
            else:
                self.loose.append(p)
        self.buckets: list[list[Tensor] | FlatBucket] = list(groups.values())

    def matches(self, params: list[Tensor]) -> bool:
        return (not self.stale and len(params) == len(self.params)
                and all(a is b for a, b in zip(params, self.params)))


class FlatOptimizer(Optimizer):
    """Base of the built-in optimizers; see the module docstring."""

    _has_step = False

    def _tensor_keys(self, group: dict) -> tuple[str, ...]:
        """The per-parameter state tensors (shaped like the parameter) the flat update uses."""
        return ()

    def _reference(self, group: dict, params: list[Tensor]) -> None:
        raise NotImplementedError

    def _flat_update(self, group: dict, b: FlatBucket, grads: list, init: bool) -> None:
        raise NotImplementedError

    def _check_group(self, group: dict) -> None:
        """Per-step checks of a group's options (torch raises some only at step time)."""

    def step(self, closure: Callable | None = None):
        """Perform a single optimization step; returns ``closure()``'s loss when given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._check_group(group)
                if group.get("foreach") is False or group.get("differentiable"):
                    self._reference(group, [p for p in group["params"] if p._grad is not None])
                else:
                    self._fast(group)
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.__dict__.pop("_layouts", None)

    # ---- fast path -------------------------------------------------------------------------
    def _layout(self, group: dict) -> _Layout:
        layouts = self.__dict__.setdefault("_layouts", {})
        lay = layouts.get(id(group))
        if lay is None or not lay.matches(group["params"]):
            lay = layouts[id(group)] = _Layout(group["params"])
        return lay

    def _fast(self, group: dict) -> None:
        lay = self._layout(group)
        keys = self._tensor_keys(group)
        for i, b in enumerate(lay.buckets):
            params = b.params if isinstance(b, FlatBucket) else b
            grads = [p._grad for p in params]
            if any(g is None for g in grads):
                self._reference(group, [p for p in params if p._grad is not None])
                continue
            b = self._ready_bucket(lay, i, params, keys)
            if b is None:
                self._reference(group, params)
                continue
            init = not b.has_state(keys, self._has_step)
            self._flat_update(group, b, [g._data for g in grads], init)
            b.bump_versions()
        if lay.loose:
            self._reference(group, [p for p in lay.loose if p._grad is not None])

    def _ready_bucket(self, lay: _Layout, i: int, params: list[Tensor], keys: tuple[str, ...]) -> FlatBucket | None:
        """The bucket, (re)built if needed; None when its state is not uniform (reference path)."""
        state = self.state
        b = lay.buckets[i]
        if isinstance(b, FlatBucket) and b.valid(params, state):
            if b.has_state(keys, self._has_step):
                return b if b.uniform_steps() else None
            if not any(state.get(p) for p in params):
                return b
        # first use, or state was replaced / appeared: build from the current values
        key = bucket_key(params[0])
        if not all(flattenable(p) and bucket_key(p) == key for p in params):
            lay.stale = True  # a parameter changed device or dtype: split the group anew next step
            return None
        have = [bool(state.get(p)) for p in params]
        if any(have) and not all(have):
            return None
        b = lay.buckets[i] = FlatBucket(params, state, keys, self._has_step)
        if all(have) and not (b.has_state(keys, self._has_step) and b.uniform_steps()):
            return None
        return b

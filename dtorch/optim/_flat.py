"""Flat buffers for the fast path: a group's parameters and their state as views of one array.

A bucket holds parameters of one array type, dtype and device. Their ``_data`` is re-pointed
to views of one contiguous 1-d buffer (the Parameter objects stay the same), and each state
tensor (``exp_avg``...) to views of one buffer per state key, so an update is a handful of
whole-buffer ufunc calls. Per-parameter ``step`` counters become 0-d views of one float32
numpy array (on the CPU, as torch keeps them). If anyone re-points a parameter or replaces a
state tensor (``p.data = ...``, ``load_state_dict``), ``valid()`` notices and the bucket is
rebuilt from the current values.
"""
from __future__ import annotations

import numpy as np

from .._device import device_of, xp_of
from ..tensor import Tensor, _make


def _ptr(a) -> int:
    return a.__array_interface__["data"][0] if type(a) is np.ndarray else a.data.ptr


def _empty_like_flat(ref, n: int, dtype):
    """A 1-d uninitialised array of ``n`` items on ``ref``'s device."""
    if type(ref) is np.ndarray:
        return np.empty(n, dtype)
    with ref.device:
        return xp_of(ref).empty(n, dtype)


def flattenable(p: Tensor) -> bool:
    """Whether ``p`` may be re-pointed into a flat buffer (a plain, contiguous, non-view tensor, not in memory
    shared with other processes: Hogwild's updates must land there)."""
    return p._base is None and p._data.flags.c_contiguous and p._data.dtype.kind in "fV" and not p.is_shared()


def bucket_key(p: Tensor) -> tuple:
    d = p._data
    return type(d), d.dtype, str(device_of(d))


class FlatBucket:
    """Parameters (and their tensor state) laid out in flat buffers; see the module docstring."""

    def __init__(self, params: list[Tensor], state: dict, tensor_keys: tuple[str, ...], has_step: bool) -> None:
        self.params = params
        self.shapes = [p._data.shape for p in params]
        self.sizes = [p._data.size for p in params]
        self.offsets = np.cumsum([0] + self.sizes).tolist()
        self.numel = self.offsets[-1]
        ref = params[0]._data
        self._ref = ref
        self.dtype = ref.dtype
        self.xp = xp_of(ref)
        self.flat = self._new_flat()
        self.views = self._fill(self.flat, [p._data for p in params])
        for p, v in zip(params, self.views):
            p._data = v
        self.state_flat: dict[str, object] = {}
        self.state_views: dict[str, list] = {}
        self.steps = None
        self.step_views: list = []
        self._scratch: dict[str, object] = {}
        self._grad_src: list | None = None
        self._grad_pairs: list | None = None
        self._adopt_state(state, tensor_keys, has_step)

    # ---- building ------------------------------------------------------------------------
    def _new_flat(self):
        return _empty_like_flat(self._ref, self.numel, self.dtype)

    def _split(self, flat) -> list:
        o = self.offsets
        return [flat[o[i]:o[i + 1]].reshape(s) for i, s in enumerate(self.shapes)]

    def _fill(self, flat, arrays: list) -> list:
        views = self._split(flat)
        for v, a in zip(views, arrays):
            v[...] = a
        return views

    def _adopt_state(self, state: dict, tensor_keys: tuple[str, ...], has_step: bool) -> None:
        """Move existing state into flat buffers when every parameter has it in a usable form."""
        states = [state.get(p) for p in self.params]
        if not all(states):
            return
        for key in tensor_keys:
            ts = [s.get(key) for s in states]
            if all(isinstance(t, Tensor) and t._data.shape == p._data.shape and type(t._data) is type(p._data)
                   for t, p in zip(ts, self.params)):
                flat = self._new_flat()
                views = self._fill(flat, [t._data.astype(self.dtype, copy=False) for t in ts])
                for t, v in zip(ts, views):
                    t._data = v
                self.state_flat[key] = flat
                self.state_views[key] = views
        if has_step:
            ts = [s.get("step") for s in states]
            if all(isinstance(t, Tensor) and t._data.dtype == np.float32 and type(t._data) is np.ndarray
                   for t in ts):
                self.steps = np.array([float(t._data) for t in ts], dtype=np.float32)
                self.step_views = [self.steps[i:i + 1].reshape(()) for i in range(len(ts))]
                for t, v in zip(ts, self.step_views):
                    t._data = v

    def new_state(self, state: dict, key: str, fill=None, source=None):
        """Create state ``key`` for every parameter as views of a new flat buffer.

        ``fill``: a number to fill with; ``source``: a flat array to copy. Returns the buffer.
        """
        flat = self._new_flat()
        if source is not None:
            flat[...] = source
        else:
            flat.fill(0 if fill is None else fill)
        views = self._split(flat)
        for p, v in zip(self.params, views):
            state[p][key] = _make(v)
        self.state_flat[key] = flat
        self.state_views[key] = views
        return flat

    def new_steps(self, state: dict) -> np.ndarray:
        self.steps = np.zeros(len(self.params), dtype=np.float32)
        self.step_views = [self.steps[i:i + 1].reshape(()) for i in range(len(self.params))]
        for p, v in zip(self.params, self.step_views):
            state[p]["step"] = _make(v)
        return self.steps

    # ---- checks --------------------------------------------------------------------------
    def valid(self, params: list[Tensor], state: dict) -> bool:
        """Whether the parameters and state tensors still are the views this bucket made."""
        if len(params) != len(self.params):
            return False
        keys = self.state_flat
        for i, p in enumerate(params):
            if p is not self.params[i] or p._data is not self.views[i]:
                return False
            if keys or self.steps is not None:
                s = state.get(p)
                if s is None:
                    return False
                for key, views in self.state_views.items():
                    t = s.get(key)
                    if t is None or t._data is not views[i]:
                        return False
                if self.steps is not None:
                    t = s.get("step")
                    if t is None or t._data is not self.step_views[i]:
                        return False
        return True

    def has_state(self, keys: tuple[str, ...], has_step: bool) -> bool:
        return all(k in self.state_flat for k in keys) and (not has_step or self.steps is not None)

    def uniform_steps(self) -> bool:
        s = self.steps
        return s is None or len(s) < 2 or bool((s == s[0]).all())

    # ---- gradients and scratch -----------------------------------------------------------
    def scratch(self, name: str):
        """A persistent flat work array (allocated on first use)."""
        a = self._scratch.get(name)
        if a is None:
            a = self._scratch[name] = self._new_flat()
        return a

    def pairs(self, grads: list) -> list:
        """``(slice of the flat buffers, flat gradient)`` pairs covering the bucket: one pair when the
        gradients already are views of one buffer laid out like the parameters (e.g. DDP buckets),
        else one per parameter. Gradients are only read, never written."""
        if self._grad_src is not None and all(a is b for a, b in zip(grads, self._grad_src)):
            return self._grad_pairs
        base = self._shared_base(grads)
        if base is not None:
            self._grad_src, self._grad_pairs = list(grads), [(slice(None), base)]
            return self._grad_pairs
        self._grad_src = self._grad_pairs = None
        o = self.offsets
        return [(slice(o[i], o[i + 1]), g.reshape(-1)) for i, g in enumerate(grads)]

    def gathered(self, grads: list):
        """The gradients as one flat array (the shared buffer, or a copy into scratch)."""
        pairs = self.pairs(grads)
        if len(pairs) == 1:  # shared buffer, or a single parameter
            return pairs[0][1]
        out = self.scratch("grad")
        for sl, g in pairs:
            out[sl] = g
        return out

    def _shared_base(self, grads: list):
        base = grads[0].base
        if base is None or base.ndim != 1 or base.size != self.numel or base.dtype != self.dtype:
            return None
        if not base.flags.c_contiguous or type(base) is not type(self.flat):
            return None
        start = _ptr(base)
        isz = base.itemsize
        for g, off in zip(grads, self.offsets):
            if g.base is not base or not g.flags.c_contiguous or _ptr(g) != start + off * isz:
                return None
        return base

    def bump_versions(self) -> None:
        for p in self.params:
            p._vc[0] += 1

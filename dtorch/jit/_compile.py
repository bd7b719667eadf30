"""``dtorch.compile``: trace on the first call per input signature, run the optimized graph.

The guard of a cache entry is the inputs' shapes, dtypes, devices and requires_grad, the other
(hashable) arguments, grad mode and the module's training flag. Inference calls (no grad needed)
run a frozen, optimized graph on raw arrays (elementwise groups fused into generated C, ``_fuse.py``),
re-frozen when a parameter changed (its version counter or array moved: an optimizer step, ``.to()``); calls
that need grad run the traced graph
through the recorded ops. What cannot be captured runs eagerly, with one warning naming why
(``fullgraph=True`` raises instead).
"""
from __future__ import annotations

import functools
import warnings
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from ..autograd.grad_mode import STATE
from ..nn.modules.module import Module
from ..tensor import Tensor, _make
from ._exec import Plan
from ._freeze import _inline_parameters, run_passes
from ._fuse import fuse_elementwise
from ._module import ScriptModule, build_hierarchy
from ._passes import RANDOM_OPS
from ._trace import record
from ._tracer import TracerWarning, unflatten

CACHE_SIZE_LIMIT = 8
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
_EAGER = object()


class _Entry:
    """One captured signature: the traced module/function and its inference plan (frozen lazily)."""

    __slots__ = ("traced", "plan", "versions", "params", "spec", "n_user")

    def __init__(self, traced: ScriptModule, params: list[Tensor]) -> None:
        self.traced = traced
        self.params = params
        self.plan = None
        self.versions = None
        self.spec = traced.graph.out_spec
        self.n_user = traced.graph.n_user

    def _stamp(self) -> tuple:
        return tuple((p._vc[0], id(p._data)) for p in self.params)

    def infer(self, tensors: list[Tensor]):
        stamp = self._stamp()
        if self.plan is None or stamp != self.versions:
            graph = _inline_parameters(self.traced, set())
            run_passes(graph, inference=not self.traced.training)
            fuse_elementwise(graph)
            self.plan, self.versions = Plan(graph), stamp
        arrays = self.plan.run_arrays([t._data for t in tensors])
        return unflatten([_make(a) for a in arrays], self.spec)[0]


class CompiledFunction:
    """What ``dtorch.compile`` returns for a function (and uses inside OptimizedModule)."""

    def __init__(self, fn: Callable, module: Module | None, fullgraph: bool, dynamic, mode) -> None:
        self.fn = fn
        self.module = module
        self.fullgraph = fullgraph
        self.dynamic = dynamic
        self.mode = mode
        self.cache: OrderedDict = OrderedDict()
        self.warned = False
        functools.update_wrapper(self, fn)

    def _fallback(self, reason: str):
        if self.fullgraph:
            raise RuntimeError(f"dtorch.compile(fullgraph=True): the graph of {self._name()} cannot be captured: "
                               f"{reason}")
        if not self.warned:
            self.warned = True
            warnings.warn(f"dtorch.compile: {self._name()} runs eagerly: {reason}", UserWarning, stacklevel=4)
        return _EAGER

    def _name(self) -> str:
        target = self.module if self.module is not None else self.fn
        return type(target).__name__ if self.module is not None else getattr(target, "__name__", "the function")

    def _key(self, args: tuple) -> Any:
        parts = []
        for a in args:
            if isinstance(a, Tensor):
                d = a._data
                parts.append((d.shape, d.dtype, None if type(d) is np.ndarray else d.device.id, a._rg))
            else:
                parts.append(("const", type(a), a))
        training = self.module.training if self.module is not None else None
        return tuple(parts), STATE.enabled, training

    def _capture(self, args: tuple):
        tensors = [a for a in args if isinstance(a, Tensor)]
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        target = self.module if self.module is not None else self.fn

        def with_constants(*ts):
            full = list(args)
            for i, t in zip(positions, ts):
                full[i] = t
            return target(*full)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TracerWarning)
            try:
                graph = record(with_constants, tuple(tensors), self.module, strict=False)
            except Exception as e:  # noqa: BLE001  (any failure to capture falls back to eager)
                return self._fallback(f"{type(e).__name__}: {e}")
        tracer_warnings = [w for w in caught if issubclass(w.category, TracerWarning)]
        for w in caught:
            if not issubclass(w.category, TracerWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        random = sorted({n.op for n in graph.nodes if n.op in RANDOM_OPS})
        if random:
            return self._fallback(f"random op(s) {', '.join(random)} would replay one draw (training mode?)")
        if tracer_warnings:
            w = tracer_warnings[0]
            return self._fallback(f"the trace might not generalize ({w.filename}:{w.lineno}: {w.message})")
        holder = build_hierarchy(self.module) if self.module is not None else ScriptModule("function")
        holder._set_graph(graph)
        return _Entry(holder, holder._state_tensors())

    def __call__(self, *args, **kwargs):
        if kwargs:
            return self._eager(args, kwargs, "keyword arguments are not captured")
        try:
            key = self._key(args)
            hash(key)
        except TypeError:
            return self._eager(args, kwargs, "an argument is neither a tensor nor hashable")
        entry = self.cache.get(key)
        if entry is None:
            if len(self.cache) >= CACHE_SIZE_LIMIT:
                return self._eager(args, kwargs, f"hit the cache size limit ({CACHE_SIZE_LIMIT} input signatures)")
            entry = self.cache[key] = self._capture(args)
        else:
            self.cache.move_to_end(key)
        if entry is _EAGER:
            return self._call_target(args, kwargs)
        tensors = [a for a in args if isinstance(a, Tensor)]
        if STATE.enabled and (any(t._rg for t in tensors) or any(p._rg for p in entry.params)):
            return entry.traced._run("forward", tuple(tensors), entry.traced._state_tensors())
        return entry.infer(tensors)

    def _eager(self, args, kwargs, reason: str):
        self._fallback(reason)
        return self._call_target(args, kwargs)

    def _call_target(self, args, kwargs):
        return (self.module if self.module is not None else self.fn)(*args, **kwargs)


class OptimizedModule(Module):
    """torch's OptimizedModule: wraps ``_orig_mod``; calling it runs the compiled forward."""

    def __init__(self, mod: Module, compiled: CompiledFunction) -> None:
        super().__init__()
        self._orig_mod = mod
        object.__setattr__(self, "_compiled", compiled)

    def forward(self, *args, **kwargs):
        return self._compiled(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["_orig_mod"], name)


def compile(model: Callable | None = None, *, fullgraph: bool = False, dynamic: bool | None = None,
            backend="inductor", mode: str | None = None, options: dict | None = None, disable: bool = False):
    """torch.compile: ``compile(m)``, ``@compile`` and ``@compile(mode=...)``."""
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be specified at the same time.")
    if mode is not None and mode not in MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: {', '.join(MODES)}")
    if model is None:
        return lambda m: compile(m, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                                 options=options, disable=disable)
    if disable:
        return model
    if isinstance(model, Module):
        return OptimizedModule(model, CompiledFunction(model.forward, model, fullgraph, dynamic, mode))
    if not callable(model):
        raise RuntimeError("compile: the model must be an nn.Module or a callable")
    return CompiledFunction(model, None, fullgraph, dynamic, mode)

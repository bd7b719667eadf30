"""Recording a graph at the dispatcher.

While a :class:`Tracer` is installed (``_dispatch.AUTOCAST.tracer``), every op that goes through
``apply`` runs as usual (autograd included) and is appended to the graph. Tensors are told apart
by identity (and by their array, so ``detach()`` and ``.data`` keep their value); a tensor the
tracer has not seen (``zeros``/``arange`` made inside the function, a captured global) becomes a
``prim::Constant`` holding a copy of its data. In-place ops reach the tracer as the dispatched op
followed by ``rebase`` (``_ops/_inplace.py``), which marks that node in place. Converting a tensor to
a Python value emits torch's :class:`TracerWarning`.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable

import numpy as np

from .._dispatch import AUTOCAST, OpDef, _apply
from ..tensor import Tensor
from ._ir import Graph, Value, is_array as _is_array

_RESHAPES = ("view", "reshape", "expand")


class TracerWarning(Warning):
    """torch.jit.TracerWarning: the trace may not generalize to other inputs."""


def _conversion_msg(what: str) -> str:
    return (f"Converting a tensor to {what} might cause the trace to be incorrect. We can't record the data "
            "flow of Python values, so this value will be treated as a constant in the future. This means "
            "that the trace might not generalize to other inputs!")


_CONVERSIONS = {
    "__bool__": "a Python boolean", "item": "a Python number", "__float__": "a Python float",
    "__int__": "a Python integer", "__index__": "a Python index", "tolist": "a Python list",
    "numpy": "a NumPy array",
}


class Tracer:
    """The active recording: the graph and the map from live tensors to its values."""

    def __init__(self) -> None:
        self.graph = Graph()
        self.values: dict[int, Value] = {}
        self.arrays: dict[int, Value] = {}
        self._keep: list = []  # holds what the id maps refer to alive, so no id is reused
        self._scalars: dict = {}
        self._index_like: list = []
        self.quiet = 0

    # ---- values -------------------------------------------------------------------------------
    def bind(self, t: Tensor, v: Value) -> None:
        self.values[id(t)] = v
        self.arrays[id(t._data)] = v
        self._keep.append(t)
        self._keep.append(t._data)
        if t._data.dtype.kind in "biu" and (v.node is None or v.node.op != "prim::Constant"):
            self._index_like.append(t._data)

    def bind_module_state(self, graph, module) -> None:
        """Each parameter and buffer of ``module`` (once, however often it is shared) becomes a graph input
        named by its qualified name."""
        seen: set[int] = set()
        for qname, t in list(module.named_parameters()) + list(module.named_buffers()):
            if id(t) not in seen:
                seen.add(id(t))
                self.bind(t, graph.add_input(qname, t._data, t._rg))

    def _copies_traced(self, a) -> bool:
        """``a`` (an unknown array) equals an integer array the trace computed: a copy made outside."""
        return a.dtype.kind in "biu" and any(
            b.shape == a.shape and bool((b == a).all()) for b in self._index_like if type(b) is type(a))

    def value_of(self, t: Tensor) -> Value:
        v = self.values.get(id(t))
        if v is None:
            v = self.arrays.get(id(t._data))
            if v is None:
                v = self._outside(t._data)
            self.bind(t, v)
        return v

    def _outside(self, arr) -> Value:
        """The value of an array made outside the dispatcher: a reshape of a traced array it views
        whole (``indices.squeeze(dim)``), else a constant (with a warning when it views a traced array)."""
        base = getattr(arr, "base", None)
        src = self.arrays.get(id(base)) if base is not None else None
        if src is not None and _reshape_of(arr, base):
            node = self.graph.add_node("reshape", [src], {"shape": tuple(arr.shape)})
            node.output.set_type_from(arr)
            return node.output
        if src is not None:
            _warn_constant("a view of a traced tensor taken outside the dispatcher")
        return self.graph.constant(arr.copy())

    def _params(self, op: OpDef, params: dict | None) -> dict:
        """Array params that are traced values (embedding's indices): attribute -> value."""
        refs = {}
        for k, a in (params or {}).items():
            if _is_array(a):
                v = self.arrays.get(id(a))
                if v is not None:
                    refs[k] = v
                elif self._copies_traced(a):
                    _warn_constant(f"the array argument {k!r} of {op.name}")
            elif isinstance(a, (tuple, list)) and any(_is_array(x) and self._copies_traced(x) for x in a):
                _warn_constant(f"the array argument {k!r} of {op.name}")
        return refs

    def _scalar(self, s) -> Value:
        key = (type(s), s)
        try:
            v = self._scalars.get(key)
        except TypeError:  # unhashable (a list of arrays, a slice...)
            return self.graph.constant(s)
        if v is None:
            v = self._scalars[key] = self.graph.constant(s)
        return v

    def _input(self, x, cast) -> Value:
        if isinstance(x, Tensor):
            v = self.value_of(x)
            if cast is not None and x._data.dtype != cast:
                node = self.graph.add_node("_to_copy", [v], {"dtype": np.dtype(cast)})
                node.output.set_type_from(np.empty(x._data.shape, cast))
                v = node.output
            return v
        if _is_array(x):
            v = self.arrays.get(id(x))
            return v if v is not None else self._outside(x)
        return self._scalar(x)

    # ---- the dispatcher's hooks -----------------------------------------------------------------
    def __call__(self, op: OpDef, inputs: tuple, params: dict | None, cast):
        if op.amp and any(v is not None for v in AUTOCAST.dtypes.values()):
            raise RuntimeError(f"dtorch.jit.trace: {op.name} ran under autocast entered during the trace; tracing "
                               "inside autocast is not supported")
        out = _apply(op, inputs, params, cast)
        ins = [self._input(x, cast) for x in inputs]
        refs = self._params(op, params)
        res, extra = (out if op.extra else (out, None))
        tensors = list(res) if isinstance(res, tuple) else [res]
        attrs = {k: (None if k in refs else a) for k, a in (params or {}).items()}
        node = self.graph.add_node(op.name, ins + list(refs.values()), attrs, len(tensors) + (1 if op.extra else 0))
        node.refs = {k: len(ins) + i for i, k in enumerate(refs)}
        for t, v in zip(tensors, node.outputs):
            v.set_type_from(t._data, t._rg)
            self.bind(t, v)
        if op.extra:
            ev = node.outputs[-1]
            if isinstance(extra, np.ndarray) or hasattr(extra, "__cuda_array_interface__"):
                ev.set_type_from(extra)
                self.arrays[id(extra)] = ev
                self._keep.append(extra)
            else:
                ev.kind = "object"
        if op.name in _RESHAPES and _batch_follows(node):
            node.sym = {"shape": [[0, 0, 0]]}
        return out

    def inplace(self, target: Tensor, result: Tensor) -> None:
        """``target``'s storage is about to receive ``result`` (an in-place op)."""
        tv = self.value_of(target)
        rv = self.values.get(id(result))
        nodes = self.graph.nodes
        last = nodes[-1] if nodes else None
        if (rv is not None and last is not None and last.outputs == [rv] and last.inputs
                and last.inputs[0] is tv and not last.inplace):
            last.inplace = True
            new = rv
        else:
            node = self.graph.add_node("copy", [tv, self.value_of(result)])
            node.inplace = True
            new = node.output
        new.set_type_from(target._data, target._rg or result._rg)
        self.bind(target, new)

    def alias(self, copy: Tensor, original: Tensor) -> None:
        """``copy`` is a snapshot of ``original`` taken for autograd: the same value."""
        self.bind(copy, self.value_of(original))


def _reshape_of(arr, base) -> bool:
    """``arr`` is all of ``base``'s elements in the same order (a reshape view)."""
    if arr.size != base.size or not arr.flags.c_contiguous or not base.flags.c_contiguous:
        return False
    ptr = (lambda a: a.__array_interface__["data"][0]) if isinstance(arr, np.ndarray) else (lambda a: a.data.ptr)
    return ptr(arr) == ptr(base)


def _warn_constant(what: str) -> None:
    warnings.warn(f"{what} does not come from a traced tensor and is recorded as a constant. This means that the "
                  "trace might not generalize to other inputs!", TracerWarning, stacklevel=4)


def _batch_follows(node) -> bool:
    """A reshape/view/expand whose leading size is its input's leading size (the batch)."""
    shape = node.attrs.get("shape")
    src = node.inputs[0] if node.inputs else None
    if not isinstance(shape, (tuple, list)) or not shape or src is None or not src.shape:
        return False
    return isinstance(shape[0], (int, np.integer)) and shape[0] == src.shape[0] and shape[0] != -1


# ---- tracing mode ---------------------------------------------------------------------------
def _warning_method(name: str, original: Callable, tracer: Tracer) -> Callable:
    msg = _conversion_msg(_CONVERSIONS[name])

    def method(self, *args, **kwargs):
        if not tracer.quiet:
            warnings.warn(msg, TracerWarning, stacklevel=2)
        tracer.quiet += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            tracer.quiet -= 1

    method.__name__ = name
    return method


@contextlib.contextmanager
def tracing(tracer: Tracer):
    """Install ``tracer`` at the dispatcher, and the conversion warnings on Tensor, for the block."""
    if AUTOCAST.tracer is not None:
        raise RuntimeError("dtorch.jit.trace: a trace is already in progress (nested tracing is not supported)")
    if any(v is not None for v in AUTOCAST.dtypes.values()):
        raise RuntimeError("dtorch.jit.trace: tracing inside autocast is not supported (the graph would record "
                           "float32 ops); trace outside the autocast region")
    saved = {name: Tensor.__dict__[name] for name in _CONVERSIONS if name in Tensor.__dict__}
    for name, fn in saved.items():
        setattr(Tensor, name, _warning_method(name, fn, tracer))
    AUTOCAST.tracer = tracer
    AUTOCAST.refresh()
    try:
        yield tracer
    finally:
        AUTOCAST.tracer = None
        AUTOCAST.refresh()
        for name, fn in saved.items():
            setattr(Tensor, name, fn)


def flatten_outputs(out: Any, where: str) -> tuple[list[Tensor], Any]:
    """(flat tensors, spec) of a traced function's result: a Tensor or nested tuple/list/dict of them."""
    if isinstance(out, Tensor):
        return [out], "T"
    if isinstance(out, (tuple, list)):
        flat: list = []
        specs = []
        for o in out:
            f, s = flatten_outputs(o, where)
            flat += f
            specs.append(s)
        return flat, {"tuple" if isinstance(out, tuple) else "list": specs}
    if isinstance(out, dict):
        flat, specs = [], {}
        for k, o in out.items():
            if not isinstance(k, str):
                raise RuntimeError(f"{where}: dict outputs need string keys, got {type(k).__name__}")
            f, s = flatten_outputs(o, where)
            flat += f
            specs[k] = s
        return flat, {"dict": specs}
    raise RuntimeError(f"{where}: only tensors, or (possibly nested) tuples, lists or dicts of tensors are "
                       f"supported as outputs, got {type(out).__name__}")


def unflatten(flat: list, spec: Any, pos: int = 0) -> tuple[Any, int]:
    if spec == "T":
        return flat[pos], pos + 1
    kind, inner = next(iter(spec.items()))
    if kind == "dict":
        out = {}
        for k, s in inner.items():
            out[k], pos = unflatten(flat, s, pos)
        return out, pos
    items = []
    for s in inner:
        item, pos = unflatten(flat, s, pos)
        items.append(item)
    return (tuple(items) if kind == "tuple" else items), pos

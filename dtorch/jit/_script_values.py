"""What scripted code computes with while its graph is built: tensors (bound to graph values by the tracer),
Python scalars computed at run time (:class:`SymInt`/:class:`SymFloat`: the example's number plus the graph value
it stands for), and plain Python values (constants). :class:`ScriptTracer` is the trace recorder that knows them
and writes into the current block.
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from .._device import device_of, move_array
from .._dispatch import OpDef
from ..tensor import Tensor, _make
from ._ir import PRIM_CONSTANT, Graph, Node, Value
from ._tracer import Tracer


class SymInt(int):
    """An int (or bool, ``kind="bool"``) known at run time: ``int(self)`` is the example's value, ``jit_value``
    the graph's."""

    def __new__(cls, value, jit_value: Value, kind: str = "int"):
        obj = int.__new__(cls, int(value))
        obj.jit_value, obj.kind = jit_value, kind
        return obj

    def __repr__(self) -> str:
        return f"SymInt({int(self)}, {self.jit_value!r})"


class SymFloat(float):
    """A float known at run time (see :class:`SymInt`)."""

    kind = "float"

    def __new__(cls, value, jit_value: Value):
        obj = float.__new__(cls, float(value))
        obj.jit_value = jit_value
        return obj


def is_sym(x) -> bool:
    return type(x) is SymInt or type(x) is SymFloat


def make_sym(value, v: Value):
    """A Sym scalar for graph value ``v`` whose example value is ``value``."""
    if isinstance(value, (bool, np.bool_)):
        v.kind = "bool"
        return SymInt(bool(value), v, "bool")
    if isinstance(value, (int, np.integer)):
        v.kind = "int"
        return SymInt(value, v)
    v.kind = "float"
    return SymFloat(value, v)


def _sym_paths(obj, path: tuple = ()) -> list[tuple]:
    if is_sym(obj):
        return [path]
    if isinstance(obj, slice):
        obj = (obj.start, obj.stop, obj.step)
    if isinstance(obj, (tuple, list)):
        return [p for i, x in enumerate(obj) for p in _sym_paths(x, path + (i,))]
    return []


def _at(obj, path: tuple):
    for i in path:
        obj = (obj.start, obj.stop, obj.step)[i] if isinstance(obj, slice) else obj[i]
    return obj


def _plain(obj):
    """``obj`` with every Sym scalar replaced by None (the template of a ``prim::Build``)."""
    if is_sym(obj):
        return None
    if isinstance(obj, slice):
        return slice(_plain(obj.start), _plain(obj.stop), _plain(obj.step))
    if isinstance(obj, (tuple, list)):
        items = [_plain(x) for x in obj]
        return tuple(items) if isinstance(obj, tuple) else items
    return obj


class ScriptTracer(Tracer):
    """The tracer of script: Sym scalars become graph values (as op inputs, and inside op params through a
    ``prim::Build`` node read by reference), the example value of every graph value is kept (``concrete``),
    and nodes go to the current block (:meth:`into`)."""

    def __init__(self) -> None:
        super().__init__()
        self.root = self.graph
        self.concrete: dict[int, Any] = {}

    def bind(self, t: Tensor, v: Value) -> None:
        super().bind(t, v)
        self.concrete[v.id] = t._data

    def _scalar(self, s) -> Value:
        if is_sym(s):
            return s.jit_value
        return super()._scalar(s)

    def __call__(self, op: OpDef, inputs: tuple, params: dict | None, cast):
        dynamic = {k: p for k, p in (params or {}).items() if _sym_paths(p)}
        out = super().__call__(op, inputs, params, cast)
        if dynamic:
            node = self.graph.nodes[-1]
            for k, p in dynamic.items():
                node.inputs.append(self.structure(p, len(self.graph.nodes) - 1))
                node.refs[k] = len(node.inputs) - 1
                node.attrs[k] = None
        return out

    def structure(self, p, index: int | None = None) -> Value:
        """The graph value of ``p``, a Sym scalar or a tuple/list/slice holding some (a ``prim::Build``)."""
        if is_sym(p):
            return p.jit_value
        paths = _sym_paths(p)
        node = self.graph.add_node("prim::Build", [_at(p, q).jit_value for q in paths],
                                   {"template": _plain(p), "slots": [list(q) for q in paths]}, index=index)
        node.output.kind = "list"
        self.concrete[node.output.id] = p
        return node.output

    # ---- values in the current block --------------------------------------------------------
    def leaf(self, x) -> Value:
        """The graph value of a tensor, Sym scalar or Python constant, in the current block."""
        if isinstance(x, Tensor):
            return self.value_of(x)
        if is_sym(x):
            return x.jit_value
        v = self.graph.constant(x)
        self.concrete[v.id] = x
        return v

    def prim(self, op: str, args: list, kind: str | None = None, value=None):
        """Add ``prim::<op>`` over ``args`` (Sym/Python scalars or tensors) with example result ``value``."""
        node = self.graph.add_node(op, [self.leaf(a) for a in args])
        return self.sym_of(node.output, value, kind)

    def sym_of(self, v: Value, value, kind: str | None = None):
        sym = make_sym(value, v)
        if kind is not None:
            v.kind = kind
        self.concrete[v.id] = value
        return sym

    def num_to_tensor(self, x, like: Tensor) -> Tensor:
        """A run-time scalar as a 0-d tensor (``prim::NumToTensor``) on ``like``'s device, for tensor arithmetic."""
        node = self.graph.add_node("prim::NumToTensor", [x.jit_value])
        data = np.asarray(bool(x) if x.kind == "bool" else (float(x) if x.kind == "float" else int(x)))
        if not isinstance(like._data, np.ndarray):
            data = move_array(data, device_of(like._data))
        return self.fresh_tensor(data, node.output)

    def fresh_tensor(self, data, v: Value) -> Tensor:
        """A new tensor holding a copy of ``data`` that stands for graph value ``v``."""
        t = _make(data.copy())
        v.set_type_from(t._data)
        self.bind(t, v)
        return t

    def output_like(self, example, v: Value):
        """The stand-in for graph value ``v`` whose example is ``example`` (a tensor or a scalar)."""
        if isinstance(example, Tensor):
            return self.fresh_tensor(example._data, v)
        if _is_data(example):
            return self.fresh_tensor(example, v)
        return self.sym_of(v, example.item() if hasattr(example, "item") else example)

    @contextlib.contextmanager
    def into(self, block: Graph):
        """Record into ``block`` for the duration (the constant cache is per block)."""
        saved, scalars = self.graph, self._scalars
        self.graph, self._scalars = block, dict(scalars)
        try:
            yield block
        finally:
            self.graph, self._scalars = saved, scalars

    def input_deps(self, v: Value) -> set[int] | None:
        """The user-input positions a run-time scalar is computed from (by prim:: scalar ops and constants), or
        None when it also depends on a tensor or a loop's values."""
        producers = {o.id: n for n in self.root.walk() for o in n.outputs}
        positions = {x.id: i for i, x in enumerate(self.root.inputs[:self.root.n_user])}
        out: set[int] = set()
        todo = [v]
        while todo:
            x = todo.pop()
            if x.id in positions:
                out.add(positions[x.id])
                continue
            n = producers.get(x.id)
            if n is None or n.blocks or x.kind == "Tensor" or (n.op != PRIM_CONSTANT and not n.op.startswith("prim::")):
                return None
            todo.extend(n.inputs)
        return out

    def example_of(self, vid: int, nodes: dict[int, Node]):
        if vid in self.concrete:
            return self.concrete[vid]
        node = nodes.get(vid)
        if node is not None and node.op == PRIM_CONSTANT:
            return node.attrs["value"]
        raise RuntimeError(f"dtorch.jit.script: no example value for %{vid}")


def _is_data(x) -> bool:
    return isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__")

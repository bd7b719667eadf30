"""ScriptModule and ScriptFunction: a graph plus (for modules) the parameters it reads by name."""
from __future__ import annotations

from typing import Any


from ..autograd.grad_mode import STATE
from ..nn.modules.module import Module
from ..tensor import Tensor, _make
from ._exec import Plan
from ._ir import Graph, is_array as _array
from ._printer import code_text
from ._tracer import unflatten


class _GraphRunner:
    """What ScriptModule and ScriptFunction share: the graph, its plan, calling it."""

    _graph: Graph
    _plan: Plan

    def _set_graph(self, graph: Graph) -> None:
        object.__setattr__(self, "_graph", graph)
        object.__setattr__(self, "_plan", Plan(graph))

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def inlined_graph(self) -> Graph:
        return self.graph

    @property
    def code(self) -> str:
        return code_text(self.graph)

    def _run(self, name: str, args: tuple, extra: list[Tensor]) -> Any:
        graph = self._graph
        if len(args) != graph.n_user:
            raise RuntimeError(f"{name}() expected {graph.n_user} argument(s) but got {len(args)}")
        for v, a in zip(graph.inputs, args):
            if v.kind == "Tensor" and not isinstance(a, Tensor):
                raise RuntimeError(f"{name}(): expected a Tensor for argument {v.name!r} "
                                   f"but got {type(a).__name__}")
        check_guards(graph, list(args))
        return run_values(graph, self._plan, list(args) + list(extra))


def guards_hold(graph: Graph, values: list) -> bool:
    return all(type(values[i]) is type(v) and values[i] == v for i, v in graph.guards.items())


def check_guards(graph: Graph, args: list) -> None:
    """A scripted graph specialized on some number arguments (``Graph.guards``) runs only with those values."""
    if not guards_hold(graph, args):
        names = ", ".join(f"{graph.inputs[i].name}={v!r}" for i, v in graph.guards.items())
        raise RuntimeError(f"this scripted graph was specialized on {names} (numbers the source uses as constants, "
                           "such as a view's size) and cannot run with other values; script it from source instead")


def run_values(graph: Graph, plan: Plan, values: list) -> Any:
    """Run ``graph`` on its input values (tensors, and the numbers of a scripted graph): on raw arrays, or through
    the recorded ops when a gradient is needed; outputs in the graph's structure."""
    if STATE.enabled and any(isinstance(t, Tensor) and t._rg for t in values):
        flat = [o if isinstance(o, Tensor) or not _array(o) else _make(o) for o in plan.run_tensors(values)]
    else:
        ins = {v.id: t for v, t in zip(graph.inputs, values)}
        arrays = plan.run_arrays([t._data if isinstance(t, Tensor) else t for t in values])
        flat = [ins[v.id] if v.id in ins else (_make(a) if _array(a) else a) for v, a in zip(graph.outputs, arrays)]
    return unflatten(flat, graph.out_spec)[0]


class ScriptFunction(_GraphRunner):
    """A traced function: ``fn(*tensors)`` runs its graph."""

    def __init__(self, graph: Graph, name: str) -> None:
        self._set_graph(graph)
        self.name = self.__name__ = self.__qualname__ = name

    def __call__(self, *args):
        return self._run(self.name, args, [])

    def __repr__(self) -> str:
        return f"<dtorch.jit.ScriptFunction object {self.name}>"


class ScriptModule(Module, _GraphRunner):
    """A traced module: the original hierarchy (``original_name`` per level), its parameters and
    buffers (the same objects as the traced module's), and ``forward`` as a graph."""

    def __init__(self, original_name: str = "Module") -> None:
        Module.__init__(self)
        object.__setattr__(self, "original_name", original_name)
        object.__setattr__(self, "_graph", None)
        object.__setattr__(self, "_slots", None)

    def _get_name(self) -> str:
        return self.original_name

    def extra_repr(self) -> str:
        return f"original_name={self.original_name}"

    def _set_graph(self, graph: Graph) -> None:
        _GraphRunner._set_graph(self, graph)
        slots = []
        for v in graph.inputs[graph.n_user:]:
            path, _, leaf = v.name.rpartition(".")
            mod = self.get_submodule(path) if path else self
            slots.append((mod, leaf))
        object.__setattr__(self, "_slots", slots)

    def _state_tensors(self) -> list[Tensor]:
        out = []
        for mod, leaf in self._slots:
            t = mod._parameters.get(leaf)
            if t is None:
                t = mod._buffers.get(leaf)
            if t is None:
                raise RuntimeError(f"ScriptModule: the graph reads {leaf!r} of {mod._get_name()}, which is "
                                   "neither a parameter nor a buffer any more")
            out.append(t)
        return out

    def forward(self, *args):
        if self._graph is None:
            raise RuntimeError(f"{self.original_name}: this submodule of a traced module has no forward graph "
                               "of its own; call the top-level module")
        return self._run("forward", args, self._state_tensors())

    def __getstate__(self):
        raise RuntimeError("ScriptModule is not picklable: use dtorch.jit.save")


def build_hierarchy(module: Module) -> ScriptModule:
    """A ScriptModule tree mirroring ``module``'s, holding the same parameter and buffer objects."""
    out = ScriptModule(type(module).__name__)
    out.train(module.training)
    for name, p in module._parameters.items():
        if p is not None:
            out.register_parameter(name, p)
    for name, b in module._buffers.items():
        if b is not None:
            out.register_buffer(name, b, name not in module._non_persistent_buffers_set)
    for name, child in module._modules.items():
        if child is not None:
            out.add_module(name, build_hierarchy(child))
    return out

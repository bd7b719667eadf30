"""``dtorch.jit.script``: functions and modules compiled from their Python source into the graph IR.

A scripted function or module checks its source when scripted (unsupported syntax raises there, naming file and
line) and builds its graph on the first call with each input signature (shapes, dtypes, devices of the tensors;
types of the scalars; training mode): the compiler (_script*.py) runs the source on those inputs, turning
run-time control flow into ``prim::If``/``prim::Loop`` blocks, so later calls that take other branches or other
trip counts run the same graph. Tensor and ``int``/``float``/``bool`` arguments are graph inputs; annotations
are checked as torch does (unannotated means Tensor). ``@ignore``/``@unused``/``@export`` as torch's.
"""
from __future__ import annotations

import inspect
import typing
from collections import OrderedDict
from typing import Any, Callable, Union, get_args, get_origin

from .._dispatch import AUTOCAST
from ..autograd.grad_mode import no_grad
from ..nn.modules.module import Module
from ..tensor import Tensor, _make
from ._exec import Plan
from ._ir import Graph, is_array
from ._module import ScriptFunction, ScriptModule, build_hierarchy, check_guards, guards_hold, run_values
from ._prims import Error
from ._script import Compiler, Frame, Raises, modifier, source_of
from ._script_control import emit_if
from ._script_stmt import run_function
from ._script_values import ScriptTracer, is_sym
from ._tracer import tracing, unflatten

MAX_SPECIALIZATIONS = 8


class ScriptCompiler(Compiler):
    def run_function(self, f: Frame) -> Any:
        return run_function(self, f)

    def emit_if(self, f: Frame, cond, runners: list) -> Any:
        return emit_if(self, f, cond, runners)


# ---- decorators ----------------------------------------------------------------------------------
def _mark(fn, how: str):
    target = getattr(fn, "__func__", fn)
    target._dtorch_jit_modifier = how
    return fn


def ignore(drop=False, **kwargs):
    """torch.jit.ignore: the function is not compiled; scripted code calls it as Python while the graph is built
    (its ops are recorded as they ran then). ``@ignore(drop=True)`` is ``@unused``."""
    if callable(drop):
        return _mark(drop, "ignore")
    return lambda fn: _mark(fn, "unused" if drop else "ignore")


def unused(fn):
    """torch.jit.unused: not compiled; calling it from scripted code raises at run time."""
    return _mark(fn, "unused")


def export(fn):
    """torch.jit.export: a module method compiled (and callable on the scripted module) besides ``forward``."""
    return _mark(fn, "export")


# ---- arguments ---------------------------------------------------------------------------------------
def _type_name(ann) -> str:
    if ann is Tensor or ann in ("Tensor", "torch.Tensor", "dtorch.Tensor"):
        return "Tensor"
    if ann in (int, float, bool, str) or ann in ("int", "float", "bool", "str"):
        return ann if isinstance(ann, str) else ann.__name__
    origin = get_origin(ann)
    if origin is Union and type(None) in get_args(ann):
        inner = [a for a in get_args(ann) if a is not type(None)]
        return f"Optional[{_type_name(inner[0])}]" if len(inner) == 1 else "Any"
    if isinstance(ann, str) and ann.startswith("Optional[") and ann.endswith("]"):
        return f"Optional[{_type_name(ann[9:-1])}]"
    if origin in (list, tuple):
        inner = ", ".join(_type_name(a) for a in get_args(ann) if a is not Ellipsis)
        return f"{'List' if origin is list else 'Tuple'}[{inner}]"
    if ann in (list, tuple):
        return "List"
    return "Any"


def _accepts(kind: str, value) -> bool:
    if kind.startswith("Optional["):
        return value is None or _accepts(kind[9:-1], value)
    if kind == "Tensor":
        return isinstance(value, Tensor)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "List":
        return isinstance(value, (list, tuple))
    if kind.startswith(("List[", "Tuple[")):
        if "Tensor" in kind:
            return is_tensor_seq(value)
        return isinstance(value, (list, tuple)) and not any(isinstance(v, Tensor) for v in value)
    return True


def is_tensor_seq(v) -> bool:
    return isinstance(v, (tuple, list)) and len(v) > 0 and all(isinstance(t, Tensor) for t in v)


def flat_args(values: list) -> list:
    """The graph's user inputs for these arguments: a tuple or list of tensors gives one input per tensor."""
    out: list = []
    for v in values:
        out.extend(v) if is_tensor_seq(v) else out.append(v)
    return out


def _found(value) -> str:
    return "Tensor" if isinstance(value, Tensor) else type(value).__name__


class _Signature:
    """The declared kinds of a scripted function's parameters (``self`` excluded)."""

    def __init__(self, fn: Callable, is_method: bool) -> None:
        params = list(inspect.signature(fn).parameters.values())[1 if is_method else 0:]
        self.fn_name = getattr(fn, "__name__", "forward")
        self.params = params
        self.kinds = []
        try:
            hints = typing.get_type_hints(fn)
        except (NameError, TypeError, SyntaxError, AttributeError):  # an annotation that does not evaluate: its text
            hints = {}
        for p in params:
            if p.annotation is not p.empty:
                self.kinds.append(_type_name(hints.get(p.name, p.annotation)))
            elif p.default is not p.empty and p.default is not None and not isinstance(p.default, Tensor):
                self.kinds.append(_type_name(type(p.default)))
            else:
                self.kinds.append("Tensor")

    def bind(self, args: tuple, kwargs: dict) -> list:
        sig = inspect.Signature(self.params)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise RuntimeError(f"{self.fn_name}() {e}") from None
        bound.apply_defaults()
        values = list(bound.arguments.values())
        for p, kind, v in zip(self.params, self.kinds, values):
            if kind.startswith(("List", "Tuple")) and isinstance(v, (list, tuple)) and any(
                    isinstance(x, Tensor) for x in v) and not is_tensor_seq(v):
                raise RuntimeError(f"{self.fn_name}(): argument '{p.name}' mixes tensors and other values; "
                                   "dtorch.jit.script takes sequences of tensors or of numbers")
            if not _accepts(kind, v):
                raise RuntimeError(f"{self.fn_name}() Expected a value of type '{kind}' for argument '{p.name}' but "
                                   f"instead found type '{_found(v)}'.")
        return [float(v) if k == "float" and isinstance(v, int) else v for k, v in zip(self.kinds, values)]

    def key(self, values: list) -> tuple:
        out = []
        for v in values:
            if isinstance(v, Tensor):
                out.append(("T", tuple(v.shape), str(v._data.dtype), str(v.device)))
            elif is_tensor_seq(v):
                out.append((type(v).__name__, self.key(list(v))))
            elif isinstance(v, (bool, int, float)):
                out.append((type(v).__name__,))
            else:
                out.append(("const", repr(v)))
        return tuple(out)


# ---- building and running ------------------------------------------------------------------------------
def _flat(out, tracer: ScriptTracer, where: str) -> tuple[list, Any]:
    if isinstance(out, (tuple, list)):
        flat, specs = [], []
        for o in out:
            f, s = _flat(o, tracer, where)
            flat += f
            specs.append(s)
        return flat, {"tuple" if isinstance(out, tuple) else "list": specs}
    if isinstance(out, Tensor) or is_sym(out) or isinstance(out, (bool, int, float)) or out is None:
        return [tracer.leaf(out)], "T"
    raise RuntimeError(f"{where}: only tensors, numbers, None and tuples/lists of them can be returned, got "
                       f"{type(out).__name__}")


def build_graph(fn: Callable, names: list[str], values: list, module: Module | None, where: str) -> Graph:
    """Compile ``fn`` (a method of ``module`` when given) on ``values`` into a graph."""
    tracer = ScriptTracer()
    graph = tracer.graph
    stand_ins = []
    for name, v in zip(names, values):
        if isinstance(v, Tensor):
            stand_ins.append(tracer.fresh_tensor(v._data, graph.add_input(name, v._data, v._rg)))
        elif is_tensor_seq(v):
            stand_ins.append(type(v)(tracer.fresh_tensor(t._data, graph.add_input(f"{name}.{i}", t._data, t._rg))
                                     for i, t in enumerate(v)))
        elif isinstance(v, (bool, int, float)):
            stand_ins.append(tracer.sym_of(graph.add_input(name), v))
        else:
            graph.add_input(name).kind = "None" if v is None else "object"
            graph.guards[len(graph.inputs) - 1] = v  # compiled as a constant: the graph holds for this value only
            stand_ins.append(v)
    graph.n_user = len(graph.inputs)
    if module is not None:
        tracer.bind_module_state(graph, module)
    outer, AUTOCAST.tracer = AUTOCAST.tracer, None  # called inside jit.trace: compile outside that trace
    try:
        with tracing(tracer), no_grad():
            try:
                out = ScriptCompiler(tracer).call_function(fn, stand_ins, {}, module)
            except Raises as r:
                raise Error(r.msg or "Exception") from None
            flat, spec = _flat(out, tracer, where)
    finally:
        AUTOCAST.tracer = outer
        AUTOCAST.refresh()
    graph.outputs, graph.out_spec = flat, spec
    return graph


def _loaded_args(graph: Graph, name: str, args: tuple, kwargs: dict) -> list:
    """The arguments of a loaded graph: positional, the trailing ``None`` inputs optional."""
    user = graph.inputs[:graph.n_user]
    args = tuple(flat_args(list(args)))
    if kwargs or len(args) > len(user) or any(v.kind != "None" for v in user[len(args):]):
        raise RuntimeError(f"{name}() expected {graph.n_user} positional argument(s) but got {len(args)}"
                           + (f" and keywords {sorted(kwargs)}" if kwargs else ""))
    for v, a in zip(user, args):
        if isinstance(a, Tensor) and v.shape is not None and tuple(a.shape) != tuple(v.shape):
            raise RuntimeError(f"{name}(): this loaded scripted graph was compiled for argument {v.name!r} of shape "
                               f"{list(v.shape)} but got {list(a.shape)}: a scripted graph is built per input "
                               "signature and may hold sizes read from its inputs as constants; script the model "
                               "from source for other shapes (jit.trace keeps a dynamic batch dimension)")
    return list(args) + [None] * (len(user) - len(args))


def run_graph(runner, args: list, extra: list) -> Any:
    """Run ``runner``'s graph on user values ``args`` and parameters ``extra`` (through the ops under grad)."""
    graph, plan = runner._graph, runner._plan
    check_guards(graph, args)
    values = list(args) + list(extra)
    if AUTOCAST.tracer is not None:
        return _paste_into_trace(graph, plan, values)
    return run_values(graph, plan, values)


def _paste_into_trace(graph: Graph, plan: Plan, values: list) -> Any:
    """Called while ``jit.trace`` records: the scripted graph goes into the trace whole (its ``prim::If`` and
    ``prim::Loop`` kept, as torch keeps a scripted submodule's control flow), its outputs computed by the graph."""
    tracer = AUTOCAST.tracer
    vmap = {v.id: (tracer.value_of(a) if isinstance(a, Tensor) else tracer._scalar(a))
            for v, a in zip(graph.inputs, values)}
    tracer.graph.paste(graph.nodes, vmap)
    arrays = plan.run_arrays([t._data if isinstance(t, Tensor) else t for t in values])
    flat = []
    for v, a in zip(graph.outputs, arrays):
        if is_array(a):
            t = _make(a.copy())
            tracer.bind(t, vmap[v.id])
            flat.append(t)
        else:
            flat.append(a)
    return unflatten(flat, graph.out_spec)[0]


class _Specializations:
    """Graphs of one function per input signature (bounded, most recent first)."""

    def __init__(self, fn: Callable, is_method: bool) -> None:
        self.fn, self.sig = fn, _Signature(fn, is_method)
        self.graphs: OrderedDict = OrderedDict()  # signature -> graphs (differing in their guards' values)

    def graph_for(self, values: list, module, extra_key=()) -> Graph:
        key = (self.sig.key(values), extra_key)
        graphs = self.graphs.setdefault(key, [])
        graph = next((g for g in graphs if guards_hold(g, flat_args(values))), None)
        if graph is None:
            names = [p.name for p in self.sig.params]
            graph = build_graph(self.fn, names, values, module, f"dtorch.jit.script({self.sig.fn_name})")
            graphs.append(graph)
            del graphs[:-MAX_SPECIALIZATIONS]
            while len(self.graphs) > MAX_SPECIALIZATIONS:
                self.graphs.popitem(last=False)
        self.graphs.move_to_end(key)
        return graph


def _no_graph(name: str) -> RuntimeError:
    return RuntimeError(f"{name}: the graph of a scripted function is built on its first call (per input "
                        "signature); call it once, or pass example_inputs to dtorch.jit.script")


class ScriptedFunction(ScriptFunction):
    """torch.jit.ScriptFunction made by ``script``: the source's graph per input signature."""

    def __init__(self, fn: Callable | None, graph: Graph | None = None, name: str | None = None) -> None:
        self._dtorch_original = fn
        self.name = self.__name__ = self.__qualname__ = name or getattr(fn, "__name__", "fn")
        self._spec = _Specializations(fn, False) if fn is not None else None
        self._graph = None
        if graph is not None:
            self._set_graph(graph)

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            raise _no_graph(self.name)
        return self._graph

    def graph_for(self, *args, **kwargs) -> Graph:
        """The graph for these inputs (built if needed; it becomes ``.graph``)."""
        if self._spec is None:
            return self.graph
        graph = self._spec.graph_for(self._spec.sig.bind(args, kwargs), None)
        if graph is not self._graph:
            self._set_graph(graph)
        return graph

    def __call__(self, *args, **kwargs):
        if self._spec is None:
            return run_graph(self, _loaded_args(self.graph, self.name, args, kwargs), [])
        values = self._spec.sig.bind(args, kwargs)
        self.graph_for(*values)
        return run_graph(self, flat_args(values), [])


class RecursiveScriptModule(ScriptModule):
    """torch.jit.RecursiveScriptModule: a scripted nn.Module (same parameters and buffers as the original);
    ``forward`` and the ``@export`` methods compiled from source per input signature."""

    def __init__(self, original_name: str = "Module") -> None:
        ScriptModule.__init__(self, original_name)
        object.__setattr__(self, "_source", None)
        object.__setattr__(self, "_methods", {})

    @classmethod
    def from_module(cls, module: Module) -> "RecursiveScriptModule":
        tree = build_hierarchy(module)
        out = cls(type(module).__name__)
        out.train(module.training)
        for name in ("_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"):
            object.__setattr__(out, name, getattr(tree, name))
        object.__setattr__(out, "_source", module)
        for name in dir(type(module)):
            attr = getattr(type(module), name, None)
            if callable(attr) and modifier(attr) == "export" and name != "forward":
                source_of(attr)
                object.__setattr__(out, name, _ExportedMethod(out, name))
        source_of(type(module).forward)
        return out

    def _specs(self, name: str) -> _Specializations:
        spec = self._methods.get(name)
        if spec is None:
            spec = self._methods[name] = _Specializations(getattr(type(self._source), name), True)
        return spec

    def _state_for(self, graph: Graph) -> list[Tensor]:
        out = []
        for v in graph.inputs[graph.n_user:]:
            path, _, leaf = v.name.rpartition(".")
            mod = self.get_submodule(path) if path else self
            t = mod._parameters.get(leaf)
            out.append(t if t is not None else mod._buffers[leaf])
        return out

    def _graph_for(self, name: str, args: tuple, kwargs: dict) -> tuple[Graph, list]:
        spec = self._specs(name)
        values = spec.sig.bind(args, kwargs)
        for mine, theirs in zip(self.modules(), self._source.modules()):
            theirs.training = mine.training
        return spec.graph_for(values, self._source, (self.training,)), values

    def graph_for(self, *args, **kwargs) -> Graph:
        if self._source is None:
            return self.graph
        graph, _ = self._graph_for("forward", args, kwargs)
        if graph is not self._graph:
            self._set_graph(graph)
        return graph

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            raise _no_graph(f"{self.original_name}.forward")
        return self._graph

    def forward(self, *args, **kwargs):
        if self._source is None:
            return run_graph(self, _loaded_args(self.graph, "forward", args, kwargs), self._state_for(self._graph))
        graph, values = self._graph_for("forward", args, kwargs)
        if graph is not self._graph:
            self._set_graph(graph)
        return run_graph(self, flat_args(values), self._state_for(graph))


class _ExportedMethod:
    """An ``@export`` method of a scripted module: its own graphs (one fixed graph once loaded), the module's
    parameters."""

    def __init__(self, module: RecursiveScriptModule, name: str, graph: Graph | None = None) -> None:
        self.module, self.name = module, name
        self._graph = self._plan = None
        if graph is not None:
            self._graph, self._plan = graph, Plan(graph)

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            raise _no_graph(self.name)
        return self._graph

    def __call__(self, *args, **kwargs):
        if self.module._source is None:
            values = _loaded_args(self.graph, self.name, args, kwargs)
            return run_graph(self, values, self.module._state_for(self._graph))
        graph, values = self.module._graph_for(self.name, args, kwargs)
        if graph is not self._graph:
            self._graph, self._plan = graph, Plan(graph)
        return run_graph(self, flat_args(values), self.module._state_for(graph))


def exported_methods(m: RecursiveScriptModule) -> dict[str, Graph]:
    """The graphs of ``m``'s ``@export`` methods built so far (what ``save`` stores besides forward)."""
    return {k: v._graph for k, v in vars(m).items() if isinstance(v, _ExportedMethod) and v._graph is not None}


def attach_method(m: RecursiveScriptModule, name: str, graph: Graph) -> None:
    object.__setattr__(m, name, _ExportedMethod(m, name, graph))


def script(obj, optimize=None, _frames_up: int = 0, _rcb=None, example_inputs=None):
    """torch.jit.script: compile a function or an nn.Module (its ``forward`` and what it calls) from source."""
    if isinstance(obj, (ScriptFunction, ScriptModule)):
        return obj
    if isinstance(obj, Module):
        out: Any = RecursiveScriptModule.from_module(obj)
    elif inspect.isclass(obj):
        raise RuntimeError(f"dtorch.jit.script: scripting classes ({obj.__name__}) isn't supported; script a "
                           "function or an nn.Module instance")
    elif callable(obj):
        source_of(obj)
        out = ScriptedFunction(obj)
    else:
        raise RuntimeError(f"dtorch.jit.script: cannot script a {type(obj).__name__}")
    for example in example_inputs or []:
        out.graph_for(*(example if isinstance(example, (tuple, list)) else (example,)))
    return out

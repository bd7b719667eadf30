"""``dtorch.jit.trace``: record a function or module into a graph, then check the trace as torch does."""
from __future__ import annotations

import difflib
import inspect
import warnings
from typing import Any, Callable

import numpy as np

from ..nn.modules.module import Module
from ..tensor import Tensor
from ._ir import PRIM_CONSTANT, Graph, is_array as _is_array
from ._module import ScriptFunction, ScriptModule, build_hierarchy
from ._printer import attr_text
from ._tracer import Tracer, TracerWarning, flatten_outputs, tracing


class TracingCheckError(Exception):
    """torch.jit.TracingCheckError: the trace disagreed with a re-trace on the check inputs."""

    def __init__(self, graph_diff_error, tensor_compare_error, extra_msg=None) -> None:
        self.message = "Tracing failed sanity checks!\n"
        if extra_msg is not None:
            self.message += extra_msg + "\n"
        if graph_diff_error is not None:
            self.message += "ERROR: Graphs differed across invocations!\n" + _indent(graph_diff_error) + "\n"
        if tensor_compare_error is not None:
            self.message += ("ERROR: Tensor-valued Constant nodes differed in value across invocations. This "
                             "often indicates that the tracer has encountered untraceable code.\n"
                             + _indent(tensor_compare_error) + "\n")
        super().__init__(self.message)


def _indent(s: str) -> str:
    return "\n".join("\t" + line for line in s.splitlines())


_CONTAINER_MSG = (
    "Encountering a {} at the output of the tracer might cause the trace to be incorrect, this is only valid if "
    "the container structure does not change based on the module's inputs. Consider using a constant container "
    "instead (e.g. for `list`, use a `tuple` instead. for `dict`, use a `NamedTuple` instead). If you absolutely "
    "need this and know the side effects, pass strict=False to trace() to allow this behavior."
)


def _as_tuple(example_inputs) -> tuple:
    if isinstance(example_inputs, Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs)
    raise RuntimeError(f"dtorch.jit.trace: example_inputs must be a Tensor or a tuple of Tensors, got "
                       f"{type(example_inputs).__name__}")


def _arg_names(fn: Callable, n: int) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [names[i] if i < len(names) else f"input_{i}" for i in range(n)]


def _check_strict(spec: Any, strict: bool) -> None:
    if strict and isinstance(spec, dict):
        kind, inner = next(iter(spec.items()))
        if kind in ("list", "dict"):
            raise RuntimeError(_CONTAINER_MSG.format(kind))
        for s in (inner.values() if kind == "dict" else inner):
            _check_strict(s, strict)


def record(fn: Callable, inputs: tuple, module: Module | None = None, strict: bool = True) -> Graph:
    """Run ``fn(*inputs)`` with a tracer installed; the graph of what it did."""
    tracer = Tracer()
    graph = tracer.graph
    for name, t in zip(_arg_names(module.forward if module is not None else fn, len(inputs)), inputs):
        if not isinstance(t, Tensor):
            raise RuntimeError(f"dtorch.jit.trace: example input {name!r} is a {type(t).__name__}; only tensors "
                               "can be traced as inputs")
        v = graph.add_input(name, t._data, t._rg)
        if id(t) not in tracer.values:  # the same tensor passed twice reads the first input
            tracer.bind(t, v)
    graph.n_user = len(inputs)
    if module is not None:
        tracer.bind_module_state(graph, module)
    with tracing(tracer):
        out = fn(*inputs)
    flat, spec = flatten_outputs(out, "dtorch.jit.trace")
    _check_strict(spec, strict)
    graph.outputs = [tracer.value_of(t) for t in flat]
    graph.out_spec = spec
    return graph


def trace(func, example_inputs=None, optimize=None, check_trace: bool = True, check_inputs=None,
          check_tolerance: float = 1e-5, strict: bool = True, example_kwarg_inputs=None):
    """torch.jit.trace: a ScriptModule (for an nn.Module) or ScriptFunction replaying what ``func`` did."""
    if isinstance(func, (ScriptModule, ScriptFunction)):
        warnings.warn("The input to trace is already a ScriptModule, tracing it is a no-op. Returning the object "
                      "as is.", stacklevel=2)
        return func
    if example_kwarg_inputs is not None:
        raise NotImplementedError("dtorch.jit.trace: example_kwarg_inputs is not supported; pass example_inputs")
    inputs = _as_tuple(example_inputs)
    module = func if isinstance(func, Module) else None
    graph = record(func, inputs, module, strict)
    if module is not None:
        result: Any = build_hierarchy(module)
        result._set_graph(graph)
    else:
        result = ScriptFunction(graph, getattr(func, "__name__", "fn"))
    if check_trace:
        checks = check_inputs if check_inputs is not None else [inputs]
        for check in checks:
            _check_one(result, func, module, graph, _as_tuple(check), check_tolerance, strict)
    return result


# ---- check_trace ---------------------------------------------------------------------------------
def _clone(inputs: tuple) -> tuple:
    """Copies of the inputs, the same tensor passed twice giving one copy."""
    memo: dict = {}
    for t in inputs:
        if id(t) not in memo:
            memo[id(t)] = t.detach().clone().requires_grad_(t.requires_grad)
    return tuple(memo[id(t)] for t in inputs)


def canonical(graph: Graph) -> tuple[list[str], list]:
    """(one line per node without shapes, the tensor constants in order): what a re-trace must repeat."""
    num = {v.id: f"%{i}" for i, v in enumerate(graph.inputs)}
    lines, consts = [], []
    for n in graph.nodes:
        for v in n.outputs:
            num[v.id] = f"%{len(num)}"
        attrs = dict(n.attrs)
        for name, entries in n.sym.items():
            val = list(attrs[name])
            for index, _, _ in entries:
                val[index] = "*"
            attrs[name] = val
        if n.op == PRIM_CONSTANT and _is_array(attrs.get("value")):
            consts.append((n, attrs.pop("value")))
        text = ", ".join(f"{k}={attr_text(v)}" for k, v in attrs.items())
        outs = ", ".join(num[v.id] for v in n.outputs)
        lines.append(f"{outs} = {n.kind()}[{text}]({', '.join(num.get(v.id, '?') for v in n.inputs)})")
    lines.append("return (" + ", ".join(num.get(v.id, "?") for v in graph.outputs) + ")")
    return lines, consts


def _diagnose(graph: Graph, check: Graph) -> tuple[str | None, str | None]:
    a, ca = canonical(graph)
    b, cb = canonical(check)
    diff = None
    if a != b:
        diff = "Graph diff:\n" + _indent("\n".join(difflib.ndiff(a, b)))
    tensor_err = None
    if diff is None:
        for (node, x), (_, y) in zip(ca, cb):
            if x.shape != y.shape or not np.allclose(_host(x), _host(y), equal_nan=True):
                tensor_err = (f"Node:\n\t{node.kind()}[value=<Tensor>]()\nComparison exception: \tTensor-likes "
                              f"are not close! (shapes {list(x.shape)} and {list(y.shape)})")
                break
    return diff, tensor_err


def _host(x):
    return x if isinstance(x, np.ndarray) else x.get()


def _compare(traced_outs: list, ref_outs: list, what: str, tol: float) -> None:
    for i, (o, r) in enumerate(zip(traced_outs, ref_outs)):
        a, b = _host(o._data).astype(np.float64), _host(r._data).astype(np.float64)
        atol = 1e-5 if o._data.dtype.kind == "f" else 0
        if a.shape != b.shape or not np.allclose(a, b, rtol=tol, atol=atol, equal_nan=True):
            err = np.max(np.abs(a - b)) if a.shape == b.shape and a.size else "shape mismatch"
            warnings.warn(f"Output nr {i + 1}. of the traced function does not match the corresponding output of "
                          f"the {what}. Detailed error:\nTensor-likes are not close!\n\nGreatest absolute "
                          f"difference: {err}", TracerWarning, stacklevel=4)


def _check_one(traced, func, module, graph: Graph, inputs: tuple, tol: float, strict: bool) -> None:
    try:
        check_graph = record(func, _clone(inputs), module, strict)
    except Exception as e:
        raise TracingCheckError(None, None, extra_msg="encountered an exception while running the repeated trace "
                                f"with test inputs.\nException:\n{_indent(str(e))}") from e
    diff, tensor_err = _diagnose(graph, check_graph)
    if diff is not None or tensor_err is not None:
        raise TracingCheckError(diff, tensor_err)
    try:
        traced_outs, _ = flatten_outputs(traced(*_clone(inputs)), "trace")
    except Exception as e:
        raise TracingCheckError(None, None, extra_msg="encountered an exception while running the trace with test "
                                f"inputs.\nException:\n{_indent(str(e))}") from e
    fn_outs, _ = flatten_outputs(func(*_clone(inputs)), "trace")
    _compare(traced_outs, fn_outs, "Python function", tol)

"""Running a graph: on raw arrays (no autograd bookkeeping) or through the recorded ops (autograd).

:class:`Plan` resolves every node's op in the registry once (an unknown name is refused by
name) and turns the graph into a list of steps over a flat environment indexed by value id.
"""
from __future__ import annotations

import numpy as np

from .._device import move_array, device_of
from .._dispatch import REGISTRY, OpDef, apply
from .._ops._inplace import check_inplace_allowed, rebase
from ..tensor import Tensor, _make
from ._ir import PRIM_CONSTANT, Graph, is_array as _is_array
from ._prims import CONTROL, PRIM_IF, PRIMS, is_prim, num_to_tensor

_ndarray = np.ndarray


def resolve(name: str, where: str = "graph") -> OpDef | None:
    """The registry's op for a node's op name (None for a ``prim::`` op); unknown names are refused."""
    if name == PRIM_CONSTANT or (isinstance(name, str) and is_prim(name)):
        return None
    op = REGISTRY.get(name) if isinstance(name, str) else None
    if op is None:
        raise RuntimeError(f"{where}: unknown op {name!r}: not in dtorch's op registry")
    return op


def _mutated_constants(graph: Graph) -> set[int]:
    """Ids of constant values whose storage an in-place node writes (directly or through views)."""
    producer = {v.id: n for n in graph.walk() for v in n.outputs}
    out = set()
    for n in graph.walk():
        if not n.inplace:
            continue
        v = n.inputs[0]
        while True:
            p = producer.get(v.id)
            if p is None:
                break
            if p.op == PRIM_CONSTANT:
                out.add(v.id)
                break
            op = REGISTRY.get(p.op)
            if not (p.inplace or (op is not None and op.view)) or not p.inputs:
                break
            v = p.inputs[0]
    return out


def _with_refs(attrs: dict, refs: dict, args: list) -> tuple[dict, list]:
    """(attrs with each referenced input's value filled in, the positional args)."""
    attrs = dict(attrs)
    for name, k in refs.items():
        attrs[name] = args[k]
    return attrs, args[:len(args) - len(refs)]


def _with_sym(attrs: dict, sym: dict, args: list) -> dict:
    attrs = dict(attrs)
    for name, entries in sym.items():
        val = list(attrs[name])
        for index, arg, dim in entries:
            val[index] = args[arg].shape[dim]
        attrs[name] = tuple(val)
    return attrs


class _Prim:
    """A ``prim::`` step: a Python function of the input values (scalars, structures, raising)."""

    __slots__ = ("fn", "ins", "attrs", "outs")

    def __init__(self, node) -> None:
        self.fn, self.ins, self.attrs = PRIMS[node.op], tuple(v.id for v in node.inputs), node.attrs
        self.outs = tuple(v.id for v in node.outputs)

    def run(self, plan: "Plan", env: list, device, tensors: bool) -> None:
        out = self.fn(*[env[i] for i in self.ins], **self.attrs)
        if self.fn is num_to_tensor:
            out = move_array(out, device) if device is not None else out
            out = _make(out) if tensors else out
        if self.outs:
            env[self.outs[0]] = out


class _Control:
    """``prim::If`` (two blocks) or ``prim::Loop`` (one block): each block compiled to steps."""

    __slots__ = ("is_if", "ins", "outs", "blocks")

    def __init__(self, plan: "Plan", node) -> None:
        self.is_if = node.op == PRIM_IF
        self.ins, self.outs = tuple(v.id for v in node.inputs), tuple(v.id for v in node.outputs)
        self.blocks = [(tuple(v.id for v in b.inputs), plan.compile(b.nodes), tuple(v.id for v in b.outputs))
                       for b in node.blocks]

    def run(self, plan: "Plan", env: list, device, tensors: bool) -> None:
        execute = plan.steps_tensors if tensors else plan.steps_arrays
        if self.is_if:
            _, steps, outs = self.blocks[0 if _truth(env[self.ins[0]]) else 1]
            execute(steps, env, device)
            vals = [env[i] for i in outs]
        else:
            trips, go = _scalar(env[self.ins[0]]), _truth(env[self.ins[1]])
            vals = [env[i] for i in self.ins[2:]]
            ins, steps, outs = self.blocks[0]
            i = 0
            while go and i < trips:
                env[ins[0]] = i
                for k, v in zip(ins[1:], vals):
                    env[k] = v
                execute(steps, env, device)
                go, vals = _truth(env[outs[0]]), [env[k] for k in outs[1:]]
                i += 1
        for k, v in zip(self.outs, vals):
            env[k] = v


def _scalar(x):
    return x.item() if hasattr(x, "item") else (x._data.item() if isinstance(x, Tensor) else x)


def _truth(x) -> bool:
    return bool(_scalar(x))


class Plan:
    """A graph ready to run: ``run_arrays`` (fast) and ``run_tensors`` (autograd)."""

    def __init__(self, graph: Graph, where: str = "graph") -> None:
        self.graph = graph
        self._where = where
        self._mutated = _mutated_constants(graph)
        self.steps = self.compile(graph.nodes)
        self.in_ids = [v.id for v in graph.inputs]
        self.out_ids = [v.id for v in graph.outputs]
        self.size = max([graph._next] + [v.id + 1 for v in graph.inputs])
        self._moved: dict = {}

    def compile(self, nodes: list) -> list:
        steps: list = []
        for n in nodes:
            op = resolve(n.op, self._where)
            outs = tuple(v.id for v in n.outputs)
            if op is not None:
                steps.append((op, tuple(v.id for v in n.inputs), n.attrs, outs, n.inplace, (n.sym, n.refs)))
            elif n.op == PRIM_CONSTANT:
                steps.append((None, n.attrs.get("value"), outs[0] in self._mutated, outs))
            else:
                steps.append((False, _Control(self, n) if n.op in CONTROL else _Prim(n)))
        return steps

    def _const(self, value, copy: bool, device):
        if not _is_array(value):
            return value
        if device is not None:
            key = (id(value), str(device))
            moved = self._moved.get(key)
            if moved is None:
                moved = self._moved[key] = move_array(value, device)
            value = moved
        return value.copy() if copy else value

    def run_arrays(self, arrays: list) -> list:
        env: list = [None] * self.size
        for i, a in zip(self.in_ids, arrays):
            env[i] = a
        first = next((a for a in arrays if _is_array(a)), None)
        device = None if first is None or type(first) is _ndarray else device_of(first)
        self.steps_arrays(self.steps, env, device)
        return [env[i] for i in self.out_ids]

    def steps_arrays(self, steps: list, env: list, device) -> None:
        cpu = device is None
        for step in steps:
            op = step[0]
            if op is None:
                env[step[3][0]] = self._const(step[1], step[2], device)
                continue
            if op is False:
                step[1].run(self, env, device, False)
                continue
            _, ins, attrs, outs, inplace, (sym, refs) = step
            args = [env[i] for i in ins]
            if refs:
                attrs, args = _with_refs(attrs, refs, args)
            if sym:
                attrs = _with_sym(attrs, sym, args)
            kern = op.cpu_kernel if cpu else op.cuda_kernel
            out = kern(*args, **attrs) if attrs else kern(*args)
            if op.extra:
                out, extra = out
                env[outs[-1]] = extra
                outs = outs[:-1]
            if len(outs) == 1:
                if cpu and type(out) is not _ndarray:
                    out = np.asarray(out)
                if inplace:
                    args[0][...] = out
                    out = args[0]
                env[outs[0]] = out
            else:
                for i, o in zip(outs, out):
                    env[i] = np.asarray(o) if cpu and type(o) is not _ndarray else o

    def run_tensors(self, tensors: list) -> list:
        """Run through the ops' public entry (``apply``): autograd records as in eager mode."""
        env: list = [None] * self.size
        for i, t in zip(self.in_ids, tensors):
            env[i] = t
        first = next((t for t in tensors if isinstance(t, Tensor)), None)
        device = None if first is None or type(first._data) is _ndarray else device_of(first._data)
        self.steps_tensors(self.steps, env, device)
        return [env[i] for i in self.out_ids]

    def steps_tensors(self, steps: list, env: list, device) -> None:
        for step in steps:
            op = step[0]
            if op is None:
                value = self._const(step[1], step[2], device)
                env[step[3][0]] = _make(value) if _is_array(value) else value
                continue
            if op is False:
                step[1].run(self, env, device, True)
                continue
            _, ins, attrs, outs, inplace, (sym, refs) = step
            args = [env[i] for i in ins]
            if refs:
                attrs, args = _with_refs(attrs, refs, [a._data if isinstance(a, Tensor) else a for a in args])
                args = [env[i] for i in ins[:len(args)]]
            if sym:
                attrs = _with_sym(attrs, sym, [a._data if isinstance(a, Tensor) else a for a in args])
            if inplace:
                check_inplace_allowed(args[0])
            out = apply(op, tuple(args), attrs or None)
            if op.extra:
                out, extra = out
                env[outs[-1]] = extra
                outs = outs[:-1]
            if len(outs) == 1:
                env[outs[0]] = rebase(args[0], out) if inplace else out
            else:
                for i, o in zip(outs, out):
                    env[i] = o

"""Algebraic simplification: ``x*1``, ``x+0``, double transposes, reshape chains, no-op casts and
expands, and (for inference) dropout. A rewrite keeps the output's dtype and shape, and values in
the alias family of an in-place write are left alone."""
from __future__ import annotations

import numpy as np

from ._ir import Graph, Node, Value
from ._passes import _NOTHING, const_value, eliminate_dead_code, mutated_family

_RESHAPE = ("view", "reshape")


def _same_type(a: Value, b: Value) -> bool:
    return a.kind == b.kind == "Tensor" and a.dtype == b.dtype and a.shape == b.shape


def _is_scalar(v: Value, number: float) -> bool:
    c = const_value(v)
    if c is _NOTHING or isinstance(c, bool):
        return False
    if isinstance(c, (int, float)):
        return c == number
    if isinstance(c, np.ndarray) and c.size == 1 and c.ndim == 0:
        return bool(c == number)
    return False


def _identity_arith(n: Node) -> Value | None:
    """The input a ``x*1``, ``1*x``, ``x/1``, ``x+0``, ``0+x``, ``x-0`` node returns unchanged."""
    if len(n.inputs) != 2:
        return None
    a, b = n.inputs
    out = n.outputs[0]
    unit = {"mul": 1, "div": 1, "add": 0, "sub": 0}.get(n.op)
    if unit is None or (n.op == "div" and n.attrs):
        return None
    if _is_scalar(b, unit) and _same_type(a, out):
        return a
    if n.op in ("mul", "add") and _is_scalar(a, unit) and _same_type(b, out):
        return b
    return None


def _inverse_layout(n: Node) -> Value | None:
    """``x`` for ``transpose(transpose(x, a, b), a, b)``, ``t(t(x))``, ``permute(permute(x, p), p^-1)``."""
    src = n.inputs[0] if n.inputs else None
    inner = src.node if src is not None else None
    if inner is None or inner.op != n.op or len(inner.outputs) != 1:
        return None
    x = inner.inputs[0]
    if n.op == "t":
        return x
    if n.op == "transpose":
        pair = {n.attrs.get("dim0"), n.attrs.get("dim1")}
        nd = len(x.shape or ())
        norm = {d % nd for d in pair if isinstance(d, int)} if nd else pair
        inner_pair = {d % nd for d in (inner.attrs.get("dim0"), inner.attrs.get("dim1")) if isinstance(d, int)} \
            if nd else {inner.attrs.get("dim0"), inner.attrs.get("dim1")}
        return x if norm == inner_pair and len(norm) == 2 else None
    if n.op == "permute":
        p, q = inner.attrs.get("dims"), n.attrs.get("dims")
        if isinstance(p, (tuple, list)) and isinstance(q, (tuple, list)) and len(p) == len(q):
            nd = len(p)
            composed = [p[d % nd] % nd for d in q]
            return x if composed == list(range(nd)) else None
    return None


def _reshape_chain(graph: Graph, i: int, n: Node) -> bool:
    """Make ``reshape(reshape(x, s1), s2)`` read ``x`` directly; True when rewritten."""
    inner = n.inputs[0].node
    if inner is None or inner.op not in _RESHAPE or (n.sym and not inner.sym):
        return False
    n.inputs = [inner.inputs[0]]
    if n.op != inner.op:
        n.op = "reshape"
    return True


def simplify(graph: Graph, inference: bool = False) -> int:
    """Apply the rewrites until none applies; ``inference=True`` also drops dropout. Returns the count."""
    total = 0
    while True:
        family = mutated_family(graph)
        changed = 0
        for i, n in enumerate(graph.nodes):
            if n.inplace or any(v.id in family for v in n.inputs + n.outputs) or len(n.outputs) != 1:
                continue
            out = n.outputs[0]
            repl = None
            if n.op in ("mul", "div", "add", "sub"):
                repl = _identity_arith(n)
            elif n.op in ("transpose", "t", "permute"):
                repl = _inverse_layout(n)
            elif n.op in _RESHAPE + ("expand",) and n.inputs and _same_type(n.inputs[0], out):
                repl = n.inputs[0]
            elif n.op == "_to_copy" and n.attrs.get("device") is None and n.inputs and _same_type(n.inputs[0], out):
                repl = n.inputs[0]
            elif n.op == "dropout" and inference:
                repl = n.inputs[0]
            if repl is None and n.op in _RESHAPE and _reshape_chain(graph, i, n):
                changed += 1
                continue
            if repl is not None and repl is not out:
                graph.replace_uses(out, repl, i + 1)
                changed += 1
        eliminate_dead_code(graph)
        total += changed
        if not changed:
            return total

"""The backward engine: runs graph nodes in dependency order, accumulates into leaves.

Gradients travel as raw arrays when ``create_graph`` is False (fast), and as Tensors
when it is True, so the backward formulas themselves get recorded.
"""
from __future__ import annotations

import heapq
import itertools
import sys

import numpy as _np

from .. import _dtype
from .._device import array_device_scope
from ..tensor import Tensor, _make
from . import anomaly_mode
from .grad_mode import STATE
from .graph import AccumulateGrad


_np_generic = _np.generic
_generic_base = _np.float32


def _as_mode(g, create_graph: bool):
    if create_graph:
        return g if isinstance(g, Tensor) else _make(g)
    return g._data if isinstance(g, Tensor) else g


def _run_hooks(hooks: dict, g, create_graph: bool):
    for fn in tuple(hooks.values()):
        t = g if create_graph else _make(g)
        r = fn(t)
        if r is not None:
            g = r if create_graph else r._data
    return g


def reduce_to(g, shape, dtype, node, i: int):
    """Make an incoming gradient match its input's shape and dtype (torch's validate_outputs)."""
    if g.shape != shape:
        g = sum_to(g, shape, node, i)
    if g.dtype != dtype:
        if isinstance(g, Tensor):
            if g.is_complex() and dtype.kind != "c":
                g = g.real  # a real input's gradient is the real part (torch's convention)
            g = g.to(_dtype.from_numpy_dtype(dtype))
        else:
            if g.dtype.kind == "c" and dtype.kind != "c":
                g = g.real
            g = g.astype(dtype)
    return g


def sum_to(g, shape: tuple, node=None, i: int = 0):
    """Sum ``g`` (an array, or a Tensor: recorded) down to ``shape``, undoing broadcasting.

    A gradient that cannot have been broadcast from ``shape`` is the backward's error.
    """
    gshape = tuple(g.shape)
    lead = len(gshape) - len(shape)
    if lead < 0 or any(s != 1 and s != gs for s, gs in zip(shape, gshape[lead:])):
        name = node.name() if node is not None else "backward"
        raise RuntimeError(
            f"Function {name} returned an invalid gradient at index {i} - got {list(gshape)} but expected "
            f"shape compatible with {list(shape)}"
        )
    dims = tuple(range(lead)) + tuple(k + lead for k, s in enumerate(shape) if s == 1 and gshape[k + lead] != 1)
    if dims:
        g = g.sum(dims, keepdim=True) if isinstance(g, Tensor) else g.sum(axis=dims, keepdims=True)
    return g.reshape(shape)


def _add_grads(a, b):
    s = a + b
    if isinstance(s, _np_generic):  # numpy turns a 0-d sum into a scalar
        s = _np.asarray(s)
    return s


def run_backward(roots, root_grads, retain_graph: bool, create_graph: bool, targets=None, accumulate: bool = True):
    """Run backward from ``roots`` (list of (node, output_nr)) seeded with ``root_grads``.

    ``targets``: {(node, output_nr): slot} whose incoming gradients are captured and
    returned in a list (autograd.grad / backward(inputs=...)); only nodes that lead to a
    target run then. ``accumulate``: whether captured leaf grads go into ``.grad``.
    """
    deps, root_nodes = _dependencies(roots)
    needed = None
    captured = None
    if targets is not None:
        captured = [None] * (max(targets.values()) + 1 if targets else 0)
        needed = _nodes_leading_to({n for n, _ in targets}, root_nodes, deps)
    buffers: dict = {}
    for (node, nr), g in zip(roots, root_grads):
        _buffer_add(buffers, node, nr, g)
    order = itertools.count()  # ties in the ready queue: first come, first run
    ready = [(-node._seq, next(order), node) for node in root_nodes if deps[node] == 0]
    heapq.heapify(ready)

    prev_enabled = STATE.enabled
    STATE.enabled = create_graph
    anomaly = anomaly_mode._enabled[0]
    heappop = heapq.heappop
    try:
        while ready:
            node = heappop(ready)[2]
            grads = buffers.pop(node, None)
            if grads is not None:
                if node._tensor_hooks is not None or node._retained is not None:
                    _apply_tensor_hooks(node, grads, create_graph)
                if node._pre_hooks is not None:
                    grads = _run_pre_hooks(node, grads, create_graph)
                if targets is not None:
                    _capture(node, grads, targets, captured, accumulate, create_graph)
            if needed is not None and node not in needed:
                continue
            if type(node) is AccumulateGrad:
                if grads is not None and grads[0] is not None and (targets is None or accumulate):
                    g = grads[0]
                    del grads
                    # only this frame holds g (getrefcount's argument makes 2): .grad may take it.
                    # Computed on its own line: as a call argument, g would be on the stack too.
                    sole = sys.getrefcount(g) == 2
                    _sink(node, g, create_graph, sole)
                    g = None
                continue
            in_grads = None
            if grads is not None:
                in_grads = _call(node, grads, retain_graph, create_graph, anomaly)
            _send(node, in_grads, buffers, deps, ready, order)
            # drop this frame's references so a leaf's AccumulateGrad can take its array
            grads = in_grads = None
    finally:
        STATE.enabled = prev_enabled
    return captured


def _dependencies(roots) -> tuple[dict, list]:
    """({node: how many edges from reachable nodes point at it}, the distinct root nodes)."""
    deps: dict = {}
    stack = []
    for node, _ in roots:
        if node not in deps:
            deps[node] = 0
            stack.append(node)
    root_nodes = list(stack)
    while stack:
        for nxt, _ in stack.pop().next_functions:
            if nxt is None:
                continue
            c = deps.get(nxt)
            if c is None:
                deps[nxt] = 1
                stack.append(nxt)
            else:
                deps[nxt] = c + 1
    return deps, root_nodes


def _call(node, grads: list, retain_graph: bool, create_graph: bool, anomaly: bool):
    """Run ``node``'s backward on the grads of its outputs (then its hooks); None when all are None."""
    if node.n_outputs == 1:
        if grads[0] is None:
            return None
    elif all(g is None for g in grads):
        return None
    elif getattr(node, "_materialize", True):  # set_materialize_grads(False) passes None on
        grads = tuple(_zeros_for(node, i, create_graph) if g is None else g for i, g in enumerate(grads))
    g0 = grads[0] if grads[0] is not None else next(g for g in grads if g is not None)
    scope = None if type(g0) is _np.ndarray else array_device_scope(g0)
    if scope is None:
        in_grads = node._apply(grads, create_graph)
    else:  # a replica's node on another GPU (DataParallel) runs its kernels there
        with scope:
            in_grads = node._apply(grads, create_graph)
    if in_grads is not None:
        if node._hooks is not None:
            in_grads = _run_post_hooks(node, in_grads, grads, create_graph)
        if anomaly:
            anomaly_mode.check(node, in_grads)
        if not retain_graph:
            node._release()
    return in_grads


def _send(node, in_grads, buffers: dict, deps: dict, ready: list, order) -> None:
    """Add each input grad (shape and dtype made the input's) into the buffer of the node it flows to,
    and queue the nodes whose last dependency this was."""
    meta = node._in_meta if in_grads is not None else None
    i = -1
    for nxt, nr in node.next_functions:
        i += 1
        if nxt is None:
            continue
        if in_grads is not None:
            g = in_grads[i]
            if g is not None:
                if g.__class__ is _generic_base or isinstance(g, _np_generic):
                    g = _np.asarray(g)  # numpy turns 0-d results into scalars
                shape, dt = meta[i]
                if g.shape != shape or g.dtype != dt:
                    g = reduce_to(g, shape, dt, node, i)
                slot = buffers.get(nxt)
                if slot is None:
                    slot = buffers[nxt] = [None] * nxt.n_outputs
                prev = slot[nr]
                slot[nr] = g if prev is None else _add_grads(prev, g)
        left = deps[nxt] - 1
        deps[nxt] = left
        if left == 0:
            heapq.heappush(ready, (-nxt._seq, next(order), nxt))


def _capture(node, grads, targets: dict, captured: list, accumulate: bool, create_graph: bool) -> None:
    is_sink = type(node) is AccumulateGrad
    if is_sink and accumulate:
        return  # the leaf's .grad receives it; backward(inputs=) returns nothing
    for nr in range(len(grads)):
        slot = targets.get((node, nr))
        if slot is not None:
            g = grads[nr]
            if is_sink and g is not None:
                var = node._var()
                if var is not None and var._hooks:
                    g = _run_hooks(var._hooks, g, create_graph)
            captured[slot] = g


def _sink(node, g, create_graph: bool, sole_owner: bool) -> None:
    """AccumulateGrad: tensor hooks, accumulation into .grad, post-accumulate hooks."""
    var = node._var()
    if var is None:  # the leaf is gone: nobody can read its grad
        return
    if var._hooks:
        g = _run_hooks(var._hooks, g, create_graph)
        sole_owner = False
    _accumulate(var, g, create_graph, sole_owner)
    if var._post_acc_hooks:
        for fn in tuple(var._post_acc_hooks.values()):
            fn(var)


def _nodes_leading_to(target_nodes: set, root_nodes: list, deps: dict) -> set:
    """Nodes from which some target is reachable (the rest need not run)."""
    # Kahn's order from the roots, then a reverse sweep.
    indeg = dict(deps)
    order = [n for n in root_nodes if indeg[n] == 0]
    i = 0
    while i < len(order):
        for nxt, _ in order[i].next_functions:
            if nxt is None:
                continue
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                order.append(nxt)
        i += 1
    needed = set()
    for n in reversed(order):
        if n in target_nodes or any(nxt in needed for nxt, _ in n.next_functions if nxt is not None):
            needed.add(n)
    return needed


def _buffer_add(buffers: dict, node, nr: int, g) -> None:
    slot = buffers.get(node)
    if slot is None:
        slot = buffers[node] = [None] * node.n_outputs
    prev = slot[nr]
    slot[nr] = g if prev is None else _add_grads(prev, g)


def _zeros_for(node, i: int, create_graph: bool):
    shape, dt, xp = node._out_meta(i)
    z = xp.zeros(shape, dt)
    return _make(z) if create_graph else z


def _accumulate(var: Tensor, g, create_graph: bool, sole_owner: bool = False) -> None:
    if create_graph:
        g = _as_mode(g, True)
        var._grad = g if var._grad is None else var._grad + g
        return
    if isinstance(g, Tensor):
        g = g._data
    cur = var._grad
    if cur is None:
        # Take the array when nobody else can see it (not a view, no other reference), as
        # torch's AccumulateGrad steals; otherwise copy so that .grad never aliases anything.
        if not sole_owner or g.base is not None or not g.flags.writeable:
            g = g.copy()
        var._grad = _make(g)
    elif cur._rg:
        var._grad = _make(_add_grads(cur._data, g))
    else:
        d = cur._data
        if d.shape == g.shape:
            d += g
            cur._vc[0] += 1
        else:
            cur._data = _add_grads(d, g)


def _apply_tensor_hooks(node, grads: list, create_graph: bool) -> None:
    th = node._tensor_hooks
    if th:
        for nr, hooks in th.items():
            if hooks and grads[nr] is not None:
                grads[nr] = _run_hooks(hooks, grads[nr], create_graph)
    if node._retained:
        for nr, ref in node._retained.items():
            t = ref()
            if t is None or grads[nr] is None:
                continue
            g = grads[nr]
            gt = g if create_graph else _make(g.copy())
            t._grad = gt if t._grad is None else t._grad + gt


def _run_pre_hooks(node, grads: list, create_graph: bool):
    for fn in tuple(node._pre_hooks.values()):
        ts = tuple(None if g is None else _as_mode(g, True) for g in grads)
        r = fn(ts)
        if r is not None:
            grads = [None if g is None else _as_mode(g, create_graph) for g in r]
    return grads


def _run_post_hooks(node, in_grads, grads, create_graph: bool):
    outs = tuple(None if g is None else _as_mode(g, True) for g in grads)
    for fn in tuple(node._hooks.values()):
        ins = tuple(None if g is None else _as_mode(g, True) for g in in_grads)
        r = fn(ins, outs)
        if r is not None:
            in_grads = tuple(None if g is None else _as_mode(g, create_graph) for g in r)
    return in_grads

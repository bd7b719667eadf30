"""Control flow of scripted code: ``if`` on run-time values as ``prim::If`` (both branches compiled into blocks,
the variables they assign merged into the node's outputs), ``for i in range(...)`` and ``while`` as
``prim::Loop`` (the body compiled once, the variables it reassigns carried), loops over modules and tuples
unrolled, ``assert`` as an ``if`` that raises. After a node is built, compiling goes on with the example values
of its outputs (the branch the example takes; the loop run by the executor).
"""
from __future__ import annotations

import ast
from typing import Any, Callable

from .._device import device_of
from ..nn.modules.module import Module
from ..tensor import Tensor
from ._exec import Plan
from ._ir import PRIM_IF, PRIM_LOOP, Graph, Node
from ._script import Compiler, Frame, Raises
from ._script_stmt import BREAK, NORMAL, RAISE, RETURN, STATEMENTS, assign, run_block, run_stmts
from ._script_values import is_sym
from .frontend import FrontendError

_MISSING = object()
MAX_TRIPS = (1 << 63) - 1


class _Slot:
    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i


def _kind(x) -> str | None:
    """The graph kind of a value that can be a node output, or None for a compile-time-only value."""
    if isinstance(x, Tensor):
        return "Tensor"
    if is_sym(x):
        return x.kind
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int"
    if isinstance(x, float):
        return "float"
    return None


def _type_error(f: Frame, what: str, a, b) -> Exception:
    ka, kb = _kind(a) or type(a).__name__, _kind(b) or type(b).__name__
    return f.error(f"{what} is set to type {ka} in the true branch and type {kb} in the false branch")


def _merge(a, b, pairs: list, f: Frame, what: str, force: bool = False):
    """A template of ``a``/``b`` (the two branches' values): equal compile-time values stay, the rest are slots
    (with ``force``, every run-time value is a slot: only one branch is live)."""
    if a is b and not (force and (isinstance(a, Tensor) or is_sym(a))):
        return a
    if isinstance(a, (tuple, list)) and type(a) is type(b) and len(a) == len(b):
        return type(a)(_merge(x, y, pairs, f, f"{what}[{i}]", force) for i, (x, y) in enumerate(zip(a, b)))
    ka, kb = _kind(a), _kind(b)
    if ka is None or kb is None:
        if ka is None and kb is None and not isinstance(a, (Tensor, Module)) and type(a) is type(b) and a == b:
            return a
        raise _type_error(f, what, a, b)
    if not is_sym(a) and not is_sym(b) and ka == kb and ka != "Tensor" and a == b:
        return a
    if ka != kb:
        raise _type_error(f, what, a, b)
    pairs.append((a, b))
    return _Slot(len(pairs) - 1)


def _fill(template, outs: list):
    if isinstance(template, _Slot):
        return outs[template.i]
    if isinstance(template, (tuple, list)):
        return type(template)(_fill(x, outs) for x in template)
    return template


def _branches(comp: Compiler, f: Frame, runners: list[Callable], taken: int) -> list[tuple[Graph, int, Any]]:
    """Run each branch into a new block of the current graph: (block, status, payload). An op that fails on the
    example inputs in the branch they do not take makes that branch raise its error at run time."""
    out = []
    for k, run in enumerate(runners):
        block = comp.tracer.graph.block()
        with comp.tracer.into(block):
            try:
                status, payload = run()
            except (FrontendError, Raises):
                raise
            except Exception as e:
                if k == taken:
                    raise
                block.nodes.append(Node("prim::RaiseException", [], {"msg": f"{type(e).__name__}: {e}"}))
                status, payload = RAISE, None
                _guard_numbers(comp.tracer)  # the failure may come from a number argument: hold for these only
        _check_writes(block, f)
        out.append((block, status, payload))
    return out


def _guard_numbers(tracer) -> None:
    root = tracer.root
    for i, v in enumerate(root.inputs[:root.n_user]):
        if v.kind in ("int", "float", "bool"):
            root.guards[i] = tracer.concrete[v.id]


def _check_writes(block: Graph, f: Frame) -> None:
    """Refuse in-place writes inside a block to tensors from outside it (both branches run while compiling)."""
    inside = {v.id for v in block.inputs}
    for n in block.walk():
        inside.update(v.id for v in n.outputs)
        inside.update(v.id for b in n.blocks for v in b.inputs)
        if n.inplace and n.inputs and n.inputs[0].id not in inside:
            raise f.error(f"in-place {n.kind()} on a tensor from outside an if or a loop isn't supported; assign "
                          "the result to a variable instead")


def _emit_if(comp: Compiler, f: Frame, cond, results: list, pairs: list) -> list:
    """The ``prim::If`` over ``results``' blocks with outputs from ``pairs``; the outputs' stand-ins."""
    tracer = comp.tracer
    for k, (block, status, _) in enumerate(results):
        with tracer.into(block):
            if status == RAISE:
                block.outputs = [_uninitialized(tracer, p[1 - k]) for p in pairs]
            else:
                block.outputs = [tracer.leaf(p[k]) for p in pairs]
    node = tracer.graph.add_node(PRIM_IF, [cond.jit_value], n_out=len(pairs))
    node.blocks = [r[0] for r in results]
    taken = 0 if bool(cond) else 1
    if results[taken][1] == RAISE:
        taken = 1 - taken
    return [tracer.output_like(p[taken], v) for p, v in zip(pairs, node.outputs)]


def _uninitialized(tracer, like):
    node = tracer.graph.add_node("prim::Uninitialized", [])
    node.output.kind = _kind(like)
    return node.output


def emit_if(comp: Compiler, f: Frame, cond, runners: list[Callable]) -> Any:
    """``a if cond else b`` on a run-time condition: each runner computes one branch's value."""
    results = _branches(comp, f, [lambda r=r: (NORMAL, r()) for r in runners], 0 if bool(cond) else 1)
    pairs: list = []
    live = [r[2] for r in results if r[1] != RAISE]
    template = _merge(live[0], live[-1], pairs, f, "the value", len(live) == 1)
    return _fill(template, _emit_if(comp, f, cond, results, pairs))


def if_stmt(comp: Compiler, f: Frame, s: ast.If) -> int:
    cond = comp.truth(comp.ev(s.test, f), f)
    if not is_sym(cond):
        return run_block_static(comp, f, s.body if cond else s.orelse)
    outer, saved_ret = f.env, f.ret

    def runner(stmts):
        def run():
            f.env, f.ret = dict(outer), None
            st = run_block(comp, f, stmts)
            return st, (f.env, f.ret)
        return run

    try:
        results = _branches(comp, f, [runner(s.body), runner(s.orelse)], 0 if bool(cond) else 1)
    finally:
        f.env, f.ret = outer, saved_ret
    statuses = [r[1] for r in results]
    live = [r for r in results if r[1] != RAISE]
    pairs: list = []
    if not live:
        _emit_if(comp, f, cond, results, pairs)
        raise Raises("", emitted=True)
    force = len(live) == 1
    if RETURN in statuses and NORMAL in statuses:
        raise f.error("return inside a loop isn't supported" if BREAK in f.env else
                      "a return in only one branch of an if with more code after it isn't supported here", s)
    if RETURN in statuses:
        rets = [r[2][1] if r[1] == RETURN else None for r in live]
        template = _merge(rets[0], rets[-1], pairs, f, "the returned value", force)
        f.ret = _fill(template, _emit_if(comp, f, cond, results, pairs))
        return RETURN
    envs = [r[2][0] for r in live]
    templates = {}
    for name in sorted(set(envs[0]) | set(envs[-1])):
        a, b = envs[0].get(name, _MISSING), envs[-1].get(name, _MISSING)
        if a is _MISSING or b is _MISSING:
            continue  # defined on one side only: undefined after the if
        if force and a is outer.get(name, _MISSING):
            continue  # the live branch left it as it was
        templates[name] = _merge(a, b, pairs, f, name, force)
    outs = _emit_if(comp, f, cond, results, pairs)
    for name, t in templates.items():
        f.env[name] = _fill(t, outs)
    return NORMAL


def run_block_static(comp: Compiler, f: Frame, stmts: list) -> int:
    return run_stmts(comp, f, stmts)


def assert_stmt(comp: Compiler, f: Frame, s: ast.Assert) -> int:
    exc = ast.Call(func=ast.Name("AssertionError", ast.Load()), args=[s.msg] if s.msg is not None else [],
                   keywords=[])
    check = ast.If(test=ast.UnaryOp(ast.Not(), s.test), body=[ast.Raise(exc=exc, cause=None)], orelse=[])
    for n in ast.walk(check):
        ast.copy_location(n, s)
    return if_stmt(comp, f, check)


# ---- loops ----------------------------------------------------------------------------------------
def _assigned(stmts: list) -> set[str]:
    return {n.id for s in stmts for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def for_stmt(comp: Compiler, f: Frame, s: ast.For) -> int:
    it = s.iter
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range" \
            and comp.ev(it.func, f) is range and not it.keywords:
        bounds = [comp.ev(a, f) for a in it.args]
        if not 1 <= len(bounds) <= 3 or any(not isinstance(b, int) for b in bounds):
            raise f.error("range() takes 1 to 3 int arguments", it)
        start, stop, step = (0, bounds[0], 1) if len(bounds) == 1 else (bounds + [1])[:3]
        if is_sym(step) or step == 0:
            raise f.error("range()'s step must be a nonzero constant", it)
        return _loop(comp, f, s, (start, stop, step), None)
    items = comp.ev(it, f)
    if isinstance(items, Tensor):
        items = items.unbind(0)
    if isinstance(items, dict):
        items = list(items)
    if isinstance(items, Module) and type(items).__name__ in ("ModuleList", "Sequential", "ModuleDict"):
        items = list(items.values()) if type(items).__name__ == "ModuleDict" else list(items)
    if not isinstance(items, (tuple, list, range, zip, enumerate)) and type(items).__name__ not in (
            "dict_keys", "dict_values", "dict_items"):
        raise f.error(f"iterating over a {type(items).__name__} isn't supported (only range(), ModuleList, "
                      "Sequential, tuples and lists)", it)
    saved = f.env.get(BREAK, _MISSING)
    try:
        for item in list(items):
            f.env[BREAK] = False
            assign(comp, f, s.target, item)
            st = run_stmts(comp, f, s.body)
            if st != NORMAL:
                return st
            if is_sym(f.env[BREAK]):
                raise f.error("break on a run-time condition in a loop over modules or tuples isn't supported", s)
            if f.env[BREAK]:
                break
    finally:
        f.env.pop(BREAK, None)
        if saved is not _MISSING:
            f.env[BREAK] = saved
    return NORMAL


def while_stmt(comp: Compiler, f: Frame, s: ast.While) -> int:
    cond = comp.truth(comp.ev(s.test, f), f)
    if not is_sym(cond) and not cond:
        return NORMAL
    return _loop(comp, f, s, None, cond)


def _trip_count(comp: Compiler, f: Frame, s, start, stop, step):
    if not is_sym(start) and not is_sym(stop):
        return len(range(start, stop, step))
    lo, hi = (start, stop) if step > 0 else (stop, start)
    span = hi if not is_sym(lo) and lo == 0 else comp.binop(ast.Sub, hi, lo, f, s)
    if abs(step) == 1:
        return span
    span = comp.binop(ast.Add, span, abs(step) - 1, f, s)
    return comp.binop(ast.FloorDiv, span, abs(step), f, s)


def _loop(comp: Compiler, f: Frame, s, rng, cond) -> int:
    tracer = comp.tracer
    target = s.target.id if isinstance(s, ast.For) and isinstance(s.target, ast.Name) else None
    if isinstance(s, ast.For) and target is None:
        raise f.error("a range() loop needs a single name as its target", s.target)
    carried = [n for n in sorted(_assigned(s.body)) if n in f.env and n != target]
    for n in carried:
        if _kind(f.env[n]) is None:
            raise f.error(f"the loop reassigns {n!r}, a {type(f.env[n]).__name__}; only tensors and numbers can "
                          "change inside a loop")
    trips = _trip_count(comp, f, s, *rng) if rng is not None else MAX_TRIPS
    block = tracer.graph.block()
    counter = block.new_value("int", target)
    block.inputs.append(counter)
    outer = f.env
    body_env = dict(outer)
    body_env[BREAK] = False
    for n in carried:
        v = block.new_value("Tensor", n)
        block.inputs.append(v)
        x = outer[n]
        body_env[n] = tracer.fresh_tensor(x._data, v) if isinstance(x, Tensor) else tracer.sym_of(v, x, _kind(x))
    with tracer.into(block):
        f.env = body_env
        try:
            if target is not None:
                i = tracer.sym_of(counter, 0, "int")
                if rng[2] != 1:
                    i = comp.binop(ast.Mult, i, rng[2], f, s)
                if is_sym(rng[0]) or rng[0] != 0:
                    i = comp.binop(ast.Add, i, rng[0], f, s)
                body_env[target] = i
            st = run_block(comp, f, s.body)
            if st == RETURN:
                raise f.error("return inside a loop isn't supported", s)
            if st == RAISE:
                raise f.error("a loop body that always raises isn't supported", s)
            go = comp.truth(comp.ev(s.test, f), f) if cond is not None else True
            brk = comp.truth(body_env[BREAK], f)
            if brk is not False:
                go = comp.both(tracer.prim("prim::not", [brk], "bool", not brk) if is_sym(brk) else not brk, go, f)
            outs = []
            for n in carried:
                new = body_env[n]
                if _kind(new) != _kind(outer[n]):
                    raise f.error(f"Variable '{n}' previously had type {_kind(outer[n])} but is now being assigned "
                                  f"to a value of type {_kind(new) or type(new).__name__}")
                outs.append(tracer.leaf(new))
            block.outputs = [tracer.leaf(go)] + outs
        finally:
            f.env = outer
    _check_writes(block, f)
    inits = [tracer.leaf(outer[n]) for n in carried]
    node = tracer.graph.add_node(PRIM_LOOP, [tracer.leaf(trips), tracer.leaf(cond if cond is not None else True)]
                                 + inits, n_out=len(carried))
    node.blocks = [block]
    for n, v, value in zip(carried, node.outputs, _run_node(tracer, node)):
        v.name = None
        outer[n] = tracer.output_like(value, v)
    return NORMAL


def _run_node(tracer, node) -> list:
    """The example values of ``node``'s outputs: the executor runs it on the examples of what it reads."""
    root = tracer.root
    producers = {v.id: n for n in root.walk() for v in n.outputs}
    g = Graph()
    g.nodes, g.outputs, g._next = [node], list(node.outputs), root._next
    env: list = [None] * root._next
    reads = {v.id for v in node.inputs}
    for b in node.blocks:
        reads |= b.free_ids()
    for vid in reads:
        env[vid] = tracer.example_of(vid, producers)
    plan = Plan(g, "dtorch.jit.script")
    first = next((x for x in env if hasattr(x, "__cuda_array_interface__")), None)
    plan.steps_arrays(plan.steps, env, device_of(first) if first is not None else None)
    return [env[v.id] for v in node.outputs]


STATEMENTS.update({ast.If: if_stmt, ast.For: for_stmt, ast.While: while_stmt, ast.Assert: assert_stmt})

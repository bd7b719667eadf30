"""Statements of scripted code: assignments, expression statements, return, raise, pass; _script_control.py
adds if/for/while/assert to ``STATEMENTS``. A statement list returns NORMAL, RETURN (the value in
``frame.ret``) or RAISE.

Before compiling, ``return`` (and ``break``/``continue`` in a loop) inside one branch of an ``if`` moves the
statements after the ``if`` into the other branch (so every ``if`` ends on both sides or on neither), as
TorchScript does; ``break`` then sets a flag the loop's condition reads.
"""
from __future__ import annotations

import ast
import copy
import operator

from ..tensor import Tensor
from ._script import Compiler, Frame, Raises
from ._script_values import is_sym
from .frontend import UnsupportedNodeError

NORMAL, RETURN, RAISE = 0, 1, 2


BREAK = "$break"  # the local a loop body sets when it breaks (never a Python identifier)
_ENDS = (ast.Return, ast.Raise, ast.Break, ast.Continue)


def _terminates(stmts: list) -> bool:
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, _ENDS):
        return True
    return isinstance(last, ast.If) and _terminates(last.body) and _terminates(last.orelse)


def _rewrite(stmts: list) -> list:
    out: list = []
    for i, s in enumerate(stmts):
        if isinstance(s, ast.If):
            s.body, s.orelse = _rewrite(s.body), _rewrite(s.orelse)
            rest = stmts[i + 1:]
            tb, te = _terminates(s.body), _terminates(s.orelse)
            if rest and tb != te:
                if tb:
                    s.orelse = _rewrite(s.orelse + rest)
                else:
                    s.body = _rewrite(s.body + rest)
                out.append(s)
                return out
        elif isinstance(s, (ast.For, ast.While)):
            s.body = _rewrite(s.body)
        out.append(s)
        if isinstance(s, _ENDS):
            return out
    return out


def body_of(ctx) -> list:
    body = getattr(ctx, "_body", None)
    if body is None:
        body = ctx._body = _rewrite(copy.deepcopy(ctx.tree.body))
    return body


def run_function(comp: Compiler, f: Frame):
    """Compile the body of ``f``'s function; its return value (stand-ins for graph values)."""
    st = run_stmts(comp, f, body_of(f.ctx))
    return f.ret if st == RETURN else None


def run_block(comp: Compiler, f: Frame, stmts: list) -> int:
    """Run a block's statements; a raise inside it ends the block with a ``prim::RaiseException``."""
    try:
        return run_stmts(comp, f, stmts)
    except Raises as r:
        if not r.emitted:
            comp.tracer.graph.add_node("prim::RaiseException", [], {"msg": r.msg}, n_out=0)
        return RAISE


def run_stmts(comp: Compiler, f: Frame, stmts: list) -> int:
    for s in stmts:
        f.node = s
        st = STATEMENTS.get(type(s), _unsupported)(comp, f, s)
        if st:
            return st
    return NORMAL


def _unsupported(comp, f, s):
    raise UnsupportedNodeError(f.ctx, s)


def _expr(comp, f, s):
    if not (isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)):
        comp.ev(s.value, f)
    return NORMAL


def _assign(comp, f, s):
    value = comp.ev(s.value, f)
    for t in s.targets:
        assign(comp, f, t, value)
    return NORMAL


def _ann_assign(comp, f, s):
    if s.value is not None:
        assign(comp, f, s.target, comp.ev(s.value, f))
    return NORMAL


def _aug_assign(comp, f, s):
    rhs = comp.ev(s.value, f)
    if isinstance(s.target, ast.Name):
        assign(comp, f, s.target, comp.binop(type(s.op), comp.ev(s.target, f), rhs, f, s))
        return NORMAL
    if isinstance(s.target, ast.Subscript):
        base, index = comp.ev(s.target.value, f), comp.ev(s.target.slice, f)
        new = comp.binop(type(s.op), comp.direct(operator.getitem, [base, index], {}, f, s), rhs, f, s)
        comp.direct(operator.setitem, [base, index, new], {}, f, s)
        return NORMAL
    raise f.error("augmented assignment to this target isn't supported", s.target)


def assign(comp: Compiler, f: Frame, target, value) -> None:
    if isinstance(target, ast.Name):
        f.env[target.id] = value
    elif isinstance(target, (ast.Tuple, ast.List)):
        items = value.unbind(0) if isinstance(value, Tensor) else value
        if not isinstance(items, (tuple, list)) or len(items) != len(target.elts):
            raise f.error(f"cannot unpack {type(value).__name__} into {len(target.elts)} names", target)
        for t, v in zip(target.elts, items):
            assign(comp, f, t, v)
    elif isinstance(target, ast.Subscript):
        base, index = comp.ev(target.value, f), comp.ev(target.slice, f)
        if not isinstance(base, Tensor) and is_sym(index):
            raise f.error("assigning into a list at a run-time index isn't supported", target)
        comp.direct(operator.setitem, [base, index, value], {}, f, target)
    else:
        raise f.error(f"assignment to {type(target).__name__} isn't supported", target)


def _return(comp, f, s):
    f.ret = comp.ev(s.value, f) if s.value is not None else None
    return RETURN


def _pass(comp, f, s):
    return NORMAL


def _raise(comp, f, s):
    if s.exc is None:
        raise Raises("Exception")
    exc = comp.ev(s.exc, f)
    if isinstance(exc, type):
        exc = exc()
    args = getattr(exc, "args", ())
    raise Raises(f"{type(exc).__name__}: {args[0]}" if args else type(exc).__name__)


def _break(comp, f, s):
    if BREAK not in f.env:
        raise f.error("break outside a range() or while loop isn't supported", s)
    f.env[BREAK] = True
    return NORMAL


def _continue(comp, f, s):
    if BREAK not in f.env:
        raise f.error("continue outside a range() or while loop isn't supported", s)
    return NORMAL  # what followed it moved into the other branch of its if


STATEMENTS = {ast.Break: _break, ast.Continue: _continue, ast.Expr: _expr, ast.Assign: _assign,
              ast.AnnAssign: _ann_assign, ast.AugAssign: _aug_assign,
              ast.Return: _return, ast.Pass: _pass, ast.Raise: _raise}

"""Python builtins inside scripted code: conversions of tensors and run-time scalars (``int(t)``, ``t.item()``,
``bool(n)``), ``len``, ``min``/``max``/``abs`` on run-time scalars, ``print`` (compiled away), ``range`` outside
a ``for`` (only with constant bounds)."""
from __future__ import annotations

import builtins
from typing import Any

from ..tensor import Tensor
from ._script_values import is_sym

_CASTS = {builtins.int: ("prim::Int", "int", int), builtins.float: ("prim::Float", "float", float),
          builtins.bool: ("prim::Bool", "bool", bool)}


def _scalar_of_tensor(t: Tensor):
    if t.numel() != 1:
        raise RuntimeError(f"a Tensor with {t.numel()} elements cannot be converted to Scalar")
    return t._data.reshape(-1)[0].item()


def call_builtin(comp, fn, args: list, kwargs: dict, f, node) -> tuple[bool, Any]:
    """(True, result) when ``fn`` is a builtin script handles itself, else (False, None)."""
    tracer = comp.tracer
    if fn in _CASTS and len(args) == 1 and not kwargs:
        op, kind, py = _CASTS[fn]
        x = args[0]
        if isinstance(x, Tensor):
            return True, tracer.prim(op, [x], kind, py(_scalar_of_tensor(x)))
        if is_sym(x):
            return True, x if x.kind == kind else tracer.prim(op, [x], kind, py(x))
        return False, None
    if getattr(fn, "__name__", None) == "item" and isinstance(getattr(fn, "__self__", None), Tensor):
        t = fn.__self__
        kind = "float" if t._data.dtype.kind in "fc" else ("bool" if t._data.dtype.kind == "b" else "int")
        return True, tracer.prim(_CASTS[getattr(builtins, kind)][0], [t], kind, _scalar_of_tensor(t))
    if fn is builtins.print:
        return True, None
    if fn is builtins.len and len(args) == 1 and isinstance(args[0], Tensor):
        if args[0].dim() == 0:
            raise TypeError("len() of a 0-d tensor")
        return True, args[0].shape[0]
    if fn in (builtins.min, builtins.max) and len(args) == 2 and not kwargs and any(is_sym(a) for a in args):
        value = fn(*(float(a) if isinstance(a, float) else int(a) for a in args))
        return True, tracer.prim(f"prim::{fn.__name__}", list(args), value=value)
    if fn is builtins.abs and len(args) == 1 and is_sym(args[0]):
        return True, tracer.prim("prim::abs", [args[0]], value=abs(args[0]))
    if fn is builtins.range and any(is_sym(a) for a in args):
        raise f.error("range() of run-time values is only supported as the iterable of a for loop", node)
    return False, None

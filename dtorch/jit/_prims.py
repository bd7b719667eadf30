"""The ``prim::`` ops of scripted graphs that are not registry ops: Python scalar arithmetic and comparisons,
tensor -> scalar conversions, structure building, raising. Each takes and returns Python values; a tensor input
arrives as an array (graph run on arrays) or a Tensor (run through the ops) and is read with :func:`scalar_of`.
Control flow (``prim::If``/``prim::Loop``) is the executor's (``_exec.py``).
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable

import numpy as np

PRIM_IF = "prim::If"
PRIM_LOOP = "prim::Loop"
CONTROL = frozenset({PRIM_IF, PRIM_LOOP})


class Error(RuntimeError):
    """torch.jit.Error: an exception raised by scripted code (``raise``, a failed ``assert``, an unused method)."""


def scalar_of(x) -> Any:
    """A Python scalar from a one-element tensor or array (or a Python value, unchanged)."""
    data = getattr(x, "_data", None)
    if data is not None:
        x = data
    if hasattr(x, "item") and hasattr(x, "shape"):
        if x.size != 1:
            raise RuntimeError(f"a Tensor with {x.size} elements cannot be converted to Scalar")
        return x.item()
    return x


def _div(a, b):
    if b == 0:
        raise ZeroDivisionError("float division by zero")
    return a / b


def _floordiv(a, b):
    if b == 0:
        raise ZeroDivisionError("integer division or modulo by zero")
    return a // b


def _raise(*args, msg: str = "Exception"):
    raise Error(msg)


def num_to_tensor(a):
    """prim::NumToTensor: a Python number as a 0-d array (int64, float64 or bool, as torch)."""
    return np.asarray(scalar_of(a))


def _build(*args, template=None, slots=()):
    """``template`` (tuples/lists/slices of constants) with the value at each path in ``slots`` set from ``args``."""
    def fill(obj, path: tuple):
        hit = [i for i, s in enumerate(slots) if tuple(s) == path]
        if hit:
            return args[hit[0]]
        if isinstance(obj, slice):
            return slice(*(fill(x, path + (i,)) for i, x in enumerate((obj.start, obj.stop, obj.step))))
        if isinstance(obj, (tuple, list)):
            items = [fill(x, path + (i,)) for i, x in enumerate(obj)]
            return tuple(items) if isinstance(obj, tuple) else items
        return obj
    return fill(template, ())


SCALAR_BINARY: dict[str, Callable] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": _div, "floordiv": _floordiv,
    "mod": operator.mod, "pow": operator.pow, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
    "ge": operator.ge, "eq": operator.eq, "ne": operator.ne, "and": lambda a, b: bool(a) and bool(b),
    "or": lambda a, b: bool(a) or bool(b), "min": min, "max": max,
}
SCALAR_UNARY: dict[str, Callable] = {
    "neg": operator.neg, "not": operator.not_, "abs": abs, "Bool": bool, "Int": int, "Float": float,
    "floor": math.floor, "ceil": math.ceil,
}



def _binary(fn: Callable) -> Callable:
    return lambda a, b: fn(scalar_of(a), scalar_of(b))


def _unary(fn: Callable) -> Callable:
    return lambda a: fn(scalar_of(a))


PRIMS: dict[str, Callable] = {f"prim::{k}": _binary(f) for k, f in SCALAR_BINARY.items()}
PRIMS.update({f"prim::{k}": _unary(f) for k, f in SCALAR_UNARY.items()})
PRIMS.update({"prim::NumToTensor": num_to_tensor, "prim::Build": _build, "prim::RaiseException": _raise,
              "prim::Uninitialized": lambda: None})

TYPES = {"prim::lt": "bool", "prim::le": "bool", "prim::gt": "bool", "prim::ge": "bool", "prim::eq": "bool",
         "prim::ne": "bool", "prim::and": "bool", "prim::or": "bool", "prim::not": "bool", "prim::Bool": "bool",
         "prim::Int": "int", "prim::Float": "float", "prim::truediv": "float", "prim::floor": "int",
         "prim::ceil": "int", "prim::Build": "list", "prim::Uninitialized": "None"}


ARITY = {name: 2 for name in PRIMS if name[6:] in SCALAR_BINARY}
ARITY.update({name: 1 for name in PRIMS if name[6:] in SCALAR_UNARY})
ARITY.update({"prim::NumToTensor": 1, "prim::RaiseException": 0, "prim::Uninitialized": 0})


def is_prim(name: str) -> bool:
    return name in PRIMS or name in CONTROL

"""``out=``: the torch functions that take it write their result into a given tensor.

``public_names`` wraps the ``dtorch.<name>`` functions listed here (Tensor methods and the ops the library
calls internally stay unwrapped: no cost where ``out`` is not used). torch's rules: the result type must be
castable to ``out``'s dtype (same or higher category), a non-empty ``out`` of another shape is resized with
torch's deprecation warning, ``out`` (which may be a view) is written in place and returned, and autograd
refuses ``out=`` when anything involved requires grad.
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable

from .._dtype import from_numpy_dtype
from ..autograd.grad_mode import STATE
from ..tensor import Tensor

OUT_OPS = frozenset({
    # creation
    "zeros", "ones", "full", "empty", "arange", "linspace", "logspace", "eye", "randn", "rand", "randint", "randperm",
    # arithmetic and elementwise math
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide", "remainder", "fmod",
    "pow", "neg", "negative", "abs", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt",
    "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "sigmoid", "erf", "erfc",
    "reciprocal", "sign", "floor", "ceil", "round", "trunc", "frac", "clamp", "clip", "lerp", "addcmul", "addcdiv",
    "maximum", "minimum", "fmax", "fmin", "where", "square",
    # comparison and logic
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
    # reductions and scans
    "sum", "mean", "prod", "cumsum", "cumprod", "logsumexp", "amax", "amin", "argmax", "argmin", "all", "any",
    "std", "var", "norm",
    # matmul family, joining
    "matmul", "mm", "bmm", "mv", "dot", "outer", "addmm", "addmv", "baddbmm", "tensordot", "cat", "concat",
    "concatenate", "stack", "hstack", "vstack", "index_select", "gather", "masked_select", "tril", "triu",
})

RESIZE_WARNING = (
    "An output with one or more elements was resized since it had shape {old}, which does not match the required "
    "output shape {new}. This behavior is deprecated, and in a future PyTorch release outputs will not be resized "
    "unless they have zero elements. You can explicitly reuse an out tensor t by resizing it, inplace, to zero "
    "elements with t.resize_(0).")


def _requires_grad(values) -> bool:
    for v in values:
        if isinstance(v, Tensor) and v._rg:
            return True
        if isinstance(v, (list, tuple)) and _requires_grad(v):
            return True
    return False


def write_out(name: str, fn: Callable, args: tuple, kwargs: dict, out) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if STATE.enabled and (out._rg or _requires_grad(args) or _requires_grad(kwargs.values())):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic differentiation, "
                           "but one of the arguments requires grad.")
    res = fn(*args, **kwargs)
    res_dt, out_dt = from_numpy_dtype(res._data.dtype), from_numpy_dtype(out._data.dtype)
    if res_dt._category > out_dt._category:
        raise RuntimeError(f"result type {res_dt.scalar_name} can't be cast to the desired output type "
                           f"{out_dt.scalar_name}")
    if tuple(out._data.shape) != tuple(res._data.shape):
        if out._data.size:
            warnings.warn(RESIZE_WARNING.format(old=list(out._data.shape), new=list(res._data.shape)), stacklevel=3)
        out._data = res._data.astype(out._data.dtype, copy=True)
    else:
        out._data[...] = res._data
    out._vc[0] += 1
    return out


def with_out(name: str, fn: Callable, factory: bool = False) -> Callable:
    """``fn`` taking torch's ``out=`` keyword (a ``factory`` takes its dtype from ``out`` unless given one)."""

    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        if factory and kwargs.get("dtype") is None and isinstance(out, Tensor):
            kwargs["dtype"] = from_numpy_dtype(out._data.dtype)
        return write_out(name, fn, args, kwargs, out)

    return wrapper

"""Binary arithmetic (add, sub, mul, div, remainder, fmod, pow) with torch's type promotion, and its
operators and in-place forms."""
from __future__ import annotations

import math

import numpy as np

from .. import _dtype
from .._device import xp_of
from .._dispatch import ARRAY_NS, apply, apply_same, apply_scalar, apply_unary, defop, promoted, tensor_fn
from ..tensor import Tensor
from ._helpers import attach, int_scalars, scalar, wrap_int
from ._inplace import check_cast, inplace_binary

__all__ = [
    "add",
    "sub",
    "subtract",
    "mul",
    "multiply",
    "div",
    "divide",
    "true_divide",
    "floor_divide",
    "remainder",
    "fmod",
    "rsub",
    "pow",
    "float_power",
]


def binary(op, a, b, params=None):
    """``op(a, b)`` for a Tensor and a Tensor or Python number: promoted, with fast paths for same dtypes."""
    if isinstance(a, Tensor):
        da = a._data
        if isinstance(b, Tensor):
            if da.dtype == b._data.dtype:
                return apply_same(op, a, b, params)
        else:
            tb = type(b)
            if tb is float or tb is int:
                k = da.dtype.kind
                if k in "fV":
                    return apply_scalar(op, a, b, params)
                if tb is int and (k == "i" or k == "u"):
                    return apply_scalar(op, a, wrap_int(b, da.dtype), params)
    elif type(a) is int:
        a, b = int_scalars(a, b)
    a = scalar(a)
    b = scalar(b)
    cast, _ = promoted(a, b)
    return apply(op, (a, b), params, cast)


# ---- add / sub ---------------------------------------------------------------------
def _like_operands(r, a, b):
    """``r`` in the dtype of the array operand(s): a Python alpha must not promote."""
    dt = a.dtype if hasattr(a, "dtype") else b.dtype
    return r if r.dtype == dt else r.astype(dt)


@defop("add")
def _add(a, b, alpha=1):
    return a + b if alpha == 1 else _like_operands(a + alpha * b, a, b)


@_add.backward
def _add_bw(ns, ctx, g):
    return g, (g * ctx._args["alpha"] if ctx._args else g)


@defop("sub")
def _sub(a, b, alpha=1):
    return a - b if alpha == 1 else _like_operands(a - alpha * b, a, b)


@_sub.backward
def _sub_bw(ns, ctx, g):
    return g, (-g * ctx._args["alpha"] if ctx._args else -g)


def _alpha_params(a, b, alpha):
    if alpha == 1:
        return None
    if isinstance(alpha, float) and not _dtype.result_type(a, b).is_floating_point:
        raise RuntimeError("For integral input tensors, argument alpha must not be a floating point number.")
    return {"alpha": alpha}


def _is_bool(x) -> bool:
    return type(x) is bool or (isinstance(x, Tensor) and x._data.dtype == np.bool_)


def _check_sub(a, b) -> None:
    if _is_bool(a) and _is_bool(b):
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if _is_bool(a) or _is_bool(b):
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                           "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.")


def add(input, other, *, alpha=1) -> Tensor:
    return binary(_add, input, other, None if alpha == 1 else _alpha_params(input, other, alpha))


def sub(input, other, *, alpha=1) -> Tensor:
    if (input._data.dtype.kind == "b" if isinstance(input, Tensor) else type(input) is bool) or \
            (other._data.dtype.kind == "b" if isinstance(other, Tensor) else type(other) is bool):
        _check_sub(input, other)
    return binary(_sub, input, other, None if alpha == 1 else _alpha_params(input, other, alpha))


@defop("rsub_scalar")
def _rsub_s(a, other, alpha=1):
    return other - a if alpha == 1 else _like_operands(other - alpha * a, a, other)


_rsub_s.backward(lambda ns, ctx, g: (-g * ctx._args.get("alpha", 1),), "RsubBackward1")


def rsub(input, other, *, alpha=1) -> Tensor:
    """``other - alpha * input`` (``scalar - tensor`` is this, as in torch)."""
    _check_sub(input, other)
    if isinstance(input, Tensor) and not isinstance(other, Tensor):
        other = scalar(other)
        if type(other) is int:
            other = int_scalars(input, other)[1]
        params = _alpha_params(input, other, alpha) or {}
        cast, _ = promoted(input, other)
        return _with_scalar(_rsub_s, input, cast, other=other, **params)
    a, b = scalar(input), scalar(other)
    params = _alpha_params(a, b, alpha)
    cast, _ = promoted(a, b)
    return apply(_rsub_t, (a, b), params, cast)


@defop("rsub")
def _rsub_t(a, b, alpha=1):
    return b - a if alpha == 1 else _like_operands(b - alpha * a, a, b)


@_rsub_t.backward
def _rsub_t_bw(ns, ctx, g):
    alpha = ctx._args["alpha"] if ctx._args else 1
    return (-g if alpha == 1 else -g * alpha), g


subtract = sub
tensor_fn("add", add)
tensor_fn("sub", sub)


# ---- mul / div ---------------------------------------------------------------------
@defop("mul", save=(0, 1))
def _mul(a, b):
    return a * b


@_mul.backward
def _mul_bw(ns, ctx, g, a, b):
    nf = ctx.next_functions
    return (g * b if nf[0][0] is not None else None), (g * a if nf[1][0] is not None else None)


@defop("div", save=(0, 1))
def _div(a, b, rounding_mode=None):
    xp = xp_of(a) if not isinstance(a, (int, float, bool)) else xp_of(b)
    if rounding_mode is None:
        return xp.true_divide(a, b)
    if rounding_mode == "floor":
        return xp.floor_divide(a, b)
    if rounding_mode == "trunc":
        dt = a.dtype if hasattr(a, "dtype") else b.dtype
        return xp.trunc(xp.true_divide(a, b)).astype(dt, copy=False)
    raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")


def _div_bw(ns, ctx, g, a, b):
    if ctx._args:  # floor / trunc division: gradient zero, as torch
        return g * 0, (g * 0 if ctx.next_functions[1][0] is not None else None)
    nf = ctx.next_functions
    ga = g / b if nf[0][0] is not None else None
    gb = -g * a / (b * b) if nf[1][0] is not None else None
    return ga, gb


_div.backward(_div_bw)
# div(rounding_mode=...) is torch's third overload: DivBackward2, a zero gradient
_div_r = defop("div_rounding")(_div.default)
_div_r.backward(lambda ns, ctx, g: (g * 0, g * 0), "DivBackward2")


def mul(input, other) -> Tensor:
    return binary(_mul, input, other)


def _not_for_bool(kernel: str, rdt) -> None:
    if rdt is _dtype.bool_:
        raise NotImplementedError(f"\"{kernel}\" not implemented for 'Bool'")


def div(input, other, *, rounding_mode=None) -> Tensor:
    a, b = scalar(input), scalar(other)
    if rounding_mode is not None:  # an integer result: Python ints wrap into its range
        a, b = int_scalars(a, b)
    cast, rdt = promoted(a, b)
    if rounding_mode == "floor":
        _not_for_bool("div_floor_cpu", rdt)
    elif rounding_mode == "trunc":
        _not_for_bool("div_trunc_cpu", rdt)
    if rounding_mode is None and not (rdt.is_floating_point or rdt.is_complex):
        cast = _dtype.get_default_dtype().np
    if rounding_mode is None:
        return apply(_div, (a, b), None, cast)
    return apply(_div_r, (a, b), {"rounding_mode": rounding_mode}, cast)


multiply = mul
divide = true_divide = div
tensor_fn("mul", mul)
tensor_fn("div", div)


def floor_divide(input, other) -> Tensor:
    return div(input, other, rounding_mode="floor")


def _mod_ops(name: str, rounding: str) -> tuple:
    """torch's two overloads of ``a - rounding(a / b) * b`` (remainder: floor, fmod: trunc): Tensor-Tensor
    (both inputs saved, *Backward1) and Tensor-Scalar (one input, *Backward0)."""
    def kernel(a, b):
        return getattr(xp_of(a) if hasattr(a, "dtype") else xp_of(b), name)(a, b)

    def scalar_kernel(a, other):
        return kernel(a, other)

    def bw(ns, ctx, g, a, b):
        # d/da = 1, d/db = -rounding(a / b)
        gb = -g * getattr(ns, rounding)(a / b) if ctx.next_functions[1][0] is not None else None
        return g, gb

    node = name.capitalize()
    tensor_op = defop(name, save=(0, 1))(kernel)
    tensor_op.backward(bw, f"{node}Backward1")
    scalar_op = defop(f"{name}_scalar")(scalar_kernel)
    scalar_op.backward(lambda ns, ctx, g: (g,), f"{node}Backward0")
    return tensor_op, scalar_op


_remainder, _remainder_s = _mod_ops("remainder", "floor")
_fmod, _fmod_s = _mod_ops("fmod", "trunc")


def _mod_like(op, scalar_op, kernel_name: str, input, other) -> Tensor:
    a, b = int_scalars(scalar(input), scalar(other))
    cast, rdt = promoted(a, b)
    _not_for_bool(kernel_name, rdt)
    if isinstance(a, Tensor) and not isinstance(b, Tensor):
        return _with_scalar(scalar_op, a, cast, other=b)
    return apply(op, (a, b), None, cast)


def remainder(input, other) -> Tensor:
    return _mod_like(_remainder, _remainder_s, "remainder_cpu", input, other)


def fmod(input, other) -> Tensor:
    return _mod_like(_fmod, _fmod_s, "fmod_cpu", input, other)


# ---- pow -----------------------------------------------------------------------------
def _pow_arrays(a, b):
    try:
        return a ** b
    except ValueError:  # numpy refuses integer arrays to negative powers; torch gives 1, -1 or 0
        xp = xp_of(a) if hasattr(a, "dtype") else xp_of(b)
        neg = b < 0
        r = a ** xp.where(neg, 0, b)
        odd = (b % 2) == 1
        at_neg = xp.where(a == 1, 1, xp.where(a == -1, xp.where(odd, -1, 1), 0))
        return xp.where(neg, at_neg, r).astype(r.dtype, copy=False)


# torch's special exponents (PowKernel.cpp) as products and roots, and 4 as a square squared: numpy's
# powf is ~300x slower than a multiply on integral exponents
_PRODUCT_EXPONENTS = frozenset((0, 1, 2, 3, 4, 0.5, -0.5, -1, -2, -3, -4))


def _pow_scalar(a, e):
    """``a ** e`` for an array and a Python number."""
    if a.dtype.kind not in "fV" or a.dtype.itemsize < 4 or not a.ndim or e not in _PRODUCT_EXPONENTS:
        return _pow_arrays(a, e)
    xp = xp_of(a)
    if e == 0:
        return xp.ones_like(a)
    if e == 1:
        return a.copy()
    if e == 0.5 or e == -0.5:
        r = xp.sqrt(a)
        return xp.divide(1, r, out=r) if e < 0 else r
    if e == -1:
        return xp.divide(1, a)
    r = a * a
    if e == 3 or e == -3:
        r *= a
    elif e == 4 or e == -4:
        r *= r
    return xp.divide(1, r, out=r) if e < 0 else r


def _pow_scalar_grad(ns, g, a, b):
    """The gradient of ``a ** b`` for a Python number ``b``: torch's ``grad * (b * a ** (b - 1))``."""
    if b == 0:
        return g * 0
    if ns is not ARRAY_NS:
        return g * (b * a ** (b - 1))
    r = _pow_scalar(a, b - 1)  # a fresh array (a copy for b == 2)
    r *= b
    r *= g
    return r


# torch has three overloads with their own nodes: Tensor ** Scalar (PowBackward0, one input),
# Tensor ** Tensor (PowBackward1) and Scalar ** Tensor (PowBackward2, one input).
@defop("pow", save=(0, 1), save_out=True)
def _pow(a, b):
    return _pow_scalar(a, b) if type(b) is float or type(b) is int else _pow_arrays(a, b)


def _pow_bw(ns, ctx, g, a, b, out):
    nf = ctx.next_functions
    ga = gb = None
    if nf[0][0] is not None:
        if isinstance(b, (int, float)):
            ga = _pow_scalar_grad(ns, g, a, b)
        else:
            ga = ns.where(b == 0, 0.0, g * b * a ** (b - 1))
    if nf[1][0] is not None:
        # d/db a**b = a**b * log(a); torch defines it as 0 where a == 0 and b >= 0
        ga_mask = (a == 0) & (b >= 0)
        gb = ns.where(ga_mask, 0.0, g * out * ns.log(ns.where(ga_mask, 1.0, a)))
    return ga, gb


_pow.backward(_pow_bw, "PowBackward1")


@defop("pow_tensor_scalar", save=(0,))
def _pow_ts(a, exponent):
    return _pow_scalar(a, exponent)


def _pow_ts_bw(ns, ctx, g, a):
    return (_pow_scalar_grad(ns, g, a, ctx._args["exponent"]),)


_pow_ts.backward(_pow_ts_bw, "PowBackward0")


@defop("pow_scalar_tensor", save_out=True)
def _pow_st(e, base):
    return _pow_arrays(base, e)


def _pow_st_bw(ns, ctx, g, out):
    base = ctx._args["base"]
    if base > 0:
        return (g * out * math.log(base),)
    if base == 0:  # torch: zero where the exponent is >= 0
        return (g * 0,)
    return (g * math.nan,)


_pow_st.backward(_pow_st_bw, "PowBackward2")


def _with_scalar(op, t: Tensor, cast, **params) -> Tensor:
    """``op`` on one tensor, the Python scalar as a parameter (torch's Tensor-Scalar overloads)."""
    if cast is not None and t._data.dtype != cast:
        t = t.to(_dtype._FROM_NP[np.dtype(cast)])  # integer/bool tensors only: nothing to differentiate
    return apply_unary(op, t, params)


def pow(input, exponent) -> Tensor:
    if isinstance(input, Tensor) and input._data.dtype.kind in "fV":
        tb = type(exponent)
        if tb is int or tb is float:  # the common case, float ** Python number: no promotion, no checks
            return apply_unary(_pow_ts, input, {"exponent": exponent})
    a, b = scalar(input), scalar(exponent)
    if isinstance(a, Tensor) and a._data.dtype.kind in "iub" and type(b) is int and b < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    if type(b) is int and isinstance(a, Tensor) and a._data.dtype.kind in "iu" and wrap_int(b, a._data.dtype) != b:
        # an exponent out of the dtype's range is refused (a base wraps, as in the other ops)
        raise RuntimeError(f"value cannot be converted to type {a._data.dtype.name}_t without overflow")
    a, b = int_scalars(a, b)
    cast, rdt = promoted(a, b)
    if rdt is _dtype.bool_:
        if not (isinstance(a, Tensor) and type(b) is bool):
            raise NotImplementedError("\"pow\" not implemented for 'Bool'")
        return a.clone() if b else a.new_ones(a.shape)  # x ** True is x, x ** False is True
    if isinstance(a, Tensor) and not isinstance(b, Tensor):
        return _with_scalar(_pow_ts, a, cast, exponent=b)
    if isinstance(b, Tensor) and not isinstance(a, Tensor):
        return _with_scalar(_pow_st, b, cast, base=a)
    return apply(_pow, (a, b), None, cast)


tensor_fn("pow", pow)


def float_power(input, exponent) -> Tensor:
    a = input.double() if isinstance(input, Tensor) else float(input)
    b = exponent.double() if isinstance(exponent, Tensor) else exponent
    return pow(a, b)


# ---- in place --------------------------------------------------------------------------
def _ip(op, fast):
    def inplace(self, other, **kw):
        other = scalar(other)
        if type(other) is int:
            other = int_scalars(self, other)[1]
        if op is _sub:
            _check_sub(self, other)
        elif op is _pow and _dtype.result_type(self, other) is _dtype.bool_ and type(other) is not bool:
            raise NotImplementedError("\"pow\" not implemented for 'Bool'")
        elif op is _remainder or op is _fmod:
            _not_for_bool(op.name + "_cpu", _dtype.result_type(self, other))
        params = {k: v for k, v in kw.items() if not (k == "alpha" and v == 1)} or None
        if params and "alpha" in params:
            a = params["alpha"]
            _alpha_params(self, other, a)
            return inplace_binary(op, self, other, params, lambda x, y: fast(x, y * a))
        return inplace_binary(op, self, other, params, fast)

    return inplace


def _in_place_ufunc(name: str):
    """``a <op>= b`` in place; like torch, a result of a wider dtype of the same kind is cast back
    (uint8 += int64 tensor), which numpy's same-kind rule refuses."""
    def fast(a, b):
        try:
            getattr(xp_of(a), name)(a, b, out=a)
        except TypeError:
            getattr(xp_of(a), name)(a, b, out=a, casting="unsafe")
        except ValueError:
            if not a.flags.writeable:  # an expanded view (stride 0)
                raise RuntimeError(
                    "unsupported operation: more than one element of the written-to tensor refers to a single "
                    "memory location. Please clone() the tensor before performing the operation.") from None
            raise

    return fast


add_ = _ip(_add, _in_place_ufunc("add"))
sub_ = _ip(_sub, _in_place_ufunc("subtract"))
mul_ = _ip(_mul, _in_place_ufunc("multiply"))
_power_in_place = _in_place_ufunc("power")


def _pow_in_place(a, b):
    if (type(b) is float or type(b) is int) and type(a) is np.ndarray and a.dtype.kind in "fV" and a.flags.writeable:
        a[...] = _pow_scalar(a, b)
    else:
        _power_in_place(a, b)


pow_ = _ip(_pow, _pow_in_place)
remainder_ = _ip(_remainder, _in_place_ufunc("remainder"))
fmod_ = _ip(_fmod, _in_place_ufunc("fmod"))
_idiv = _in_place_ufunc("true_divide")


def div_(self, other, *, rounding_mode=None):
    other = scalar(other)
    if type(other) is int and rounding_mode is not None:
        other = int_scalars(self, other)[1]
    if rounding_mode is None:
        rdt = _dtype.result_type(self, other)  # true division of integers gives the default float
        check_cast(rdt if rdt.is_floating_point else _dtype.get_default_dtype(), self)
        return inplace_binary(_div, self, other, None, _idiv)
    _not_for_bool("div_floor_cpu" if rounding_mode == "floor" else "div_trunc_cpu",
                  _dtype.result_type(self, other))

    def fast(a, b):
        a[...] = _div.default(a, b, rounding_mode=rounding_mode)

    return inplace_binary(_div, self, other, {"rounding_mode": rounding_mode}, fast)


def floor_divide_(self, other):
    return div_(self, other, rounding_mode="floor")


# ---- operators -------------------------------------------------------------------------
def reflected(fn):
    """``other <op> self`` as ``fn(other, self)``."""
    return lambda self, other: fn(other, self)


def _add_operator(self, other) -> Tensor:
    """``self + other`` and ``other + self``: add without the alpha argument (the hottest op in user code);
    as in torch, a Python scalar is the second input either way."""
    return binary(_add, self, other)


def _rtruediv(self, other):
    return self.reciprocal() * other  # as torch's Tensor.__rtruediv__


attach(__name__, {
    "add": add, "add_": add_, "sub": sub, "sub_": sub_, "subtract": sub, "subtract_": sub_, "rsub": rsub,
    "mul": mul, "mul_": mul_, "multiply": mul, "multiply_": mul_, "div": div, "div_": div_, "divide": div,
    "divide_": div_, "true_divide": div, "true_divide_": div_, "floor_divide": floor_divide,
    "floor_divide_": floor_divide_, "remainder": remainder, "remainder_": remainder_, "fmod": fmod, "fmod_": fmod_,
    "pow": pow, "pow_": pow_, "float_power": float_power,
    "__add__": _add_operator, "__radd__": _add_operator, "__iadd__": add_, "__sub__": sub, "__rsub__": rsub,
    "__isub__": sub_, "__mul__": mul, "__rmul__": mul, "__imul__": mul_, "__truediv__": div,
    "__rtruediv__": _rtruediv, "__itruediv__": div_, "__floordiv__": floor_divide,
    "__rfloordiv__": reflected(floor_divide), "__ifloordiv__": floor_divide_, "__mod__": remainder,
    "__rmod__": reflected(remainder), "__imod__": remainder_, "__pow__": pow, "__rpow__": reflected(pow),
    "__ipow__": pow_,
})

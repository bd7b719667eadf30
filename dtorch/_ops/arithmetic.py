"""Binary arithmetic, comparison and logical ops, with torch's type promotion."""
from __future__ import annotations

import math

import numpy as np

from .. import _dtype
from .._dispatch import apply, apply_same, apply_scalar, apply_unary, defop, promoted, tensor_fn
from ..tensor import Tensor
from ._helpers import scalar, xp_of
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
    "maximum",
    "minimum",
    "fmax",
    "fmin",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "not_equal",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "bitwise_not",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
]


_INT_RANGES: dict = {}


def _wrap_int(x: int, dt: np.dtype) -> int:
    """A Python int outside an integer dtype's range wraps around, as torch's cast to that dtype does."""
    r = _INT_RANGES.get(dt)
    if r is None:
        info = np.iinfo(dt)
        r = _INT_RANGES[dt] = (int(info.min), int(info.max), 1 << info.bits)
    lo, hi, span = r
    if lo <= x <= hi:
        return x
    return (x - lo) % span + lo


def _int_scalars(a, b):
    """Wrap a Python int operand into the range of the other operand's integer dtype (uint8 + -3)."""
    if type(b) is int and isinstance(a, Tensor) and a._data.dtype.kind in "iu":
        b = _wrap_int(b, a._data.dtype)
    elif type(a) is int and isinstance(b, Tensor) and b._data.dtype.kind in "iu":
        a = _wrap_int(a, b._data.dtype)
    return a, b


def _binary(op, a, b, params=None):
    if isinstance(a, Tensor):
        da = a._data
        if isinstance(b, Tensor):
            if da.dtype == b._data.dtype:
                return apply_same(op, a, b, params)
        else:
            tb = type(b)
            if tb is float or tb is int:
                k = da.dtype.kind
                if k == "f":
                    return apply_scalar(op, a, b, params)
                if tb is int and (k == "i" or k == "u"):
                    return apply_scalar(op, a, _wrap_int(b, da.dtype), params)
    elif type(a) is int:
        a, b = _int_scalars(a, b)
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
    return _binary(_add, input, other, None if alpha == 1 else _alpha_params(input, other, alpha))


def sub(input, other, *, alpha=1) -> Tensor:
    if (input._data.dtype.kind == "b" if isinstance(input, Tensor) else type(input) is bool) or \
            (other._data.dtype.kind == "b" if isinstance(other, Tensor) else type(other) is bool):
        _check_sub(input, other)
    return _binary(_sub, input, other, None if alpha == 1 else _alpha_params(input, other, alpha))


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
            other = _int_scalars(input, other)[1]
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
    return _binary(_mul, input, other)


def _not_for_bool(kernel: str, rdt) -> None:
    if rdt is _dtype.bool_:
        raise NotImplementedError(f"\"{kernel}\" not implemented for 'Bool'")


def div(input, other, *, rounding_mode=None) -> Tensor:
    a, b = scalar(input), scalar(other)
    if rounding_mode is not None:  # an integer result: Python ints wrap into its range
        a, b = _int_scalars(a, b)
    cast, rdt = promoted(a, b)
    if rounding_mode == "floor":
        _not_for_bool("div_floor_cpu", rdt)
    elif rounding_mode == "trunc":
        _not_for_bool("div_trunc_cpu", rdt)
    if rounding_mode is None and not rdt.is_floating_point:
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


def _remainder_k(a, b):
    return (xp_of(a) if hasattr(a, "dtype") else xp_of(b)).remainder(a, b)


def _fmod_k(a, b):
    return (xp_of(a) if hasattr(a, "dtype") else xp_of(b)).fmod(a, b)


# Tensor-Scalar overloads (one input, *Backward0) and Tensor-Tensor ones (*Backward1), as torch
@defop("remainder", save=(0, 1))
def _remainder(a, b):
    return _remainder_k(a, b)


def _remainder_bw(ns, ctx, g, a, b):
    # a - floor(a / b) * b: d/da = 1, d/db = -floor(a / b)
    gb = -g * ns.floor(a / b) if ctx.next_functions[1][0] is not None else None
    return g, gb


_remainder.backward(_remainder_bw, "RemainderBackward1")


@defop("remainder_scalar")
def _remainder_s(a, other):
    return _remainder_k(a, other)


_remainder_s.backward(lambda ns, ctx, g: (g,), "RemainderBackward0")


@defop("fmod", save=(0, 1))
def _fmod(a, b):
    return _fmod_k(a, b)


def _fmod_bw(ns, ctx, g, a, b):
    # a - trunc(a / b) * b: d/da = 1, d/db = -trunc(a / b)
    gb = -g * ns.trunc(a / b) if ctx.next_functions[1][0] is not None else None
    return g, gb


_fmod.backward(_fmod_bw, "FmodBackward1")


@defop("fmod_scalar")
def _fmod_s(a, other):
    return _fmod_k(a, other)


_fmod_s.backward(lambda ns, ctx, g: (g,), "FmodBackward0")


def _mod_like(op, scalar_op, kernel_name: str, input, other) -> Tensor:
    a, b = _int_scalars(scalar(input), scalar(other))
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


# torch has three overloads with their own nodes: Tensor ** Scalar (PowBackward0, one input),
# Tensor ** Tensor (PowBackward1) and Scalar ** Tensor (PowBackward2, one input).
@defop("pow", save=(0, 1), save_out=True)
def _pow(a, b):
    return _pow_arrays(a, b)


def _pow_bw(ns, ctx, g, a, b, out):
    nf = ctx.next_functions
    ga = gb = None
    if nf[0][0] is not None:
        if isinstance(b, (int, float)):
            ga = g * 0 if b == 0 else g * b * a ** (b - 1)
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
    return _pow_arrays(a, exponent)


def _pow_ts_bw(ns, ctx, g, a):
    b = ctx._args["exponent"]
    return (g * 0 if b == 0 else g * b * a ** (b - 1),)


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
    if isinstance(input, Tensor) and input._data.dtype.kind == "f":
        tb = type(exponent)
        if tb is int or tb is float:  # the common case, float ** Python number: no promotion, no checks
            return apply_unary(_pow_ts, input, {"exponent": exponent})
    a, b = scalar(input), scalar(exponent)
    if isinstance(a, Tensor) and a._data.dtype.kind in "iub" and type(b) is int and b < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    if type(b) is int and isinstance(a, Tensor) and a._data.dtype.kind in "iu" and _wrap_int(b, a._data.dtype) != b:
        # an exponent out of the dtype's range is refused (a base wraps, as in the other ops)
        raise RuntimeError(f"value cannot be converted to type {a._data.dtype.name}_t without overflow")
    a, b = _int_scalars(a, b)
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


# ---- maximum / minimum ---------------------------------------------------------------
@defop("maximum", save=(0, 1))
def _maximum(a, b):
    return xp_of(a).maximum(a, b)


@_maximum.backward
def _maximum_bw(ns, ctx, g, a, b):
    # torch: ties split the gradient evenly; an operand gets nothing only where it is strictly smaller
    # (so with a NaN both get the gradient)
    half = ns.where(a == b, g * 0.5, g)
    return half * ~(a < b), half * ~(a > b)


@defop("minimum", save=(0, 1))
def _minimum(a, b):
    return xp_of(a).minimum(a, b)


@_minimum.backward
def _minimum_bw(ns, ctx, g, a, b):
    half = ns.where(a == b, g * 0.5, g)
    return half * ~(a > b), half * ~(a < b)


def maximum(input: Tensor, other: Tensor) -> Tensor:
    return _binary(_maximum, input, other)


def minimum(input: Tensor, other: Tensor) -> Tensor:
    return _binary(_minimum, input, other)


@defop("fmax", save=(0, 1))
def _fmax(a, b):
    return xp_of(a).fmax(a, b)


@_fmax.backward
def _fmax_bw(ns, ctx, g, a, b):
    # NaN is ignored: the gradient goes to the operand that was taken; ties go to input
    take_a = (a >= b) | (b != b)
    return g * take_a, g * (1 - take_a * 1)


@defop("fmin", save=(0, 1))
def _fmin(a, b):
    return xp_of(a).fmin(a, b)


@_fmin.backward
def _fmin_bw(ns, ctx, g, a, b):
    take_a = (a <= b) | (b != b)
    return g * take_a, g * (1 - take_a * 1)


def fmax(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise maximum ignoring NaN (NaN only where both are NaN)."""
    return _binary(_fmax, input, other)


def fmin(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise minimum ignoring NaN (NaN only where both are NaN)."""
    return _binary(_fmin, input, other)


tensor_fn("maximum", maximum)
tensor_fn("minimum", minimum)


# ---- comparisons and logic (not differentiable) ---------------------------------------
def _nondiff(name: str, fn):
    op = defop(name)(fn)

    def public(input, other) -> Tensor:
        return _binary(op, input, other)

    public.__name__ = name
    tensor_fn(name, public)
    return public


eq = _nondiff("eq", lambda a, b: a == b)
ne = _nondiff("ne", lambda a, b: a != b)
lt = _nondiff("lt", lambda a, b: a < b)
le = _nondiff("le", lambda a, b: a <= b)
gt = _nondiff("gt", lambda a, b: a > b)
ge = _nondiff("ge", lambda a, b: a >= b)
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def _bitwise(name: str, fn):
    op = defop(name)(fn)

    def public(input, other) -> Tensor:
        a, b = scalar(input), scalar(other)
        if _dtype.result_type(a, b).is_floating_point:
            raise NotImplementedError(f'"{name}_cpu" not implemented for \'Float\'')
        return _binary(op, a, b)

    public.__name__ = name
    return public


bitwise_and = _bitwise("bitwise_and", lambda a, b: a & b)
bitwise_or = _bitwise("bitwise_or", lambda a, b: a | b)
bitwise_xor = _bitwise("bitwise_xor", lambda a, b: a ^ b)


def _logical(name: str, ufunc_name: str):
    op = defop(name)(lambda a, b: getattr(xp_of(a) if hasattr(a, "dtype") else xp_of(b), ufunc_name)(a, b))

    def public(input, other) -> Tensor:
        return apply(op, (scalar(input), scalar(other)))

    public.__name__ = name
    return public


logical_and = _logical("logical_and", "logical_and")
logical_or = _logical("logical_or", "logical_or")
logical_xor = _logical("logical_xor", "logical_xor")


@defop("logical_not")
def _logical_not(a):
    return xp_of(a).logical_not(a)


def logical_not(input: Tensor) -> Tensor:
    return apply(_logical_not, (input,))


@defop("bitwise_not")
def _bitwise_not(a):
    return ~a


def bitwise_not(input: Tensor) -> Tensor:
    if input._data.dtype.kind == "f":
        raise NotImplementedError("\"bitwise_not_cpu\" not implemented for 'Float'")
    return apply(_bitwise_not, (input,))


def _invert(self: Tensor) -> Tensor:
    if self._data.dtype.kind == "f":
        raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type tensors")
    return bitwise_not(self)


# ---- Tensor methods and operators ----------------------------------------------------
def _rev(fn):
    return lambda self, other: fn(other, self)


for _name, _fn in [("add", add), ("sub", sub), ("mul", mul), ("div", div), ("pow", pow),
                   ("remainder", remainder), ("fmod", fmod), ("maximum", maximum), ("minimum", minimum),
                   ("fmax", fmax), ("fmin", fmin),
                   ("eq", eq), ("ne", ne), ("lt", lt), ("le", le), ("gt", gt), ("ge", ge),
                   ("logical_and", logical_and), ("logical_or", logical_or), ("logical_xor", logical_xor),
                   ("logical_not", logical_not), ("bitwise_not", bitwise_not), ("floor_divide", floor_divide),
                   ("bitwise_and", bitwise_and), ("bitwise_or", bitwise_or), ("bitwise_xor", bitwise_xor),
                   ("float_power", float_power)]:
    setattr(Tensor, _name, _fn)
Tensor.rsub = rsub
Tensor.subtract, Tensor.multiply, Tensor.divide, Tensor.true_divide = sub, mul, div, div
Tensor.greater, Tensor.less, Tensor.greater_equal, Tensor.less_equal, Tensor.not_equal = gt, lt, ge, le, ne

def _rtruediv(self, other):
    return self.reciprocal() * other  # as torch's Tensor.__rtruediv__


Tensor.__add__ = add
Tensor.__radd__ = add  # other + self is computed as self + other, as torch (the scalar is input 1)
Tensor.__sub__ = sub
Tensor.__rsub__ = rsub
Tensor.__mul__ = mul
Tensor.__rmul__ = mul
Tensor.__truediv__ = div
Tensor.__rtruediv__ = _rtruediv
Tensor.__floordiv__ = floor_divide
Tensor.__rfloordiv__ = _rev(floor_divide)
Tensor.__mod__ = remainder
Tensor.__rmod__ = _rev(remainder)
Tensor.__pow__ = pow
Tensor.__rpow__ = _rev(pow)
Tensor.__eq__ = eq
Tensor.__ne__ = ne
Tensor.__lt__ = lt
Tensor.__le__ = le
Tensor.__gt__ = gt
Tensor.__ge__ = ge
Tensor.__and__ = bitwise_and
Tensor.__rand__ = _rev(bitwise_and)
Tensor.__or__ = bitwise_or
Tensor.__ror__ = _rev(bitwise_or)
Tensor.__xor__ = bitwise_xor
Tensor.__rxor__ = _rev(bitwise_xor)
Tensor.__invert__ = _invert
Tensor.__hash__ = object.__hash__


def _ip(op, fast):
    def inplace(self, other, **kw):
        other = scalar(other)
        if type(other) is int:
            other = _int_scalars(self, other)[1]
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


_iadd = _in_place_ufunc("add")
_isub = _in_place_ufunc("subtract")
_imul = _in_place_ufunc("multiply")
_idiv = _in_place_ufunc("true_divide")
_ipow = _in_place_ufunc("power")
_iremainder = _in_place_ufunc("remainder")
_ifmod = _in_place_ufunc("fmod")

Tensor.add_ = Tensor.__iadd__ = _ip(_add, _iadd)
Tensor.sub_ = Tensor.__isub__ = Tensor.subtract_ = _ip(_sub, _isub)
Tensor.mul_ = Tensor.__imul__ = Tensor.multiply_ = _ip(_mul, _imul)
Tensor.pow_ = Tensor.__ipow__ = _ip(_pow, _ipow)
Tensor.remainder_ = Tensor.__imod__ = _ip(_remainder, _iremainder)
Tensor.fmod_ = _ip(_fmod, _ifmod)


def _div_(self, other, *, rounding_mode=None):
    other = scalar(other)
    if type(other) is int and rounding_mode is not None:
        other = _int_scalars(self, other)[1]
    if rounding_mode is None:
        rdt = _dtype.result_type(self, other)  # true division of integers gives the default float
        check_cast(rdt if rdt.is_floating_point else _dtype.get_default_dtype(), self)
        return inplace_binary(_div, self, other, None, _idiv)
    _not_for_bool("div_floor_cpu" if rounding_mode == "floor" else "div_trunc_cpu",
                  _dtype.result_type(self, other))

    def fast(a, b):
        a[...] = _div.default(a, b, rounding_mode=rounding_mode)

    return inplace_binary(_div, self, other, {"rounding_mode": rounding_mode}, fast)


def _floor_divide_(self, other):
    return _div_(self, other, rounding_mode="floor")


Tensor.div_ = Tensor.__itruediv__ = Tensor.divide_ = Tensor.true_divide_ = _div_
Tensor.floor_divide_ = Tensor.__ifloordiv__ = _floor_divide_


def _add_operator(self, other) -> Tensor:
    """``self + other``: add without the alpha argument (the hottest op in user code)."""
    return _binary(_add, self, other)


Tensor.__add__ = Tensor.__radd__ = _add_operator

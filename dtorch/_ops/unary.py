"""Elementwise unary math: exp/log, powers and roots, trigonometry, erf, sign, rounding, clamp, predicates."""
from __future__ import annotations

import math

import numpy as np

from .. import _dtype
from .._device import xp_of
from .._dispatch import ARRAY_NS, REGISTRY, apply, apply_unary, defop, tensor_fn
from ..tensor import Tensor
from ._helpers import attach, wrap_int
from ._inplace import inplace_unary
from .convert import float_input, to_dtype

__all__ = [
    "neg",
    "negative",
    "exp",
    "exp2",
    "expm1",
    "log",
    "log2",
    "log10",
    "log1p",
    "sqrt",
    "rsqrt",
    "square",
    "abs",
    "absolute",
    "sign",
    "sgn",
    "reciprocal",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "arcsin",
    "arccos",
    "arctan",
    "arcsinh",
    "arccosh",
    "arctanh",
    "sigmoid",
    "erf",
    "floor",
    "ceil",
    "trunc",
    "fix",
    "frac",
    "round",
    "clamp",
    "clip",
    "clamp_min",
    "clamp_max",
    "isnan",
    "isinf",
    "isfinite",
    "isposinf",
    "isneginf",
    "signbit",
    "nan_to_num",
]

_NO_COMPLEX = {  # torch's refusals of complex inputs, by op
    "floor": "floor is not supported for complex inputs", "ceil": "ceil is not supported for complex inputs",
    "trunc": "trunc is not supported for complex inputs", "frac": "\"frac_cpu\" not implemented for '{}'",
    "relu": "clamp is not supported for complex types", "hardtanh": "clamp is not supported for complex types",
    "erf": "\"erf_vml_cpu\" not implemented for '{}'", "softplus": "\"softplus_cpu\" not implemented for '{}'",
    "elu": "\"elu_cpu\" not implemented for '{}'", "leaky_relu": "\"leaky_relu_cpu\" not implemented for '{}'",
}


def _check_kind(input: Tensor, float_only: str | None, no_bool, name: str = "") -> None:
    """torch's refusals: ``float_only`` names the kernel that has no integer version; ``no_bool`` is
    ``(error type, message)`` or a kernel name for bool inputs; complex inputs by ``_NO_COMPLEX[name]``."""
    kind = input._data.dtype.kind
    if kind in "fV":
        return
    if kind == "c" and name:
        if name in _NO_COMPLEX:
            raise NotImplementedError(_NO_COMPLEX[name].format(input.dtype.scalar_name))
        return
    if float_only is not None:
        raise NotImplementedError(f"\"{float_only}\" not implemented for '{input.dtype.scalar_name}'")
    if kind == "b" and no_bool is not None:
        if isinstance(no_bool, str):
            raise NotImplementedError(f"\"{no_bool}\" not implemented for 'Bool'")
        raise no_bool[0](no_bool[1])


def _unary(name: str, fwd, bw=None, *, save_in=False, save_out=False, floating=True, inplace=True, params=(),
           node_name=None, float_only=None, no_bool=None):
    """Register an elementwise op; return its public function and its in-place ``name_`` (None without one).

    floating: integer inputs are computed in the default float dtype (exp of an int tensor);
    float_only / no_bool: the dtypes torch refuses (see _check_kind).
    """
    op = defop(name, save=(0,) if save_in else (), save_out=save_out)(fwd)
    if bw is not None:
        op.backward(bw, node_name)
    checked = float_only is not None or no_bool is not None

    def public(input: Tensor, *args, **kwargs) -> Tensor:
        if input._data.dtype.kind not in "fV":
            if checked or input._data.dtype.kind == "c":
                _check_kind(input, float_only, no_bool, name)
            if floating and input._data.dtype.kind != "c":
                input = float_input(input)
        if args:
            kwargs.update(zip(params, args))
        return apply_unary(op, input, kwargs or None)

    public.__name__ = name
    tensor_fn(name, public)
    if not inplace:
        return public, None

    def inplace_fn(self: Tensor, *args, **kwargs) -> Tensor:
        if self._data.dtype.kind not in "fV":
            if checked or self._data.dtype.kind == "c":
                _check_kind(self, float_only, no_bool, name)
            if floating and self._data.dtype.kind != "c":  # the float result cannot go back into an integer tensor
                raise RuntimeError(f"result type {_dtype.get_default_dtype().scalar_name} can't be cast "
                                   f"to the desired output type {self.dtype.scalar_name}")
        if args:
            kwargs.update(zip(params, args))
        return inplace_unary(op, self, kwargs or None)

    return public, inplace_fn


neg, neg_ = _unary("neg", lambda a: -a, lambda ns, ctx, g: (-g,), floating=False,
                   no_bool=(RuntimeError, "Negation, the `-` operator, on a bool tensor is not supported. If you are "
                                          "trying to invert a mask, use the `~` or `logical_not()` operator instead."))
negative = neg
exp, exp_ = _unary("exp", lambda a: xp_of(a).exp(a), lambda ns, ctx, g, out: (g * out,), save_out=True)
exp2, exp2_ = _unary("exp2", lambda a: xp_of(a).exp2(a), lambda ns, ctx, g, out: (g * out * math.log(2.0),),
                     save_out=True)
expm1, expm1_ = _unary("expm1", lambda a: xp_of(a).expm1(a), lambda ns, ctx, g, out: (g * (out + 1),), save_out=True)
log, log_ = _unary("log", lambda a: xp_of(a).log(a), lambda ns, ctx, g, a: (g / a,), save_in=True)
log2, log2_ = _unary("log2", lambda a: xp_of(a).log2(a), lambda ns, ctx, g, a: (g / (a * math.log(2.0)),), save_in=True)
log10, log10_ = _unary("log10", lambda a: xp_of(a).log10(a), lambda ns, ctx, g, a: (g / (a * math.log(10.0)),),
                       save_in=True)
log1p, log1p_ = _unary("log1p", lambda a: xp_of(a).log1p(a), lambda ns, ctx, g, a: (g / (a + 1),), save_in=True,
                       node_name="Log1PBackward0")
sqrt, sqrt_ = _unary("sqrt", lambda a: xp_of(a).sqrt(a), lambda ns, ctx, g, out: (g / (2 * out),), save_out=True)
rsqrt, rsqrt_ = _unary("rsqrt", lambda a: 1 / xp_of(a).sqrt(a), lambda ns, ctx, g, out: (-0.5 * g * out * out * out,),
                       save_out=True)


def square(input: Tensor) -> Tensor:
    """``input ** 2`` (PowBackward0, as torch)."""
    return input ** 2


tensor_fn("square", square)
abs, abs_ = _unary("abs", lambda a: xp_of(a).abs(a), lambda ns, ctx, g, a: (g * ns.sign(a),), save_in=True,
                   floating=False, no_bool="abs_cpu")
absolute = abs


def _sign_fwd(a):
    if a.dtype.kind == "b":
        return a.copy()
    r = xp_of(a).sign(a)
    if a.dtype.kind in "fV":
        r[a != a] = 0  # torch: sign(nan) is 0
    return r


def _sgn_bw(ns, ctx, g, a):
    if not (a.is_complex() if isinstance(a, Tensor) else a.dtype.kind == "c"):
        return (g * 0,)
    # z / |z| of a complex z: torch's sgn_backward (g - sgn Re(conj(sgn) g)) / |z|, 0 where z is 0
    s, mag = ns.sgn(a), ns.abs(a)
    return ((g - s * ns.real(ns.conj_physical(s) * g)) / (mag + (mag == 0)) * (mag != 0),)


sign, sign_ = _unary("sign", _sign_fwd, _sgn_bw, save_in=True, floating=False)
sgn, sgn_ = _unary("sgn", _sign_fwd, _sgn_bw, save_in=True, floating=False)
REGISTRY["sign"].node_cls._conj_wrap = REGISTRY["sgn"].node_cls._conj_wrap = False  # torch's convention already
ARRAY_NS.sign = lambda a: xp_of(a).sign(a)  # inside backward formulas (relu's mask, abs): the bare ufunc
reciprocal, reciprocal_ = _unary("reciprocal", lambda a: 1 / a, lambda ns, ctx, g, out: (-g * out * out,),
                                 save_out=True)
sin, sin_ = _unary("sin", lambda a: xp_of(a).sin(a), lambda ns, ctx, g, a: (g * ns.cos(a),), save_in=True)
cos, cos_ = _unary("cos", lambda a: xp_of(a).cos(a), lambda ns, ctx, g, a: (-g * ns.sin(a),), save_in=True)
tan, tan_ = _unary("tan", lambda a: xp_of(a).tan(a), lambda ns, ctx, g, out: (g * (1 + out * out),), save_out=True)
asin, asin_ = _unary("asin", lambda a: xp_of(a).arcsin(a), lambda ns, ctx, g, a: (g * ns.rsqrt(1 - a * a),),
                     save_in=True)
acos, acos_ = _unary("acos", lambda a: xp_of(a).arccos(a), lambda ns, ctx, g, a: (-g * ns.rsqrt(1 - a * a),),
                     save_in=True)
atan, atan_ = _unary("atan", lambda a: xp_of(a).arctan(a), lambda ns, ctx, g, a: (g / (1 + a * a),), save_in=True)
sinh, sinh_ = _unary("sinh", lambda a: xp_of(a).sinh(a), lambda ns, ctx, g, a: (g * ns.cosh(a),), save_in=True)
cosh, cosh_ = _unary("cosh", lambda a: xp_of(a).cosh(a), lambda ns, ctx, g, a: (g * ns.sinh(a),), save_in=True)
tanh, tanh_ = _unary("tanh", lambda a: xp_of(a).tanh(a), lambda ns, ctx, g, out: (g * (1 - out * out),), save_out=True)
asinh, asinh_ = _unary("asinh", lambda a: xp_of(a).arcsinh(a), lambda ns, ctx, g, a: (g * ns.rsqrt(a * a + 1),),
                       save_in=True)
acosh, acosh_ = _unary("acosh", lambda a: xp_of(a).arccosh(a), lambda ns, ctx, g, a: (g * ns.rsqrt(a * a - 1),),
                       save_in=True)
atanh, atanh_ = _unary("atanh", lambda a: xp_of(a).arctanh(a), lambda ns, ctx, g, a: (g / (1 - a * a),), save_in=True)
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh


def _sigmoid_fwd(a):
    # 0.5 * tanh(a / 2) + 0.5: never overflows, and in place after the first product
    t = a * 0.5
    xp_of(a).tanh(t, out=t)
    t *= 0.5
    t += 0.5
    return t


sigmoid, sigmoid_ = _unary("sigmoid", _sigmoid_fwd, lambda ns, ctx, g, out: (g * out * (1 - out),), save_out=True)


# Abramowitz & Stegun 7.1.26 (torch's own CPU erf): |erf error| < 1.5e-7, below float32's resolution near 1
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erfc_abs(x: np.ndarray, scale: float, factor: float, gauss: float = 1.0):
    """``(factor * erfc(|z|), gauss * exp(-z*z))`` for ``z = scale * x``, x float32: two fresh arrays, every
    pass in place (the polynomial's coefficients absorb ``factor / gauss``)."""
    f = np.float32
    t = np.abs(x)
    t *= f(_AS_P * scale)
    t += 1
    np.divide(1, t, out=t)  # numpy's reciprocal is twice as slow
    k = factor / gauss
    y = t * f(_AS_A[4] * k)
    for c in reversed(_AS_A[:4]):
        y += f(c * k)
        y *= t
    e = np.multiply(x, x, out=t)
    e *= f(-scale * scale)
    np.exp(e, out=e)
    if gauss != 1:
        e *= f(gauss)
    y *= e
    return y, e


def _or_sign_of(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` (>= 0, float32, fresh) with the sign bit of ``x``: copysign in two integer passes (numpy's float
    copysign is not vectorized, 6x slower)."""
    bits = y.view(np.uint32)
    np.bitwise_or(bits, np.bitwise_and(x.view(np.uint32), np.uint32(0x80000000)), out=bits)
    return y


def _erf_float32(x: np.ndarray) -> np.ndarray:
    """erf on float32/float16 numpy arrays: the polynomial in place, ~20x faster than scipy's."""
    if not x.ndim:
        return _erf_float32(x.reshape(1)).reshape(())
    dt = x.dtype
    x = x.astype(np.float32, copy=False)
    y, _ = _erfc_abs(x, 1.0, -1.0)
    y += 1
    return _or_sign_of(y, x).astype(dt, copy=False)


def _erf_array(a):
    xp = xp_of(a)
    if xp is not np:
        import cupyx.scipy.special as cs

        return cs.erf(a)
    if a.dtype != np.float64:
        return _erf_float32(a)
    try:
        from scipy.special import erf as _serf  # exact and fast, when installed
    except ImportError:
        return np.frompyfunc(math.erf, 1, 1)(a).astype(a.dtype)
    return _serf(a)


erf, erf_ = _unary("erf", _erf_array, lambda ns, ctx, g, a: (g * (2 / math.sqrt(math.pi)) * ns.exp(-a * a),),
                   save_in=True)


# ---- rounding (zero gradient) --------------------------------------------------------
def _int_or(fn):
    """Rounding an integer tensor returns it unchanged (a copy), as torch."""
    return lambda a: a.copy() if a.dtype.kind in "iu" else fn(a)


floor, floor_ = _unary("floor", _int_or(lambda a: xp_of(a).floor(a)), lambda ns, ctx, g: (g * 0,), floating=False,
                       no_bool="floor_vml_cpu")
ceil, ceil_ = _unary("ceil", _int_or(lambda a: xp_of(a).ceil(a)), lambda ns, ctx, g: (g * 0,), floating=False,
                     no_bool="ceil_vml_cpu")
trunc, trunc_ = _unary("trunc", _int_or(lambda a: xp_of(a).trunc(a)), lambda ns, ctx, g: (g * 0,), floating=False,
                       no_bool="trunc_vml_cpu")
fix = trunc
frac, frac_ = _unary("frac", lambda a: a - xp_of(a).trunc(a), lambda ns, ctx, g: (g,), float_only="frac_cpu")


@defop("round")
def _round(a, decimals=0):
    return xp_of(a).round(a, decimals)


_round.backward(lambda ns, ctx, g: (g * 0,))


@defop("round_decimals")
def _round_dec(a, decimals):
    return xp_of(a).round(a, decimals)


_round_dec.backward(lambda ns, ctx, g: (g * 0,), "RoundBackward1")


def _round_checks(input: Tensor, decimals: int) -> None:
    kind = input._data.dtype.kind
    if decimals and kind not in "fV":
        raise NotImplementedError(f"\"round_cpu\" not implemented for '{input.dtype.scalar_name}'")
    if kind == "b":
        raise NotImplementedError("\"round_vml_cpu\" not implemented for 'Bool'")


def round(input: Tensor, *, decimals: int = 0) -> Tensor:
    _round_checks(input, decimals)
    if decimals:
        return apply_unary(_round_dec, input, {"decimals": decimals})
    return apply_unary(_round, input)


def round_(self: Tensor, *, decimals: int = 0) -> Tensor:
    _round_checks(self, decimals)
    if decimals:
        return inplace_unary(_round_dec, self, {"decimals": decimals})
    return inplace_unary(_round, self)


tensor_fn("round", round)


# ---- clamp ------------------------------------------------------------------------------
def _clamp_kernel(a, min=None, max=None):
    xp = xp_of(a)
    if min is not None:
        a = xp.maximum(a, min)
    if max is not None:
        a = xp.minimum(a, max)
    return a


_clamp = defop("clamp", save=(0,))(_clamp_kernel)


def _clamp_bw(ns, ctx, g, a):
    lo, hi = ctx._args.get("min"), ctx._args.get("max")
    mask = None
    if lo is not None:
        mask = a >= lo
    if hi is not None:
        m = a <= hi
        mask = m if mask is None else mask & m
    return (g * mask,)


_clamp.backward(_clamp_bw, "ClampBackward1")  # torch's clamp(Tensor, Scalar, Scalar)


@defop("clamp_tensor", save=(0, 1, 2))
def _clamp_t(a, lo, hi):
    return _clamp_kernel(a, lo, hi)


@_clamp_t.backward
def _clamp_t_bw(ns, ctx, g, a, lo, hi):
    """torch's ClampBackward0: the input gets the gradient where it was kept, a bound where it was taken."""
    keep = None
    if lo is not None:
        keep = a >= lo
    if hi is not None:
        keep = (a <= hi) if keep is None else keep & (a <= hi)
    nf = ctx.next_functions
    glo = ghi = None
    if lo is not None and nf[1][0] is not None:
        glo = g * (a < lo)
    if hi is not None and nf[2][0] is not None:
        ghi = g * (a > hi) if lo is None else g * ((a > hi) & (a >= lo))
    return g * keep, glo, ghi


_clamp_t.backward(_clamp_t_bw, "ClampBackward0")


def clamp(input: Tensor, min=None, max=None) -> Tensor:
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if input._data.dtype.kind == "c":
        raise NotImplementedError("clamp is not supported for complex types")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        rdt = _dtype.result_type(input, *[b for b in (min, max) if b is not None])
        return apply(_clamp_t, (input, min, max), None, rdt.np)
    input, min, max = _clamp_operands(input, min, max)
    return apply_unary(_clamp, input, {"min": min, "max": max})


def _clamp_operands(input: Tensor, min, max):
    """Promote an integer tensor with float bounds; wrap int bounds into an integer dtype (as torch)."""
    rdt = _dtype.result_type(input, *[b for b in (min, max) if b is not None])
    if rdt.np != input._data.dtype:
        input = to_dtype(input, rdt)  # an integer tensor with float bounds: nothing to differentiate
    if input._data.dtype.kind in "iu":
        min = wrap_int(min, input._data.dtype) if type(min) is int else min
        max = wrap_int(max, input._data.dtype) if type(max) is int else max
    return input, min, max


clip = clamp
tensor_fn("clamp", clamp)


def clamp_(self: Tensor, min=None, max=None) -> Tensor:
    return inplace_unary(_clamp, self, {"min": min, "max": max})


@defop("clamp_min", save=(0,))
def _clamp_min(a, min):
    return xp_of(a).maximum(a, min)


_clamp_min.backward(lambda ns, ctx, g, a: (g * (a >= ctx._args["min"]),), "ClampMinBackward0")


@defop("clamp_max", save=(0,))
def _clamp_max(a, max):
    return xp_of(a).minimum(a, max)


_clamp_max.backward(lambda ns, ctx, g, a: (g * (a <= ctx._args["max"]),), "ClampMaxBackward0")


def clamp_min(input: Tensor, min) -> Tensor:
    if isinstance(min, Tensor):
        return clamp(input, min=min)
    input, min, _ = _clamp_operands(input, min, None)
    return apply_unary(_clamp_min, input, {"min": min})


def clamp_max(input: Tensor, max) -> Tensor:
    if isinstance(max, Tensor):
        return clamp(input, max=max)
    input, _, max = _clamp_operands(input, None, max)
    return apply_unary(_clamp_max, input, {"max": max})


# ---- predicates -----------------------------------------------------------------------
def _predicate(name: str, fn):
    op = defop(name)(fn)

    def public(input: Tensor) -> Tensor:
        return apply(op, (input,))

    public.__name__ = name
    return public


isnan = _predicate("isnan", lambda a: xp_of(a).isnan(a))
isinf = _predicate("isinf", lambda a: xp_of(a).isinf(a))
isfinite = _predicate("isfinite", lambda a: xp_of(a).isfinite(a))
isposinf = _predicate("isposinf", lambda a: xp_of(a).isposinf(a))
isneginf = _predicate("isneginf", lambda a: xp_of(a).isneginf(a))
signbit = _predicate("signbit", lambda a: xp_of(a).signbit(a))


@defop("nan_to_num")
def _nan_to_num(a, nan=0.0, posinf=None, neginf=None):
    return xp_of(a).nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)


_nan_to_num.backward(lambda ns, ctx, g: (g,))


def nan_to_num(input: Tensor, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:
    return apply(_nan_to_num, (input,), {"nan": nan, "posinf": posinf, "neginf": neginf})


attach(__name__, {
    "neg": neg, "neg_": neg_, "negative": neg, "__neg__": neg, "__pos__": lambda self: self,
    "exp": exp, "exp_": exp_, "exp2": exp2, "exp2_": exp2_, "expm1": expm1, "expm1_": expm1_, "log": log,
    "log_": log_, "log2": log2, "log2_": log2_, "log10": log10, "log10_": log10_, "log1p": log1p, "log1p_": log1p_,
    "sqrt": sqrt, "sqrt_": sqrt_, "rsqrt": rsqrt, "rsqrt_": rsqrt_, "square": square, "abs": abs, "abs_": abs_,
    "__abs__": abs, "sign": sign, "sign_": sign_, "sgn": sgn, "sgn_": sgn_,
    "reciprocal": reciprocal, "reciprocal_": reciprocal_, "sin": sin, "sin_": sin_, "cos": cos, "cos_": cos_,
    "tan": tan, "tan_": tan_, "asin": asin, "asin_": asin_, "acos": acos, "acos_": acos_, "atan": atan,
    "atan_": atan_, "sinh": sinh, "sinh_": sinh_, "cosh": cosh, "cosh_": cosh_, "tanh": tanh, "tanh_": tanh_,
    "asinh": asinh, "asinh_": asinh_, "acosh": acosh, "acosh_": acosh_, "atanh": atanh, "atanh_": atanh_,
    "sigmoid": sigmoid, "sigmoid_": sigmoid_, "erf": erf, "erf_": erf_, "floor": floor, "floor_": floor_,
    "ceil": ceil, "ceil_": ceil_, "trunc": trunc, "trunc_": trunc_, "frac": frac, "frac_": frac_,
    "round": round, "round_": round_, "clamp": clamp, "clamp_": clamp_, "clip": clamp, "clip_": clamp_,
    "clamp_min": clamp_min, "clamp_max": clamp_max, "isnan": isnan, "isinf": isinf, "isfinite": isfinite,
    "isposinf": isposinf, "isneginf": isneginf, "signbit": signbit, "nan_to_num": nan_to_num,
})

"""Elementwise unary math and activations: forward kernel and backward side by side."""
from __future__ import annotations

import math

import numpy as np

from .. import _dtype
from .._dispatch import ARRAY_NS, apply, apply_unary, defop, tensor_fn
from ..tensor import Tensor
from ._helpers import method, xp_of
from ._inplace import inplace_unary

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
    "relu",
    "gelu",
    "silu",
    "softplus",
    "elu",
    "leaky_relu",
    "hardtanh",
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

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _float_input(x: Tensor) -> Tensor:
    """Integer inputs of floating functions (exp of an int tensor) become the default float."""
    if x._data.dtype.kind in "biu":
        from .convert import to_dtype

        return to_dtype(x, _dtype.get_default_dtype())
    return x


_TYPE_WORDS = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int",
               "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _check_kind(input: Tensor, float_only: str | None, no_bool) -> None:
    """torch's refusals: ``float_only`` names the kernel that has no integer version; ``no_bool`` is
    ``(error type, message)`` or a kernel name for bool inputs."""
    kind = input._data.dtype.kind
    if kind == "f":
        return
    if float_only is not None:
        raise NotImplementedError(f"\"{float_only}\" not implemented for '{_TYPE_WORDS[input._data.dtype.name]}'")
    if kind == "b" and no_bool is not None:
        if isinstance(no_bool, str):
            raise NotImplementedError(f"\"{no_bool}\" not implemented for 'Bool'")
        raise no_bool[0](no_bool[1])


def _unary(name: str, fwd, bw=None, *, save_in=False, save_out=False, floating=True, inplace=True, params=(),
           node_name=None, float_only=None, no_bool=None):
    """Register an elementwise op and its public function/method (+ ``name_`` in place).

    floating: integer inputs are computed in the default float dtype (exp of an int tensor);
    float_only / no_bool: the dtypes torch refuses (see _check_kind).
    """
    op = defop(name, save=(0,) if save_in else (), save_out=save_out)(fwd)
    if bw is not None:
        op.backward(bw, node_name)
    checked = float_only is not None or no_bool is not None

    def public(input: Tensor, *args, **kwargs) -> Tensor:
        if input._data.dtype.kind != "f":
            if checked:
                _check_kind(input, float_only, no_bool)
            if floating:
                input = _float_input(input)
        if args:
            kwargs.update(zip(params, args))
        return apply_unary(op, input, kwargs or None)

    public.__name__ = name
    tensor_fn(name, public)
    setattr(Tensor, name, public)
    if inplace:
        def inplace_fn(self: Tensor, *args, **kwargs) -> Tensor:
            if self._data.dtype.kind != "f":
                if checked:
                    _check_kind(self, float_only, no_bool)
                if floating:  # the float result cannot go back into an integer tensor
                    raise RuntimeError(f"result type {_TYPE_WORDS[_dtype.get_default_dtype().name]} can't be cast "
                                       f"to the desired output type {_TYPE_WORDS[self._data.dtype.name]}")
            if args:
                kwargs.update(zip(params, args))
            return inplace_unary(op, self, kwargs or None)

        setattr(Tensor, name + "_", inplace_fn)
    return public


def _x(a):
    return xp_of(a)


neg = _unary("neg", lambda a: -a, lambda ns, ctx, g: (-g,), floating=False,
             no_bool=(RuntimeError, "Negation, the `-` operator, on a bool tensor is not supported. If you are "
                                    "trying to invert a mask, use the `~` or `logical_not()` operator instead."))
negative = neg
Tensor.__neg__ = neg
Tensor.negative = neg
Tensor.__pos__ = lambda self: self
exp = _unary("exp", lambda a: _x(a).exp(a), lambda ns, ctx, g, out: (g * out,), save_out=True)
exp2 = _unary("exp2", lambda a: _x(a).exp2(a), lambda ns, ctx, g, out: (g * out * math.log(2.0),), save_out=True)
expm1 = _unary("expm1", lambda a: _x(a).expm1(a), lambda ns, ctx, g, out: (g * (out + 1),), save_out=True)
log = _unary("log", lambda a: _x(a).log(a), lambda ns, ctx, g, a: (g / a,), save_in=True)
log2 = _unary("log2", lambda a: _x(a).log2(a), lambda ns, ctx, g, a: (g / (a * math.log(2.0)),), save_in=True)
log10 = _unary("log10", lambda a: _x(a).log10(a), lambda ns, ctx, g, a: (g / (a * math.log(10.0)),),
               save_in=True)
log1p = _unary("log1p", lambda a: _x(a).log1p(a), lambda ns, ctx, g, a: (g / (a + 1),), save_in=True,
               node_name="Log1PBackward0")
sqrt = _unary("sqrt", lambda a: _x(a).sqrt(a), lambda ns, ctx, g, out: (g / (2 * out),), save_out=True)
rsqrt = _unary("rsqrt", lambda a: 1 / _x(a).sqrt(a), lambda ns, ctx, g, out: (-0.5 * g * out * out * out,),
               save_out=True)


def square(input: Tensor) -> Tensor:
    """``input ** 2`` (PowBackward0, as torch)."""
    return input ** 2


Tensor.square = square
tensor_fn("square", square)
abs = _unary("abs", lambda a: _x(a).abs(a), lambda ns, ctx, g, a: (g * ns.sign(a),), save_in=True,
             floating=False, no_bool="abs_cpu")
absolute = abs
Tensor.__abs__ = abs
def _sign_fwd(a):
    if a.dtype.kind == "b":
        return a.copy()
    r = _x(a).sign(a)
    if a.dtype.kind == "f":
        r[a != a] = 0  # torch: sign(nan) is 0
    return r


sign = _unary("sign", _sign_fwd, lambda ns, ctx, g: (g * 0,), floating=False)
sgn = _unary("sgn", _sign_fwd, lambda ns, ctx, g: (g * 0,), floating=False)
ARRAY_NS.sign = lambda a: _x(a).sign(a)  # inside backward formulas (relu's mask, abs): the bare ufunc
reciprocal = _unary("reciprocal", lambda a: 1 / a, lambda ns, ctx, g, out: (-g * out * out,), save_out=True)
sin = _unary("sin", lambda a: _x(a).sin(a), lambda ns, ctx, g, a: (g * ns.cos(a),), save_in=True)
cos = _unary("cos", lambda a: _x(a).cos(a), lambda ns, ctx, g, a: (-g * ns.sin(a),), save_in=True)
tan = _unary("tan", lambda a: _x(a).tan(a), lambda ns, ctx, g, out: (g * (1 + out * out),), save_out=True)
asin = _unary("asin", lambda a: _x(a).arcsin(a), lambda ns, ctx, g, a: (g * ns.rsqrt(1 - a * a),), save_in=True)
acos = _unary("acos", lambda a: _x(a).arccos(a), lambda ns, ctx, g, a: (-g * ns.rsqrt(1 - a * a),), save_in=True)
atan = _unary("atan", lambda a: _x(a).arctan(a), lambda ns, ctx, g, a: (g / (1 + a * a),), save_in=True)
sinh = _unary("sinh", lambda a: _x(a).sinh(a), lambda ns, ctx, g, a: (g * ns.cosh(a),), save_in=True)
cosh = _unary("cosh", lambda a: _x(a).cosh(a), lambda ns, ctx, g, a: (g * ns.sinh(a),), save_in=True)
tanh = _unary("tanh", lambda a: _x(a).tanh(a), lambda ns, ctx, g, out: (g * (1 - out * out),), save_out=True)
asinh = _unary("asinh", lambda a: _x(a).arcsinh(a), lambda ns, ctx, g, a: (g * ns.rsqrt(a * a + 1),),
               save_in=True)
acosh = _unary("acosh", lambda a: _x(a).arccosh(a), lambda ns, ctx, g, a: (g * ns.rsqrt(a * a - 1),),
               save_in=True)
atanh = _unary("atanh", lambda a: _x(a).arctanh(a), lambda ns, ctx, g, a: (g / (1 - a * a),), save_in=True)
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh


def _sigmoid_fwd(a):
    # 0.5 * tanh(a / 2) + 0.5: never overflows, and in place after the first product
    t = a * 0.5
    _x(a).tanh(t, out=t)
    t *= 0.5
    t += 0.5
    return t


sigmoid = _unary("sigmoid", _sigmoid_fwd, lambda ns, ctx, g, out: (g * out * (1 - out),), save_out=True)


# Abramowitz & Stegun 7.1.26: |erf error| < 1.5e-7, below float32's resolution near 1
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf_float32(x: np.ndarray, with_gauss: bool = False):
    """erf on float32/float16 numpy arrays: a polynomial in place, ~20x faster than scipy's.
    with_gauss: also return exp(-x*x), which the polynomial computes anyway."""
    dt = x.dtype
    x = x.astype(np.float32, copy=False)
    a = np.abs(x)
    t = a * np.float32(_AS_P)
    t += 1
    np.reciprocal(t, out=t)
    y = t * np.float32(_AS_A[4])
    for c in reversed(_AS_A[:4]):
        y += np.float32(c)
        y *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    y *= a
    np.subtract(1, y, out=y)
    np.copysign(y, x, out=y)
    if with_gauss:
        return y.astype(dt, copy=False), a.astype(dt, copy=False)
    return y.astype(dt, copy=False)


def _erf_array(a):
    xp = _x(a)
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


erf = _unary("erf", _erf_array, lambda ns, ctx, g, a: (g * (2 / math.sqrt(math.pi)) * ns.exp(-a * a),),
             save_in=True)

# ---- rounding (zero gradient) --------------------------------------------------------
def _int_or(fn):
    """Rounding an integer tensor returns it unchanged (a copy), as torch."""
    return lambda a: a.copy() if a.dtype.kind in "iu" else fn(a)


floor = _unary("floor", _int_or(lambda a: _x(a).floor(a)), lambda ns, ctx, g: (g * 0,), floating=False,
               no_bool="floor_vml_cpu")
ceil = _unary("ceil", _int_or(lambda a: _x(a).ceil(a)), lambda ns, ctx, g: (g * 0,), floating=False,
              no_bool="ceil_vml_cpu")
trunc = _unary("trunc", _int_or(lambda a: _x(a).trunc(a)), lambda ns, ctx, g: (g * 0,), floating=False,
               no_bool="trunc_vml_cpu")
fix = trunc
frac = _unary("frac", lambda a: a - _x(a).trunc(a), lambda ns, ctx, g: (g,), float_only="frac_cpu")


@defop("round")
def _round(a, decimals=0):
    return _x(a).round(a, decimals)


_round.backward(lambda ns, ctx, g: (g * 0,))


@defop("round_decimals")
def _round_dec(a, decimals):
    return _x(a).round(a, decimals)


_round_dec.backward(lambda ns, ctx, g: (g * 0,), "RoundBackward1")


def _round_checks(input: Tensor, decimals: int) -> None:
    kind = input._data.dtype.kind
    if decimals and kind != "f":
        raise NotImplementedError(f"\"round_cpu\" not implemented for '{_TYPE_WORDS[input._data.dtype.name]}'")
    if kind == "b":
        raise NotImplementedError("\"round_vml_cpu\" not implemented for 'Bool'")


@method("round")
def round(input: Tensor, *, decimals: int = 0) -> Tensor:
    _round_checks(input, decimals)
    if decimals:
        return apply_unary(_round_dec, input, {"decimals": decimals})
    return apply_unary(_round, input)


def _round_(self: Tensor, *, decimals: int = 0) -> Tensor:
    _round_checks(self, decimals)
    if decimals:
        return inplace_unary(_round_dec, self, {"decimals": decimals})
    return inplace_unary(_round, self)


Tensor.round_ = _round_
tensor_fn("round", round)

# ---- activations -----------------------------------------------------------------------
def _relu_bw(ns, ctx, g, out):
    # out >= 0, so sign(out) is the 0/1 mask and stays differentiable (create_graph);
    # on raw arrays a bool mask is one pass cheaper
    if ns is ARRAY_NS:
        return (g * (out > 0),)
    return (g * ns.sign(out),)


relu = _unary("relu", lambda a: _x(a).maximum(a, 0), _relu_bw, save_out=True, floating=False,
              no_bool=(RuntimeError, "Boolean inputs not supported for relu"))


@defop("gelu", save=(0,), extra=True)
def _gelu(a, approximate="none"):
    """(gelu(a), cdf): the normal CDF is kept for the backward (one erf instead of two)."""
    xp = _x(a)
    if approximate == "tanh":
        out = (0.5 * a * (1 + xp.tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a * a * a)))).astype(a.dtype, copy=False)
        return out, None
    z = a * a.dtype.type(1 / _SQRT_2)
    if xp is np and a.dtype != np.float64:
        cdf, gauss = _erf_float32(z, with_gauss=True)  # gauss = exp(-a*a/2), the backward's pdf shape
        gauss *= a.dtype.type(1 / math.sqrt(2 * math.pi))
    else:
        cdf, gauss = _erf_array(z), None
    cdf += 1
    cdf *= 0.5
    return a * cdf, (cdf, gauss)


@_gelu.backward
def _gelu_bw(ns, ctx, g, a):
    if ctx._args and ctx._args.get("approximate") == "tanh":
        inner = _SQRT_2_OVER_PI * (a + 0.044715 * a * a * a)
        t = ns.tanh(inner)
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
        return (g * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * d_inner),)
    if ns is ARRAY_NS and ctx._extra is not None:
        cdf, pdf = ctx._extra
        pdf = pdf * a if pdf is not None else ns.exp(-0.5 * a * a) * (a * (1 / math.sqrt(2 * math.pi)))
        pdf += cdf
        pdf *= g
        return (pdf,)
    pdf = ns.exp(-0.5 * a * a) * (1 / math.sqrt(2 * math.pi))
    cdf = 0.5 * (1 + ns.erf(a * (1 / _SQRT_2)))
    return (g * (cdf + a * pdf),)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    if input._data.dtype.kind != "f":
        _check_kind(input, "GeluKernelImpl", None)
    out, _ = apply_unary(_gelu, input, {"approximate": approximate} if approximate != "none" else None)
    return out


tensor_fn("gelu", gelu)
Tensor.gelu = gelu


def _silu_fwd(a):
    return a * _sigmoid_fwd(a)


def _silu_bw(ns, ctx, g, a):
    s = ns.sigmoid(a)
    return (g * s * (1 + a * (1 - s)),)


silu = _unary("silu", _silu_fwd, _silu_bw, save_in=True, float_only="silu_cpu")


def _softplus_fwd(a, beta=1.0, threshold=20.0):
    xp = _x(a)
    z = a * beta
    return xp.where(z > threshold, a, xp.logaddexp(0, z) / beta).astype(a.dtype, copy=False)


def _softplus_bw(ns, ctx, g, a):
    beta = ctx._args.get("beta", 1.0) if ctx._args else 1.0
    threshold = ctx._args.get("threshold", 20.0) if ctx._args else 20.0
    z = a * beta
    return (ns.where(z > threshold, g, g * ns.sigmoid(z)),)


softplus = _unary("softplus", _softplus_fwd, _softplus_bw, save_in=True, params=("beta", "threshold"),
                  float_only="softplus_cpu",
                  inplace=False)


def _elu_fwd(a, alpha=1.0):
    xp = _x(a)
    return xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0))).astype(a.dtype, copy=False)


def _elu_bw(ns, ctx, g, a):
    alpha = ctx._args.get("alpha", 1.0) if ctx._args else 1.0
    return (ns.where(a > 0, g, g * alpha * ns.exp(ns.minimum(a, 0.0))),)


elu = _unary("elu", _elu_fwd, _elu_bw, save_in=True, params=("alpha",), float_only="elu_cpu")


def _leaky_fwd(a, negative_slope=0.01):
    return _x(a).where(a > 0, a, a * negative_slope).astype(a.dtype, copy=False)


def _leaky_bw(ns, ctx, g, a):
    slope = ctx._args.get("negative_slope", 0.01) if ctx._args else 0.01
    return (ns.where(a > 0, g, g * slope),)


leaky_relu = _unary("leaky_relu", _leaky_fwd, _leaky_bw, save_in=True, params=("negative_slope",),
                    float_only="leaky_relu_cpu")


def _hardtanh_fwd(a, min_val=-1.0, max_val=1.0):
    return _x(a).clip(a, min_val, max_val).astype(a.dtype, copy=False)


def _hardtanh_bw(ns, ctx, g, a):
    lo = ctx._args.get("min_val", -1.0) if ctx._args else -1.0
    hi = ctx._args.get("max_val", 1.0) if ctx._args else 1.0
    return (g * ((a > lo) & (a < hi)),)


_hardtanh = _unary("hardtanh", _hardtanh_fwd, _hardtanh_bw, save_in=True, params=("min_val", "max_val"),
                  floating=False, no_bool=(RuntimeError, "Bool inputs not supported for hardtanh"))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    if input._data.dtype == np.uint8 and (int(min_val) < 0 or int(max_val) < 0):  # bounds cast first
        raise RuntimeError("cannot do hardtanh on an unsigned type with negative limits")
    return _hardtanh(input, min_val, max_val)


Tensor.hardtanh = hardtanh
tensor_fn("hardtanh", hardtanh)


# ---- clamp ------------------------------------------------------------------------------
def _clamp_kernel(a, min=None, max=None):
    xp = _x(a)
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


@method("clamp", "clip")
def clamp(input: Tensor, min=None, max=None) -> Tensor:
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        rdt = _dtype.result_type(input, *[b for b in (min, max) if b is not None])
        return apply(_clamp_t, (input, min, max), None, rdt.np)
    input, min, max = _clamp_operands(input, min, max)
    return apply_unary(_clamp, input, {"min": min, "max": max})


def _clamp_operands(input: Tensor, min, max):
    """Promote an integer tensor with float bounds; wrap int bounds into an integer dtype (as torch)."""
    rdt = _dtype.result_type(input, *[b for b in (min, max) if b is not None])
    if rdt.np != input._data.dtype:
        from .convert import to_dtype

        input = to_dtype(input, rdt)  # an integer tensor with float bounds: nothing to differentiate
    if input._data.dtype.kind in "iu":
        from .arithmetic import _wrap_int

        min = _wrap_int(min, input._data.dtype) if type(min) is int else min
        max = _wrap_int(max, input._data.dtype) if type(max) is int else max
    return input, min, max


clip = clamp
tensor_fn("clamp", clamp)


def _clamp_(self: Tensor, min=None, max=None) -> Tensor:
    return inplace_unary(_clamp, self, {"min": min, "max": max})


Tensor.clamp_ = Tensor.clip_ = _clamp_


@defop("clamp_min", save=(0,))
def _clamp_min(a, min):
    return _x(a).maximum(a, min)


_clamp_min.backward(lambda ns, ctx, g, a: (g * (a >= ctx._args["min"]),), "ClampMinBackward0")


@defop("clamp_max", save=(0,))
def _clamp_max(a, max):
    return _x(a).minimum(a, max)


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


Tensor.clamp_min, Tensor.clamp_max = clamp_min, clamp_max


# ---- predicates -----------------------------------------------------------------------
def _predicate(name: str, fn):
    op = defop(name)(fn)

    def public(input: Tensor) -> Tensor:
        return apply(op, (input,))

    public.__name__ = name
    setattr(Tensor, name, public)
    return public


isnan = _predicate("isnan", lambda a: _x(a).isnan(a))
isinf = _predicate("isinf", lambda a: _x(a).isinf(a))
isfinite = _predicate("isfinite", lambda a: _x(a).isfinite(a))
isposinf = _predicate("isposinf", lambda a: _x(a).isposinf(a))
isneginf = _predicate("isneginf", lambda a: _x(a).isneginf(a))
signbit = _predicate("signbit", lambda a: _x(a).signbit(a))


@defop("nan_to_num")
def _nan_to_num(a, nan=0.0, posinf=None, neginf=None):
    return _x(a).nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)


_nan_to_num.backward(lambda ns, ctx, g: (g,))


@method("nan_to_num")
def nan_to_num(input: Tensor, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:
    return apply(_nan_to_num, (input,), {"nan": nan, "posinf": posinf, "neginf": neginf})

# CUDA: fused elementwise GELU forward/backward (dtorch/cuda/fused/gelu.py)
from ..cuda.fused import gelu as _cuda_gelu  # noqa: E402

_cuda_gelu.install(_gelu)

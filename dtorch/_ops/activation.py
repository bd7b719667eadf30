"""Activations: relu, gelu, silu, softplus, elu, leaky_relu, hardtanh (elementwise, forward and backward
side by side; nn.functional and nn's activation modules build on these)."""
from __future__ import annotations

import math

import numpy as np

from .._device import xp_of
from .._dispatch import ARRAY_NS, apply_unary, defop, tensor_fn
from ..tensor import Tensor
from . import _pointwise_c
from ._helpers import attach
from ._inplace import inplace_unary
from .unary import _check_kind, _erf_array, _erfc_abs, _or_sign_of, _sigmoid_fwd, _unary

__all__ = [
    "relu",
    "gelu",
    "silu",
    "softplus",
    "elu",
    "leaky_relu",
    "hardtanh",
]

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


_CONST_ROW = 8192
_ROW_TYPES = (np.float32, np.float64)


def max_const(a, c: float, out=None):
    """``maximum(a, c)`` for a scalar ``c``. numpy's maximum vectorizes only array-with-array loops (with a
    scalar it runs 3x slower), so a contiguous float32/float64 numpy ``a`` is taken as rows of a constant row."""
    if type(a) is not np.ndarray or a.size < _CONST_ROW or a.dtype.type not in _ROW_TYPES \
            or not a.flags.c_contiguous:
        xp = np if type(a) is np.ndarray else xp_of(a)
        return xp.maximum(a, c) if out is None else xp.maximum(a, c, out=out)
    if out is None:
        out = np.empty_like(a)
    flat, dst = a.reshape(-1), out.reshape(-1)
    row = np.full(_CONST_ROW, c, a.dtype)
    whole = flat.size - flat.size % _CONST_ROW
    np.maximum(flat[:whole].reshape(-1, _CONST_ROW), row, out=dst[:whole].reshape(-1, _CONST_ROW))
    if whole < flat.size:
        np.maximum(flat[whole:], row[:flat.size - whole], out=dst[whole:])
    return out


def _relu_bw(ns, ctx, g, out):
    # out >= 0, so sign(out) is the 0/1 mask and stays differentiable (create_graph). On arrays, as torch's
    # threshold_backward, a NaN passes the gradient; the bool mask is cast to floats first: numpy's bool-to-float
    # cast is vectorized, a bool operand of a multiply is not
    if ns is ARRAY_NS:
        d = _pointwise_c.relu_grad(out, g)
        if d is not None:
            return (d,)
        keep = out <= 0
        keep ^= True  # in place on arrays (a 0-d result is a numpy scalar: rebound)
        if g.dtype.kind != "f":
            return (g * keep,)
        m = keep.astype(g.dtype)
        m *= g
        return (m,)
    return (g * ns.sign(out),)


def _relu_fwd(a):
    if type(a) is np.ndarray and a.size < _CONST_ROW:  # the small-tensor path, kept free of max_const's checks
        return np.maximum(a, 0.0 if a.dtype.kind == "f" else 0)  # a float scalar resolves faster than an int
    return max_const(a, 0)


relu, relu_ = _unary("relu", _relu_fwd, _relu_bw, save_out=True, floating=False,
                    no_bool=(RuntimeError, "Boolean inputs not supported for relu"))


_GELU_KAPPA = 0.044715


def _gelu_erf_float32(x: np.ndarray):
    """(gelu(x), (cdf, pdf)) for float32/float16 numpy arrays, the CDF as 1/2 + sign(x) (1/2 - erfc(|z|)/2)."""
    if not x.ndim:
        out, (cdf, pdf) = _gelu_erf_float32(x.reshape(1))
        return out.reshape(()), (cdf.reshape(()), pdf.reshape(()))
    dt = x.dtype
    x = x.astype(np.float32, copy=False)
    cdf, pdf = _erfc_abs(x, 1 / _SQRT_2, 0.5, 1 / math.sqrt(2 * math.pi))
    np.subtract(np.float32(0.5), cdf, out=cdf)
    _or_sign_of(cdf, x)
    cdf += np.float32(0.5)
    out = x * cdf
    if dt != np.float32:
        return out.astype(dt), (cdf.astype(dt), pdf.astype(dt))
    return out, (cdf, pdf)


def _gelu_tanh(a):
    """(gelu_tanh(a), tanh of the inner product, kept for the backward)."""
    c = a.dtype.type(_SQRT_2_OVER_PI)
    t = a * a
    t *= a.dtype.type(_SQRT_2_OVER_PI * _GELU_KAPPA)
    t += c
    t *= a
    xp_of(a).tanh(t, out=t)
    half = a * a.dtype.type(0.5)
    out = half * t
    out += half
    return out, t


@defop("gelu", save=(0,), extra=True)
def _gelu(a, approximate="none"):
    """(gelu(a), extra): what the backward reuses (the normal CDF and pdf, or the tanh)."""
    if approximate == "tanh":
        return _gelu_tanh(a)
    xp = xp_of(a)
    if xp is np and a.dtype != np.float64:
        return _gelu_erf_float32(a)
    cdf = _erf_array(a * a.dtype.type(1 / _SQRT_2))
    cdf += 1
    cdf *= 0.5
    return a * cdf, (cdf, None)


def _gelu_tanh_bw(ns, g, a, t):
    """0.5 (1 + t) + 0.5 a (1 - t^2) c (1 + 3 k a^2) = (1 + t) (0.5 + 0.5 a (1 - t) c (1 + 3 k a^2))."""
    if t is None or ns is not ARRAY_NS:
        inner = _SQRT_2_OVER_PI * (a + _GELU_KAPPA * a * a * a)
        t = ns.tanh(inner)
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_KAPPA * a * a)
        return g * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * d_inner)
    f = a.dtype.type
    r = a * a
    r *= f(1.5 * _SQRT_2_OVER_PI * _GELU_KAPPA)
    r += f(0.5 * _SQRT_2_OVER_PI)
    r *= a
    p = np.subtract(1, t, dtype=t.dtype) if type(t) is np.ndarray else 1 - t
    r *= p
    r += f(0.5)
    xp_of(a).add(t, 1, out=p)
    r *= p
    r *= g
    return r


@_gelu.backward
def _gelu_bw(ns, ctx, g, a):
    if ctx._args and ctx._args.get("approximate") == "tanh":
        return (_gelu_tanh_bw(ns, g, a, ctx._extra),)
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
    if input._data.dtype.kind not in "fV":
        _check_kind(input, "GeluKernelImpl", None)
    out, _ = apply_unary(_gelu, input, {"approximate": approximate} if approximate != "none" else None)
    return out


tensor_fn("gelu", gelu)


def _silu_fwd(a):
    return a * _sigmoid_fwd(a)


def _silu_bw(ns, ctx, g, a):
    s = ns.sigmoid(a)
    return (g * s * (1 + a * (1 - s)),)


silu, silu_ = _unary("silu", _silu_fwd, _silu_bw, save_in=True, float_only="silu_cpu")


def _softplus_fwd(a, beta=1.0, threshold=20.0):
    xp = xp_of(a)
    z = a * beta
    return xp.where(z > threshold, a, xp.logaddexp(0, z) / beta).astype(a.dtype, copy=False)


def _softplus_bw(ns, ctx, g, a):
    beta = ctx._args.get("beta", 1.0) if ctx._args else 1.0
    threshold = ctx._args.get("threshold", 20.0) if ctx._args else 20.0
    z = a * beta
    return (ns.where(z > threshold, g, g * ns.sigmoid(z)),)


softplus, _ = _unary("softplus", _softplus_fwd, _softplus_bw, save_in=True, params=("beta", "threshold"),
                     float_only="softplus_cpu", inplace=False)


def _elu_fwd(a, alpha=1.0):
    xp = xp_of(a)
    return xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0))).astype(a.dtype, copy=False)


def _elu_bw(ns, ctx, g, a):
    alpha = ctx._args.get("alpha", 1.0) if ctx._args else 1.0
    return (ns.where(a > 0, g, g * alpha * ns.exp(ns.minimum(a, 0.0))),)


elu, elu_ = _unary("elu", _elu_fwd, _elu_bw, save_in=True, params=("alpha",), float_only="elu_cpu")


def _leaky_fwd(a, negative_slope=0.01):
    xp = xp_of(a)
    if 0 < negative_slope <= 1:  # max(a, slope * a): a multiply and a max, 20x faster than numpy's where
        out = _pointwise_c.leaky(a, negative_slope)
        if out is not None:
            return out
        out = (a * negative_slope).astype(a.dtype, copy=False)
        return xp.maximum(a, out, out=out)
    return xp.where(a > 0, a, a * negative_slope).astype(a.dtype, copy=False)


def _leaky_bw(ns, ctx, g, a):
    slope = ctx._args.get("negative_slope", 0.01) if ctx._args else 0.01
    if ns is ARRAY_NS and 0 < slope <= 1:  # g * max(a > 0, slope): 1 where a > 0, else slope (NaN too)
        d = _pointwise_c.leaky_grad(a, g, slope)
        if d is not None:
            return (d,)
        if a.dtype.kind == "f":
            f = (a > 0).astype(a.dtype)
            max_const(f, slope, out=f)
        else:
            f = xp_of(a).fmax(xp_of(a).sign(a), slope)
        f *= g
        return (f,)
    return (ns.where(a > 0, g, g * slope),)


leaky_relu, _leaky_relu_saving_input = _unary("leaky_relu", _leaky_fwd, _leaky_bw, save_in=True,
                                              params=("negative_slope",), float_only="leaky_relu_cpu")


@defop("leaky_relu_result", save_out=True)
def _leaky_relu_result(a, negative_slope=0.01):
    return _leaky_fwd(a, negative_slope)


@_leaky_relu_result.backward
def _leaky_result_bw(ns, ctx, g, out):
    """From the result, as torch's in-place backward: with a positive slope, out > 0 exactly where a > 0."""
    return _leaky_bw(ns, ctx, g, out)


_leaky_relu_result.backward(_leaky_result_bw, "LeakyReluBackward1")


def leaky_relu_(self: Tensor, negative_slope: float = 0.01) -> Tensor:
    """In place; a positive slope saves the result, so the input needs no copy (torch's LeakyReluBackward1)."""
    if negative_slope > 0 and self._data.dtype.kind in "fV":
        return inplace_unary(_leaky_relu_result, self, {"negative_slope": negative_slope})
    return _leaky_relu_saving_input(self, negative_slope)


def _hardtanh_fwd(a, min_val=-1.0, max_val=1.0):
    return xp_of(a).clip(a, min_val, max_val).astype(a.dtype, copy=False)


def _hardtanh_bw(ns, ctx, g, a):
    lo = ctx._args.get("min_val", -1.0) if ctx._args else -1.0
    hi = ctx._args.get("max_val", 1.0) if ctx._args else 1.0
    return (g * ((a > lo) & (a < hi)),)


_hardtanh, hardtanh_ = _unary("hardtanh", _hardtanh_fwd, _hardtanh_bw, save_in=True, params=("min_val", "max_val"),
                              floating=False, no_bool=(RuntimeError, "Bool inputs not supported for hardtanh"))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    if input._data.dtype == np.uint8 and (int(min_val) < 0 or int(max_val) < 0):  # bounds cast first
        raise RuntimeError("cannot do hardtanh on an unsigned type with negative limits")
    return _hardtanh(input, min_val, max_val)

tensor_fn("hardtanh", hardtanh)


attach(__name__, {
    "relu": relu, "relu_": relu_, "gelu": gelu, "silu": silu, "silu_": silu_, "softplus": softplus, "elu": elu,
    "elu_": elu_, "leaky_relu": leaky_relu, "leaky_relu_": leaky_relu_, "hardtanh": hardtanh, "hardtanh_": hardtanh_,
})

# CUDA: fused elementwise GELU forward/backward (dtorch/cuda/fused/gelu.py)
from ..cuda.fused import gelu as _cuda_gelu  # noqa: E402

_cuda_gelu.install(_gelu)

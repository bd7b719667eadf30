"""Activations: relu, gelu, silu, softplus, elu, leaky_relu, hardtanh (elementwise, forward and backward
side by side; nn.functional and nn's activation modules build on these)."""
from __future__ import annotations

import math

import numpy as np

from .._device import xp_of
from .._dispatch import ARRAY_NS, apply_unary, defop, tensor_fn
from ..tensor import Tensor
from ._helpers import attach
from .unary import _check_kind, _erf_array, _erf_float32, _sigmoid_fwd, _unary

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


def _relu_bw(ns, ctx, g, out):
    # out >= 0, so sign(out) is the 0/1 mask and stays differentiable (create_graph);
    # on raw arrays a bool mask is one pass cheaper
    if ns is ARRAY_NS:
        return (g * (out > 0),)
    return (g * ns.sign(out),)


relu, relu_ = _unary("relu", lambda a: xp_of(a).maximum(a, 0), _relu_bw, save_out=True, floating=False,
                    no_bool=(RuntimeError, "Boolean inputs not supported for relu"))


@defop("gelu", save=(0,), extra=True)
def _gelu(a, approximate="none"):
    """(gelu(a), cdf): the normal CDF is kept for the backward (one erf instead of two)."""
    xp = xp_of(a)
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
    return xp_of(a).where(a > 0, a, a * negative_slope).astype(a.dtype, copy=False)


def _leaky_bw(ns, ctx, g, a):
    slope = ctx._args.get("negative_slope", 0.01) if ctx._args else 0.01
    return (ns.where(a > 0, g, g * slope),)


leaky_relu, leaky_relu_ = _unary("leaky_relu", _leaky_fwd, _leaky_bw, save_in=True, params=("negative_slope",),
                                 float_only="leaky_relu_cpu")


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

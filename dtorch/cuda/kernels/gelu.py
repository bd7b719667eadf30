"""GELU forward and backward as CuPy ElementwiseKernel specs (any float dtype, any strides).

A spec is plain strings (parameters, operation, name); the arithmetic runs in ``float`` for
float16/float32 and in ``double`` for float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import dtype_name

_ACC = {"float16": "float", "float32": "float", "float64": "double"}
_K = repr(math.sqrt(2.0 / math.pi))
_INV_SQRT2 = repr(1 / math.sqrt(2.0))
_INV_SQRT_2PI = repr(1 / math.sqrt(2 * math.pi))


@dataclass(frozen=True)
class ElementwiseSpec:
    """The arguments of ``cupy.ElementwiseKernel(in_params, out_params, operation, name)``."""

    in_params: str
    out_params: str
    operation: str
    name: str


def _acc(dtype) -> str:
    name = dtype_name(dtype)
    if name not in _ACC:
        raise TypeError(f"no GELU kernel for dtype {name}")
    return _ACC[name]


def forward(dtype, approximate: str = "none") -> ElementwiseSpec:
    """y = x * Phi(x) (exact, erf) or the tanh approximation."""
    acc, t = _acc(dtype), dtype_name(dtype)
    if approximate == "tanh":
        body = (f"const {acc} v = ({acc})x; "
                f"y = ({t})(({acc})0.5 * v * (({acc})1 + tanh(({acc}){_K} * (v + ({acc})0.044715 * v * v * v))));")
    else:
        body = f"const {acc} v = ({acc})x; y = ({t})(v * ({acc})0.5 * (({acc})1 + erf(v * ({acc}){_INV_SQRT2})));"
    return ElementwiseSpec(f"{t} x", f"{t} y", body, f"dtorch_gelu_{approximate}_fwd_{t}")


def backward(dtype, approximate: str = "none") -> ElementwiseSpec:
    """gx = g * dGELU/dx at x."""
    acc, t = _acc(dtype), dtype_name(dtype)
    if approximate == "tanh":
        body = (f"const {acc} v = ({acc})x; "
                f"const {acc} th = tanh(({acc}){_K} * (v + ({acc})0.044715 * v * v * v)); "
                f"const {acc} d = ({acc}){_K} * (({acc})1 + ({acc})(3 * 0.044715) * v * v); "
                f"gx = ({t})(({acc})g * (({acc})0.5 * (({acc})1 + th) + ({acc})0.5 * v * (({acc})1 - th * th) * d));")
    else:
        body = (f"const {acc} v = ({acc})x; "
                f"const {acc} cdf = ({acc})0.5 * (({acc})1 + erf(v * ({acc}){_INV_SQRT2})); "
                f"const {acc} pdf = exp(({acc})-0.5 * v * v) * ({acc}){_INV_SQRT_2PI}; "
                f"gx = ({t})(({acc})g * (cdf + v * pdf));")
    return ElementwiseSpec(f"{t} g, {t} x", f"{t} gx", body, f"dtorch_gelu_{approximate}_bwd_{t}")

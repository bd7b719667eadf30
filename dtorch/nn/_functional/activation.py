"""Functional activations (``F.relu``, ``F.gelu``, ``F.softmax``...), built on the registered ops."""
from __future__ import annotations

from ..._ops.activation import elu as _elu, gelu as _gelu, hardtanh as _hardtanh, leaky_relu as _leaky_relu
from ..._ops.activation import relu as _relu, silu as _silu, softplus as _softplus
from ..._ops.scatter import where as _where
from ..._ops.unary import sigmoid as _sigmoid, tanh as _tanh
from ...tensor import Tensor

__all__ = [
    "threshold", "threshold_", "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu",
    "selu_", "celu", "celu_", "gelu", "silu", "mish", "sigmoid", "tanh", "hardtanh", "hardtanh_",
    "hardsigmoid", "hardswish", "logsigmoid", "softplus", "softsign", "tanhshrink", "hardshrink", "softshrink",
    "glu", "prelu", "softmax", "softmin", "log_softmax",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _write_back(input: Tensor, out: Tensor) -> Tensor:
    """The ``inplace=True`` form of a composite activation: copy the result into ``input``."""
    return input.copy_(out)


# ---- thresholds and rectifiers ---------------------------------------------------------------
def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``input`` where ``input > threshold``, else ``value``."""
    out = _where(input > threshold, input, value)
    return _write_back(input, out) if inplace else out


def threshold_(input: Tensor, threshold_value: float, value: float) -> Tensor:
    return threshold(input, threshold_value, value, inplace=True)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.relu_() if inplace else _relu(input)


def relu_(input: Tensor) -> Tensor:
    return input.relu_()


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    if inplace:
        return input.hardtanh_(min_val, max_val)
    return _hardtanh(input, min_val, max_val)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return input.hardtanh_(min_val, max_val)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    if inplace:
        return input.leaky_relu_(negative_slope)
    return _leaky_relu(input, negative_slope)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return input.leaky_relu_(negative_slope)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """leaky_relu with a learned slope per channel (dim 1, or dim 0 of a 1-d input)."""
    if weight.numel() != 1:
        channel = 1 if input.dim() >= 2 else 0
        shape = [1] * input.dim()
        shape[channel] = weight.numel()
        weight = weight.reshape(shape)
    return _where(input > 0, input, weight * input)


# ---- exponential family -----------------------------------------------------------------------
def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return input.elu_(alpha) if inplace else _elu(input, alpha)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return input.elu_(alpha)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    out = _elu(input, _SELU_ALPHA) * _SELU_SCALE
    return _write_back(input, out) if inplace else out


def selu_(input: Tensor) -> Tensor:
    return selu(input, inplace=True)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")
    out = _elu(input / alpha, 1.0) * alpha
    return _write_back(input, out) if inplace else out


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return celu(input, alpha, inplace=True)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    return _gelu(input, approximate=approximate) if approximate != "none" else _gelu(input)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.silu_() if inplace else _silu(input)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    out = input * _tanh(_softplus(input))
    return _write_back(input, out) if inplace else out


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    if beta == 1.0 and threshold == 20.0:
        return _softplus(input)
    return _softplus(input, beta=beta, threshold=threshold)


# ---- sigmoid family ----------------------------------------------------------------------------
def sigmoid(input: Tensor) -> Tensor:
    return _sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return _tanh(input)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    out = _hardtanh(input + 3.0, 0.0, 6.0) / 6.0
    return _write_back(input, out) if inplace else out


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    out = input * (_hardtanh(input + 3.0, 0.0, 6.0) / 6.0)
    return _write_back(input, out) if inplace else out


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|."""
    return -_softplus(-input)


def softsign(input: Tensor) -> Tensor:
    return input / (input.abs() + 1)


def tanhshrink(input: Tensor) -> Tensor:
    return input - _tanh(input)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    return _where((input > lambd) | (input < -lambd), input, 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    shrunk = input - _where(input > 0, lambd, -lambd)
    return _where((input > lambd) | (input < -lambd), shrunk, 0.0)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """First half of ``input`` along ``dim`` times the sigmoid of the second half."""
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    size = input.size(dim)
    if size % 2:
        wrapped = dim + input.dim() if dim < 0 else dim
        raise RuntimeError(f"Halving dimension must be even, but dimension {wrapped} is size {size}")
    a, b = input.chunk(2, dim)
    return a * _sigmoid(b)


# ---- softmax family -----------------------------------------------------------------------------
def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return input.softmax(dim, dtype=dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return (-input).softmax(dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return input.log_softmax(dim, dtype=dtype)

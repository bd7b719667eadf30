"""alpha_dropout, feature_alpha_dropout (SELU networks: dropped units go to SELU's negative saturation and
the result is rescaled to keep mean and variance), and rrelu (leaky ReLU with a random negative slope)."""
from __future__ import annotations

import math

from ...tensor import Tensor, _make
from .activation import leaky_relu
from .dropout import _check_p, _uniform

__all__ = ["alpha_dropout", "feature_alpha_dropout", "rrelu", "rrelu_"]

_ALPHA = 1.7580993408473766  # SELU's -scale * alpha: where dropped units go


def _alpha_dropout(input: Tensor, p: float, training: bool, inplace: bool, feature: bool) -> Tensor:
    _check_p(p)
    if p == 0 or not training or input.numel() == 0:
        return input
    if p == 1:
        return input.mul_(0) if inplace else input * 0
    shape = tuple(input.shape[:2]) + (1,) * (input.dim() - 2) if feature else tuple(input.shape)
    keep = (_uniform(input._data, shape) >= p).astype(input._data.dtype)
    a = 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
    b = _make((keep - 1) * (_ALPHA * a) + _ALPHA * a * p)
    scale = _make(keep * a)
    return input.mul_(scale).add_(b) if inplace else input * scale + b


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Dropout that keeps a SELU network's self-normalization (each element dropped on its own)."""
    return _alpha_dropout(input, p, training, inplace, False)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """alpha_dropout of whole channels (one draw per (N, C))."""
    return _alpha_dropout(input, p, training, inplace, True)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """Leaky ReLU whose negative slope is drawn from U(lower, upper) per element in training, their mean else."""
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    slope = _uniform(input._data, tuple(input.shape)).astype(input._data.dtype) * (upper - lower) + lower
    d = input._data
    factor = _make(((d > 0) + (d <= 0) * slope).astype(d.dtype))
    return input.mul_(factor) if inplace else input * factor


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:
    return rrelu(input, lower, upper, training, True)

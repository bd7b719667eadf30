"""AlphaDropout, FeatureAlphaDropout (for SELU networks) and RReLU (randomized leaky ReLU)."""
from __future__ import annotations

from ...tensor import Tensor
from .._functional import alpha_dropout as F
from .dropout import _DropoutNd
from .module import Module

__all__ = ["AlphaDropout", "FeatureAlphaDropout", "RReLU"]


class AlphaDropout(_DropoutNd):
    """Dropout keeping zero mean and unit variance of SELU activations."""

    def forward(self, input: Tensor) -> Tensor:
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """AlphaDropout of whole channels."""

    def forward(self, input: Tensor) -> Tensor:
        return F.feature_alpha_dropout(input, self.p, self.training)


class RReLU(Module):
    """Leaky ReLU with a random negative slope in [lower, upper] in training, their mean in eval."""

    __constants__ = ["lower", "upper", "inplace"]

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False) -> None:
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace else "")

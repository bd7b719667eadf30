"""Linear, Bilinear (Identity lives in flatten.py)."""
from __future__ import annotations

import math

from ...tensor import Tensor
from .. import init
from .._functional import linear as F
from ..parameter import set_weight_and_bias
from .module import Module

__all__ = ["Linear", "Bilinear", "LazyLinear"]


class Linear(Module):
    """``y = x W^T + b`` with torch's default init (kaiming_uniform_(a=sqrt(5)), bias U(+-1/sqrt(fan_in)))."""

    __constants__ = ["in_features", "out_features"]

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        set_weight_and_bias(self, (out_features, in_features), out_features if bias else None, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class LazyLinear(Linear):
    """Not supported: dtorch has no uninitialized parameters."""

    def __init__(self, *args, **kwargs) -> None:
        raise NotImplementedError("LazyLinear is not supported by dtorch; give in_features to Linear")


class Bilinear(Module):
    """``y = x1^T A x2 + b`` with torch's init U(+-1/sqrt(in1_features))."""

    __constants__ = ["in1_features", "in2_features", "out_features"]

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        set_weight_and_bias(self, (out_features, in1_features, in2_features), out_features if bias else None,
                            device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.size(1))
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")

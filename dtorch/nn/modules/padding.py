"""Padding layers: Reflection/Replication/Circular/Constant/Zero Pad 1d, 2d, 3d over F.pad."""
from __future__ import annotations

from collections.abc import Iterable

from ...tensor import Tensor
from .._functional import vision as F
from .module import Module

__all__ = ["CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
           "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
           "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d"]


def _ntuple(x, n: int) -> tuple:
    """torch's ``_ntuple(n)``: an iterable as a tuple, a number repeated n times."""
    return tuple(x) if isinstance(x, Iterable) and not isinstance(x, str) else (x,) * n


class _PadNd(Module):
    """``padding`` as (left, right[, top, bottom[, front, back]]) for ``_dims`` trailing dims."""

    __constants__ = ["padding"]
    _mode = "constant"
    _dims = 1

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _ntuple(padding, 2 * self._dims)

    def _check_input_dim(self, input: Tensor) -> None:
        """Only the circular layers check the input's rank up front (torch's)."""

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _CircularPadNd(_PadNd):
    _mode = "circular"

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() not in (self._dims + 1, self._dims + 2):
            raise ValueError(f"expected {self._dims + 1}D or {self._dims + 2}D input (got {input.dim()}D input)")


class _ConstantPadNd(_PadNd):
    __constants__ = ["padding", "value"]

    def __init__(self, padding, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ReflectionPadNd(_PadNd):
    _mode = "reflect"


class _ReplicationPadNd(_PadNd):
    _mode = "replicate"


class CircularPad1d(_CircularPadNd):
    """Pads the last dim by wrapping around."""
    _dims = 1


class CircularPad2d(_CircularPadNd):
    """Pads the last two dims by wrapping around."""
    _dims = 2


class CircularPad3d(_CircularPadNd):
    """Pads the last three dims by wrapping around."""
    _dims = 3


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dim with ``value``."""
    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pads the last two dims with ``value``."""
    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pads the last three dims with ``value``."""
    _dims = 3


class ZeroPad1d(_ZeroPadNd, ConstantPad1d):
    """Pads the last dim with zeros."""


class ZeroPad2d(_ZeroPadNd, ConstantPad2d):
    """Pads the last two dims with zeros."""


class ZeroPad3d(_ZeroPadNd, ConstantPad3d):
    """Pads the last three dims with zeros."""


class ReflectionPad1d(_ReflectionPadNd):
    """Pads the last dim with the reflection of the input (the border not repeated)."""
    _dims = 1


class ReflectionPad2d(_ReflectionPadNd):
    """Pads the last two dims with the reflection of the input."""
    _dims = 2


class ReflectionPad3d(_ReflectionPadNd):
    """Pads the last three dims with the reflection of the input."""
    _dims = 3


class ReplicationPad1d(_ReplicationPadNd):
    """Pads the last dim by repeating the border value."""
    _dims = 1


class ReplicationPad2d(_ReplicationPadNd):
    """Pads the last two dims by repeating the border values."""
    _dims = 2


class ReplicationPad3d(_ReplicationPadNd):
    """Pads the last three dims by repeating the border values."""
    _dims = 3

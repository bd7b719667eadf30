"""Whole-tensor comparisons: allclose, isclose, equal (not differentiable)."""
from __future__ import annotations

from .._dispatch import apply, defop, promoted
from ..tensor import Tensor
from ._helpers import method, xp_of
from ._inplace import _type_word

__all__ = ["allclose", "isclose", "equal"]


@defop("isclose")
def _isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return xp_of(a).isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


@method("isclose")
def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    if isinstance(other, Tensor) and input._data.dtype != other._data.dtype:
        raise RuntimeError(f"{_type_word(input.dtype)} did not match {_type_word(other.dtype)}")
    cast, _ = promoted(input, other)
    return apply(_isclose, (input, other), {"rtol": rtol, "atol": atol, "equal_nan": equal_nan}, cast)


@method("allclose")
def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True when ``|input - other| <= atol + rtol * |other|`` everywhere (shapes broadcast)."""
    return bool(isclose(input, other, rtol, atol, equal_nan)._data.all())


@method("equal")
def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and the same values."""
    if input._data.shape != other._data.shape:
        return False
    return bool((input._data == other._data).all())

"""Comparisons (eq, lt, ..., maximum/minimum, fmax/fmin, isclose/allclose/equal), bitwise and logical ops,
and their operators."""
from __future__ import annotations

from .. import _dtype
from .._device import xp_of
from .._dispatch import apply, defop, promoted, tensor_fn
from ..tensor import Tensor
from ._helpers import attach, scalar
from .arithmetic import binary, reflected

__all__ = [
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "not_equal",
    "maximum",
    "minimum",
    "fmax",
    "fmin",
    "isclose",
    "allclose",
    "equal",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "bitwise_not",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
]


# ---- comparisons, bitwise and logical ops (not differentiable) -----------------------
def _nondiff(name: str, fn):
    op = defop(name)(fn)

    def public(input, other) -> Tensor:
        return binary(op, input, other)

    public.__name__ = name
    tensor_fn(name, public)
    return public


def _complex_dtype(a, b):
    """The dtype of a complex array operand, else None."""
    for x in (a, b):
        d = getattr(x, "dtype", None)
        if d is not None and d.kind == "c":
            return d
    return None


def _ordering(name: str, fn):
    """An order comparison's kernel: torch has no order on complex numbers."""
    def kernel(a, b):
        if (d := _complex_dtype(a, b)) is not None:
            where = "cpu" if type(a if hasattr(a, "dtype") else b).__module__ == "numpy" else "cuda"
            raise NotImplementedError(f"\"{name}_{where}\" not implemented for '{_dtype._FROM_NP[d].scalar_name}'")
        return fn(a, b)

    return kernel


eq = _nondiff("eq", lambda a, b: a == b)
ne = _nondiff("ne", lambda a, b: a != b)
lt = _nondiff("lt", _ordering("lt", lambda a, b: a < b))
le = _nondiff("le", _ordering("le", lambda a, b: a <= b))
gt = _nondiff("gt", _ordering("gt", lambda a, b: a > b))
ge = _nondiff("ge", _ordering("ge", lambda a, b: a >= b))
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def _bitwise(name: str, fn):
    op = defop(name)(fn)

    def public(input, other) -> Tensor:
        a, b = scalar(input), scalar(other)
        if _dtype.result_type(a, b).is_floating_point:
            raise NotImplementedError(f'"{name}_cpu" not implemented for \'Float\'')
        return binary(op, a, b)

    public.__name__ = name
    return public


bitwise_and = _bitwise("bitwise_and", lambda a, b: a & b)
bitwise_or = _bitwise("bitwise_or", lambda a, b: a | b)
bitwise_xor = _bitwise("bitwise_xor", lambda a, b: a ^ b)


def _logical(name: str, ufunc_name: str):
    op = defop(name)(lambda a, b: getattr(xp_of(a) if hasattr(a, "dtype") else xp_of(b), ufunc_name)(a, b))

    def public(input, other) -> Tensor:
        return apply(op, (scalar(input), scalar(other)))

    public.__name__ = name
    return public


logical_and = _logical("logical_and", "logical_and")
logical_or = _logical("logical_or", "logical_or")
logical_xor = _logical("logical_xor", "logical_xor")


@defop("logical_not")
def _logical_not(a):
    return xp_of(a).logical_not(a)


def logical_not(input: Tensor) -> Tensor:
    return apply(_logical_not, (input,))


@defop("bitwise_not")
def _bitwise_not(a):
    return ~a


def bitwise_not(input: Tensor) -> Tensor:
    if input._data.dtype.kind in "fV":
        raise NotImplementedError("\"bitwise_not_cpu\" not implemented for 'Float'")
    return apply(_bitwise_not, (input,))


def _invert(self: Tensor) -> Tensor:
    if self._data.dtype.kind in "fV":
        raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type tensors")
    return bitwise_not(self)


# ---- maximum / minimum / fmax / fmin ----------------------------------------------------
def _maximum_bw(ns, ctx, g, a, b):
    # torch: ties split the gradient evenly; an operand gets nothing only where it is strictly smaller
    # (so with a NaN both get the gradient)
    half = ns.where(a == b, g * 0.5, g)
    return half * ~(a < b), half * ~(a > b)


def _minimum_bw(ns, ctx, g, a, b):
    return _maximum_bw(ns, ctx, g, b, a)  # an operand gets nothing only where it is strictly larger


def _fmax_bw(ns, ctx, g, a, b):
    # NaN is ignored: the gradient goes to the operand that was taken; ties go to input
    take_a = (a >= b) | (b != b)
    return g * take_a, g * (1 - take_a * 1)


def _fmin_bw(ns, ctx, g, a, b):
    take_a = (a <= b) | (b != b)
    return g * take_a, g * (1 - take_a * 1)


def _extremum(name: str, bw, doc: str):
    """The elementwise op ``xp.<name>(a, b)`` with its backward, and its public function."""
    def kernel(a, b):
        if _complex_dtype(a, b) is not None:
            raise RuntimeError(f"{name} not implemented for complex tensors.")
        return getattr(xp_of(a), name)(a, b)

    op = defop(name, save=(0, 1))(kernel)
    op.backward(bw)

    def public(input: Tensor, other: Tensor) -> Tensor:
        return binary(op, input, other)

    public.__name__, public.__doc__ = name, doc
    return public


maximum = _extremum("maximum", _maximum_bw, "Elementwise maximum (NaN where either is NaN).")
minimum = _extremum("minimum", _minimum_bw, "Elementwise minimum (NaN where either is NaN).")
fmax = _extremum("fmax", _fmax_bw, "Elementwise maximum ignoring NaN (NaN only where both are NaN).")
fmin = _extremum("fmin", _fmin_bw, "Elementwise minimum ignoring NaN (NaN only where both are NaN).")

tensor_fn("maximum", maximum)
tensor_fn("minimum", minimum)


# ---- whole-tensor closeness -------------------------------------------------------------
@defop("isclose")
def _isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return xp_of(a).isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    if isinstance(other, Tensor) and input._data.dtype != other._data.dtype:
        raise RuntimeError(f"{input.dtype.scalar_name} did not match {other.dtype.scalar_name}")
    cast, _ = promoted(input, other)
    return apply(_isclose, (input, other), {"rtol": rtol, "atol": atol, "equal_nan": equal_nan}, cast)


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True when ``|input - other| <= atol + rtol * |other|`` everywhere (shapes broadcast)."""
    return bool(isclose(input, other, rtol, atol, equal_nan)._data.all())


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and the same values."""
    if input._data.shape != other._data.shape:
        return False
    return bool((input._data == other._data).all())


attach(__name__, {
    "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge, "greater": gt, "greater_equal": ge, "less": lt,
    "less_equal": le, "not_equal": ne, "maximum": maximum, "minimum": minimum, "fmax": fmax, "fmin": fmin,
    "isclose": isclose, "allclose": allclose, "equal": equal, "bitwise_and": bitwise_and, "bitwise_or": bitwise_or,
    "bitwise_xor": bitwise_xor, "bitwise_not": bitwise_not, "logical_and": logical_and, "logical_or": logical_or,
    "logical_xor": logical_xor, "logical_not": logical_not,
    "__eq__": eq, "__ne__": ne, "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
    "__and__": bitwise_and, "__rand__": reflected(bitwise_and), "__or__": bitwise_or,
    "__ror__": reflected(bitwise_or), "__xor__": bitwise_xor, "__rxor__": reflected(bitwise_xor),
    "__invert__": _invert,
})

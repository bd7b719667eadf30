"""In-place ops: version bumps, leaf checks and rebasing a tensor's history."""
from __future__ import annotations

from .. import _dtype
from .._dispatch import OpDef, apply, promoted
from ..autograd.grad_mode import STATE
from ..tensor import Tensor, _make
from ._helpers import scalar

_CATEGORY_NAMES = {0: "Bool", 1: "Long", 2: "Float"}


def check_inplace_allowed(self: Tensor) -> None:
    if STATE.enabled:
        if self._rg and self.grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        base = self._base
        if base is not None and base._rg and base.grad_fn is None:
            raise RuntimeError(
                "a view of a leaf Variable that requires grad is being used in an in-place operation."
            )


def check_cast(result: _dtype.dtype, self: Tensor) -> None:
    own = _dtype._FROM_NP[self._data.dtype]
    if result._category > own._category:
        raise RuntimeError(
            f"result type {_type_word(result)} can't be cast to the desired output type {_type_word(own)}"
        )


def _type_word(d: _dtype.dtype) -> str:
    return {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int",
            "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}[d.name]


def bump(self: Tensor) -> None:
    self._vc[0] += 1


def rebase(self: Tensor, result: Tensor) -> Tensor:
    """Write ``result`` into ``self``'s storage and make ``self`` carry result's history."""
    self._data[...] = result._data
    self._vc[0] += 1
    if result.grad_fn is not None:
        if self._base is not None:
            from .shape import rebase_view

            rebase_view(self, result)
        else:
            self.grad_fn = result.grad_fn
            self._output_nr = result._output_nr
            self._rg = True
            if self._views:
                from .shape import refresh_views

                refresh_views(self)  # its views now read the new values
    return self


def needs_record(*tensors) -> bool:
    if not STATE.enabled:
        return False
    for t in tensors:
        if isinstance(t, Tensor) and (t._rg or (t._base is not None and t._base._rg)):
            return True
    return False


def snapshot(self: Tensor) -> Tensor:
    """The pre-modification value of ``self`` with its graph edge, for ops that save their input."""
    t = _make(self._data.copy(), self._rg, self.grad_fn, self._output_nr)
    if self.grad_fn is None and self._rg:
        from ..tensor import accumulator_of

        t._acc = accumulator_of(self)
    return t


def inplace_binary(op: OpDef, self: Tensor, other, params: dict | None, fast) -> Tensor:
    """``self.op_(other)``; ``fast(a, b)`` updates the array ``a`` in place when nothing is recorded."""
    other = scalar(other)
    cast, rdt = promoted(self, other)
    check_cast(rdt, self)
    if not needs_record(self, other):
        b = other._data if isinstance(other, Tensor) else other
        if isinstance(other, Tensor) and type(b) is not type(self._data):
            from .._dispatch import device_mismatch

            raise device_mismatch(self, other, f"argument of {op.name}_")
        fast(self._data, b)
        self._vc[0] += 1
        return self
    check_inplace_allowed(self)
    src = snapshot(self) if 0 in op.save else self
    return rebase(self, apply(op, (src, other), params, cast))


def inplace_unary(op: OpDef, self: Tensor, params: dict | None = None) -> Tensor:
    if not needs_record(self):
        self._data[...] = op.array_call(self._data, **(params or {}))
        self._vc[0] += 1
        return self
    check_inplace_allowed(self)
    src = snapshot(self) if 0 in op.save else self
    return rebase(self, apply(op, (src,), params))

"""dtorch.nn.Parameter and dtorch.nn.Buffer."""
from __future__ import annotations

from .._creation import empty
from ..tensor import Tensor, _make

__all__ = ["Parameter", "Buffer"]


def _empty_data():
    return empty(0)


def set_weight_and_bias(module, weight_shape: tuple, bias_size: int | None, device=None, dtype=None) -> None:
    """``module.weight`` and ``module.bias`` (``bias_size`` values; registered as None when that is None)
    as uninitialised Parameters: the layer's ``reset_parameters`` fills them."""
    module.weight = Parameter(empty(*weight_shape, device=device, dtype=dtype))
    if bias_size is not None:
        module.bias = Parameter(empty(bias_size, device=device, dtype=dtype))
    else:
        module.register_parameter("bias", None)


class Parameter(Tensor):
    """A Tensor that a Module registers as a parameter when assigned as an attribute.

    It shares ``data``'s storage and version counter (no copy), requires grad by default,
    and ops on it return plain Tensors.
    """

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> "Parameter":
        if data is None:
            data = _empty_data()
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter(): data must be a Tensor, got {type(data).__name__}")
        p = Tensor.__new__(cls)
        p._data = data._data
        p._rg = False
        p.grad_fn = None
        p._vc = data._vc
        p.requires_grad_(requires_grad)
        return p

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass  # everything happens in __new__ (Tensor.__init__ is the legacy constructor)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo) -> "Parameter":
        if id(self) in memo:
            return memo[id(self)]
        # as torch: a fresh copy of the data, same requires_grad, no .grad
        result = type(self)(_make(self._data.copy()), self.requires_grad)
        memo[id(self)] = result
        return result


class _BufferMeta(type):
    """``isinstance(t, Buffer)`` is true for tensors made by ``Buffer(...)`` (as torch)."""

    def __instancecheck__(cls, instance) -> bool:
        if cls is Buffer:
            return isinstance(instance, Tensor) and getattr(instance, "_is_buffer", False)
        return super().__instancecheck__(instance)


class Buffer(Tensor, metaclass=_BufferMeta):
    """A Tensor that a Module registers as a buffer when assigned as an attribute.

    ``Buffer(t, persistent=False)`` returns a detached plain Tensor marked as a buffer.
    """

    def __new__(cls, data: Tensor | None = None, *, persistent: bool = True) -> Tensor:
        if data is None:
            data = _empty_data()
        t = data.detach()
        t.requires_grad_(data.requires_grad)
        t._is_buffer = True
        t.persistent = persistent
        return t

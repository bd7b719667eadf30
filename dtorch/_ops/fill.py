"""Filling tensors with values: in place (copy_, fill_, zero_) or fresh like another (new_zeros/ones/full/empty,
new_tensor)."""
from __future__ import annotations

import numpy as np

from .. import _dtype
from .._creation import _size_arg, tensor
from .._device import as_device, device_of, move_array, xp_of
from .._dispatch import apply, defop
from ..tensor import Tensor, _make
from ._helpers import attach, scalar
from ._inplace import check_inplace_allowed, needs_record, rebase
from .convert import to


# ---- copy_ / fill_ / zero_ --------------------------------------------------------------------
@defop("copy")
def _copy_k(dst, src):
    return xp_of(dst).broadcast_to(src, dst.shape).astype(dst.dtype, copy=True)


def _copy_bw(ns, ctx, g):
    return g * 0, g


_copy_k.backward(_copy_bw, "CopyBackwards")


def _check_broadcast_to(src_shape: tuple, dst_shape: tuple) -> None:
    """torch's error when ``src`` cannot be broadcast to ``dst`` (copy_)."""
    if len(src_shape) > len(dst_shape):
        raise RuntimeError(f"output with shape {list(dst_shape)} doesn't match the broadcast shape "
                           f"{list(np.broadcast_shapes(src_shape, dst_shape))}")
    for k in range(1, len(src_shape) + 1):
        s, d = src_shape[-k], dst_shape[-k]
        if s != d and s != 1:
            raise RuntimeError(f"The size of tensor a ({d}) must match the size of tensor b ({s}) at non-singleton "
                               f"dimension {len(dst_shape) - k}")


def copy_(self: Tensor, src, non_blocking: bool = False) -> Tensor:
    if not isinstance(src, Tensor):
        src = Tensor(src) if not isinstance(src, (int, float, bool, complex)) else src
    if isinstance(src, Tensor) and type(src._data) is not type(self._data):
        src_data = move_array(src._data, device_of(self._data))
    else:
        src_data = src._data if isinstance(src, Tensor) else src
    if isinstance(src, Tensor) and src._data.shape != self._data.shape:
        _check_broadcast_to(src._data.shape, self._data.shape)
    if not needs_record(self, src):
        self._data[...] = src_data
        self._vc[0] += 1
        return self
    check_inplace_allowed(self)
    if isinstance(src, Tensor) and type(src._data) is not type(self._data):
        src = to(src, self.device)
    return rebase(self, apply(_copy_k, (self, src)))


@defop("fill")
def _fill_k(a, value):
    return xp_of(a).full(a.shape, value, a.dtype)


def _fill_bw(ns, ctx, g):
    return (g * 0,)


_fill_k.backward(_fill_bw, "FillBackward2")
_zero_k = defop("zero")(lambda a: xp_of(a).zeros_like(a))
_zero_k.backward(_fill_bw, "ZeroBackward0")


@defop("fill_tensor")
def _fill_tensor_k(a, v):
    return xp_of(a).broadcast_to(v, a.shape).astype(a.dtype)


def _fill_tensor_bw(ns, ctx, g):
    return g * 0, ns.sum(g)


_fill_tensor_k.backward(_fill_tensor_bw, "FillBackward3")


def fill_(self: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        if value._data.ndim:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                               f"{value._data.ndim} dimensions.")
        if not needs_record(self, value):
            self._data[...] = value._data
            self._vc[0] += 1
            return self
        check_inplace_allowed(self)
        return rebase(self, apply(_fill_tensor_k, (self, value)))
    value = scalar(value)
    if not needs_record(self):
        self._data.fill(value)
        self._vc[0] += 1
        return self
    check_inplace_allowed(self)
    return rebase(self, apply(_fill_k, (self,), {"value": value}))


def zero_(self: Tensor) -> Tensor:
    if not needs_record(self):
        self._data.fill(0)
        self._vc[0] += 1
        return self
    check_inplace_allowed(self)
    return rebase(self, apply(_zero_k, (self,)))


# ---- new_* constructors ----------------------------------------------------------------------
def _new(self: Tensor, fn: str, size, fill=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    dt = _dtype.to_dtype(dtype).np if dtype is not None else self._data.dtype
    xp = xp_of(self._data) if device is None else None
    shape = _size_arg(size)
    if xp is None:
        arr = np.full(shape, 0 if fill is None else fill, dt)
        arr = move_array(arr, as_device(device))
    elif fn == "empty":
        arr = xp.empty(shape, dt)
    else:
        arr = xp.full(shape, fill, dt)
    return _make(arr, requires_grad)


def new_zeros(self: Tensor, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new(self, "full", size, 0, dtype, device, requires_grad)


def new_ones(self: Tensor, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new(self, "full", size, 1, dtype, device, requires_grad)


def new_empty(self: Tensor, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new(self, "empty", size, None, dtype, device, requires_grad)


def new_full(self: Tensor, size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new(self, "full", (size,), fill_value, dtype, device, requires_grad)


def new_tensor(self: Tensor, data, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return tensor(data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


attach(__name__, {
    "copy_": copy_, "fill_": fill_, "zero_": zero_, "new_zeros": new_zeros, "new_ones": new_ones,
    "new_empty": new_empty, "new_full": new_full, "new_tensor": new_tensor,
})

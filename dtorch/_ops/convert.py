"""Copies and conversions: to(dtype/device), clone, contiguous, copy_, fill_, new_*."""
from __future__ import annotations

import numpy as np

from .. import _dtype
from .._device import as_device, device, device_of, move_array
from .._dispatch import apply, defop
from ..tensor import Tensor, _make
from ._helpers import method, scalar, xp_of
from ._inplace import check_inplace_allowed, needs_record, rebase

__all__ = [
    "clone",
]


# ---- dtype / device copies ------------------------------------------------------------------
@defop("_to_copy")
def _to_copy(a, dtype=None, device=None):
    if device is not None:
        a = move_array(a, device)
    if dtype is not None and a.dtype != dtype:
        a = a.astype(dtype)
    return a


@_to_copy.backward
def _to_copy_bw(ns, ctx, g):
    return (g,)  # the engine casts back to the input's dtype; device moves below


def to_dtype(t: Tensor, dt: _dtype.dtype, copy: bool = False) -> Tensor:
    if t._data.dtype == dt.np and not copy:
        return t
    return apply(_to_copy, (t,), {"dtype": dt.np})


@defop("_to_device")
def _to_device(a, device, src=None):
    return move_array(a, device)


@_to_device.backward
def _to_device_bw(ns, ctx, g):
    src = ctx._args["src"]
    if isinstance(g, Tensor):
        return (g.to(src),)
    return (move_array(g, src),)


def _parse_to(args, kwargs):
    dev = dt = None
    for a in args:
        if isinstance(a, _dtype.dtype):
            dt = a
        elif isinstance(a, (str, device, int)):
            dev = as_device(a)
        elif isinstance(a, Tensor):
            dt, dev = a.dtype, a.device
    if "dtype" in kwargs and kwargs["dtype"] is not None:
        dt = _dtype.to_dtype(kwargs["dtype"])
    if "device" in kwargs and kwargs["device"] is not None:
        dev = as_device(kwargs["device"])
    return dev, dt, kwargs.get("copy", False)


@method("to")
def to(self: Tensor, *args, **kwargs) -> Tensor:
    """``t.to(dtype)``, ``t.to(device)``, ``t.to(device, dtype)``, ``t.to(other)``; no copy when unchanged."""
    dev, dt, copy = _parse_to(args, kwargs)
    out = self
    if dev is not None and (dev.type != device_of(self._data).type or
                            (dev.index is not None and dev != device_of(self._data))):
        out = apply(_to_device, (out,), {"device": dev, "src": device_of(self._data)})
    if dt is not None and out._data.dtype != dt.np:
        out = apply(_to_copy, (out,), {"dtype": dt.np})
    if copy and out is self:
        out = clone(self)
    return out


def _dtype_method(name: str, dt: _dtype.dtype):
    def conv(self: Tensor, memory_format=None) -> Tensor:
        return to_dtype(self, dt)

    conv.__name__ = name
    setattr(Tensor, name, conv)


for _n, _d in [("float", _dtype.float32), ("double", _dtype.float64), ("half", _dtype.float16),
               ("long", _dtype.int64), ("int", _dtype.int32), ("short", _dtype.int16), ("char", _dtype.int8),
               ("byte", _dtype.uint8), ("bool", _dtype.bool_)]:
    _dtype_method(_n, _d)


@method("type")
def type_(self: Tensor, dtype=None):
    if dtype is None:
        from .._dispatch import _type_name

        return _type_name(self)
    return to_dtype(self, _dtype.to_dtype(dtype))


@method("type_as")
def type_as(self: Tensor, other: Tensor) -> Tensor:
    return to(self, other.dtype)


@method("cpu")
def cpu(self: Tensor, memory_format=None) -> Tensor:
    return to(self, "cpu")


@method("cuda")
def cuda(self: Tensor, device=None, non_blocking: bool = False, memory_format=None) -> Tensor:
    if device is None:
        from .. import cuda as _cuda

        device = _cuda.current_device()
    if isinstance(device, int):
        device = f"cuda:{device}"
    return to(self, device)


def view_as_dtype(self: Tensor, dt) -> Tensor:
    """``t.view(dtype)``: reinterpret the bytes (not differentiable)."""
    dt = _dtype.to_dtype(dt)
    out = _make(self._data.view(dt.np))
    out._vc = self._vc
    out._base = self._base if self._base is not None else self
    return out


# ---- clone / contiguous ---------------------------------------------------------------------
@defop("clone")
def _clone(a, contiguous=False):
    if contiguous or 0 in a.strides:
        return a.copy()
    return a.copy(order="K")  # torch's preserve_format: a dense layout keeps its strides (t().clone())


_clone.backward(lambda ns, ctx, g: (g,))


@method("clone")
def clone(input: Tensor, *, memory_format=None) -> Tensor:
    if input._data.flags.c_contiguous:
        return apply(_clone, (input,))
    return apply(_clone, (input,), {"contiguous": memory_format is not None and memory_format != "preserve"})


@method("contiguous")
def contiguous(self: Tensor, memory_format=None) -> Tensor:
    if self._data.flags.c_contiguous:
        return self
    return apply(_clone, (self,), {"contiguous": True})


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


@method("copy_")
def copy_(self: Tensor, src, non_blocking: bool = False) -> Tensor:
    if not isinstance(src, Tensor):
        src = Tensor(src) if not isinstance(src, (int, float, bool)) else src
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


@method("fill_")
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


@method("zero_")
def zero_(self: Tensor) -> Tensor:
    if not needs_record(self):
        self._data.fill(0)
        self._vc[0] += 1
        return self
    check_inplace_allowed(self)
    return rebase(self, apply(_zero_k, (self,)))


# ---- new_* constructors ----------------------------------------------------------------------
def _new(self: Tensor, fn: str, size, fill=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    from .._creation import _size_arg

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
    from .._creation import tensor

    return tensor(data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


Tensor.new_zeros, Tensor.new_ones, Tensor.new_empty = new_zeros, new_ones, new_empty
Tensor.new_full, Tensor.new_tensor = new_full, new_tensor

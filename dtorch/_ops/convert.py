"""Conversions: to(dtype/device), type, float()/long()/..., cpu(), cuda(); clone and contiguous."""
from __future__ import annotations

from .. import _dtype
from .._device import as_device, device, device_of, move_array
from .._dispatch import _type_name, apply, defop
from ..tensor import Tensor
from ._helpers import attach

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


def float_input(x: Tensor) -> Tensor:
    """Integer inputs of floating functions (exp, logsumexp of an int tensor) become the default float."""
    if x._data.dtype.kind in "biu":
        return to_dtype(x, _dtype.get_default_dtype())
    return x


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
    return conv


_DTYPE_METHODS = {n: _dtype_method(n, d) for n, d in [
    ("float", _dtype.float32), ("double", _dtype.float64), ("half", _dtype.float16), ("long", _dtype.int64),
    ("int", _dtype.int32), ("short", _dtype.int16), ("char", _dtype.int8), ("byte", _dtype.uint8),
    ("bool", _dtype.bool_)]}


def type_(self: Tensor, dtype=None):
    if dtype is None:
        return _type_name(self)
    return to_dtype(self, _dtype.to_dtype(dtype))


def type_as(self: Tensor, other: Tensor) -> Tensor:
    return to(self, other.dtype)


def cpu(self: Tensor, memory_format=None) -> Tensor:
    return to(self, "cpu")


def cuda(self: Tensor, device=None, non_blocking: bool = False, memory_format=None) -> Tensor:
    if device is None:
        from .. import cuda as _cuda

        device = _cuda.current_device()
    if isinstance(device, int):
        device = f"cuda:{device}"
    return to(self, device)


# ---- clone / contiguous ---------------------------------------------------------------------
@defop("clone")
def _clone(a, contiguous=False):
    if contiguous or 0 in a.strides:
        return a.copy()
    return a.copy(order="K")  # torch's preserve_format: a dense layout keeps its strides (t().clone())


_clone.backward(lambda ns, ctx, g: (g,))


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    if input._data.flags.c_contiguous:
        return apply(_clone, (input,))
    return apply(_clone, (input,), {"contiguous": memory_format is not None and memory_format != "preserve"})


def contiguous(self: Tensor, memory_format=None) -> Tensor:
    if self._data.flags.c_contiguous:
        return self
    return apply(_clone, (self,), {"contiguous": True})


attach(__name__, {
    "to": to, "type": type_, "type_as": type_as, "cpu": cpu, "cuda": cuda, **_DTYPE_METHODS,
    "clone": clone, "contiguous": contiguous,
})

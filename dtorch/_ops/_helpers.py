"""What op modules share: attaching Tensor methods, scalar/dim/shape arguments, broadcast shapes."""
from __future__ import annotations

import numbers

import numpy as np

from .._device import xp_of
from ..tensor import Tensor, _wrap_dim

_PY_SCALARS = (int, float, bool)
_ATTACHED: dict[str, str] = {}  # Tensor method name -> module that attached it


def attach(module: str, methods: dict) -> None:
    """Set ``methods`` (name -> function or property) on Tensor; every name is attached once, by one module."""
    for name, fn in methods.items():
        if name in _ATTACHED:
            raise RuntimeError(f"Tensor.{name} is attached by both {_ATTACHED[name]} and {module}")
        _ATTACHED[name] = module
        setattr(Tensor, name, fn)


def scalar(x):
    """A Python number for numpy scalars and the like; Tensors pass through."""
    if isinstance(x, Tensor) or type(x) in _PY_SCALARS:
        return x
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, numbers.Number):
        return x
    raise TypeError(f"expected a Tensor or a number, got {type(x).__name__}")


_INT_RANGES: dict = {}


def wrap_int(x: int, dt: np.dtype) -> int:
    """A Python int outside an integer dtype's range wraps around, as torch's cast to that dtype does."""
    r = _INT_RANGES.get(dt)
    if r is None:
        info = np.iinfo(dt)
        r = _INT_RANGES[dt] = (int(info.min), int(info.max), 1 << info.bits)
    lo, hi, span = r
    if lo <= x <= hi:
        return x
    return (x - lo) % span + lo


def int_scalars(a, b):
    """Wrap a Python int operand into the range of the other operand's integer dtype (uint8 + -3)."""
    if type(b) is int and isinstance(a, Tensor) and a._data.dtype.kind in "iu":
        b = wrap_int(b, a._data.dtype)
    elif type(a) is int and isinstance(b, Tensor) and b._data.dtype.kind in "iu":
        a = wrap_int(a, b._data.dtype)
    return a, b


def int_tuple(args) -> tuple:
    """``f(1, 2)``, ``f((1, 2))`` and ``f(1)`` all give ``(1, 2)`` / ``(1,)`` (shapes, dims, repeats)."""
    if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
        return tuple(int(a) for a in args[0])
    return tuple(int(a) for a in args)


def unique_dims(dims, ndim: int) -> tuple:
    """``dims`` wrapped to non-negative ints, in their order; torch's error for a repeated one."""
    out: list = []
    for d in dims:
        w = _wrap_dim(int(d), ndim)
        if w in out:
            raise RuntimeError(f"dim {w} appears multiple times in the list of dims")
        out.append(w)
    return tuple(out)


def dims_tuple(dim, ndim: int):
    """Normalise dim (None, int or sequence) to None or a sorted tuple of non-negative ints."""
    if dim is None:
        return None
    if isinstance(dim, (int, np.integer)):
        return (_wrap_dim(int(dim), ndim),)
    return tuple(sorted(unique_dims(dim, ndim))) or None


def index_along(dim: int, index) -> tuple:
    """A basic/advanced index that applies ``index`` to dimension ``dim`` and takes everything before it."""
    return (slice(None),) * dim + (index,)


def coords_along(index, dim: int) -> tuple:
    """gather's index as a full coordinate tuple: ``a[coords_along(i, d)]`` is ``gather(a, d, i)``."""
    xp = xp_of(index)
    nd = index.ndim
    out = []
    for k, n in enumerate(index.shape):
        out.append(index if k == dim else xp.arange(n).reshape((1,) * k + (n,) + (1,) * (nd - k - 1)))
    return tuple(out)


def broadcast_shape(*shapes) -> tuple:
    """The shape ``shapes`` broadcast to, with torch's error message."""
    out: list = []
    for shp in shapes:
        shp = tuple(shp)
        if len(shp) > len(out):
            out = [1] * (len(shp) - len(out)) + out
        off = len(out) - len(shp)
        for i, s in enumerate(shp):
            cur = out[off + i]
            if cur != s and cur != 1 and s != 1:
                raise RuntimeError(f"The size of tensor a ({cur}) must match the size of tensor b ({s}) at "
                                   f"non-singleton dimension {off + i}")
            if cur == 1:
                out[off + i] = s
    return tuple(out)

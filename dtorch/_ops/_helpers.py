"""Small helpers shared by op modules: method attachment, scalars, dims."""
from __future__ import annotations

import numbers
from typing import Callable

import numpy as np

from ..tensor import Tensor, _wrap_dim

_PY_SCALARS = (int, float, bool)


def method(*names: str) -> Callable[[Callable], Callable]:
    """Attach a function as Tensor method(s): ``@method('add', '__add__')``."""

    def deco(fn: Callable) -> Callable:
        for n in names:
            setattr(Tensor, n, fn)
        return fn

    return deco


def scalar(x):
    """A Python number for numpy scalars and the like; Tensors pass through."""
    if isinstance(x, Tensor) or type(x) in _PY_SCALARS:
        return x
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, numbers.Number):
        return x
    raise TypeError(f"expected a Tensor or a number, got {type(x).__name__}")


def wrap_dim(dim: int, ndim: int) -> int:
    return _wrap_dim(dim, ndim)


def dims_tuple(dim, ndim: int):
    """Normalise dim (None, int or sequence) to None or a sorted tuple of non-negative ints."""
    if dim is None:
        return None
    if isinstance(dim, (int, np.integer)):
        return (_wrap_dim(int(dim), ndim),)
    dims = tuple(_wrap_dim(int(d), ndim) for d in dim)
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"dim {dims} appears multiple times in the list of dims")
    return tuple(sorted(dims)) if dims else None


def xp_of(a):
    if type(a) is np.ndarray or isinstance(a, np.generic):
        return np
    from .._device import cupy_module

    return cupy_module()

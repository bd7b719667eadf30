"""dtorch.autocast: run eligible ops in a lower precision inside a region, as torch.autocast.

The dispatcher asks :func:`cast_inputs` for every op whose name is in the active device
type's policy (``policy.py``); the casts are ordinary recorded ``to`` ops, so gradients
come back in the parameters' own dtypes.
"""
from __future__ import annotations

import functools

from .. import _dtype
from .._dispatch import AUTOCAST, REGISTRY
from . import policy

_DEFAULT_DTYPE = {"cuda": _dtype.float16, "cpu": _dtype.float16}
_installed: set[str] = set()


def _install(device_type: str) -> None:
    """Tag the registered ops with this device type's policy (once)."""
    if device_type in _installed:
        return
    for name, kind in policy.POLICIES[device_type].items():
        op = REGISTRY.get(name)
        if op is not None:
            op.amp[device_type] = kind
    _installed.add(device_type)


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    return AUTOCAST.dtypes.get(device_type) is not None


def get_autocast_dtype(device_type: str) -> _dtype.dtype:
    dt = AUTOCAST.dtypes.get(device_type)
    return _dtype.from_numpy_dtype(dt) if dt is not None else _DEFAULT_DTYPE[device_type]


class autocast:
    """``with dtorch.autocast("cuda"): ...`` (or as a decorator). dtype: float16 (default)."""

    def __init__(self, device_type: str, dtype: _dtype.dtype | None = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if device_type not in policy.POLICIES:
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
        dtype = _DEFAULT_DTYPE[device_type] if dtype is None else _dtype.to_dtype(dtype)
        if not dtype.is_floating_point or dtype is _dtype.float64:
            raise RuntimeError(f"In {device_type} autocast, but the target dtype is not supported: {dtype}. "
                               "dtorch's autocast supports float16 (and float32 to disable it).")
        self.device_type = device_type
        self.fast_dtype = dtype
        self.enabled = enabled

    def __enter__(self):
        _install(self.device_type)
        self.prev = AUTOCAST.dtypes.get(self.device_type)
        AUTOCAST.dtypes[self.device_type] = self.fast_dtype.np if self.enabled else None
        AUTOCAST.refresh()
        return self

    def __exit__(self, *exc) -> None:
        AUTOCAST.dtypes[self.device_type] = self.prev
        AUTOCAST.refresh()

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self.enabled):
                return fn(*args, **kwargs)

        return wrapper

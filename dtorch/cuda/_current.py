"""The current CUDA device index (``dtorch.cuda.set_device`` / ``current_device``)."""
from __future__ import annotations

from .._device import as_device, require_cupy

_current = [0]


def current_device() -> int:
    require_cupy()
    return _current[0]


def set_device(device) -> None:
    idx = device if isinstance(device, int) else as_device(device).index or 0
    require_cupy().cuda.Device(idx).use()
    _current[0] = idx

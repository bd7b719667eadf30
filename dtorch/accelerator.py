"""dtorch.accelerator: torch's device-agnostic accelerator API. dtorch's one accelerator is CUDA (CuPy).

Without CuPy or a GPU there is none, as in torch's CPU build: ``is_available()`` is False,
``current_accelerator()`` is None and the calls that need a device raise torch's RuntimeError.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

from . import cuda
from ._device import as_device, cupy_module, device

__all__ = [
    "current_accelerator", "current_device_idx", "current_device_index", "current_stream", "device_count",
    "device_index", "empty_cache", "is_available", "max_memory_allocated", "memory_allocated",
    "memory_reserved", "memory_stats", "reset_peak_memory_stats", "set_device_idx", "set_device_index",
    "synchronize",
]

_NONE_AVAILABLE = "Cannot access accelerator device when none is available."


def is_available() -> bool:
    """Whether a GPU and CuPy are there to run on."""
    return cupy_module() is not None


def current_accelerator(check_available: bool = False) -> device | None:
    """``device(type='cuda')`` where CuPy sees a GPU, else None."""
    return device("cuda") if is_available() else None


def device_count() -> int:
    return cuda.device_count()


def _index(d: "device | str | int | None") -> int:
    """The CUDA device index that ``d`` names (None: the current one); raises without an accelerator."""
    if not is_available():
        raise RuntimeError(_NONE_AVAILABLE)
    if d is None:
        return cuda.current_device()
    if isinstance(d, int):
        return d
    d = as_device(d)
    if d.type != "cuda":
        raise ValueError(f"{d.type} doesn't match the current accelerator cuda.")
    return cuda.current_device() if d.index is None else d.index


def current_device_index() -> int:
    return _index(None)


def set_device_index(device: "device | str | int | None", /) -> None:
    if device is not None:
        cuda.set_device(_index(device))
    elif not is_available():
        raise RuntimeError(_NONE_AVAILABLE)


def current_device_idx() -> int:
    warnings.warn("Use `current_device_index` instead.", FutureWarning, stacklevel=2)
    return current_device_index()


def set_device_idx(device: "device | str | int | None", /) -> None:
    warnings.warn("Use `set_device_index` instead.", FutureWarning, stacklevel=2)
    set_device_index(device)


@contextlib.contextmanager
def device_index(device: int | None, /) -> Iterator[None]:
    """Make ``device`` the current accelerator device inside the block (None: no change)."""
    if device is None:
        yield
        return
    prev = current_device_index()
    set_device_index(device)
    try:
        yield
    finally:
        set_device_index(prev)


def synchronize(device: "device | str | int | None" = None, /) -> None:
    """Wait for all queued work on the device."""
    cuda.synchronize(_index(device))


def current_stream(device: "device | str | int | None" = None, /) -> cuda.Stream:
    return cuda.current_stream(_index(device))


def empty_cache() -> None:
    _index(None)
    cuda.empty_cache()


def memory_allocated(device_index: "device | str | int | None" = None, /) -> int:
    return cuda.memory_allocated(_index(device_index))


def max_memory_allocated(device_index: "device | str | int | None" = None, /) -> int:
    return cuda.max_memory_allocated(_index(device_index))


def memory_reserved(device_index: "device | str | int | None" = None, /) -> int:
    return cuda.memory_reserved(_index(device_index))


def memory_stats(device_index: "device | str | int | None" = None, /) -> dict:
    return cuda.memory_stats(_index(device_index))


def reset_peak_memory_stats(device_index: "device | str | int | None" = None, /) -> None:
    cuda.reset_peak_memory_stats(_index(device_index))

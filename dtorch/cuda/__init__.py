"""dtorch.cuda: device queries and memory statistics over CuPy (imported lazily)."""
from __future__ import annotations

from .._device import cupy_module

_current = [0]


def is_available() -> bool:
    return cupy_module() is not None


def _cp():
    cp = cupy_module()
    if cp is None:
        raise RuntimeError("CUDA is not available: no GPU or no cupy wheel (pip install 'dtorch[cuda12]')")
    return cp


def device_count() -> int:
    cp = cupy_module()
    return 0 if cp is None else cp.cuda.runtime.getDeviceCount()


def current_device() -> int:
    _cp()
    return _current[0]


def set_device(device) -> None:
    from .._device import as_device

    idx = device if isinstance(device, int) else as_device(device).index or 0
    _cp().cuda.Device(idx).use()
    _current[0] = idx


def synchronize(device=None) -> None:
    _cp().cuda.Device(_current[0] if device is None else device).synchronize()


def manual_seed(seed: int) -> None:
    from ..random import cuda_generator

    for i in range(max(device_count(), 1)):
        cuda_generator(i).manual_seed(seed)


manual_seed_all = manual_seed


def memory_allocated(device=None) -> int:
    return _cp().get_default_memory_pool().used_bytes() if is_available() else 0


def memory_reserved(device=None) -> int:
    return _cp().get_default_memory_pool().total_bytes() if is_available() else 0


_peak = [0]


def max_memory_allocated(device=None) -> int:
    _peak[0] = max(_peak[0], memory_allocated(device))
    return _peak[0]


def reset_peak_memory_stats(device=None) -> None:
    _peak[0] = memory_allocated(device)


def empty_cache() -> None:
    if is_available():
        _cp().get_default_memory_pool().free_all_blocks()


def get_device_name(device=None) -> str:
    cp = _cp()
    idx = _current[0] if device is None else device
    return cp.cuda.runtime.getDeviceProperties(idx)["name"].decode()

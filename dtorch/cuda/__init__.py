"""dtorch.cuda: device queries, streams and events, memory statistics and NVML readings over CuPy.

CuPy (and pynvml) are imported on first use: ``import dtorch`` works without them, and every
call that needs a GPU raises ``RuntimeError("CUDA is not available: ...")`` when there is none.
Fused kernels live in ``kernels/`` (sources) and ``fused/`` (launchers registered on the ops).
"""
from __future__ import annotations

from .._device import cupy_module, require_cupy
from ..random import cuda_generator
from ._current import _current, current_device, set_device  # noqa: F401
from . import device_info as _device_info
from .device_info import (  # noqa: F401
    OutOfMemoryError, get_arch_list, get_device_capability, get_device_properties, init, is_initialized,
    mem_get_info,
)
from .memory import (  # noqa: F401
    empty_cache,
    max_memory_allocated,
    memory_allocated,
    memory_reserved,
    memory_stats,
    memory_summary,
    reset_peak_memory_stats,
)
from .nvml import clock_rate, device_memory_used, memory_usage, power_draw, temperature, utilization  # noqa: F401
from .streams import Event, Stream, current_stream, default_stream, stream  # noqa: F401


def is_available() -> bool:
    return cupy_module() is not None


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """Whether the current GPU computes in bfloat16 (compute capability 8.0 or newer); False without a GPU."""
    cp = cupy_module()
    if cp is None:
        return False
    major = int(cp.cuda.runtime.getDeviceProperties(_current[0])["major"])
    return major >= 8 or including_emulation


def device_count() -> int:
    cp = cupy_module()
    return 0 if cp is None else cp.cuda.runtime.getDeviceCount()


def synchronize(device=None) -> None:
    """Wait for every stream on the device to finish its queued work."""
    require_cupy().cuda.Device(_current[0] if device is None else device).synchronize()


def manual_seed(seed: int) -> None:
    for i in range(max(device_count(), 1)):
        cuda_generator(i).manual_seed(seed)


manual_seed_all = manual_seed


def get_device_name(device=None) -> str:
    cp = require_cupy()
    idx = _current[0] if device is None else device
    return cp.cuda.runtime.getDeviceProperties(idx)["name"].decode()


globals()["device"] = _device_info.device  # torch.cuda.device (functions above take a `device` argument)

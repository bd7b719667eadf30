"""GPU readings through NVML (pynvml, imported on first use): utilization, memory, temperature, power, clock."""
from __future__ import annotations

from .._device import as_device, require_cupy
from ._current import current_device

_nvml = [None]


def _handle(device):
    require_cupy()
    if _nvml[0] is None:
        try:
            import pynvml
        except ImportError as e:
            raise ModuleNotFoundError("pynvml does not seem to be installed (pip install nvidia-ml-py)") from e
        pynvml.nvmlInit()
        _nvml[0] = pynvml
    index = current_device() if device is None else _index(device)
    return _nvml[0], _nvml[0].nvmlDeviceGetHandleByIndex(index)


def _index(device) -> int:
    if isinstance(device, int):
        return device
    return as_device(device).index or 0


def utilization(device=None) -> int:
    """Percent of the last sample period during which a kernel ran on the GPU."""
    nv, h = _handle(device)
    return int(nv.nvmlDeviceGetUtilizationRates(h).gpu)


def memory_usage(device=None) -> int:
    """Percent of the last sample period during which device memory was read or written."""
    nv, h = _handle(device)
    return int(nv.nvmlDeviceGetUtilizationRates(h).memory)


def temperature(device=None) -> int:
    """GPU temperature in degrees Celsius."""
    nv, h = _handle(device)
    return int(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))


def power_draw(device=None) -> int:
    """Power draw in milliwatts."""
    nv, h = _handle(device)
    return int(nv.nvmlDeviceGetPowerUsage(h))


def clock_rate(device=None) -> int:
    """SM clock in MHz."""
    nv, h = _handle(device)
    return int(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM))


def device_memory_used(device=None) -> int:
    """Bytes used on the device by every process (NVML's view, not only dtorch's pool)."""
    nv, h = _handle(device)
    return int(nv.nvmlDeviceGetMemoryInfo(h).used)

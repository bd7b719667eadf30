"""Device queries programs make before training: capability, properties, free memory, architectures, and the
``dtorch.cuda.device`` context manager. Without a GPU each raises ``require_cupy``'s RuntimeError."""
from __future__ import annotations

from dataclasses import dataclass

from .._device import as_device, require_cupy
from ._current import _current, set_device

__all__ = ["OutOfMemoryError", "device", "get_arch_list", "get_device_capability", "get_device_properties", "init",
           "is_initialized", "mem_get_info"]


class OutOfMemoryError(RuntimeError):
    """torch.cuda.OutOfMemoryError (torch.OutOfMemoryError): an allocation on the GPU failed."""


@dataclass(frozen=True)
class _CudaDeviceProperties:
    name: str
    major: int
    minor: int
    total_memory: int
    multi_processor_count: int

    def __repr__(self) -> str:
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
                f"total_memory={self.total_memory // (1024 * 1024)}MB, "
                f"multi_processor_count={self.multi_processor_count})")


def _index(dev) -> int:
    if dev is None:
        return _current[0]
    return dev if isinstance(dev, int) else (as_device(dev).index or 0)


def get_device_properties(device=None) -> _CudaDeviceProperties:
    p = require_cupy().cuda.runtime.getDeviceProperties(_index(device))
    return _CudaDeviceProperties(p["name"].decode(), int(p["major"]), int(p["minor"]), int(p["totalGlobalMem"]),
                                 int(p["multiProcessorCount"]))


def get_device_capability(device=None) -> tuple[int, int]:
    props = get_device_properties(device)
    return props.major, props.minor


def mem_get_info(device=None) -> tuple[int, int]:
    """(free, total) bytes on the device, as the driver reports them."""
    cp = require_cupy()
    with cp.cuda.Device(_index(device)):
        free, total = cp.cuda.runtime.memGetInfo()
    return int(free), int(total)


def get_arch_list() -> list[str]:
    """The architectures kernels are compiled for: CuPy compiles at run time for the present GPU."""
    cp = require_cupy()
    major, minor = get_device_capability()
    return [f"sm_{major}{minor}"] if cp is not None else []


def is_initialized() -> bool:
    try:
        require_cupy()
    except RuntimeError:
        return False
    return True


def init() -> None:
    require_cupy()


class device:
    """Context manager making ``device`` current inside the block (torch.cuda.device)."""

    def __init__(self, device) -> None:
        self.idx = -1 if device is None else _index(device)
        self.prev_idx = -1

    def __enter__(self) -> "device":
        if self.idx >= 0:
            self.prev_idx = _current[0]
            set_device(self.idx)
        return self

    def __exit__(self, *exc) -> None:
        if self.prev_idx >= 0:
            set_device(self.prev_idx)

"""GPU memory and utilisation for the log lines, read with pynvml when it and a GPU are present."""
from __future__ import annotations

from collections.abc import Callable


def reader(index: int) -> Callable[[], dict] | None:
    """A function returning ``{"gpu_mem_gb", "gpu_mem_total_gb", "gpu_util"}`` for GPU ``index``,
    or None where pynvml or the GPU is missing (CPU runs: nothing is logged)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # no nvidia-ml-py, no driver, or no such device
        return None

    def read() -> dict:
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
        return {"gpu_mem_gb": round(mem.used / 2 ** 30, 2), "gpu_mem_total_gb": round(mem.total / 2 ** 30, 2),
                "gpu_util": util.gpu}

    return read


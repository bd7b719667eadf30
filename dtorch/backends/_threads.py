"""set_num_threads / get_num_threads: the thread pools of the BLAS and OpenMP libraries numpy loaded.

dtorch's CPU ops run in numpy, whose matmuls and reductions use the BLAS library's threads;
threadpoolctl finds the libraries loaded in the process and sets or reads their pools.
"""
from __future__ import annotations

import operator
import os

from threadpoolctl import ThreadpoolController

__all__ = ["get_num_threads", "set_num_threads"]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in the BLAS/OpenMP pools from now on."""
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise RuntimeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    n = operator.index(n)
    if n <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    ThreadpoolController().limit(limits=n)


def get_num_threads() -> int:
    """The threads the BLAS/OpenMP pools use (the CPU count where no such library is loaded)."""
    counts = [lib.num_threads for lib in ThreadpoolController().lib_controllers]
    return max(counts) if counts else os.cpu_count() or 1

"""Buffers handed to MPI: zero-copy for contiguous host tensors, staged otherwise.

A staged buffer is written back into the caller's tensor when the collective
completes, so results always land in the tensor the user passed (non-contiguous
views, CUDA tensors without CUDA-aware MPI, float16 which MPI has no type for).
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from ._mpi import mpi_dtype


class Staged:
    __slots__ = ("tensor", "arr", "mpitype", "writeback", "view_back")

    def __init__(self, t: Tensor, reduce: bool = False) -> None:
        if not isinstance(t, Tensor):
            raise TypeError("Invalid function argument. Expected parameter `tensor` of type dtorch.Tensor, "
                            f"got {type(t).__name__}")
        data = t._data
        on_gpu = type(data) is not np.ndarray
        host = data.get() if on_gpu else data
        self.view_back = None
        copied = on_gpu
        if not host.flags.c_contiguous:
            host = np.ascontiguousarray(host)
            copied = True
        if host.dtype == np.float16:
            if reduce:
                host = host.astype(np.float32)  # MPI has no half type: reduce in float32
                copied = True
            else:
                host = host.view(np.uint8)   # move the bytes unchanged
                self.view_back = np.float16
        self.tensor = t
        self.arr = host
        self.mpitype = mpi_dtype(host.dtype)
        self.writeback = copied

    @property
    def spec(self) -> list:
        return [self.arr, self.mpitype]

    def finish(self) -> None:
        if not self.writeback:
            return
        arr = self.arr.view(self.view_back) if self.view_back is not None else self.arr
        data = self.tensor._data
        if type(data) is np.ndarray:
            data[...] = arr.reshape(data.shape)
        else:
            import cupy

            data[...] = cupy.asarray(arr.reshape(data.shape))


def empty_like_many(t: Tensor, n: int) -> np.ndarray:
    """A host buffer for ``n`` stacked copies of ``t`` (gather / all_gather targets)."""
    dt = np.uint8 if t._data.dtype == np.float16 else t._data.dtype
    shape = (n,) + tuple(t._data.shape) if dt != np.uint8 else (n, t._data.nbytes)
    return np.empty(shape, dt)


def write_into(t: Tensor, arr: np.ndarray) -> None:
    """Copy a host array (maybe raw float16 bytes) into the tensor ``t``."""
    data = t._data
    if data.dtype == np.float16 and arr.dtype == np.uint8:
        arr = arr.view(np.float16)
    arr = arr.reshape(data.shape)
    if type(data) is np.ndarray:
        data[...] = arr
    else:
        import cupy

        data[...] = cupy.asarray(arr)

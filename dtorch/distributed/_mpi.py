"""Lazy mpi4py import and numpy <-> MPI datatype helpers."""
from __future__ import annotations

import numpy as np

_MPI = None


def mpi():
    """The mpi4py.MPI module (imported on first use: `import dtorch` never starts MPI)."""
    global _MPI
    if _MPI is None:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise RuntimeError(
                "dtorch.distributed needs mpi4py and an MPI library: pip install 'dtorch[mpi]' "
                "(mpi4py + the mpich wheel)"
            ) from e
        _MPI = MPI
    return _MPI


def is_available() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


_DTYPES: dict = {}


def mpi_dtype(dt: np.dtype):
    """The MPI datatype of a numpy dtype (None for float16, which MPI lacks); cached."""
    if not _DTYPES:
        MPI = mpi()
        _DTYPES.update({
            np.dtype(np.float32): MPI.FLOAT, np.dtype(np.float64): MPI.DOUBLE, np.dtype(np.int8): MPI.INT8_T,
            np.dtype(np.int16): MPI.INT16_T, np.dtype(np.int32): MPI.INT32_T, np.dtype(np.int64): MPI.INT64_T,
            np.dtype(np.uint8): MPI.UINT8_T, np.dtype(np.bool_): MPI.C_BOOL,
        })
    return _DTYPES.get(dt)

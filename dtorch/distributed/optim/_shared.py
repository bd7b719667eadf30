"""An MPI shared-memory window holding ZeRO's flat parameters and one gradient row per rank.

Allocated by the node's first rank (``Win.Allocate_shared``, as the arrival board); every
rank maps the same memory, so an owner's in-place update of its parameter slice is every
rank's copy at once, and every rank can read every other's gradients.
"""
from __future__ import annotations

import numpy as np

from .._mpi import mpi


class SharedFlat:
    """``params``: the flat parameters (1-d); ``rows[r]``: rank r's flat gradients."""

    def __init__(self, node, numel: int, dtype: np.dtype) -> None:
        MPI = mpi()
        n = node.Get_size()
        itemsize = np.dtype(dtype).itemsize
        size = (1 + n) * max(numel, 1) * itemsize if node.Get_rank() == 0 else 0
        self.win = MPI.Win.Allocate_shared(size, itemsize, comm=node)
        buf, _ = self.win.Shared_query(0)
        table = np.ndarray(buffer=buf, dtype=dtype, shape=(1 + n, max(numel, 1)))[:, :numel]
        self.params = table[0]
        self.rows = table[1:]

    def free(self) -> None:
        try:
            self.win.Free()
        except Exception:  # MPI already finalised
            pass

"""DDP's intra-node allreduce through an MPI shared-memory window (``DTORCH_DDP_COMM=shm``).

Every bucket's flat buffer is a slice of this rank's *row* of a window holding one row
per rank (``Win.Allocate_shared``, as ZeRO's shared path). Backward fills the row as
usual; then one barrier (every row is complete), each rank averages its 1/world slice
of columns over all rows and writes the average into that slice of every row (the
slices are disjoint: no races), and a second barrier (every row holds the average).
No MPI data moves. Between the second barrier and the next step's first, a rank only
touches its own row, so gradients that are views of the row (``gradient_as_bucket_view``)
may be used and modified freely, as with the MPI path.

Used only where it can be: CPU (numpy) parameters of one dtype, a group of more than one
rank all on this node, and no communication hook (``Reducer`` checks the hook per step).
The barriers are dtorch's ``barrier`` (deadline, arrival board), so a rank that never
arrives is named and the job aborts like on any collective.
"""
from __future__ import annotations

import numpy as np

from ...distributed._mpi import mpi
from ...distributed.collectives import barrier
from ...tensor import _make
from ._buckets import Bucket

COMM_MODES = ("mpi", "shm")
BLOCK = 32 * 1024   # elements per pass: sum, scale and copy-out of a block stay in the L2 cache
ALIGN = 16          # slice bounds on 64-byte lines: ranks never write the same cache line


class ShmAllreduce:
    """One shared window: ``table[r]`` is rank r's flat gradient row (every bucket's buffer lives there)."""

    def __init__(self, pg, node, numel: int, dtype: np.dtype) -> None:
        MPI = mpi()
        self.pg, self.node = pg, node
        n, me = node.Get_size(), node.Get_rank()
        itemsize = np.dtype(dtype).itemsize
        size = n * max(numel, 1) * itemsize if me == 0 else 0
        self.win = MPI.Win.Allocate_shared(size, itemsize, comm=node)
        buf, _ = self.win.Shared_query(0)
        self.table = np.ndarray(buffer=buf, dtype=dtype, shape=(n, max(numel, 1)))[:, :numel]
        self.row = self.table[me]
        self.row.fill(0)  # window memory is not promised to be zeroed
        per = -(-numel // n)
        per = -(-per // ALIGN) * ALIGN
        self.lo, self.hi = min(me * per, numel), min((me + 1) * per, numel)

    def place(self, buckets: list[Bucket]) -> None:
        """Make each bucket's buffer and views slices of this rank's row (bucket order, contiguous).

        Gradients that are views of the old layout (of this row) are copied out first, so the
        caller's ``fill_slot`` can put them back into the new one without overlapping copies."""
        for b in buckets:
            for p in b.params:
                g = p._grad
                if g is not None and np.shares_memory(g._data, self.row):
                    p._grad = _make(g._data.copy())
        off = 0
        for b in buckets:
            flat = self.row[off:off + b.offsets[-1]]
            b.buffer = _make(flat)
            b.views = [flat[o:e].reshape(p._data.shape) for o, e, p in zip(b.offsets, b.offsets[1:], b.params)]
            off += b.offsets[-1]

    def average(self) -> None:
        """Every row := the mean of all rows (collective: every rank of the group calls it)."""
        barrier(group=self.pg)  # every rank's row is complete
        rows, n = self.table, self.table.shape[0]
        scale = 1.0 / n
        for s in range(self.lo, self.hi, BLOCK):
            e = min(s + BLOCK, self.hi)
            acc = rows[0, s:e]
            for r in range(1, n):  # rows[0] + rows[1] + ...: the order ZeRO's shared path uses
                np.add(acc, rows[r, s:e], out=acc)
            np.multiply(acc, scale, out=acc)
            for r in range(1, n):
                np.copyto(rows[r, s:e], acc)
        barrier(group=self.pg)  # every slice is averaged: each rank may use (and change) its row

    def free(self) -> None:
        try:
            self.win.Free()
            self.node.Free()
        except Exception:  # MPI already finalised
            pass


def make_shm_allreduce(pg, params: list) -> ShmAllreduce | None:
    """The shared window for ``params``, or None where the shm path does not apply (every rank decides alike:
    parameters are the same on all ranks, and the node split is collective)."""
    from ...distributed.optim._hier import split_nodes

    if pg.size() < 2:
        return None
    kinds = {(type(p._data), p._data.dtype) for p in params}
    if len(kinds) != 1 or next(iter(kinds))[0] is not np.ndarray:
        return None  # CUDA tensors, or several dtypes
    node = split_nodes(pg)
    if node.Get_size() != pg.size():
        node.Free()
        return None  # the group spans nodes
    return ShmAllreduce(pg, node, sum(p._data.size for p in params), params[0]._data.dtype)

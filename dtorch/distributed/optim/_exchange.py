"""How ZeRO moves data: MPI collectives, or a node's shared memory (``_hier.py``: both).

Each gives ``params`` (the flat parameter buffer the model's parameters are views of),
``grad_row`` (this rank's flat gradients, laid out like ``params``), and
``reduce_scatter(shards)`` (average every rank's ``grad_row`` into this rank's shard
gradients) and ``all_gather()`` (make every rank's updated slice everyone's).

* :class:`MPIExchange`: private buffers; ``Reduce_scatter``/``Allgatherv`` per group,
  with the group's deadline and arrival-board record like every dtorch collective.
* :class:`SharedExchange`: ``params`` and every rank's ``grad_row`` in one shared window.
  reduce-scatter = one barrier (all rows written), then each rank sums the rows of its
  slice; all-gather = one barrier (all slices updated) — no copy at all.
"""
from __future__ import annotations

import numpy as np

from .._mpi import mpi, mpi_dtype
from .._node import SharedWindow
from .._run import run
from ..collectives import barrier
from ._layout import ShardLayout


def _average(rows: list, out: np.ndarray, world: int) -> None:
    """out = (rows[0] + rows[1] + ...) * (1/world): the order and the scaling DDP's allreduce path uses."""
    if len(rows) == 1:
        np.copyto(out, rows[0])
    else:
        np.add(rows[0], rows[1], out=out)
        for r in rows[2:]:
            np.add(out, r, out=out)
    if world != 1:
        np.multiply(out, 1.0 / world, out=out)


class SharedFlat:
    """ZeRO's node window: ``params`` (the flat parameters) and ``rows[r]`` (rank r's flat gradients).
    An owner's in-place update of its parameter slice is every rank's copy at once."""

    def __init__(self, node, numel: int, dtype: np.dtype) -> None:
        n, cols = node.Get_size(), max(numel, 1)
        self.window = SharedWindow(node, (1 + n) * cols * np.dtype(dtype).itemsize)
        table = self.window.array(dtype, (1 + n, cols))[:, :numel]
        self.params = table[0]
        self.rows = table[1:]

    def free(self) -> None:
        self.window.free()


class MPIExchange:
    kind = "mpi"

    def __init__(self, pg, layout: ShardLayout) -> None:
        self.pg, self.layout = pg, layout
        self.params = np.empty(layout.numel, layout.dtype)
        self._grad_row: np.ndarray | None = None

    @property
    def grad_row(self) -> np.ndarray:
        if self._grad_row is None:  # only ZeRO-2 (gradients handed over by DDP) needs it
            self._grad_row = np.zeros(self.layout.numel, self.layout.dtype)
        return self._grad_row

    def init_params(self, values: list) -> None:
        for i, v in enumerate(values):
            self.params[self.layout.offsets[i]:self.layout.offsets[i + 1]] = v.reshape(-1)

    def before_update(self, after_reduce: bool) -> None:
        pass

    def reduce_scatter(self, shards: list[np.ndarray]) -> None:
        MPI = mpi()
        lay, pg, n = self.layout, self.pg, self.pg.size()
        row = self.grad_row
        for g, out in enumerate(shards):
            start, end = lay.group_range[g]
            counts = lay.counts(g)
            send = [row[start:end], mpi_dtype(lay.dtype)]

            def begin(send=send, out=out, counts=counts):
                return [pg.comm.Ireduce_scatter(send, [out, mpi_dtype(lay.dtype)], counts, MPI.SUM)]

            run(pg, "reduce_scatter", {"numel": end - start, "dtype": lay.dtype}, begin,
                lambda out=out: np.multiply(out, 1.0 / n, out=out) if n != 1 else None, False)

    def all_gather(self) -> None:
        MPI = mpi()
        lay, pg = self.layout, self.pg
        for g in range(len(lay.group_range)):
            start, end = lay.group_range[g]
            counts = lay.counts(g)
            displs = np.cumsum([0] + counts[:-1]).tolist()
            buf = [self.params[start:end], (counts, displs), mpi_dtype(lay.dtype)]
            run(pg, "all_gather", {"numel": end - start, "dtype": lay.dtype},
                lambda buf=buf: [pg.comm.Iallgatherv(MPI.IN_PLACE, buf)], None, False)

    def free(self) -> None:
        pass


class SharedExchange:
    kind = "shm"

    def __init__(self, pg, layout: ShardLayout, node, node_pg=None) -> None:
        self.pg, self.layout = pg, layout
        self.node = node
        self.node_pg = pg if node_pg is None else node_pg  # the ranks sharing the window: barriers' group
        self.shared = SharedFlat(node, layout.numel, layout.dtype)
        self.params = self.shared.params
        self.grad_row = self.shared.rows[node.Get_rank()]
        self.grad_row.fill(0)  # window memory is not promised to be zeroed; gradless params read it

    def init_params(self, values: list) -> None:
        """Rank 0's values win (every rank holds the same after DDP's broadcast)."""
        if self.node.Get_rank() == 0:
            MPIExchange.init_params(self, values)
        barrier(group=self.node_pg)

    def before_update(self, after_reduce: bool) -> None:
        # without ZeRO-2's barrier, a fast rank must not overwrite parameters a slow one still reads
        if not after_reduce:
            barrier(group=self.node_pg)

    def reduce_scatter(self, shards: list[np.ndarray]) -> None:
        barrier(group=self.pg)  # every rank's gradient row is complete
        rows, n = self.shared.rows, self.pg.size()
        for g, out in enumerate(shards):
            lo, hi = self.layout.mine(g)
            _average([rows[r, lo:hi] for r in range(n)], out, n)

    def all_gather(self) -> None:
        barrier(group=self.pg)  # every slice is updated: the next forward may read all of them

    def free(self) -> None:
        self.shared.free()
        try:
            self.node.Free()
        except Exception:
            pass

"""ZeRO across nodes: shared memory inside each node, MPI between nodes (two-level).

Each node keeps one shared window (parameters + its ranks' gradient rows, ``_shared.py``).
reduce-scatter: a node barrier; local rank i sums the node's rows over its chunk i (see
``_layout.py``); the ranks with local index i — one per node — ``Reduce_scatter`` that
chunk, so each ends with its sub-chunk averaged over the world. Between nodes each rank
sends 1/(ranks per node) of the gradients instead of all of them.
all-gather: the same ranks ``Allgatherv`` chunk i into their node's window, then a node
barrier. Needs the same number of ranks on every node.

``DTORCH_ZERO_RANKS_PER_NODE=k`` pretends nodes hold k consecutive ranks (``_node.split_nodes``).
"""
from __future__ import annotations

import numpy as np

from .._mpi import mpi, mpi_dtype
from .._run import run
from ..collectives import barrier
from ..process_group import new_group
from ._exchange import SharedExchange
from ._layout import ShardLayout


class HierExchange(SharedExchange):
    """SharedExchange inside the node (its window, its barriers over the node's group), MPI across."""

    kind = "hier"

    def __init__(self, pg, layout: ShardLayout, node, places) -> None:
        where, local, node_ranks = places
        layout.nest(where, local, len(node_ranks))
        me_local, _ = where[pg.rank()]
        # dtorch groups (deadlines, arrival board); every rank takes part in creating each one
        node_pg = self.cross_pg = None
        for members in node_ranks:
            g = new_group([pg.ranks[r] for r in members])
            if pg.rank() in members:
                node_pg = g
        for i in range(local):
            g = new_group([pg.ranks[r] for r, (ii, _) in enumerate(where) if ii == i])
            if i == me_local:
                self.cross_pg = g
        self.local_index = me_local
        super().__init__(pg, layout, node, node_pg)
        self._sum = np.empty(0, layout.dtype)

    def _sub_counts(self, g: int) -> list[int]:
        """Sizes of chunk ``local_index``'s sub-chunks, in the order of the cross-node group."""
        lay = self.layout
        shards = lay.shards(g)
        return [shards[r][1] - shards[r][0] for r, (i, _) in enumerate(lay.places) if i == self.local_index]

    def reduce_scatter(self, shards: list[np.ndarray]) -> None:
        MPI = mpi()
        barrier(group=self.node_pg)  # every gradient row of this node is complete
        rows, lay, world = self.shared.rows, self.layout, self.pg.size()
        for g, out in enumerate(shards):
            lo, hi = lay.local_chunk(g, self.local_index)
            if self._sum.size < hi - lo:
                self._sum = np.empty(hi - lo, lay.dtype)
            acc = self._sum[:hi - lo]
            np.copyto(acc, rows[0, lo:hi])
            for r in range(1, rows.shape[0]):
                np.add(acc, rows[r, lo:hi], out=acc)
            counts = self._sub_counts(g)
            dt = mpi_dtype(lay.dtype)
            send, recv = [acc, dt], [out, dt]
            run(self.cross_pg, "reduce_scatter", {"numel": hi - lo, "dtype": lay.dtype},
                lambda send=send, recv=recv, counts=counts: [
                    self.cross_pg.comm.Ireduce_scatter(send, recv, counts, MPI.SUM)],
                 lambda out=out: np.multiply(out, 1.0 / world, out=out), False)

    def all_gather(self) -> None:
        MPI = mpi()
        lay, cross = self.layout, self.cross_pg
        for g in range(len(lay.group_range)):
            lo, hi = lay.local_chunk(g, self.local_index)
            counts = self._sub_counts(g)
            displs = np.cumsum([0] + counts[:-1]).tolist()
            buf = [self.params[lo:hi], (counts, displs), mpi_dtype(lay.dtype)]
            run(cross, "all_gather", {"numel": hi - lo, "dtype": lay.dtype},
                lambda buf=buf: [cross.comm.Iallgatherv(MPI.IN_PLACE, buf)], None, False)
        barrier(group=self.node_pg)  # the node's window holds every chunk again

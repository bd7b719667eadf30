"""ZeRO across nodes: shared memory inside each node, MPI between nodes (two-level).

Each node keeps one shared window (parameters + its ranks' gradient rows, ``_shared.py``).
reduce-scatter: a node barrier; local rank i sums the node's rows over its chunk i (see
``_layout.py``); the ranks with local index i — one per node — ``Reduce_scatter`` that
chunk, so each ends with its sub-chunk averaged over the world. Between nodes each rank
sends 1/(ranks per node) of the gradients instead of all of them.
all-gather: the same ranks ``Allgatherv`` chunk i into their node's window, then a node
barrier. Needs the same number of ranks on every node.

``DTORCH_ZERO_RANKS_PER_NODE=k`` pretends nodes hold k consecutive ranks (for tests on one machine).
"""
from __future__ import annotations

import os

import numpy as np

from .._mpi import mpi, mpi_dtype
from ..collectives import _run, barrier
from ..process_group import new_group
from ._exchange import MPIExchange
from ._layout import ShardLayout
from ._shared import SharedFlat


def split_nodes(pg):
    """This rank's node communicator (real, or pretended through DTORCH_ZERO_RANKS_PER_NODE)."""
    MPI = mpi()
    per_node = int(os.environ.get("DTORCH_ZERO_RANKS_PER_NODE", "0"))
    if per_node > 0:
        return pg.comm.Split(pg.rank() // per_node, key=pg.rank())
    return pg.comm.Split_type(MPI.COMM_TYPE_SHARED, key=pg.rank())


def _places(pg, node):
    """(every rank's (local index, sub-chunk index), ranks per node, every node's ranks); None when
    node sizes differ. The sub-chunk index is the rank's order among the ranks of its local index —
    the order of their group, which the Reduce_scatter counts follow."""
    MPI = mpi()
    first = np.array([pg.rank()], np.int64)
    node.Allreduce(MPI.IN_PLACE, first, op=MPI.MIN)  # a node is named by its lowest rank
    mine = np.array([node.Get_rank(), node.Get_size(), first[0]], np.int64)
    every = np.empty((pg.size(), 3), np.int64)
    pg.comm.Allgather(mine, every)
    if len(set(every[:, 1].tolist())) != 1:
        return None
    local = [int(i) for i in every[:, 0]]
    places = [(i, sum(1 for q in range(r) if local[q] == i)) for r, i in enumerate(local)]
    nodes = {}
    for r, f in enumerate(every[:, 2].tolist()):
        nodes.setdefault(f, []).append(r)
    return places, int(every[0, 1]), [nodes[f] for f in sorted(nodes)]


class HierExchange:
    kind = "hier"

    def __init__(self, pg, layout: ShardLayout, node, places) -> None:
        self.pg, self.layout, self.node = pg, layout, node
        where, local, node_ranks = places
        layout.nest(where, local, len(node_ranks))
        me_local, _ = where[pg.rank()]
        # dtorch groups (deadlines, arrival board); every rank takes part in creating each one
        self.node_pg = self.cross_pg = None
        for members in node_ranks:
            g = new_group([pg.ranks[r] for r in members])
            if pg.rank() in members:
                self.node_pg = g
        for i in range(local):
            g = new_group([pg.ranks[r] for r, (ii, _) in enumerate(where) if ii == i])
            if i == me_local:
                self.cross_pg = g
        self.local_index = me_local
        self.shared = SharedFlat(node, layout.numel, layout.dtype)
        self.params = self.shared.params
        self.grad_row = self.shared.rows[node.Get_rank()]
        self.grad_row.fill(0)
        self._sum = np.empty(0, layout.dtype)

    def init_params(self, values: list) -> None:
        if self.node.Get_rank() == 0:
            MPIExchange.init_params(self, values)
        barrier(group=self.node_pg)

    def before_update(self, after_reduce: bool) -> None:
        if not after_reduce:
            barrier(group=self.node_pg)

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
            _run(self.cross_pg, "reduce_scatter", {"numel": hi - lo, "dtype": lay.dtype},
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
            _run(cross, "all_gather", {"numel": hi - lo, "dtype": lay.dtype},
                 lambda buf=buf: [cross.comm.Iallgatherv(MPI.IN_PLACE, buf)], None, False)
        barrier(group=self.node_pg)  # the node's window holds every chunk again

    def free(self) -> None:
        self.shared.free()

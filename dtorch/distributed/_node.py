"""What the ranks of one node share: the node communicator, its layout, and MPI shared-memory windows.

Three users map a window: the arrival board (``arrivals.py``), ZeRO's flat parameters and gradient
rows (``optim/_exchange.py``) and DDP's gradient averaging (``nn/parallel/_shm_allreduce.py``).
"""
from __future__ import annotations

import os

import numpy as np

from ._mpi import mpi


def split_node(comm, key: int):
    """The communicator of ``comm``'s ranks on this node (``MPI_COMM_TYPE_SHARED``), ordered by ``key``."""
    return comm.Split_type(mpi().COMM_TYPE_SHARED, key=key)


def split_nodes(pg):
    """This rank's node communicator in group ``pg``: real, or pretended through DTORCH_ZERO_RANKS_PER_NODE=k
    (nodes of k consecutive ranks, for tests of the two-level paths on one machine)."""
    per_node = int(os.environ.get("DTORCH_ZERO_RANKS_PER_NODE", "0"))
    if per_node > 0:
        return pg.comm.Split(pg.rank() // per_node, key=pg.rank())
    return split_node(pg.comm, pg.rank())


def node_places(pg, node):
    """(every rank's (local index, sub-chunk index), ranks per node, every node's ranks); None when
    node sizes differ. The sub-chunk index is the rank's order among the ranks of its local index —
    the order of their group, which ZeRO's Reduce_scatter counts follow."""
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


class SharedWindow:
    """``nbytes`` of memory that every rank of ``node`` maps (``Win.Allocate_shared`` by the node's rank 0;
    not promised to be zeroed). A collective call on ``node``."""

    def __init__(self, node, nbytes: int) -> None:
        self.win = mpi().Win.Allocate_shared(nbytes if node.Get_rank() == 0 else 0, 1, comm=node)
        buf, _ = self.win.Shared_query(0)
        self.mem = np.ndarray(buffer=buf, dtype=np.uint8, shape=(nbytes,))

    def array(self, dtype, shape: tuple, offset: int = 0) -> np.ndarray:
        """The window's bytes from ``offset`` as an array of ``dtype`` and ``shape``."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        return self.mem[offset:offset + nbytes].view(dtype).reshape(shape)

    def free(self) -> None:
        try:
            self.win.Free()
        except Exception:  # MPI already finalised
            pass

"""Arrival board: which collective each rank on this node has entered.

Every rank writes (sequence number, op code) of the collective it enters into its row
of an MPI shared-memory window (one store, no communication). A rank whose wait
expires reads the other rows to say which ranks have not arrived — even when those
ranks are busy computing or stuck outside MPI.

A second small table says how each rank of the node lives: its pid, and whether it is
running, leaving (with its exit status) or done (``destroy_process_group``), and whether
its leaving was already reported (``leaving.py`` writes and reads it), and a robust lock per rank that
the rank holds while it lives (``_lifelock``: a peer waiting on it wakes as the rank dies).
"""
from __future__ import annotations

import os

import numpy as np

from . import _lifelock
from ._node import SharedWindow, split_node

MAX_GROUPS = 64
OP_CODES = ["?", "all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter",
            "reduce_scatter_tensor", "gather", "scatter", "all_to_all", "all_to_all_single", "barrier",
            "broadcast_object_list", "all_gather_object", "gather_object", "detail_check", "ddp_shm_average"]
_CODE = {name: i for i, name in enumerate(OP_CODES)}
RUNNING, LEAVING, DONE = 0, 1, 2  # life states
PID, STATE, STATUS, REPORTED = range(4)  # life columns


class ArrivalBoard:
    def __init__(self, world) -> None:
        self.node = split_node(world, world.Get_rank())
        self.local_rank = self.node.Get_rank()
        n = self.node.Get_size()
        self.window = SharedWindow(self.node, n * ((MAX_GROUPS * 2 + 4) * 8 + _lifelock.SIZE))
        self.table = self.window.array(np.int64, (n, MAX_GROUPS, 2))
        self.life = self.window.array(np.int64, (n, 4), offset=self.table.nbytes)
        self.locks = self.window.array(np.uint8, (n, _lifelock.SIZE), offset=self.table.nbytes + self.life.nbytes)
        self.has_locks = _lifelock.available()  # and, once taken below, this rank still holds its own
        if self.local_rank == 0:
            self.table[...] = 0
            self.life[...] = 0
        self.node.Barrier()
        self.mine = self.table[self.local_rank]
        self.life[self.local_rank, PID] = os.getpid()  # the Allgather below orders it before any reader
        if self.has_locks:  # held by the thread that starts the group, before any peer waits on it
            _lifelock.init_and_lock(self.locks[self.local_rank].ctypes.data)
        ranks = np.zeros(n, np.int64)
        self.node.Allgather(np.array([world.Get_rank()], np.int64), ranks)
        self.local_of = {int(g): i for i, g in enumerate(ranks)}  # global rank -> row

    def enter(self, slot: int, seq: int, op: str) -> None:
        row = self.mine[slot % MAX_GROUPS]
        row[0] = seq
        row[1] = _CODE.get(op, 0)

    def describe_missing(self, slot: int, seq: int, group_ranks: list[int]) -> str:
        """'ranks not arrived: [1] (rank 1 is at seq 3 broadcast); ranks on other nodes: [...]'."""
        behind, remote = [], []
        for g in group_ranks:
            row = self.local_of.get(g)
            if row is None:
                remote.append(g)
                continue
            their_seq, code = (int(v) for v in self.table[row, slot % MAX_GROUPS])
            if their_seq < seq:
                behind.append((g, their_seq, OP_CODES[code] if 0 <= code < len(OP_CODES) else "?"))
        parts = [f"ranks not arrived: {[g for g, _, _ in behind]}"]
        for g, s, op in behind:
            parts.append(f"rank {g} last entered seq {s} ({op})" if s else f"rank {g} entered no collective yet")
        if remote:
            parts.append(f"ranks on other nodes (not visible from here): {remote}")
        return "; ".join(parts)

    def last_entered(self, row: int, slot: int) -> tuple[int, str]:
        """(sequence number, op name) of the last collective local ``row`` entered in group ``slot``."""
        seq, code = (int(v) for v in self.table[row, slot % MAX_GROUPS])
        return seq, OP_CODES[code] if 0 <= code < len(OP_CODES) else "?"

    def set_life(self, state: int, status: int = 0, reported: bool = False) -> None:
        self.life[self.local_rank, STATUS] = status
        self.life[self.local_rank, REPORTED] = int(reported)
        self.life[self.local_rank, STATE] = state

    def release_life_lock(self) -> None:
        """This rank leaves cleanly: the peers' ``wait_for_death`` on it returns False."""
        if self.has_locks and _lifelock.unlock(self.locks[self.local_rank].ctypes.data):
            self.has_locks = False

    def wait_for_death(self, row: int, timeout: float) -> bool | None:
        """Block (GIL released) up to ``timeout`` s until local ``row`` dies (True) or releases its life
        lock (False); None: neither yet."""
        return _lifelock.wait(self.locks[row].ctypes.data, timeout)

    def free(self) -> None:
        if self.has_locks:  # still held (destroyed from another thread than the one that started the group):
            return  # glibc links held robust mutexes into their thread's list, so their memory must stay
        self.window.free()
        try:
            self.node.Free()
        except Exception:  # finalising MPI may already have freed it
            pass

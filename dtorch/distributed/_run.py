"""What every collective does around its data movement, whichever backend moves the data.

``run`` gives the op its sequence number, records it on the arrival board (so a timed-out peer can
name who never arrived), cross-checks it under TORCH_DISTRIBUTED_DEBUG=DETAIL, starts it, and waits
for it with the group's deadline (``work.py``) or hands back the Work. Both backends (``mpi_backend.py``,
``nccl.py``) and ZeRO's exchanges go through it.
"""
from __future__ import annotations

import json
from typing import Callable

import numpy as np

from ._mpi import mpi
from .process_group import RUNTIME, ProcessGroup
from .reduce_op import ReduceOp
from .work import Work, wait_all

_DETAIL_BYTES = 1024


def missing(pg: ProcessGroup, seq: int) -> str:
    """What the arrival board says of the group's ranks that have not reached ``seq``."""
    return RUNTIME.board.describe_missing(pg.slot, seq, pg.ranks)


def enter(pg: ProcessGroup, name: str) -> int:
    """Give the group's next op its sequence number and record it on the arrival board."""
    pg.seq += 1
    RUNTIME.board.enter(pg.slot, pg.seq, name)
    return pg.seq


def run(pg: ProcessGroup, name: str, detail: dict, start: Callable, finish: Callable | None, async_op: bool,
        outputs: list | None = None, work_type: type = Work):
    """Sequence, record on the arrival board, (DETAIL) cross-check, start, and wait or return Work.

    ``start()`` returns what ``work_type`` waits on: MPI requests for ``Work``, the launched op for NCCL's.
    """
    seq = enter(pg, name)
    if RUNTIME.detail:
        _detail_check(pg, name, seq, detail)
    reqs = start()

    def describe() -> str:
        fields = "".join(f", {k} {v}" for k, v in detail.items())
        return f"{name} (seq {seq}{fields}, group {pg.name}); {missing(pg, seq)}"

    work = work_type(reqs, finish, describe, pg.timeout, outputs)
    if async_op:
        return work
    work.wait()
    return None


def _detail_check(pg: ProcessGroup, name: str, seq: int, detail: dict) -> None:
    """TORCH_DISTRIBUTED_DEBUG=DETAIL: all ranks must call the same op with the same shapes/dtypes."""
    mine = json.dumps({"op": name, **{k: str(v) for k, v in detail.items()}}).encode()[:_DETAIL_BYTES]
    send = np.zeros(_DETAIL_BYTES, np.uint8)
    send[:len(mine)] = np.frombuffer(mine, np.uint8)
    recv = np.zeros((pg.size(), _DETAIL_BYTES), np.uint8)
    MPI = mpi()
    req = pg.comm.Iallgather([send, MPI.UINT8_T], [recv, MPI.UINT8_T])
    wait_all([req], pg.timeout, lambda: f"DETAIL check of {name} (seq {seq}, group {pg.name}); {missing(pg, seq)}")
    calls = [json.loads(bytes(row).rstrip(b"\0").decode()) for row in recv]
    first = calls[0]
    for r, call in enumerate(calls[1:], start=1):
        if call != first:
            diffs = [f"{k}: rank {pg.ranks[0]} has {first.get(k)!r}, rank {pg.ranks[r]} has {call.get(k)!r}"
                     for k in sorted(set(first) | set(call)) if first.get(k) != call.get(k)]
            raise RuntimeError(f"Detected mismatch between collectives on ranks (seq {seq}, group {pg.name}): "
                               + "; ".join(diffs))


def check_op(op: ReduceOp, dtype) -> None:
    """The reduction is a ReduceOp, and AVG gets a floating-point tensor (the same rule on every backend)."""
    if not isinstance(op, ReduceOp):
        raise TypeError(f"op must be a dtorch.distributed.ReduceOp, got {op!r}")
    if op is ReduceOp.AVG and np.dtype(dtype).kind != "f":
        raise ValueError(f"ReduceOp.AVG needs a floating-point tensor, got {dtype}")

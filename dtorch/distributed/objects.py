"""Object collectives without pickling: objects travel as dtorch.save bytes (safetensors + JSON).

Supported objects are what ``dtorch.save`` stores: tensors, numbers, strings, None and
dicts/lists/tuples of them. Anything else is refused with a TypeError (torch would serialise it by pickling).
"""
from __future__ import annotations

import io

import numpy as np

from ..serialization import load, save
from ._mpi import mpi
from ._run import run
from .collectives import _skip
from .process_group import resolve

__all__ = ["broadcast_object_list", "all_gather_object", "gather_object"]


def _encode(obj) -> np.ndarray:
    buf = io.BytesIO()
    save({"obj": obj}, buf)
    return np.frombuffer(buf.getvalue(), np.uint8)


def _decode(arr: np.ndarray):
    return load(io.BytesIO(arr.tobytes()))["obj"]


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None) -> None:
    """Replace ``object_list`` on every rank by global rank ``src``'s list, in place."""
    if _skip(group):
        return
    pg = resolve(group)
    MPI = mpi()
    root = pg.group_rank(src)
    payload = _encode(list(object_list)) if pg.rank() == root else None
    size = np.array([payload.size if payload is not None else 0], np.int64)
    run(pg, "broadcast_object_list", {"len": len(object_list)}, lambda: [pg.comm.Ibcast([size, MPI.INT64_T], root)],
        None, False)
    data = payload if payload is not None else np.empty(int(size[0]), np.uint8)
    run(pg, "broadcast_object_list", {"len": len(object_list)}, lambda: [pg.comm.Ibcast([data, MPI.UINT8_T], root)],
        None, False)
    if pg.rank() != root:
        object_list[:] = _decode(data)


def _gather_bytes(pg, payload: np.ndarray, root: int | None, name: str) -> list[np.ndarray] | None:
    MPI = mpi()
    n = pg.size()
    sizes = np.zeros(n, np.int64)
    mine = np.array([payload.size], np.int64)
    if root is None:
        run(pg, name, {}, lambda: [pg.comm.Iallgather([mine, MPI.INT64_T], [sizes, MPI.INT64_T])], None, False)
    else:
        run(pg, name, {}, lambda: [pg.comm.Igather([mine, MPI.INT64_T], [sizes, MPI.INT64_T], root)], None, False)
    counts = [int(s) for s in sizes]
    displs = [sum(counts[:i]) for i in range(n)]
    recv = np.empty(sum(counts), np.uint8) if (root is None or pg.rank() == root) else None
    if root is None:
        start = lambda: [pg.comm.Iallgatherv([payload, MPI.UINT8_T], [recv, (counts, displs), MPI.UINT8_T])]
    else:
        spec = [recv, (counts, displs), MPI.UINT8_T] if recv is not None else None
        start = lambda: [pg.comm.Igatherv([payload, MPI.UINT8_T], spec, root)]
    run(pg, name, {}, start, None, False)
    if recv is None:
        return None
    return [recv[d:d + c] for d, c in zip(displs, counts)]


def all_gather_object(object_list: list, obj, group=None) -> None:
    """``object_list[i]`` becomes rank i's ``obj`` on every rank."""
    if _skip(group):
        return
    pg = resolve(group)
    if len(object_list) != pg.size():
        raise ValueError(f"all_gather_object: object_list needs {pg.size()} entries, got {len(object_list)}")
    parts = _gather_bytes(pg, _encode(obj), None, "all_gather_object")
    for i, p in enumerate(parts):
        object_list[i] = _decode(p)


def gather_object(obj, object_gather_list: list | None = None, dst: int = 0, group=None) -> None:
    """Global rank ``dst`` receives every rank's ``obj`` into ``object_gather_list``."""
    if _skip(group):
        return
    pg = resolve(group)
    root = pg.group_rank(dst)
    if pg.rank() == root and (object_gather_list is None or len(object_gather_list) != pg.size()):
        raise ValueError(f"gather_object: the destination needs an object_gather_list of {pg.size()} entries")
    parts = _gather_bytes(pg, _encode(obj), root, "gather_object")
    if parts is not None:
        for i, p in enumerate(parts):
            object_gather_list[i] = _decode(p)

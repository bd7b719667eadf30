"""Collectives and point-to-point ops with torch.distributed's signatures.

Every op is started as a nonblocking MPI request and finished through a Work whose
wait has a deadline (the group's timeout): a synchronous call is ``work.wait()``.
Before starting, a rank records the collective on the arrival board so that a timed-out
peer can say who never arrived. In a group whose backend is 'nccl', CUDA tensors go to
``nccl.py`` (same ``_run``: sequence numbers, board, deadline); CPU tensors stay on MPI.
"""
from __future__ import annotations

import json

import numpy as np

from ..cuda import is_available as cuda_available
from ..tensor import Tensor
from ._mpi import mpi
from ._staging import Staged, empty_like_many, write_into
from .process_group import STATE, GroupMember, ProcessGroup, is_nccl_available, resolve
from .reduce_op import ReduceOp, mpi_op
from .work import Work, wait_all

__all__ = ["all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter",
           "reduce_scatter_tensor", "gather", "scatter", "all_to_all", "all_to_all_single", "barrier", "send",
           "recv", "isend", "irecv", "monitored_barrier"]

_DETAIL_BYTES = 1024


def _desc(t: Tensor) -> str:
    return f"shape {list(t._data.shape)}, dtype {t._data.dtype}"


def _nccl_for(pg: ProcessGroup, tensors) -> bool:
    if pg.backend not in ("nccl", "cpu:mpi,cuda:nccl"):
        return False
    return any(type(t._data) is not np.ndarray for t in tensors if isinstance(t, Tensor))


def _run(pg: ProcessGroup, name: str, detail: dict, start, finish, async_op: bool, outputs=None, work_type=Work):
    """Sequence, record on the arrival board, (DETAIL) cross-check, start, and wait or return Work.

    ``start()`` returns what ``work_type`` waits on: MPI requests for ``Work``, the launched op for NCCL's.
    """
    pg.seq += 1
    seq = pg.seq
    STATE.board.enter(pg.slot, seq, name)
    if STATE.detail:
        _detail_check(pg, name, seq, detail)
    reqs = start()

    def describe() -> str:
        fields = "".join(f", {k} {v}" for k, v in detail.items())
        return (f"{name} (seq {seq}{fields}, group {pg.name}); "
                f"{STATE.board.describe_missing(pg.slot, seq, pg.ranks)}")

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
    wait_all([req], pg.timeout, lambda: f"DETAIL check of {name} (seq {seq}, group {pg.name}); "
             f"{STATE.board.describe_missing(pg.slot, seq, pg.ranks)}")
    calls = [json.loads(bytes(row).rstrip(b"\0").decode()) for row in recv]
    first = calls[0]
    for r, call in enumerate(calls[1:], start=1):
        if call != first:
            diffs = [f"{k}: rank {pg.ranks[0]} has {first.get(k)!r}, rank {pg.ranks[r]} has {call.get(k)!r}"
                     for k in sorted(set(first) | set(call)) if first.get(k) != call.get(k)]
            raise RuntimeError(f"Detected mismatch between collectives on ranks (seq {seq}, group {pg.name}): "
                               + "; ".join(diffs))


def _skip(group) -> bool:
    return group is GroupMember.NON_GROUP_MEMBER


def _check_op(op: ReduceOp, t: Tensor) -> None:
    if not isinstance(op, ReduceOp):
        raise TypeError(f"op must be a dtorch.distributed.ReduceOp, got {op!r}")
    if op is ReduceOp.AVG and t._data.dtype.kind != "f":
        raise ValueError(f"ReduceOp.AVG needs a floating-point tensor, got {t._data.dtype}")


# ---- reductions ---------------------------------------------------------------------------------
def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``tensor`` across the group; every rank gets the result in place."""
    if _skip(group):
        return None
    pg = resolve(group)
    if _nccl_for(pg, [tensor]):
        from . import nccl

        return nccl.all_reduce(pg, tensor, op, async_op)
    _check_op(op, tensor)
    buf = Staged(tensor, reduce=True)
    MPI = mpi()
    n = pg.size()

    def finish() -> None:
        if op is ReduceOp.AVG:
            buf.arr /= n  # in place: the tensor's own memory when the buffer is zero-copy
        buf.finish()

    start = lambda: [pg.comm.Iallreduce(MPI.IN_PLACE, buf.spec, mpi_op(op, buf.arr.dtype == np.bool_))]
    return _run(pg, "all_reduce", {"shape": list(tensor.shape), "dtype": tensor._data.dtype, "op": op.name},
                start, finish, async_op, [tensor])


def reduce(tensor: Tensor, dst: int = 0, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce into ``tensor`` on global rank ``dst`` (others' tensors are left unchanged)."""
    if _skip(group):
        return None
    pg = resolve(group)
    if _nccl_for(pg, [tensor]):
        from . import nccl

        return nccl.reduce(pg, tensor, dst, op, async_op)
    _check_op(op, tensor)
    root = pg.group_rank(dst)
    buf = Staged(tensor, reduce=True)
    MPI = mpi()
    me = pg.rank()
    n = pg.size()

    def start():
        mop = mpi_op(op, buf.arr.dtype == np.bool_)
        if me == root:
            return [pg.comm.Ireduce(MPI.IN_PLACE, buf.spec, mop, root)]
        return [pg.comm.Ireduce(buf.spec, None, mop, root)]

    def finish() -> None:
        if me == root:
            if op is ReduceOp.AVG:
                buf.arr /= n
            buf.finish()

    return _run(pg, "reduce", {"shape": list(tensor.shape), "dtype": tensor._data.dtype, "op": op.name,
                               "dst": dst}, start, finish, async_op, [tensor])


def broadcast(tensor: Tensor, src: int = 0, group=None, async_op: bool = False):
    """Copy global rank ``src``'s ``tensor`` into every rank's ``tensor``."""
    if _skip(group):
        return None
    pg = resolve(group)
    if _nccl_for(pg, [tensor]):
        from . import nccl

        return nccl.broadcast(pg, tensor, src, async_op)
    root = pg.group_rank(src)
    buf = Staged(tensor)
    start = lambda: [pg.comm.Ibcast(buf.spec, root)]
    return _run(pg, "broadcast", {"shape": list(tensor.shape), "dtype": tensor._data.dtype, "src": src},
                start, buf.finish, async_op, [tensor])


# ---- gathers and scatters -------------------------------------------------------------------------
def _same_shape(t: Tensor, others, what: str) -> None:
    for o in others:
        if not isinstance(o, Tensor):
            raise TypeError(f"{what}: expected a list of dtorch.Tensor, got {type(o).__name__}")
        if o._data.shape != t._data.shape or o._data.dtype != t._data.dtype:
            raise ValueError(f"{what}: every tensor must have shape {list(t.shape)} and dtype {t._data.dtype}, "
                             f"got shape {list(o.shape)} and dtype {o._data.dtype}")


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Every rank receives every rank's ``tensor`` into ``tensor_list``."""
    if _skip(group):
        return None
    pg = resolve(group)
    if len(tensor_list) != pg.size():
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors, the group has {pg.size()} ranks")
    _same_shape(tensor, tensor_list, "all_gather")
    if _nccl_for(pg, [tensor, *tensor_list]):
        from . import nccl

        return nccl.all_gather(pg, tensor_list, tensor, async_op)
    send = Staged(tensor)
    recv = empty_like_many(tensor, pg.size())
    MPI = mpi()
    start = lambda: [pg.comm.Iallgather(send.spec, [recv, send.mpitype])]

    def finish() -> None:
        for i, t in enumerate(tensor_list):
            write_into(t, recv[i])

    return _run(pg, "all_gather", {"shape": list(tensor.shape), "dtype": tensor._data.dtype}, start, finish,
                async_op, tensor_list) if MPI else None


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None, async_op: bool = False):
    """Concatenate (dim 0) or stack every rank's ``input_tensor`` into ``output_tensor``."""
    if _skip(group):
        return None
    pg = resolve(group)
    n = pg.size()
    if output_tensor._data.size != n * input_tensor._data.size or output_tensor._data.dtype != input_tensor._data.dtype:
        raise ValueError(f"all_gather_into_tensor: output {list(output_tensor.shape)} {output_tensor._data.dtype} "
                         f"must hold {n} x input {list(input_tensor.shape)} {input_tensor._data.dtype}")
    if _nccl_for(pg, [output_tensor, input_tensor]):
        from . import nccl

        return nccl.all_gather_into_tensor(pg, output_tensor, input_tensor, async_op)
    send = Staged(input_tensor)
    out = Staged(output_tensor)
    start = lambda: [pg.comm.Iallgather(send.spec, out.spec)]
    return _run(pg, "all_gather_into_tensor", {"shape": list(input_tensor.shape),
                                               "dtype": input_tensor._data.dtype}, start, out.finish, async_op,
                [output_tensor])


def reduce_scatter(output: Tensor, input_list: list, op: ReduceOp = ReduceOp.SUM, group=None,
                   async_op: bool = False):
    """Reduce ``input_list[i]`` across ranks into rank i's ``output``."""
    if _skip(group):
        return None
    pg = resolve(group)
    if len(input_list) != pg.size():
        raise ValueError(f"reduce_scatter: input_list has {len(input_list)} tensors, the group has {pg.size()}")
    _same_shape(output, input_list, "reduce_scatter")
    _check_op(op, output)
    if _nccl_for(pg, [output, *input_list]):
        from . import nccl

        return nccl.reduce_scatter(pg, output, input_list, op, async_op)
    from .. import stack

    return _reduce_scatter_flat(pg, output, stack(list(input_list)), op, async_op, "reduce_scatter")


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM, group=None,
                          async_op: bool = False):
    """Reduce ``input`` (world x output elements) across ranks; rank i keeps slice i."""
    if _skip(group):
        return None
    pg = resolve(group)
    if input._data.size != pg.size() * output._data.size or input._data.dtype != output._data.dtype:
        raise ValueError(f"reduce_scatter_tensor: input {list(input.shape)} {input._data.dtype} must hold "
                         f"{pg.size()} x output {list(output.shape)} {output._data.dtype}")
    _check_op(op, output)
    if _nccl_for(pg, [output, input]):
        from . import nccl

        return nccl.reduce_scatter(pg, output, input, op, async_op, "reduce_scatter_tensor")
    return _reduce_scatter_flat(pg, output, input, op, async_op, "reduce_scatter_tensor")


def _reduce_scatter_flat(pg, output: Tensor, source: Tensor, op: ReduceOp, async_op: bool, name: str):
    send = Staged(source, reduce=True)
    out = Staged(output, reduce=True)
    n = pg.size()

    def finish() -> None:
        if op is ReduceOp.AVG:
            out.arr /= n
        out.finish()

    start = lambda: [pg.comm.Ireduce_scatter_block(send.spec, out.spec, mpi_op(op, out.arr.dtype == np.bool_))]
    return _run(pg, name, {"shape": list(output.shape), "dtype": output._data.dtype, "op": op.name}, start,
                finish, async_op, [output])


def gather(tensor: Tensor, gather_list: list | None = None, dst: int = 0, group=None, async_op: bool = False):
    """Global rank ``dst`` receives every rank's ``tensor`` into ``gather_list``."""
    if _skip(group):
        return None
    pg = resolve(group)
    root = pg.group_rank(dst)
    me = pg.rank()
    if me == root:
        if gather_list is None or len(gather_list) != pg.size():
            raise ValueError(f"gather: the destination needs a gather_list of {pg.size()} tensors")
        _same_shape(tensor, gather_list, "gather")
    elif gather_list:
        raise ValueError("gather: gather_list must be empty or None on non-destination ranks")
    send = Staged(tensor)
    recv = empty_like_many(tensor, pg.size()) if me == root else None

    def start():
        return [pg.comm.Igather(send.spec, [recv, send.mpitype] if recv is not None else None, root)]

    def finish() -> None:
        if recv is not None:
            for i, t in enumerate(gather_list):
                write_into(t, recv[i])

    return _run(pg, "gather", {"shape": list(tensor.shape), "dtype": tensor._data.dtype, "dst": dst}, start, finish,
                async_op, gather_list or [])


def scatter(tensor: Tensor, scatter_list: list | None = None, src: int = 0, group=None, async_op: bool = False):
    """Rank i receives ``scatter_list[i]`` of global rank ``src`` into ``tensor``."""
    if _skip(group):
        return None
    pg = resolve(group)
    root = pg.group_rank(src)
    me = pg.rank()
    send = None
    if me == root:
        if scatter_list is None or len(scatter_list) != pg.size():
            raise ValueError(f"scatter: the source needs a scatter_list of {pg.size()} tensors")
        _same_shape(tensor, scatter_list, "scatter")
        from .. import stack

        send = Staged(stack(list(scatter_list)))
    elif scatter_list:
        raise ValueError("scatter: scatter_list must be empty or None on non-source ranks")
    out = Staged(tensor)
    start = lambda: [pg.comm.Iscatter(send.spec if send is not None else None, out.spec, root)]
    return _run(pg, "scatter", {"shape": list(tensor.shape), "dtype": tensor._data.dtype, "src": src}, start,
                out.finish, async_op, [tensor])


def all_to_all(output_tensor_list: list, input_tensor_list: list, group=None, async_op: bool = False):
    """Rank i sends ``input_tensor_list[j]`` to rank j, receiving into ``output_tensor_list[j]``."""
    if _skip(group):
        return None
    pg = resolve(group)
    n = pg.size()
    if len(output_tensor_list) != n or len(input_tensor_list) != n:
        raise ValueError(f"all_to_all: both lists need {n} tensors")
    if _nccl_for(pg, [*output_tensor_list, *input_tensor_list]):
        from . import nccl

        return nccl.all_to_all(pg, output_tensor_list, input_tensor_list, async_op)
    sends = [Staged(t) for t in input_tensor_list]
    recvs = [Staged(t) for t in output_tensor_list]
    send = np.concatenate([s.arr.reshape(-1) for s in sends]) if n else np.empty(0)
    recv = np.empty(sum(r.arr.size for r in recvs), recvs[0].arr.dtype)
    scounts = [s.arr.size for s in sends]
    rcounts = [r.arr.size for r in recvs]
    mtype = sends[0].mpitype
    start = lambda: [pg.comm.Ialltoallv([send, (scounts, _displs(scounts)), mtype],
                                        [recv, (rcounts, _displs(rcounts)), mtype])]

    def finish() -> None:
        off = 0
        for r in recvs:
            r.arr.reshape(-1)[...] = recv[off:off + r.arr.size]
            off += r.arr.size
            r.writeback = True
            r.finish()

    return _run(pg, "all_to_all", {"dtype": input_tensor_list[0]._data.dtype}, start, finish, async_op,
                output_tensor_list)


def all_to_all_single(output: Tensor, input: Tensor, output_split_sizes=None, input_split_sizes=None, group=None,
                      async_op: bool = False):
    """Split ``input`` along dim 0 (evenly or by sizes), exchange, concatenate into ``output``."""
    if _skip(group):
        return None
    pg = resolve(group)
    n = pg.size()
    row_in = int(np.prod(input._data.shape[1:])) if input._data.ndim > 1 else 1
    row_out = int(np.prod(output._data.shape[1:])) if output._data.ndim > 1 else 1
    in_sizes = list(input_split_sizes) if input_split_sizes else [input._data.shape[0] // n] * n
    out_sizes = list(output_split_sizes) if output_split_sizes else [output._data.shape[0] // n] * n
    if sum(in_sizes) != input._data.shape[0] or sum(out_sizes) != output._data.shape[0]:
        raise ValueError(f"all_to_all_single: split sizes {in_sizes} / {out_sizes} do not match dim 0 of input "
                         f"{list(input.shape)} / output {list(output.shape)}")
    scounts = [s * row_in for s in in_sizes]
    rcounts = [s * row_out for s in out_sizes]
    if _nccl_for(pg, [output, input]):
        from . import nccl

        return nccl.all_to_all_single(pg, output, input, scounts, rcounts, async_op)
    send, recv = Staged(input), Staged(output)
    start = lambda: [pg.comm.Ialltoallv([send.arr, (scounts, _displs(scounts)), send.mpitype],
                                        [recv.arr, (rcounts, _displs(rcounts)), recv.mpitype])]
    return _run(pg, "all_to_all_single", {"dtype": input._data.dtype, "row": list(input.shape[1:])}, start,
                recv.finish, async_op, [output])


def _displs(counts: list[int]) -> list[int]:
    out, acc = [], 0
    for c in counts:
        out.append(acc)
        acc += c
    return out


def barrier(group=None, async_op: bool = False, device_ids=None):
    if _skip(group):
        return None
    pg = resolve(group)
    if pg.backend == "nccl" and (device_ids or pg.nccl is not None or (cuda_available() and is_nccl_available())):
        from . import nccl

        return nccl.barrier(pg, async_op, device_ids)
    return _run(pg, "barrier", {}, lambda: [pg.comm.Ibarrier()], None, async_op)


def monitored_barrier(group=None, timeout=None, wait_all_ranks: bool = False):
    pg = resolve(group)
    old = pg.timeout
    if timeout is not None:
        pg.timeout = timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)
    try:
        barrier(group)
    finally:
        pg.timeout = old


# ---- point to point -----------------------------------------------------------------------------------
def isend(tensor: Tensor, dst: int, group=None, tag: int = 0) -> Work:
    pg = resolve(group)
    if _nccl_for(pg, [tensor]):
        from . import nccl

        return nccl.isend(pg, tensor, dst, tag)
    buf = Staged(tensor)
    req = pg.comm.Isend(buf.spec, pg.group_rank(dst), tag)
    return Work([req], None, lambda: f"send to rank {dst} (tag {tag}, {_desc(tensor)})", pg.timeout, [tensor])


def irecv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0) -> Work:
    pg = resolve(group)
    if _nccl_for(pg, [tensor]):
        from . import nccl

        return nccl.irecv(pg, tensor, src, tag)
    MPI = mpi()
    buf = Staged(tensor)
    status = MPI.Status()
    source = MPI.ANY_SOURCE if src is None else pg.group_rank(src)
    req = pg.comm.Irecv(buf.spec, source, tag)
    work = Work([req], None, lambda: f"recv from rank {src} (tag {tag}, {_desc(tensor)})", pg.timeout, [tensor],
                statuses=[status])

    def finish() -> None:
        buf.finish()
        work._source = pg.ranks[status.Get_source()]

    work._finish = finish
    return work


def send(tensor: Tensor, dst: int, group=None, tag: int = 0) -> None:
    isend(tensor, dst, group, tag).wait()


def recv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0) -> int:
    """Receive into ``tensor``; returns the sender's global rank."""
    work = irecv(tensor, src, group, tag)
    work.wait()
    return work._source

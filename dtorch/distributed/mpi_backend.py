"""The MPI backend: every op a nonblocking mpi4py request on the group's communicator, through ``_run.run``.

Host tensors go zero-copy where they can (``_staging.py``); CUDA tensors in a group without NCCL are
staged through host memory. ``collectives.py`` checks the arguments (torch's errors) before calling
a backend, so these methods take them as valid. ``NCCLBackend`` (``nccl.py``) has the same methods.
"""
from __future__ import annotations

import numpy as np

from .._ops.joining import stack
from ..tensor import Tensor
from ._mpi import mpi
from ._run import run
from ._staging import Staged, empty_like_many, write_into
from .process_group import ProcessGroup
from .reduce_op import ReduceOp, mpi_op
from .work import Work


def detail_of(t: Tensor, **more) -> dict:
    return {"shape": list(t.shape), "dtype": t._data.dtype, **more}


def displacements(counts: list[int]) -> list[int]:
    """Offsets of consecutive blocks of ``counts`` elements."""
    out, acc = [], 0
    for c in counts:
        out.append(acc)
        acc += c
    return out


class MPIBackend:
    name = "mpi"

    def all_reduce(self, pg: ProcessGroup, tensor: Tensor, op: ReduceOp, async_op: bool):
        buf = Staged(tensor, reduce=True)
        MPI = mpi()
        n = pg.size()

        def finish() -> None:
            if op is ReduceOp.AVG:
                buf.arr /= n  # in place: the tensor's own memory when the buffer is zero-copy
            buf.finish()

        start = lambda: [pg.comm.Iallreduce(MPI.IN_PLACE, buf.spec, mpi_op(op, buf.arr.dtype == np.bool_))]
        return run(pg, "all_reduce", detail_of(tensor, op=op.name), start, finish, async_op, [tensor])

    def reduce(self, pg: ProcessGroup, tensor: Tensor, dst: int, op: ReduceOp, async_op: bool):
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

        return run(pg, "reduce", detail_of(tensor, op=op.name, dst=dst), start, finish, async_op, [tensor])

    def broadcast(self, pg: ProcessGroup, tensor: Tensor, src: int, async_op: bool):
        root = pg.group_rank(src)
        buf = Staged(tensor)
        return run(pg, "broadcast", detail_of(tensor, src=src), lambda: [pg.comm.Ibcast(buf.spec, root)], buf.finish,
                   async_op, [tensor])

    def all_gather(self, pg: ProcessGroup, tensor_list: list, tensor: Tensor, async_op: bool):
        send = Staged(tensor)
        recv = empty_like_many(tensor, pg.size())
        start = lambda: [pg.comm.Iallgather(send.spec, [recv, send.mpitype])]

        def finish() -> None:
            for i, t in enumerate(tensor_list):
                write_into(t, recv[i])

        return run(pg, "all_gather", detail_of(tensor), start, finish, async_op, tensor_list)

    def all_gather_into_tensor(self, pg: ProcessGroup, output: Tensor, input: Tensor, async_op: bool):
        send = Staged(input)
        out = Staged(output)
        start = lambda: [pg.comm.Iallgather(send.spec, out.spec)]
        return run(pg, "all_gather_into_tensor", detail_of(input), start, out.finish, async_op, [output])

    def reduce_scatter(self, pg: ProcessGroup, output: Tensor, input, op: ReduceOp, async_op: bool,
                       name: str = "reduce_scatter"):
        """``input``: one tensor per rank (reduce_scatter) or one of world x output (reduce_scatter_tensor)."""
        if not isinstance(input, Tensor):

            input = stack(list(input))
        send = Staged(input, reduce=True)
        out = Staged(output, reduce=True)
        n = pg.size()

        def finish() -> None:
            if op is ReduceOp.AVG:
                out.arr /= n
            out.finish()

        start = lambda: [pg.comm.Ireduce_scatter_block(send.spec, out.spec, mpi_op(op, out.arr.dtype == np.bool_))]
        return run(pg, name, detail_of(output, op=op.name), start, finish, async_op, [output])

    def gather(self, pg: ProcessGroup, tensor: Tensor, gather_list: list | None, dst: int, async_op: bool):
        root = pg.group_rank(dst)
        send = Staged(tensor)
        recv = empty_like_many(tensor, pg.size()) if pg.rank() == root else None

        def start():
            return [pg.comm.Igather(send.spec, [recv, send.mpitype] if recv is not None else None, root)]

        def finish() -> None:
            if recv is not None:
                for i, t in enumerate(gather_list):
                    write_into(t, recv[i])

        return run(pg, "gather", detail_of(tensor, dst=dst), start, finish, async_op, gather_list or [])

    def scatter(self, pg: ProcessGroup, tensor: Tensor, scatter_list: list | None, src: int, async_op: bool):
        root = pg.group_rank(src)
        send = None
        if pg.rank() == root:

            send = Staged(stack(list(scatter_list)))
        out = Staged(tensor)
        start = lambda: [pg.comm.Iscatter(send.spec if send is not None else None, out.spec, root)]
        return run(pg, "scatter", detail_of(tensor, src=src), start, out.finish, async_op, [tensor])

    def all_to_all(self, pg: ProcessGroup, output_tensor_list: list, input_tensor_list: list, async_op: bool):
        sends = [Staged(t) for t in input_tensor_list]
        recvs = [Staged(t) for t in output_tensor_list]
        send = np.concatenate([s.arr.reshape(-1) for s in sends]) if sends else np.empty(0)
        recv = np.empty(sum(r.arr.size for r in recvs), recvs[0].arr.dtype)
        scounts = [s.arr.size for s in sends]
        rcounts = [r.arr.size for r in recvs]
        mtype = sends[0].mpitype
        start = lambda: [pg.comm.Ialltoallv([send, (scounts, displacements(scounts)), mtype],
                                            [recv, (rcounts, displacements(rcounts)), mtype])]

        def finish() -> None:
            off = 0
            for r in recvs:
                r.arr.reshape(-1)[...] = recv[off:off + r.arr.size]
                off += r.arr.size
                r.writeback = True
                r.finish()

        return run(pg, "all_to_all", {"dtype": input_tensor_list[0]._data.dtype}, start, finish, async_op,
                   output_tensor_list)

    def all_to_all_single(self, pg: ProcessGroup, output: Tensor, input: Tensor, scounts: list, rcounts: list,
                          async_op: bool):
        """``scounts``/``rcounts``: elements to and from each rank (split sizes times row size)."""
        send, recv = Staged(input), Staged(output)
        start = lambda: [pg.comm.Ialltoallv([send.arr, (scounts, displacements(scounts)), send.mpitype],
                                            [recv.arr, (rcounts, displacements(rcounts)), recv.mpitype])]
        return run(pg, "all_to_all_single", {"dtype": input._data.dtype, "row": list(input.shape[1:])}, start,
                   recv.finish, async_op, [output])

    def barrier(self, pg: ProcessGroup, async_op: bool, device_ids=None):
        return run(pg, "barrier", {}, lambda: [pg.comm.Ibarrier()], None, async_op)

    # ---- point to point: no sequence number (pairs match by tag) ---------------------------------------
    def isend(self, pg: ProcessGroup, tensor: Tensor, dst: int, tag: int) -> Work:
        buf = Staged(tensor)
        req = pg.comm.Isend(buf.spec, pg.group_rank(dst), tag)
        return Work([req], None, lambda: f"send to rank {dst} (tag {tag}, {_described(tensor)})", pg.timeout,
                    [tensor])

    def irecv(self, pg: ProcessGroup, tensor: Tensor, src: int | None, tag: int) -> Work:
        MPI = mpi()
        buf = Staged(tensor)
        status = MPI.Status()
        source = MPI.ANY_SOURCE if src is None else pg.group_rank(src)
        req = pg.comm.Irecv(buf.spec, source, tag)
        work = Work([req], None, lambda: f"recv from rank {src} (tag {tag}, {_described(tensor)})", pg.timeout,
                    [tensor], statuses=[status])

        def finish() -> None:
            buf.finish()
            work._source = pg.ranks[status.Get_source()]

        work._finish = finish
        return work


def _described(t: Tensor) -> str:
    return f"shape {list(t._data.shape)}, dtype {t._data.dtype}"

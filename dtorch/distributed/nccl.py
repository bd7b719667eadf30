"""The NCCL backend: CUDA tensors' collectives over ``cupy.cuda.nccl``, one communicator and stream per group.

MPI stays the rendezvous: on a group's first CUDA collective its rank 0 makes the NCCL unique id, MPI
broadcasts the id's 128 bytes (CuPy >= 13 hands the id out as ``bytes``, older CuPy as C ``char`` values)
and every rank builds its communicator and a non-blocking CUDA stream. Each op

* goes through ``_run.run`` like an MPI op: sequence number, arrival board, DETAIL check;
* runs on the group's stream after that stream waited on the caller's current stream (inputs are ready),
  non-contiguous tensors staged through a contiguous copy and written back on the same stream;
* ends with a CUDA event: ``NcclWork.wait()`` makes the caller's current stream wait on it (torch's
  semantics) and polls it on the host with the group's deadline, so a hung NCCL op aborts the job,
  naming the ranks that never arrived, as a hung MPI request does (with DTORCH_DISTRIBUTED_NO_ABORT=1
  the RuntimeError comes after ncclCommAbort has freed the stream; the group reconnects on next use).

The caller's arrays are kept referenced until their op's event is done (the role of torch's
``recordStream``): CuPy's pool could otherwise hand their memory to the current stream while NCCL
still reads or writes it. Data movement (broadcast, gathers, all-to-all, send/recv) moves bytes and so
takes any dtype; reductions take NCCL's types (bool as uint8 with MAX for or, MIN for and).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from .._device import cupy_module
from ..tensor import Tensor
from ._mpi import mpi
from ._run import missing, run
from .mpi_backend import MPIBackend, detail_of, displacements
from .process_group import ProcessGroup
from .reduce_op import ReduceOp
from .work import Work, abort_job, seconds, wait_all, wait_until

UNIQUE_ID_BYTES = 128       # NCCL_UNIQUE_ID_BYTES, fixed by NCCL's ABI
AVG_MIN_VERSION = 21000     # ncclAvg appeared in NCCL 2.10

# numpy dtype name -> the cupy.cuda.nccl constant a reduction uses
DTYPES = {"float16": "NCCL_FLOAT16", "bfloat16": "NCCL_BFLOAT16", "float32": "NCCL_FLOAT32",
          "float64": "NCCL_FLOAT64", "int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
          "uint32": "NCCL_UINT32", "int64": "NCCL_INT64", "uint64": "NCCL_UINT64", "bool": "NCCL_UINT8"}
OPS = {ReduceOp.SUM: "NCCL_SUM", ReduceOp.PRODUCT: "NCCL_PROD", ReduceOp.MIN: "NCCL_MIN",
       ReduceOp.MAX: "NCCL_MAX", ReduceOp.AVG: "NCCL_AVG"}
BOOL_OPS = {ReduceOp.SUM: "NCCL_MAX", ReduceOp.MAX: "NCCL_MAX", ReduceOp.BOR: "NCCL_MAX",
            ReduceOp.PRODUCT: "NCCL_MIN", ReduceOp.MIN: "NCCL_MIN", ReduceOp.BAND: "NCCL_MIN"}


# ---- what NCCL is asked for (pure functions of the binding's constants: testable without a GPU) -----
def nccl_dtype(lib, dtype) -> int:
    """The NCCL datatype constant of a numpy/cupy dtype for a reduction; TypeError naming it otherwise."""
    dt = np.dtype(dtype)
    name = DTYPES.get(dt.name)
    if name is None or not hasattr(lib, name):
        raise TypeError(f"NCCL backend: dtype {dt.name} is not supported by NCCL reductions (supported: "
                        f"{', '.join(k for k, v in DTYPES.items() if hasattr(lib, v))}); cast the tensor or "
                        "reduce it over the MPI backend")
    return getattr(lib, name)


def nccl_op(lib, op: ReduceOp, dtype, has_avg: bool) -> tuple[int, bool]:
    """(NCCL reduction constant, divide by the world size afterwards): AVG is SUM then a division
    when the NCCL library predates ncclAvg; bool reduces as uint8, or/and through MAX/MIN."""
    dt = np.dtype(dtype)
    name = (BOOL_OPS if dt == np.bool_ else OPS).get(op)
    if name is None:
        raise ValueError(f"NCCL backend: ReduceOp.{op.name} is not supported for dtype {dt.name}")
    if op is ReduceOp.AVG and not has_avg:
        return lib.NCCL_SUM, True
    return getattr(lib, name), False


def has_avg(lib) -> bool:
    return hasattr(lib, "NCCL_AVG") and lib.get_version() >= AVG_MIN_VERSION


_LIB: list = []


def load():
    """cupy.cuda.nccl (imported on first use), with the ncclAvg check done once."""
    if not _LIB:
        try:
            from cupy.cuda import nccl as lib
        except ImportError as e:
            raise RuntimeError("the NCCL backend needs CuPy with NCCL: pip install 'dtorch[cuda12]' "
                               "nvidia-nccl-cu12") from e
        if not getattr(lib, "available", True):
            raise RuntimeError("CuPy found no NCCL library: pip install nvidia-nccl-cu12 (or use backend 'mpi')")
        _LIB.extend([lib, has_avg(lib)])
    return _LIB[0]


# ---- one group's NCCL state -----------------------------------------------------------------------
class NcclGroup:
    """``ProcessGroup.nccl``: the communicator, its device and stream, and the launched ops' arrays."""

    __slots__ = ("comm", "device", "stream", "inflight")

    def __init__(self, comm, device: int, stream) -> None:
        self.comm = comm
        self.device = device
        self.stream = stream
        self.inflight: deque = deque()  # (done event, arrays): events complete in order on one stream

    def prune(self) -> None:
        while self.inflight and self.inflight[0][0].done:
            self.inflight.popleft()

    def abort(self, pg: ProcessGroup) -> None:
        """ncclCommAbort: frees a stream stuck in a hung NCCL kernel; the group reconnects on next use."""
        pg.nccl = None
        try:
            self.comm.abort()
        except Exception:  # NCCL < 2.4 cannot abort: the stream stays stuck, the error still reported
            pass


def unique_id_bytes(made) -> np.ndarray:
    """The NCCL unique id as UNIQUE_ID_BYTES uint8: CuPy >= 13 hands it out as ``bytes``, older CuPy
    as a tuple of C ``char`` values (signed or not by platform)."""
    if isinstance(made, (bytes, bytearray)):
        raw = np.frombuffer(bytes(made), np.uint8)
    else:
        raw = (np.array(made, np.int64) % 256).astype(np.uint8)
    if raw.size != UNIQUE_ID_BYTES:
        raise RuntimeError(f"NCCL unique id has {raw.size} bytes, expected {UNIQUE_ID_BYTES}")
    return raw


def _communicator(lib, size: int, uid: np.ndarray, rank: int):
    """NcclCommunicator over whichever id form this CuPy takes: bytes, or a tuple of signed / unsigned
    chars (a wrong form fails in argument conversion, before NCCL is called)."""
    forms = (lambda: bytes(uid), lambda: tuple(int(v) for v in uid.view(np.int8)), lambda: tuple(int(v) for v in uid))
    for i, form in enumerate(forms):
        try:
            return lib.NcclCommunicator(size, form(), rank)
        except (TypeError, OverflowError):
            if i == len(forms) - 1:
                raise


def _connect(pg: ProcessGroup, device: int) -> NcclGroup:
    """Rank 0 makes the unique id, MPI broadcasts it (deadline-waited), every rank joins."""
    lib, cp, MPI = load(), cupy_module(), mpi()
    uid = np.zeros(UNIQUE_ID_BYTES, np.uint8)
    if pg.rank() == 0:
        uid[:] = unique_id_bytes(lib.get_unique_id())

    def describe() -> str:
        return f"the NCCL communicator setup of group {pg.name} (seq {pg.seq}); {missing(pg, pg.seq)}"

    wait_all([pg.comm.Ibcast([uid, MPI.UINT8_T], 0)], pg.timeout, describe)
    wait_all([pg.comm.Ibarrier()], pg.timeout, describe)  # all here: ncclCommInitRank will not wait forever
    with cp.cuda.Device(device):
        comm = _communicator(lib, pg.size(), uid, pg.rank())
        stream = cp.cuda.Stream(non_blocking=True)
    pg.nccl = NcclGroup(comm, device, stream)
    return pg.nccl


class NcclWork(Work):
    """An NCCL op's handle: done when its CUDA event is; ``wait`` orders the current stream after it."""

    def __init__(self, launched, finish, describe, timeout: float, outputs: list | None = None) -> None:
        super().__init__([], finish, describe, timeout, outputs)
        self._pg, self._group, self._event = launched

    def is_completed(self) -> bool:
        if not self._done and self._event.done:
            self._complete()
        return self._done

    def wait(self, timeout=None) -> bool:
        if self._done:
            return True
        cp = cupy_module()
        group, event = self._group, self._event
        with cp.cuda.Device(group.device):
            cp.cuda.get_current_stream().wait_event(event)
        lib = load()
        polls = [0, True]  # count, ncclCommGetAsyncError available

        def done() -> bool:
            if event.done:
                return True
            polls[0] += 1
            if polls[1] and polls[0] & 4095 == 0:  # a peer's network failure surfaces before the deadline
                try:
                    group.comm.check_async_error()
                except lib.NcclError:
                    raise
                except RuntimeError:  # NCCL < 2.4 has no ncclCommGetAsyncError: the deadline alone
                    polls[1] = False
            return False

        try:
            try:
                wait_until(done, self._timeout if timeout is None else seconds(timeout), self._describe)
            except lib.NcclError as e:
                abort_job(f"NCCL error in {self._describe()}: {e}")
        except RuntimeError:  # abort_job returned (DTORCH_DISTRIBUTED_NO_ABORT=1): free the stuck stream
            group.abort(self._pg)
            raise
        self._complete()
        return True


# ---- launching -----------------------------------------------------------------------------------
def _device(tensors: list, what: str) -> int:
    dev = None
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: expected dtorch.Tensor, got {type(t).__name__}")
        if type(t._data) is np.ndarray:
            raise ValueError(f"{what}: every tensor must be on CUDA for the NCCL backend, got a CPU tensor "
                             f"(shape {list(t.shape)})")
        d = t._data.device.id
        if dev is None:
            dev = d
        elif d != dev:
            raise ValueError(f"{what}: tensors on cuda:{dev} and cuda:{d}; one NCCL op takes one device")
    return dev


def _check_device(pg: ProcessGroup, dev: int, what: str) -> None:
    if pg.nccl is not None and pg.nccl.device != dev:
        raise ValueError(f"{what}: group {pg.name}'s NCCL communicator is on cuda:{pg.nccl.device}, "
                         f"the tensor on cuda:{dev}")


def _launch(pg: ProcessGroup, device: int, arrays: list, body):
    """Enqueue ``body(group)`` on the group's stream after the current stream; return what NcclWork takes."""
    cp = cupy_module()
    group = pg.nccl if pg.nccl is not None else _connect(pg, device)
    with cp.cuda.Device(device):
        group.prune()
        ready = cp.cuda.Event(disable_timing=True)
        ready.record(cp.cuda.get_current_stream())
        group.stream.wait_event(ready)
        with group.stream:  # staging copies, write-backs and AVG's division run on the NCCL stream too
            body(group)
        done = cp.cuda.Event(disable_timing=True)
        done.record(group.stream)
    group.inflight.append((done, arrays))
    return pg, group, done


def _collective(pg: ProcessGroup, name: str, detail: dict, tensors: list, body, async_op: bool, outputs: list):
    dev = _device(tensors, name)
    _check_device(pg, dev, name)
    arrays = [t._data for t in tensors]
    return run(pg, name, detail, lambda: _launch(pg, dev, arrays, body), None, async_op, outputs,
               work_type=NcclWork)


def _contig(a):
    return a if a.flags.c_contiguous else cupy_module().ascontiguousarray(a)


def _back(data, buf) -> None:
    if buf is not data:
        data[...] = buf.reshape(data.shape)


def _in_place(tensor: Tensor, call):
    """The body of an op that updates ``tensor`` in place: ``call(group, buf)`` on its contiguous array (a
    staged copy when the tensor is not contiguous, written back on the NCCL stream); nothing for 0 elements."""

    def body(g: NcclGroup) -> None:
        data = tensor._data
        buf = _contig(data)
        if buf.size:
            call(g, buf)
        _back(data, buf)

    return body


def _reduction(op: ReduceOp, t: Tensor) -> tuple[int, int, bool]:
    """(NCCL dtype, NCCL op, divide afterwards) for a reduction of ``t`` (``op`` checked by collectives.py)."""
    lib = load()
    code, divide = nccl_op(lib, op, t._data.dtype, _LIB[1])
    return nccl_dtype(lib, t._data.dtype), code, divide


def _exchange(g: NcclGroup, me: int, sends: list, recvs: list) -> None:
    """Grouped send/recv of flat contiguous arrays (one pair per peer); this rank's own part is copied."""
    lib = load()
    lib.groupStart()
    try:
        for peer, (s, r) in enumerate(zip(sends, recvs)):
            if peer == me:
                continue
            if s.nbytes:
                g.comm.send(s.data.ptr, s.nbytes, lib.NCCL_UINT8, peer, g.stream.ptr)
            if r.nbytes:
                g.comm.recv(r.data.ptr, r.nbytes, lib.NCCL_UINT8, peer, g.stream.ptr)
    finally:
        lib.groupEnd()
    if recvs[me].size:
        recvs[me][...] = sends[me]


def _split(flat, counts: list) -> list:
    return [flat[o:o + c] for o, c in zip(displacements(counts), counts)]


def _p2p_device(pg: ProcessGroup, tensor: Tensor, what: str) -> int:
    dev = _device([tensor], what)
    _check_device(pg, dev, what)
    if pg.nccl is None and pg.size() > 2:
        raise RuntimeError(f"{what} over NCCL: group {pg.name} has no NCCL communicator yet, and making one "
                           "needs every rank of the group; run a collective (e.g. barrier()) on it first")
    return dev


class NCCLBackend(MPIBackend):
    """MPIBackend's methods for CUDA tensors over NCCL; gather and scatter (NCCL has none) stay MPI's,
    staged through host memory."""

    name = "nccl"

    def all_reduce(self, pg: ProcessGroup, tensor: Tensor, op: ReduceOp, async_op: bool):
        dt, code, divide = _reduction(op, tensor)
        n = pg.size()

        def reduce(g: NcclGroup, buf) -> None:
            g.comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, dt, code, g.stream.ptr)
            if divide:
                buf /= n

        body = _in_place(tensor, reduce)
        return _collective(pg, "all_reduce", detail_of(tensor, op=op.name), [tensor], body, async_op, [tensor])

    def reduce(self, pg: ProcessGroup, tensor: Tensor, dst: int, op: ReduceOp, async_op: bool):
        dt, code, divide = _reduction(op, tensor)
        root = pg.group_rank(dst)
        mine = pg.rank() == root
        n = pg.size()

        def body(g: NcclGroup) -> None:
            data = tensor._data
            buf = _contig(data)
            if buf.size:  # in place; NCCL ignores the receive buffer off the root
                g.comm.reduce(buf.data.ptr, buf.data.ptr, buf.size, dt, code, root, g.stream.ptr)
                if divide and mine:
                    buf /= n
            if mine:
                _back(data, buf)

        return _collective(pg, "reduce", detail_of(tensor, op=op.name, dst=dst), [tensor], body, async_op, [tensor])

    def broadcast(self, pg: ProcessGroup, tensor: Tensor, src: int, async_op: bool):
        root = pg.group_rank(src)
        u8 = load().NCCL_UINT8
        body = _in_place(tensor, lambda g, buf: g.comm.bcast(buf.data.ptr, buf.nbytes, u8, root, g.stream.ptr))
        return _collective(pg, "broadcast", detail_of(tensor, src=src), [tensor], body, async_op, [tensor])

    def all_gather(self, pg: ProcessGroup, tensor_list: list, tensor: Tensor, async_op: bool):
        u8 = load().NCCL_UINT8
        n = pg.size()

        def body(g: NcclGroup) -> None:
            send = _contig(tensor._data)
            recv = cupy_module().empty((n,) + send.shape, send.dtype)
            if send.nbytes:
                g.comm.allGather(send.data.ptr, recv.data.ptr, send.nbytes, u8, g.stream.ptr)
            for i, t in enumerate(tensor_list):
                t._data[...] = recv[i]

        return _collective(pg, "all_gather", detail_of(tensor), [tensor, *tensor_list], body, async_op, tensor_list)

    def all_gather_into_tensor(self, pg: ProcessGroup, output: Tensor, input: Tensor, async_op: bool):
        u8 = load().NCCL_UINT8

        def body(g: NcclGroup) -> None:
            send = _contig(input._data)
            out = _contig(output._data)
            if send.nbytes:
                g.comm.allGather(send.data.ptr, out.data.ptr, send.nbytes, u8, g.stream.ptr)
            _back(output._data, out)

        return _collective(pg, "all_gather_into_tensor", detail_of(input), [output, input], body, async_op, [output])

    def reduce_scatter(self, pg: ProcessGroup, output: Tensor, input: list, op: ReduceOp, async_op: bool,
                       name: str = "reduce_scatter"):
        """``input``: one tensor per rank (reduce_scatter) or one of world x output (reduce_scatter_tensor)."""
        dt, code, divide = _reduction(op, output)
        n = pg.size()

        def body(g: NcclGroup) -> None:
            if isinstance(input, Tensor):
                send = _contig(input._data)
            else:
                send = cupy_module().stack([t._data for t in input])
            out = _contig(output._data)
            if out.size:
                g.comm.reduceScatter(send.data.ptr, out.data.ptr, out.size, dt, code, g.stream.ptr)
                if divide:
                    out /= n
            _back(output._data, out)

        inputs = [input] if isinstance(input, Tensor) else list(input)
        return _collective(pg, name, detail_of(output, op=op.name), [output, *inputs], body, async_op, [output])

    def all_to_all(self, pg: ProcessGroup, output_tensor_list: list, input_tensor_list: list, async_op: bool):
        me = pg.rank()
        if output_tensor_list[me]._data.size != input_tensor_list[me]._data.size:
            raise ValueError(f"all_to_all: this rank's own input ({list(input_tensor_list[me].shape)}) and output "
                             f"({list(output_tensor_list[me].shape)}) differ in size")

        def body(g: NcclGroup) -> None:
            sends = [_contig(t._data).reshape(-1) for t in input_tensor_list]
            staged = [_contig(t._data) for t in output_tensor_list]
            _exchange(g, me, sends, [s.reshape(-1) for s in staged])
            for t, s in zip(output_tensor_list, staged):
                _back(t._data, s)

        return _collective(pg, "all_to_all", {"dtype": input_tensor_list[0]._data.dtype},
                           [*input_tensor_list, *output_tensor_list], body, async_op, output_tensor_list)

    def all_to_all_single(self, pg: ProcessGroup, output: Tensor, input: Tensor, scounts: list, rcounts: list,
                          async_op: bool):
        """``scounts``/``rcounts``: elements to and from each rank (split sizes times row size)."""
        me = pg.rank()
        if scounts[me] != rcounts[me]:
            raise ValueError(f"all_to_all_single: this rank sends itself {scounts[me]} elements but expects "
                             f"{rcounts[me]}")

        def body(g: NcclGroup) -> None:
            send = _contig(input._data).reshape(-1)
            out = _contig(output._data)
            flat = out.reshape(-1)
            _exchange(g, me, _split(send, scounts), _split(flat, rcounts))
            _back(output._data, out)

        return _collective(pg, "all_to_all_single", {"dtype": input._data.dtype, "row": list(input.shape[1:])},
                           [output, input], body, async_op, [output])

    def barrier(self, pg: ProcessGroup, async_op: bool, device_ids=None):
        """An allreduce of one float on the group's device (``device_ids[0]``, else the current device)."""
        cp = cupy_module()
        if device_ids:
            dev = int(device_ids[0])
        elif pg.nccl is not None:
            dev = pg.nccl.device
        else:
            dev = cp.cuda.runtime.getDevice()
        f32, total = load().NCCL_FLOAT32, load().NCCL_SUM

        def body(g: NcclGroup) -> None:
            one = cp.zeros(1, cp.float32)
            g.comm.allReduce(one.data.ptr, one.data.ptr, 1, f32, total, g.stream.ptr)

        return run(pg, "barrier", {}, lambda: _launch(pg, dev, [], body), None, async_op, work_type=NcclWork)

    # point to point: no sequence number, as over MPI; NCCL has no tags: a pair's messages match in order
    def isend(self, pg: ProcessGroup, tensor: Tensor, dst: int, tag: int = 0) -> Work:
        peer = pg.group_rank(dst)
        dev = _p2p_device(pg, tensor, "send")
        u8 = load().NCCL_UINT8

        def body(g: NcclGroup) -> None:
            buf = _contig(tensor._data)
            if buf.nbytes:
                g.comm.send(buf.data.ptr, buf.nbytes, u8, peer, g.stream.ptr)

        launched = _launch(pg, dev, [tensor._data], body)
        return NcclWork(launched, None, lambda: f"send to rank {dst} over NCCL (tag {tag}, shape {list(tensor.shape)}, "
                        f"dtype {tensor._data.dtype})", pg.timeout, [tensor])

    def irecv(self, pg: ProcessGroup, tensor: Tensor, src: int | None, tag: int = 0) -> Work:
        if src is None:
            raise ValueError("recv over NCCL needs src: NCCL cannot receive from any source")
        peer = pg.group_rank(src)
        dev = _p2p_device(pg, tensor, "recv")
        u8 = load().NCCL_UINT8
        body = _in_place(tensor, lambda g, buf: g.comm.recv(buf.data.ptr, buf.nbytes, u8, peer, g.stream.ptr))
        launched = _launch(pg, dev, [tensor._data], body)
        work = NcclWork(launched, None, lambda: f"recv from rank {src} over NCCL (tag {tag}, shape "
                        f"{list(tensor.shape)}, dtype {tensor._data.dtype})", pg.timeout, [tensor])
        work._source = src
        return work

"""Collectives and point-to-point ops with torch.distributed's signatures.

Each op checks its arguments (torch's errors), then hands them to the backend for the group and the
tensors' device: ``MPIBackend`` (``mpi_backend.py``), or for CUDA tensors in a group whose backend is
'nccl', ``NCCLBackend`` (``nccl.py``, loaded on the first CUDA tensor). Both start the op through
``_run.run`` (sequence number, arrival board, DETAIL check) and wait with the group's deadline;
a synchronous call is ``work.wait()``.
"""
from __future__ import annotations

import numpy as np

from ..cuda import is_available as cuda_available
from ..tensor import Tensor
from ._run import check_op
from .mpi_backend import MPIBackend
from .process_group import GroupMember, ProcessGroup, is_nccl_available, resolve
from .reduce_op import ReduceOp
from .work import Work, seconds

__all__ = ["all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter",
           "reduce_scatter_tensor", "gather", "scatter", "all_to_all", "all_to_all_single", "barrier", "send",
           "recv", "isend", "irecv", "monitored_barrier"]

MPI_BACKEND = MPIBackend()
_NCCL: list = []  # the NCCLBackend, made when a group first meets a CUDA tensor


def _nccl() -> MPIBackend:
    if not _NCCL:
        from .nccl import NCCLBackend

        _NCCL.append(NCCLBackend())
    return _NCCL[0]


def _backend(pg: ProcessGroup, tensors) -> MPIBackend:
    """NCCL for CUDA tensors in a group whose CUDA backend is NCCL; MPI otherwise."""
    if pg.cuda_backend == "nccl" and any(type(t._data) is not np.ndarray for t in tensors if isinstance(t, Tensor)):
        return _nccl()
    return MPI_BACKEND


def _skip(group) -> bool:
    return group is GroupMember.NON_GROUP_MEMBER


def _check_op(op: ReduceOp, t: Tensor) -> None:
    if not isinstance(t, Tensor):
        raise TypeError("Invalid function argument. Expected parameter `tensor` of type dtorch.Tensor, "
                        f"got {type(t).__name__}")
    check_op(op, t._data.dtype)


# ---- reductions ---------------------------------------------------------------------------------
def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``tensor`` across the group; every rank gets the result in place."""
    if _skip(group):
        return None
    pg = resolve(group)
    _check_op(op, tensor)
    return _backend(pg, [tensor]).all_reduce(pg, tensor, op, async_op)


def reduce(tensor: Tensor, dst: int = 0, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce into ``tensor`` on global rank ``dst`` (others' tensors are left unchanged)."""
    if _skip(group):
        return None
    pg = resolve(group)
    _check_op(op, tensor)
    return _backend(pg, [tensor]).reduce(pg, tensor, dst, op, async_op)


def broadcast(tensor: Tensor, src: int = 0, group=None, async_op: bool = False):
    """Copy global rank ``src``'s ``tensor`` into every rank's ``tensor``."""
    if _skip(group):
        return None
    pg = resolve(group)
    return _backend(pg, [tensor]).broadcast(pg, tensor, src, async_op)


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
    return _backend(pg, [tensor, *tensor_list]).all_gather(pg, tensor_list, tensor, async_op)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None, async_op: bool = False):
    """Concatenate (dim 0) or stack every rank's ``input_tensor`` into ``output_tensor``."""
    if _skip(group):
        return None
    pg = resolve(group)
    n = pg.size()
    if output_tensor._data.size != n * input_tensor._data.size or output_tensor._data.dtype != input_tensor._data.dtype:
        raise ValueError(f"all_gather_into_tensor: output {list(output_tensor.shape)} {output_tensor._data.dtype} "
                         f"must hold {n} x input {list(input_tensor.shape)} {input_tensor._data.dtype}")
    backend = _backend(pg, [output_tensor, input_tensor])
    return backend.all_gather_into_tensor(pg, output_tensor, input_tensor, async_op)


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
    return _backend(pg, [output, *input_list]).reduce_scatter(pg, output, input_list, op, async_op)


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
    return _backend(pg, [output, input]).reduce_scatter(pg, output, input, op, async_op, "reduce_scatter_tensor")


def _check_root_list(pg: ProcessGroup, tensor: Tensor, tensors: list | None, root: int, what: str,
                     role: str) -> None:
    """gather/scatter: the root passes one tensor per rank shaped like ``tensor``, the others none."""
    if pg.rank() == pg.group_rank(root):
        if tensors is None or len(tensors) != pg.size():
            raise ValueError(f"{what}: the {role} needs a {what}_list of {pg.size()} tensors")
        _same_shape(tensor, tensors, what)
    elif tensors:
        raise ValueError(f"{what}: {what}_list must be empty or None on non-{role} ranks")


def gather(tensor: Tensor, gather_list: list | None = None, dst: int = 0, group=None, async_op: bool = False):
    """Global rank ``dst`` receives every rank's ``tensor`` into ``gather_list``."""
    if _skip(group):
        return None
    pg = resolve(group)
    _check_root_list(pg, tensor, gather_list, dst, "gather", "destination")
    return _backend(pg, [tensor, *(gather_list or [])]).gather(pg, tensor, gather_list, dst, async_op)


def scatter(tensor: Tensor, scatter_list: list | None = None, src: int = 0, group=None, async_op: bool = False):
    """Rank i receives ``scatter_list[i]`` of global rank ``src`` into ``tensor``."""
    if _skip(group):
        return None
    pg = resolve(group)
    _check_root_list(pg, tensor, scatter_list, src, "scatter", "source")
    return _backend(pg, [tensor, *(scatter_list or [])]).scatter(pg, tensor, scatter_list, src, async_op)


def all_to_all(output_tensor_list: list, input_tensor_list: list, group=None, async_op: bool = False):
    """Rank i sends ``input_tensor_list[j]`` to rank j, receiving into ``output_tensor_list[j]``."""
    if _skip(group):
        return None
    pg = resolve(group)
    n = pg.size()
    if len(output_tensor_list) != n or len(input_tensor_list) != n:
        raise ValueError(f"all_to_all: both lists need {n} tensors")
    backend = _backend(pg, [*output_tensor_list, *input_tensor_list])
    return backend.all_to_all(pg, output_tensor_list, input_tensor_list, async_op)


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
    return _backend(pg, [output, input]).all_to_all_single(pg, output, input, scounts, rcounts, async_op)


def barrier(group=None, async_op: bool = False, device_ids=None):
    if _skip(group):
        return None
    pg = resolve(group)
    on_gpu = pg.backend == "nccl" and (device_ids or pg.nccl is not None or (cuda_available() and is_nccl_available()))
    return (_nccl() if on_gpu else MPI_BACKEND).barrier(pg, async_op, device_ids)


def monitored_barrier(group=None, timeout=None, wait_all_ranks: bool = False):
    pg = resolve(group)
    old = pg.timeout
    if timeout is not None:
        pg.timeout = seconds(timeout)
    try:
        barrier(group)
    finally:
        pg.timeout = old


# ---- point to point -----------------------------------------------------------------------------------
def isend(tensor: Tensor, dst: int, group=None, tag: int = 0) -> Work:
    pg = resolve(group)
    return _backend(pg, [tensor]).isend(pg, tensor, dst, tag)


def irecv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0) -> Work:
    pg = resolve(group)
    return _backend(pg, [tensor]).irecv(pg, tensor, src, tag)


def send(tensor: Tensor, dst: int, group=None, tag: int = 0) -> None:
    isend(tensor, dst, group, tag).wait()


def recv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0) -> int:
    """Receive into ``tensor``; returns the sender's global rank."""
    work = irecv(tensor, src, group, tag)
    work.wait()
    return work._source

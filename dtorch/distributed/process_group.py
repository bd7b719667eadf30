"""Process groups over MPI: init_process_group, new_group, ranks, backends.

MPI is the bootstrap: rank and world size come from MPI (so `mpiexec` and
`srun --mpi=pmi2` both work, and under `mpiexec` inside a Slurm allocation — where
every rank sees SLURM_PROCID=0 — ranks are still right). NCCL communicators, when
asked for, are built on top with MPI as the rendezvous.
"""
from __future__ import annotations

import os
import sys
import traceback
from datetime import timedelta

from . import leaving
from ._mpi import is_available as mpi_available, mpi
from .arrivals import ArrivalBoard
from .work import abort_job, seconds

DEFAULT_TIMEOUT = timedelta(minutes=10)
NCCL_BACKENDS = ("nccl", "cpu:mpi,cuda:nccl")


class ProcessGroup:
    """A set of ranks with its own MPI communicator and collective sequence numbers."""

    def __init__(self, comm, ranks: list[int], name: str, timeout: float, slot: int, backend: str) -> None:
        self.comm = comm
        self.ranks = ranks            # global ranks, in group-rank order
        self.name = name
        self.timeout = timeout
        self.slot = slot              # row of the arrival board
        self.backend = backend
        self.cuda_backend = "nccl" if backend in NCCL_BACKENDS else "mpi"  # CPU tensors always go over MPI
        self.seq = 0
        self._group_rank = {g: i for i, g in enumerate(ranks)}
        self.nccl = None              # NCCL communicator, made on first CUDA collective

    def rank(self) -> int:
        return self.comm.Get_rank()

    def size(self) -> int:
        return self.comm.Get_size()

    def group_rank(self, global_rank: int) -> int:
        try:
            return self._group_rank[global_rank]
        except KeyError:
            raise ValueError(f"Global rank {global_rank} is not part of group {self.name} "
                             f"(ranks {self.ranks})") from None

    def __repr__(self) -> str:
        return f"<ProcessGroup {self.name} ranks={self.ranks} backend={self.backend}>"


class _GroupMember:
    WORLD: ProcessGroup | None = None
    NON_GROUP_MEMBER = object()


GroupMember = _GroupMember
group = _GroupMember


class _Runtime:
    def __init__(self) -> None:
        self.world: ProcessGroup | None = None
        self.board: ArrivalBoard | None = None
        self.groups: list[ProcessGroup] = []
        self.slots = 0                # board slots handed out: never reused, so rows stay one group's
        self.prev_excepthook = None
        self.detail = False  # TORCH_DISTRIBUTED_DEBUG=DETAIL, read once at init


RUNTIME = _Runtime()


def is_available() -> bool:
    return mpi_available()


def is_initialized() -> bool:
    return RUNTIME.world is not None


def is_mpi_available() -> bool:
    return is_available()


def is_nccl_available() -> bool:
    try:
        from cupy.cuda import nccl
    except Exception:
        return False
    return bool(getattr(nccl, "available", True))  # CuPy imports without NCCL and says so here


def init_process_group(backend: str | None = None, init_method: str | None = None, timeout=None,
                       world_size: int = -1, rank: int = -1, store=None, group_name: str = "", pg_options=None,
                       device_id=None) -> None:
    """Join the job's process group. backend: 'mpi' (default) or 'nccl' (CUDA tensors over NCCL)."""
    if RUNTIME.world is not None:
        raise ValueError("trying to initialize the default process group twice!")
    backend = (backend or "mpi").lower()
    if backend not in ("mpi", "nccl", "gloo", "cpu:mpi,cuda:nccl"):
        raise ValueError(f"Invalid backend: '{backend}'. dtorch supports 'mpi' and 'nccl'")
    if backend == "gloo":
        backend = "mpi"  # code written for torch's CPU backend runs over MPI here
    MPI = mpi()
    world = MPI.COMM_WORLD
    mpi_rank, mpi_size = world.Get_rank(), world.Get_size()
    checks = [("rank", rank, mpi_rank), ("world_size", world_size, mpi_size),
              ("RANK", int(os.environ.get("RANK", -1)), mpi_rank),
              ("WORLD_SIZE", int(os.environ.get("WORLD_SIZE", -1)), mpi_size)]
    for what, given, actual in checks:
        if given >= 0 and given != actual:
            raise RuntimeError(
                f"init_process_group: {what}={given} disagrees with MPI ({actual}); ranks come from MPI — "
                "launch with mpiexec -n N or srun --mpi=pmi2"
            )
    timeout_s = seconds(timeout if timeout is not None else DEFAULT_TIMEOUT)
    debug = os.environ.get("TORCH_DISTRIBUTED_DEBUG", os.environ.get("DTORCH_DISTRIBUTED_DEBUG", ""))
    RUNTIME.detail = debug.upper() == "DETAIL"
    RUNTIME.board = ArrivalBoard(world)
    comm = world.Dup()
    RUNTIME.world = ProcessGroup(comm, list(range(mpi_size)), "WORLD", timeout_s, 0, backend)
    RUNTIME.groups = [RUNTIME.world]
    RUNTIME.slots = 1
    _GroupMember.WORLD = RUNTIME.world
    _install_excepthook()
    leaving.install(RUNTIME)


def _install_excepthook() -> None:
    """An uncaught exception on any rank ends the whole job at once, naming the rank."""
    if RUNTIME.prev_excepthook is not None:
        return
    RUNTIME.prev_excepthook = sys.excepthook

    def hook(exc_type, exc, tb):
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        rank = get_rank() if RUNTIME.world is not None else -1
        sys.stderr.write("".join(f"[rank {rank}] {line}\n" for line in text.rstrip().splitlines()))
        leaving.leave(1, f"uncaught {exc_type.__name__}", f"uncaught {exc_type.__name__} on rank {rank}")
        abort_job(f"uncaught {exc_type.__name__} on rank {rank}")

    sys.excepthook = hook


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    if group is not None and group is not RUNTIME.world:
        if group in RUNTIME.groups:
            RUNTIME.groups.remove(group)
            group.comm.Free()
        return
    free_shared = leaving.depart() if RUNTIME.world is not None else False
    leaving.uninstall()
    for g in RUNTIME.groups:
        if g is None:
            continue
        try:
            g.comm.Free()
        except Exception:  # already freed by MPI finalisation
            pass
    if RUNTIME.board is not None and free_shared:  # a collective call: only when every node peer destroys
        RUNTIME.board.free()
    RUNTIME.world = None
    RUNTIME.board = None
    RUNTIME.groups = []
    _GroupMember.WORLD = None
    if RUNTIME.prev_excepthook is not None:
        sys.excepthook = RUNTIME.prev_excepthook
        RUNTIME.prev_excepthook = None


def _default() -> ProcessGroup:
    if RUNTIME.world is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group.")
    return RUNTIME.world


def resolve(group) -> ProcessGroup:
    return _default() if group is None else group


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank in ``group`` (-1 when it is not a member)."""
    if group is _GroupMember.NON_GROUP_MEMBER:
        return -1
    return resolve(group).rank()


def get_world_size(group: ProcessGroup | None = None) -> int:
    if group is _GroupMember.NON_GROUP_MEMBER:
        return -1
    return resolve(group).size()


def get_backend(group: ProcessGroup | None = None) -> str:
    return resolve(group).backend


def get_process_group_ranks(group: ProcessGroup) -> list[int]:
    return list(resolve(group).ranks)


def get_global_rank(group: ProcessGroup, group_rank: int) -> int:
    return resolve(group).ranks[group_rank]


def get_group_rank(group: ProcessGroup, global_rank: int) -> int:
    return resolve(group).group_rank(global_rank)


def new_group(ranks: list[int] | None = None, timeout=None, backend: str | None = None, pg_options=None,
              use_local_synchronization: bool = False, group_desc: str | None = None):
    """A subgroup; like torch, every process of the world must call it (members or not)."""
    world = _default()
    size = world.size()
    ranks = sorted(set(range(size) if ranks is None else ranks))
    for r in ranks:
        if not 0 <= r < size:
            raise ValueError(f"new_group: rank {r} is out of range for world size {size}")
    me = world.rank()
    MPI = mpi()
    comm = world.comm.Split(0 if me in ranks else MPI.UNDEFINED, key=ranks.index(me) if me in ranks else 0)
    slot = RUNTIME.slots
    RUNTIME.slots += 1
    if comm == MPI.COMM_NULL:
        RUNTIME.groups.append(None)  # keep slots aligned across ranks
        return _GroupMember.NON_GROUP_MEMBER
    t = seconds(timeout) if timeout is not None else world.timeout
    pg = ProcessGroup(comm, ranks, group_desc or f"group{slot}", t, slot, backend or world.backend)
    RUNTIME.groups.append(pg)
    return pg

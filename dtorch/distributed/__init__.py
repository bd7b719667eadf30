"""dtorch.distributed: torch.distributed's API over MPI (mpi4py) and NCCL (cupy.cuda.nccl).

No silent hangs: every wait has a deadline (the group's timeout, 10 minutes by default);
on expiry the rank names the collective, its sequence number, shape and dtype and the
ranks that never arrived, then aborts the whole job. An uncaught exception on any rank
after ``init_process_group`` also ends the job at once, naming the rank.

As torch's, the subpackages ``checkpoint`` and ``optim`` are imported on use
(``import dtorch.distributed.checkpoint as dcp``): they build on ``nn`` and ``optim``, which build on this.
"""
from ._launch_env import apply_launch_env, get_default_backend_for_device, is_torchelastic_launched  # noqa: F401
from .collectives import *  # noqa: F401,F403
from .objects import *  # noqa: F401,F403
from .process_group import (  # noqa: F401
    GroupMember, ProcessGroup, destroy_process_group, get_backend, get_global_rank, get_group_rank,
    get_process_group_ranks, get_rank, get_world_size, group, init_process_group, is_available, is_initialized,
    is_mpi_available, is_nccl_available, new_group,
)
from .reduce_op import ReduceOp  # noqa: F401
from .work import Work  # noqa: F401

Backend = type("Backend", (), {"MPI": "mpi", "NCCL": "nccl", "GLOO": "gloo"})

apply_launch_env()  # torchrun's RANK, LOCAL_RANK, WORLD_SIZE... under mpiexec/srun, before user code reads them

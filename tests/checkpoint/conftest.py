"""Distributed tests: collectives run under `mpiexec -n N python -m mpi4py -m pytest --with-mpi`."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def world():
    """The initialised default process group (one per MPI job)."""
    import dtorch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="mpi")
    return dist

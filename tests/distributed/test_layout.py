"""The package's shape, without MPI: one backend interface, subpackages imported on use (as torch's)."""
from __future__ import annotations

import inspect
import os
import pathlib
import subprocess
import sys

import pytest

from dtorch.distributed import collectives
from dtorch.distributed.mpi_backend import MPIBackend
from dtorch.distributed.nccl import NCCLBackend

ROOT = pathlib.Path(__file__).resolve().parents[2]
# what collectives.py hands to a backend (reduce_scatter_tensor goes to reduce_scatter; send/recv wait on isend/irecv)
OPS = [n for n in collectives.__all__ if n not in ("send", "recv", "monitored_barrier", "reduce_scatter_tensor")]


@pytest.mark.parametrize("name", OPS)
def test_both_backends_take_every_op_alike(name):
    mpi_op, nccl_op = getattr(MPIBackend, name), getattr(NCCLBackend, name)
    assert list(inspect.signature(mpi_op).parameters)[:2] == ["self", "pg"]
    assert list(inspect.signature(nccl_op).parameters) == list(inspect.signature(mpi_op).parameters)


def test_nccl_has_no_gather_or_scatter_so_its_backend_stages_them_over_mpi():
    assert NCCLBackend.gather is MPIBackend.gather and NCCLBackend.scatter is MPIBackend.scatter
    overridden = {n for n in OPS if getattr(NCCLBackend, n) is not getattr(MPIBackend, n)}
    assert overridden == set(OPS) - {"gather", "scatter"}


def test_checkpoint_and_optim_are_imported_on_use():
    code = ("import sys, dtorch, dtorch.distributed as dist\n"
            "assert not {'dtorch.distributed.checkpoint', 'dtorch.distributed.optim'} & set(sys.modules)\n"
            "import dtorch.distributed.checkpoint as dcp\n"
            "from dtorch.distributed.optim import ZeroRedundancyOptimizer\n"
            "assert dist.checkpoint is dcp and dist.optim.ZeroRedundancyOptimizer is ZeroRedundancyOptimizer\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0, p.stderr

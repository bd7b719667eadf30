"""A rank whose MPI_Abort hangs (MPICH's teardown did, once in many CI runs) still ends: after
DTORCH_ABORT_EXIT_S it exits with the abort's status, so mpiexec ends the job instead of leaving the peers to
the collective deadline. The hang is injected by replacing the communicator's Abort in a child process."""
from __future__ import annotations

import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]

CHILD = """
import threading, types
from dtorch.distributed import work
hang = threading.Event()
world = types.SimpleNamespace(Get_rank=lambda: 1, Abort=lambda code: hang.wait())  # MPI_Abort that never returns
work.mpi = lambda: types.SimpleNamespace(COMM_WORLD=world, Is_initialized=lambda: True, Is_finalized=lambda: False)
work.abort_job("rank 1 left", code=7)
"""


def test_a_hanging_abort_ends_the_rank_with_its_status():
    env = {"PYTHONPATH": str(ROOT), "DTORCH_ABORT_GRACE_S": "0", "DTORCH_ABORT_EXIT_S": "1"}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - start
    assert proc.returncode == 7, proc.stderr
    assert "[rank 1] dtorch.distributed: rank 1 left. Aborting the job." in proc.stderr
    assert 1 <= took < 30

"""A rank SIGKILLed during DDP (or DDP + ZeRO) training ends the whole job within seconds (own mpiexec)."""
from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))

pytestmark = pytest.mark.skipif(MPIEXEC is None or importlib.util.find_spec("mpi4py") is None,
                                reason="needs mpi4py and mpiexec (pip install 'dtorch[mpi]')")


def _kill_rank_1_at_step_20(tmp_path, optimizer: str, timeout: str = "") -> tuple[subprocess.CompletedProcess, float]:
    """Train 2 ranks with DDP and ``optimizer`` (a line defining ``opt``); rank 1 SIGKILLs itself at step 20."""
    script = tmp_path / "job.py"
    script.write_text(
        "import os, signal, dtorch, dtorch.distributed as dist\n"
        "from dtorch import nn\n"
        "from dtorch.nn.parallel import DistributedDataParallel as DDP\n"
        f"dist.init_process_group({timeout})\n"
        "ddp = DDP(nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)))\n"
        f"{optimizer}\n"
        "for step in range(10000):\n"
        "    if step == 20 and dist.get_rank() == 1:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    opt.zero_grad()\n"
        "    ddp(dtorch.randn(32, 64)).sum().backward()\n"
        "    opt.step()\n")
    start = time.monotonic()
    p = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return p, time.monotonic() - start


def test_killed_rank_during_ddp_training_ends_the_job(tmp_path):
    p, secs = _kill_rank_1_at_step_20(tmp_path, "opt = dtorch.optim.SGD(ddp.parameters(), lr=0.01)")
    assert p.returncode != 0 and secs < 20, p.stdout + p.stderr


@pytest.mark.parametrize("comm", ["mpi", "shm"], ids=["collectives", "shared"])  # an "mpi" id would skip it
def test_killed_rank_during_zero_training_ends_the_job(tmp_path, comm):
    opt = (f"opt = dist.optim.ZeroRedundancyOptimizer(ddp.parameters(), dtorch.optim.SGD, comm={comm!r}, lr=0.01)"
           "; opt.attach(ddp)")
    p, secs = _kill_rank_1_at_step_20(tmp_path, opt, timeout="timeout=20")
    assert p.returncode != 0 and secs < 30, p.stdout + p.stderr

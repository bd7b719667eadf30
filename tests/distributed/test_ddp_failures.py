"""A rank SIGKILLed during DDP (or DDP + ZeRO) training ends the whole job within seconds; a rank that stops
short of backward makes the other time out naming it (own mpiexec)."""
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


KILL = "os.kill(os.getpid(), signal.SIGKILL)"


def _stop_rank_1_at_step_20(tmp_path, optimizer: str, timeout: str = "", stop: str = KILL,
                            env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """Train 2 ranks with DDP and ``optimizer`` (a line defining ``opt``); rank 1 runs ``stop`` (by default
    SIGKILLs itself) at step 20, before its forward."""
    script = tmp_path / "job.py"
    script.write_text(
        "import os, signal, time, dtorch, dtorch.distributed as dist, dtorch.distributed.optim\n"
        "from dtorch import nn\n"
        "from dtorch.nn.parallel import DistributedDataParallel as DDP\n"
        f"dist.init_process_group({timeout})\n"
        "ddp = DDP(nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)))\n"
        f"{optimizer}\n"
        "for step in range(10000):\n"
        "    if step == 20 and dist.get_rank() == 1:\n"
        f"        {stop}\n"
        "    opt.zero_grad()\n"
        "    ddp(dtorch.randn(32, 64)).sum().backward()\n"
        "    opt.step()\n")
    start = time.monotonic()
    p = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))
    return p, time.monotonic() - start


def test_killed_rank_during_ddp_training_ends_the_job(tmp_path):
    p, secs = _stop_rank_1_at_step_20(tmp_path, "opt = dtorch.optim.SGD(ddp.parameters(), lr=0.01)")
    assert p.returncode != 0 and secs < 20, p.stdout + p.stderr


@pytest.mark.parametrize("comm", ["mpi", "shm"], ids=["collectives", "shared"])  # an "mpi" id would skip it
def test_killed_rank_during_zero_training_ends_the_job(tmp_path, comm):
    opt = (f"opt = dist.optim.ZeroRedundancyOptimizer(ddp.parameters(), dtorch.optim.SGD, comm={comm!r}, lr=0.01)"
           "; opt.attach(ddp)")
    p, secs = _stop_rank_1_at_step_20(tmp_path, opt, timeout="timeout=20")
    assert p.returncode != 0 and secs < 30, p.stdout + p.stderr


def test_rank_that_never_reaches_backward_is_named_by_shm_ddp(tmp_path):
    """The shared-window averaging waits on flags, not a collective: its deadline still names the missing rank."""
    opt = "opt = dtorch.optim.SGD(ddp.parameters(), lr=0.01)"
    p, secs = _stop_rank_1_at_step_20(tmp_path, opt, timeout="timeout=5", stop="time.sleep(300)",
                                      env={"DTORCH_DDP_COMM": "shm"})
    assert p.returncode != 0 and secs < 40, p.stdout + p.stderr
    assert "[rank 0] dtorch.distributed: timed out after 5.0 s waiting for DDP gradient averaging" in p.stderr, p.stderr
    assert "rank 1 has not published its gradient" in p.stderr and "ranks not arrived: [1]" in p.stderr, p.stderr

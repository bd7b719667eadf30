"""No silent hangs: timeouts, a raising rank, a killed rank and DETAIL mismatches end the job with a message."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))

pytestmark = pytest.mark.skipif(MPIEXEC is None or not __import__("importlib").util.find_spec("mpi4py"),
                                reason="needs mpi4py and mpiexec (pip install 'dtorch[mpi]')")

PRELUDE = """
import datetime, os, signal, sys, time
import dtorch, dtorch.distributed as dist
dist.init_process_group(timeout=datetime.timedelta(seconds=float(os.environ.get("T", "3"))))
r = dist.get_rank()
dist.all_reduce(dtorch.ones(1))
"""


def _run(tmp_path, body: str, n: int = 2, env: dict | None = None, limit: float = 60) -> tuple[int, str, float]:
    script = tmp_path / "job.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    e = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    start = time.monotonic()
    p = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, str(script)], capture_output=True, text=True,
                       timeout=limit, env=e)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - start


def test_timeout_names_collective_and_missing_rank(tmp_path):
    rc, out, secs = _run(tmp_path, """
        if r == 0:
            dist.all_reduce(dtorch.ones(5, dtype=dtorch.float64))
        else:
            time.sleep(60)
    """, env={"T": "2"})
    assert rc != 0 and secs < 30
    assert "timed out after 2.0 s waiting for all_reduce (seq 2, shape [5], dtype float64" in out
    assert "ranks not arrived: [1]" in out and "rank 1 last entered seq 1 (all_reduce)" in out


def test_raising_rank_ends_the_job_naming_it(tmp_path):
    rc, out, secs = _run(tmp_path, """
        if r == 1:
            raise ValueError("boom on rank 1")
        dist.all_reduce(dtorch.ones(5))
    """, env={"T": "300"})
    assert rc != 0 and secs < 20
    assert "[rank 1] ValueError: boom on rank 1" in out and "uncaught ValueError on rank 1" in out


def test_killed_rank_ends_the_job(tmp_path):
    rc, out, secs = _run(tmp_path, """
        if r == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        dist.all_reduce(dtorch.ones(5))
    """, env={"T": "300"})
    assert rc != 0 and secs < 20


def test_detail_mode_reports_the_mismatch_field_by_field(tmp_path):
    rc, out, _ = _run(tmp_path, """
        dist.all_reduce(dtorch.ones(4 + r))
    """, env={"TORCH_DISTRIBUTED_DEBUG": "DETAIL", "T": "20"})
    assert rc != 0
    assert "Detected mismatch between collectives on ranks (seq 2, group WORLD): shape: rank 0 has '[4]', " \
           "rank 1 has '[5]'" in out


def test_three_ranks_timeout_lists_every_missing_rank(tmp_path):
    rc, out, _ = _run(tmp_path, """
        if r == 0:
            dist.barrier()
        else:
            time.sleep(60)
    """, n=3, env={"T": "2"})
    assert rc != 0 and "ranks not arrived: [1, 2]" in out

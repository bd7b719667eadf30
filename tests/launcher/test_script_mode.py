"""dtorch-run SCRIPT.py: a plain torchrun-style script on N ranks under mpiexec (also through
``python -m dtorch.distributed.run``), with its arguments, rank-prefixed whole lines, and a leaving rank named."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dtorch.distributed.run import command
from tests.launcher.launcher_helpers import ROOT, clean_env

mpi = pytest.importorskip("mpi4py")

SCRIPT = """
import os, sys
import dtorch as torch
import dtorch.distributed as dist
from dtorch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group(backend="gloo")
rank = int(os.environ["RANK"])
model = DDP(torch.nn.Linear(4, 1))
for step in range(3):
    if step == 1 and "--fail" in sys.argv and rank == 1:
        sys.exit(3)
    model(torch.randn(3, 4)).sum().backward()
print(f"rank {rank} of {os.environ['WORLD_SIZE']} args {sys.argv[1:]} name {__name__}")
dist.destroy_process_group()
"""


def _run(tmp_path, *args: str, module: bool = False) -> tuple[subprocess.CompletedProcess, float]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    head = [sys.executable, "-m", "dtorch.distributed.run"] if module else [sys.executable, "-m", "dtorch.launcher"]
    start = time.monotonic()
    p = subprocess.run([*head, *[str(script) if a == "SCRIPT" else a for a in args]], cwd=tmp_path,
                       env=clean_env(PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=180)
    return p, time.monotonic() - start


def test_script_runs_on_two_ranks_with_its_arguments(tmp_path):
    p, _ = _run(tmp_path, "--nproc", "2", "SCRIPT", "--lr", "0.1")
    assert p.returncode == 0, p.stdout + p.stderr
    lines = sorted(line for line in p.stdout.splitlines() if "args" in line)
    assert lines == [f"[rank {r}] rank {r} of 2 args ['--lr', '0.1'] name __main__" for r in (0, 1)], p.stdout


def test_torchrun_module_name_and_flags(tmp_path):
    p, _ = _run(tmp_path, "--standalone", "--nnodes=1", "--nproc-per-node=2", "--rdzv-backend", "c10d", "SCRIPT",
                module=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("of 2 args [] name __main__") == 2


def test_a_rank_that_exits_is_named(tmp_path):
    p, secs = _run(tmp_path, "--nproc", "2", "SCRIPT", "--fail")
    assert p.returncode == 1 and secs < 60, p.stdout + p.stderr
    assert "rank 1" in p.stderr and "train.py failed" in p.stderr, p.stderr


def test_dry_run_and_usage_errors(tmp_path):
    p, _ = _run(tmp_path, "--nproc", "3", "--dry-run", "SCRIPT", "x")
    assert p.returncode == 0 and "-n 3" in p.stdout and "dtorch.launcher.script --as-rank" in p.stdout
    missing = subprocess.run([sys.executable, "-m", "dtorch.launcher", "nope.py"], cwd=tmp_path,
                             env=clean_env(PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "nope.py: no such script" in missing.stderr


def test_torchrun_command_translation():
    assert command(["--nproc_per_node", "2", "--rdzv_id=5", "t.py", "--x", "1"])[3:] == [
        "--nproc_per_node", "2", "t.py", "--x", "1"]

"""Against the single-node dev cluster (slurm/dev-cluster.sh start): submit, srun, salloc, --mpi=none, requeue."""
from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import time

import pytest
from launcher_helpers import ROOT, TINY, clean_env, dtorch_run


@functools.cache
def _slurm_state() -> str:
    """'' when a Slurm node is idle, else why not (sinfo retries ~9 s against a dead controller: cap it)."""
    if shutil.which("sinfo") is None:
        return "Slurm is not installed"
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=3)
    except subprocess.TimeoutExpired:
        return "the Slurm controller did not answer in 3 s"
    states = r.stdout.split()
    if r.returncode != 0 or not any(s in ("idle", "mixed") for s in states):
        return f"no idle Slurm node (sinfo: {r.stderr.strip() or ' '.join(states) or 'nothing'})"
    return ""


pytestmark = pytest.mark.slurm


@pytest.fixture(autouse=True)
def _needs_slurm():
    """Checked only when a slurm test runs (not at collection: other phases deselect these tests)."""
    if _slurm_state():
        pytest.skip(f"Slurm is not running here: {_slurm_state()} (start it as root: slurm/dev-cluster.sh start)")


def _wait_gone(job_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True)
        if not r.stdout.strip():
            return
        time.sleep(0.3)
    subprocess.run(["scancel", job_id])
    pytest.fail(f"job {job_id} still queued/running after {timeout} s")


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_dev_cluster_is_up():
    r = subprocess.run([str(ROOT / "slurm" / "dev-cluster.sh"), "status"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "slurmctld pid" in r.stdout and "slurmd    pid" in r.stdout


def test_submit_tiny_job_completes(tmp_path):
    start = time.monotonic()
    r = dtorch_run("submit", str(TINY), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    assert job_id.isdigit()
    _wait_gone(job_id, 60)
    result = json.loads((tmp_path / "runs" / f"t-{job_id}" / "result.json").read_text())
    assert result["world_size"] == 2 and result["result"]["sum"] == 3.0
    status = dtorch_run("status", job_id, cwd=tmp_path)
    assert status.returncode == 0 and "COMPLETED" in status.stdout
    logs = dtorch_run("logs", job_id, cwd=tmp_path)
    assert f"[dtorch] job {job_id} restart 0" in logs.stdout and "2 ranks via srun" in logs.stdout
    print(f"submit -> completed in {time.monotonic() - start:.1f} s")


def test_script_carries_the_slurm_options(tmp_path):
    r = dtorch_run("submit", str(TINY), "--set", "slurm.extra=['--comment=dtorch-test']", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    _wait_gone(r.stdout.strip(), 60)
    (script,) = (tmp_path / "runs" / "slurm").glob("*.sbatch")
    text = script.read_text()
    for line in ("#SBATCH --ntasks-per-node=2", "#SBATCH --signal=B:USR1@90", "#SBATCH --requeue",
                 "#SBATCH --comment=dtorch-test"):
        assert line in text


def test_srun_pmi2_gives_one_world():
    code = "from mpi4py import MPI; c = MPI.COMM_WORLD; print(c.Get_rank(), c.Get_size())"
    r = subprocess.run(["srun", "--mpi=pmi2", "-n", "2", sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=60, env=clean_env())
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split("\n")[:2]) == ["0 2", "1 2"]


def test_srun_mpi_none_is_refused(tmp_path):
    r = subprocess.run(["srun", "--mpi=none", "-n", "2", sys.executable, "-m", "dtorch.launcher", str(TINY)],
                       capture_output=True, text=True, timeout=60, env=clean_env(), cwd=tmp_path)
    assert r.returncode == 2
    assert "each one sees an MPI world of 1 rank" in r.stderr and "srun --mpi=pmi2" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_inside_an_allocation_starts_srun(tmp_path):
    r = subprocess.run(["salloc", "-n", "2", sys.executable, "-m", "dtorch.launcher", str(TINY)], capture_output=True,
                       text=True, timeout=60, env=clean_env(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2 ranks via srun" in r.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "result.json").read_text())["world_size"] == 2


def test_usr1_requeues_the_job(tmp_path):
    """The batch script passes SIGUSR1 (as --signal=B:USR1@90 would send it) to the ranks, then requeues."""
    r = dtorch_run("submit", str(TINY), "--set", "model.sleep=60", cwd=tmp_path)
    job_id = r.stdout.strip()
    run_dir = tmp_path / "runs" / f"t-{job_id}"
    _wait_for(lambda: all((run_dir / f"started{r}").exists() for r in (0, 1)), 30, "the ranks to start")
    start = time.monotonic()
    subprocess.run(["scancel", "--batch", "--signal=USR1", job_id], check=True)
    _wait_for(lambda: (run_dir / "result.json").exists(), 90, "the requeued job to finish")
    _wait_gone(job_id, 30)
    assert json.loads((run_dir / "rank0.json").read_text())["restart"] == 1
    assert "requeueing job" in dtorch_run("logs", job_id, cwd=tmp_path).stdout
    print(f"USR1 -> requeued run finished in {time.monotonic() - start:.1f} s")

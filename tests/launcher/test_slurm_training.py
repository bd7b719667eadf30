"""The default job under the dev cluster's Slurm: submitted, it completes; USR1 requeues it and it resumes exactly."""
from __future__ import annotations

import json
import subprocess
import time

import pytest
from launcher_helpers import ROOT, dtorch_run
from test_slurm import _needs_slurm, _wait_for, _wait_gone  # noqa: F401  (the fixture skips without Slurm)

pytestmark = pytest.mark.slurm
CONFIG = str(ROOT / "configs" / "digits_mlp.yaml")
LONG = ["--set", "train.epochs=null", "--set", "train.max_steps=6000", "--set", "train.log_every=10",
        "--set", "checkpoint.every_steps=400"]


def _result(run_dir) -> dict:
    path = run_dir / "result.json"
    return json.loads(path.read_text())["result"] if path.exists() else {}


def _weights(run_dir, step: int) -> bytes:
    return (run_dir / "checkpoints" / f"step_{step:08d}" / "model.safetensors").read_bytes()


def test_submitted_default_job_completes(tmp_path):
    r = dtorch_run("submit", CONFIG, "--set", "train.epochs=null", "--set", "train.max_steps=50", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    _wait_gone(job_id, 60)
    run_dir = tmp_path / "runs" / f"digits-mlp-{job_id}"
    assert _result(run_dir)["step"] == 50
    assert (run_dir / "metrics.jsonl").exists() and (run_dir / "loss.png").exists()
    logs = dtorch_run("logs", job_id, cwd=tmp_path).stdout
    assert "[rank 0] summary: step 50/50" in logs and "first step done" in logs


def test_usr1_requeue_resumes_with_the_same_final_weights(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    r = dtorch_run(CONFIG, *LONG, cwd=local, timeout=180)  # 6000 steps: about a minute on 2 cores
    assert r.returncode == 0, r.stderr
    (local_dir,) = (local / "runs").iterdir()

    r = dtorch_run("submit", CONFIG, *LONG, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    run_dir = tmp_path / "runs" / f"digits-mlp-{job_id}"
    metrics = run_dir / "metrics.jsonl"
    _wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 20, 120, "200 steps")
    subprocess.run(["scancel", "--batch", "--signal=USR1", job_id], check=True)
    start = time.monotonic()
    _wait_for(lambda: _result(run_dir).get("step") == 6000, 180, "the requeued job to finish")
    _wait_gone(job_id, 30)
    logs = dtorch_run("logs", job_id, cwd=tmp_path).stdout
    assert "stopped by SIGUSR1 after step" in logs and "requeueing job" in logs, logs
    assert f"[dtorch] job {job_id} restart 1" in logs and "resumed from" in logs, logs
    assert _weights(run_dir, 6000) == _weights(local_dir, 6000)
    print(f"USR1 -> requeued, resumed and finished in {time.monotonic() - start:.1f} s")

"""dtorch-run end to end: exit codes, messages without tracebacks, dry runs per environment, a real 2-rank run."""
from __future__ import annotations

import importlib.util
import json
import shlex

import pytest
from launcher_helpers import ROOT, TINY, clean_env, dtorch_run

from dtorch.launcher import launch, schema

HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and launch.find_mpiexec(clean_env()) is not None


def test_config_error_exits_2_without_traceback(tmp_path):
    r = dtorch_run(str(TINY), "--set", "train.max_step=3", "--set", "distributed.backend=gloo", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "dtorch-run: train.max_step: unknown key; did you mean train.max_steps?",
        "dtorch-run: distributed.backend: expected one of 'mpi', 'nccl', got 'gloo'",
    ]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args,message", [
    ([], "the following arguments are required: config"),
    (["missing.yaml"], "dtorch-run: missing.yaml: no such config file"),
    (["status", "abc"], "dtorch-run: 'abc' is not a Slurm job id"),
    ([str(TINY), "--nproc", "x"], "argument --nproc/-n: invalid int value: 'x'"),
    ([str(TINY), "--set", "job=no_such_job"],
     "dtorch-run: job: 'no_such_job' names dtorch.jobs.no_such_job, which does not exist"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    r = dtorch_run(*args, cwd=tmp_path)
    assert (r.returncode, message in r.stderr, "Traceback" in r.stderr) == (2, True, False), r.stderr


def _dry_run(tmp_path, **env):
    r = dtorch_run(str(TINY), "--nproc", "3", "--dry-run", cwd=tmp_path, env=clean_env(**env))
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_dry_run_plain_uses_mpiexec(tmp_path):
    out = _dry_run(tmp_path)
    assert "nproc: 3" in out and "\njob: dtorch_test_jobs.allreduce\n" in out
    cmd = shlex.split(out.split("# command:\n", 1)[1])
    assert cmd[0].startswith("DTORCH_RUN_DIR=" + str(tmp_path / "runs" / "t"))
    i = next(i for i, c in enumerate(cmd) if c.endswith("mpiexec"))
    assert cmd[i + 1:i + 3] == ["-n", "3"]
    assert cmd[i + 4:i + 8] == ["-m", "mpi4py", "-m", "dtorch.launcher"] and cmd[-1].endswith("/config.yaml")
    assert not (tmp_path / "runs").exists()


def test_dry_run_in_allocation_uses_srun(tmp_path):
    out = _dry_run(tmp_path, SLURM_JOB_ID="42", SLURM_CPUS_PER_TASK="2")
    cmd = shlex.split(out.split("# command:\n", 1)[1])
    i = cmd.index("srun")
    assert cmd[i:i + 5] == ["srun", "--mpi=pmi2", "--ntasks=3", "--kill-on-bad-exit=1", "--cpus-per-task=2"]
    assert cmd[-1] == "runs/t-42/config.yaml" and "OMP_NUM_THREADS=2" in cmd


@pytest.mark.parametrize("env", [{"PMI_RANK": "0", "PMI_SIZE": "2"}, {"SLURM_JOB_ID": "4", "SLURM_STEP_ID": "0"}])
def test_dry_run_inside_a_launch_is_a_rank(tmp_path, env):
    assert "this process would run as one rank" in _dry_run(tmp_path, **env)


def test_bare_config_name_finds_configs_dir(tmp_path):
    r = dtorch_run("digits_mlp", "--dry-run", cwd=tmp_path)
    assert r.returncode == 0 and "name: digits-mlp" in r.stdout


def test_schema_doc_matches_code():
    readme = (ROOT / "launcher" / "README.md").read_text(encoding="utf-8")
    assert schema.markdown() in readme


@pytest.mark.skipif(not HAVE_MPI, reason="mpi4py/mpiexec missing: pip install -e '.[mpi]'")
def test_two_rank_run_writes_results(tmp_path):
    r = dtorch_run(str(TINY), "--set", "train.seed=5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["world_size"] == 2 and result["result"]["sum"] == 3.0
    ranks = [json.loads((run_dir / f"rank{i}.json").read_text()) for i in range(2)]
    assert [x["rank"] for x in ranks] == [0, 1]
    assert ranks[0]["seed_draw"] == ranks[1]["seed_draw"]  # same seed on every rank
    assert "seed: 5" in (run_dir / "config.yaml").read_text()


@pytest.mark.skipif(not HAVE_MPI, reason="mpi4py/mpiexec missing: pip install -e '.[mpi]'")
def test_failing_rank_exits_1(tmp_path):
    r = dtorch_run(str(TINY), "--set", "model.fail_rank=1", cwd=tmp_path, timeout=60)
    assert r.returncode == 1
    assert "planned failure on rank 1" in r.stderr and "dtorch-run: t failed" in r.stderr

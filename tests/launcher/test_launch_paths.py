"""Which launch path each environment takes, and the exact command built for it."""
from __future__ import annotations

import os
import pathlib
import sys

import pytest

from dtorch.launcher import launch, worker
from dtorch.launcher.errors import ConfigError

CFG = {"name": "t", "output_dir": "runs", "distributed": {"nproc": 2}}
INNER = [sys.executable, "-m", "mpi4py", "-m", "dtorch.launcher", "runs/t/config.yaml"]


@pytest.mark.parametrize("env,mode", [
    ({}, launch.MPIEXEC),                                                  # plain shell
    ({"PMI_RANK": "0", "PMI_SIZE": "2"}, launch.WORKER),                   # inside mpiexec (MPICH/Hydra)
    ({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}, launch.WORKER),  # inside Open MPI's mpirun
    ({"PMIX_RANK": "0"}, launch.WORKER),                                   # PMIx launchers
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "2"}, launch.SRUN),             # sbatch script / salloc shell
    ({"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0", "PMI_RANK": "1"}, launch.WORKER),  # srun --mpi=pmi2 step
    ({"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0"}, launch.WORKER),          # srun --mpi=none step (refused later)
    ({"SLURM_JOB_ID": "7", "PMI_RANK": "0", "PMI_SIZE": "2"}, launch.WORKER),  # mpiexec inside an allocation
], ids=["plain", "mpiexec", "openmpi", "pmix", "allocation", "step", "step-mpi-none", "mpiexec-in-allocation"])
def test_detect(env, mode):
    assert launch.detect(env) == mode


def test_mpiexec_command_prefers_the_one_beside_python(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mpiexec").write_text("#!/bin/sh\n")
    (fake / "mpiexec").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake / "python"))
    cmd = launch.launch_command(launch.MPIEXEC, 4, "runs/t/config.yaml", {"PATH": "/nonexistent"})
    assert cmd == [str(fake / "mpiexec"), "-n", "4", str(fake / "python"), "-m", "mpi4py", "-m", "dtorch.launcher",
                   "runs/t/config.yaml"]


def test_mpiexec_missing_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(ConfigError, match="mpiexec not found"):
        launch.launch_command(launch.MPIEXEC, 2, "c.yaml", {"PATH": str(tmp_path)})


def test_srun_command_inside_allocation():
    env = {"SLURM_JOB_ID": "7", "SLURM_CPUS_PER_TASK": "4"}
    assert launch.launch_command(launch.SRUN, 2, "runs/t/config.yaml", env) == [
        "srun", "--mpi=pmi2", "--ntasks=2", "--kill-on-bad-exit=1", "--cpus-per-task=4", *INNER]
    assert launch.launch_command(launch.SRUN, 3, "runs/t/config.yaml", {"SLURM_JOB_ID": "7"})[:4] == [
        "srun", "--mpi=pmi2", "--ntasks=3", "--kill-on-bad-exit=1"]


def test_no_command_for_a_rank():
    with pytest.raises(ValueError):
        launch.launch_command(launch.WORKER, 2, "c.yaml", {})


def test_run_dir_names(tmp_path):
    cfg = dict(CFG, output_dir=str(tmp_path))
    assert launch.run_dir_for(cfg, {"SLURM_JOB_ID": "42"}) == tmp_path / "t-42"
    first = launch.run_dir_for(cfg, {}, now=0)
    first.mkdir()
    assert launch.run_dir_for(cfg, {}, now=0) == pathlib.Path(f"{first}-2")


def test_rank_env_threads():
    env = launch.rank_env(CFG, pathlib.Path("runs/t"), {"PYTHONPATH": "/x"})
    assert env["DTORCH_RUN_DIR"] == str(pathlib.Path("runs/t").resolve())
    assert "PYTHONPATH" not in env  # the ranks import the installed dtorch, as the launcher did
    assert env["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))
    slurm = launch.rank_env(CFG, pathlib.Path("r"), {"SLURM_CPUS_PER_TASK": "3", "OMP_NUM_THREADS": "8"})
    assert (slurm["OPENBLAS_NUM_THREADS"], "OMP_NUM_THREADS" in slurm) == ("3", False)


@pytest.mark.parametrize("world,env,refused", [
    (1, {"SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "2", "SLURM_NTASKS": "2"}, True),   # srun --mpi=none -n 2
    (2, {"SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "2", "PMI_RANK": "0"}, False),     # srun --mpi=pmi2 -n 2
    (1, {"SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "1"}, False),                      # srun -n 1
    (2, {"SLURM_STEP_ID": "1", "SLURM_STEP_NUM_TASKS": "1", "PMI_RANK": "1"}, False),     # mpiexec in allocation
    (1, {"SLURM_NTASKS": "4"}, False),                                                     # batch step, no srun
])
def test_srun_mpi_none_is_refused(world, env, refused):
    problem = worker.mpi_none_problem(world, env)
    assert (problem is not None) == refused
    if refused:
        assert "srun started 2 tasks, but each one sees an MPI world of 1 rank" in problem
        assert "srun --mpi=pmi2" in problem


def test_job_module():
    assert launch.job_module("digits_mlp") == launch.job_module("digits_mlp:train") == "dtorch.jobs.digits_mlp"
    assert launch.job_module("pkg.mod:fn") == "pkg.mod"
    assert not launch.bundled_job_missing("digits_mlp") and launch.bundled_job_missing("no_such_job")
    assert not launch.bundled_job_missing("pkg.mod")  # a user's module: imported (and checked) on the ranks


def test_a_requeued_job_spends_the_step_ids_of_earlier_runs():
    assert launch.spent_step_commands({"SLURM_JOB_ID": "7"}) == []
    assert launch.spent_step_commands({"SLURM_JOB_ID": "7", "SLURM_RESTART_COUNT": "2"}) == [
        ["srun", "--ntasks=1", "--mpi=none", "true"]] * 2

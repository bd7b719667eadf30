"""Where are we, and what command starts the ranks from here?

* inside an MPI or Slurm step launch (PMI_*, OMPI_*, SLURM_STEP_ID): this process is a rank;
* inside a Slurm allocation without a step (sbatch script, salloc shell): ``srun --mpi=pmi2``;
* anywhere else: ``mpiexec -n N`` of the environment's MPI (the ``mpich`` wheel's, next to python).

Everything here is a pure function of the environment mapping, so tests can build each case.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Mapping

from .errors import ConfigError

JOBS_PACKAGE = "dtorch.jobs"

WORKER = "worker"
SRUN = "srun"
MPIEXEC = "mpiexec"

# Set for every rank by MPICH/Intel MPI (PMI_*), PMIx (PMIX_RANK), Open MPI (OMPI_*) or an srun step.
RANK_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_ID")


def detect(env: Mapping[str, str]) -> str:
    """WORKER, SRUN or MPIEXEC for this environment."""
    if any(v in env for v in RANK_VARS):
        return WORKER
    if "SLURM_JOB_ID" in env:
        return SRUN
    return MPIEXEC


def find_mpiexec(env: Mapping[str, str]) -> str | None:
    """The mpiexec beside this python (a venv's mpich wheel) first, then PATH."""
    here = os.path.dirname(sys.executable)
    return shutil.which("mpiexec", path=here + os.pathsep + env.get("PATH", os.defpath))


def rank_command(config_path: str | Path) -> list[str]:
    """What every rank runs. ``-m mpi4py`` makes an exception on one rank abort the whole job."""
    return [sys.executable, "-m", "mpi4py", "-m", "dtorch.launcher", str(config_path)]


def launch_command(mode: str, nproc: int, config_path: str | Path, env: Mapping[str, str]) -> list[str]:
    """The command that starts ``nproc`` ranks from here (mode SRUN or MPIEXEC)."""
    inner = rank_command(config_path)
    if mode == SRUN:
        cmd = ["srun", "--mpi=pmi2", f"--ntasks={nproc}", "--kill-on-bad-exit=1"]
        if env.get("SLURM_CPUS_PER_TASK"):  # srun (22.05+) no longer inherits it from the allocation
            cmd.append(f"--cpus-per-task={env['SLURM_CPUS_PER_TASK']}")
        return cmd + inner
    if mode == MPIEXEC:
        mpiexec = find_mpiexec(env)
        if mpiexec is None:
            raise ConfigError("mpiexec not found: install MPI with `pip install mpi4py mpich` (or '.[mpi]')")
        return [mpiexec, "-n", str(nproc), *inner]
    raise ValueError(f"no launch command in mode {mode!r}")


def spent_step_commands(env: Mapping[str, str]) -> list[list[str]]:
    """Empty steps to run before the real one when Slurm restarts a requeued job.

    Step ids start again at 0 after a requeue, and MPICH names its shared-memory segments after
    the PMI job id ("JOBID.STEP"): ranks killed in the previous run leave theirs in /dev/shm, and
    a new step with the same id fails in MPI_Init ("Message truncated"). Run r uses step r.
    """
    restarts = int(env.get("SLURM_RESTART_COUNT") or 0)
    return [["srun", "--ntasks=1", "--mpi=none", "true"]] * restarts


def rank_env(cfg: dict, run_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Variables added for the ranks: the run directory and one BLAS thread count."""
    out = {"DTORCH_RUN_DIR": str(run_dir.resolve())}
    # N ranks each running a multi-threaded BLAS on the same cores slow each other down.
    cpus = env.get("SLURM_CPUS_PER_TASK") or str(max(1, (os.cpu_count() or 1) // cfg["distributed"]["nproc"]))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if var not in env:
            out[var] = cpus
    return out


def run_dir_for(cfg: dict, env: Mapping[str, str], now: float | None = None) -> Path:
    """OUTPUT_DIR/NAME-SLURMJOBID inside Slurm (stable across requeues), else OUTPUT_DIR/NAME-TIMESTAMP."""
    base = Path(cfg["output_dir"])
    if env.get("SLURM_JOB_ID"):
        return base / f"{cfg['name']}-{env['SLURM_JOB_ID']}"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    path = base / f"{cfg['name']}-{stamp}"
    n = 2
    while path.exists():
        path = base / f"{cfg['name']}-{stamp}-{n}"
        n += 1
    return path


LATEST = "latest"  # `--resume` without a directory


def previous_run_dirs(cfg: dict) -> list[Path]:
    """This config's run directories under OUTPUT_DIR (NAME-TIMESTAMP[-N], NAME-SLURMJOBID), newest first."""
    base = Path(cfg["output_dir"])
    pattern = re.compile(re.escape(cfg["name"]) + r"-(\d{8}-\d{6}(-\d+)?|\d+)")
    found = [p for p in base.glob(f"{cfg['name']}-*") if pattern.fullmatch(p.name) and (p / "config.yaml").is_file()]
    return sorted(found, key=lambda p: (p / "config.yaml").stat().st_mtime, reverse=True)


def resume_dir(cfg: dict, resume: str, env: Mapping[str, str]) -> Path | None:
    """The run directory ``--resume [RUN_DIR]`` continues: RUN_DIR, or this config's newest one.

    None (a fresh run) when there is no earlier run of this name, and inside Slurm, where the run
    directory is already stable across requeues (NAME-SLURMJOBID).
    """
    if env.get("SLURM_JOB_ID"):
        return None
    if resume != LATEST:
        path = Path(resume)
        if not (path / "config.yaml").is_file():
            raise ConfigError(f"--resume {resume}: not a run directory (no config.yaml in it)")
        return path
    found = previous_run_dirs(cfg)
    return found[0] if found else None


def job_module(job: str) -> str:
    """The module a config's ``job`` names: ``NAME`` -> dtorch.jobs.NAME, ``pkg.module[:function]`` -> pkg.module."""
    name = job.split(":", 1)[0]
    return name if "." in name else f"{JOBS_PACKAGE}.{name}"


def bundled_job_missing(job: str) -> bool:
    """True when ``job`` is a bare name with no module in dtorch.jobs (a dotted path is checked on the ranks)."""
    name = job.split(":", 1)[0]
    return "." not in name and importlib.util.find_spec(job_module(name)) is None

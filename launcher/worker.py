"""One rank of a job: join the process group, seed, call the job's ``main(config)``.

In order: MPI starts (``from mpi4py import MPI``); this rank's output gets its ``[rank R] `` prefix;
the process group starts; SIGUSR1/SIGTERM handlers are installed (jobs/stop_signals.py: after MPI
start-up, whose SIGUSR1 handler would otherwise replace ours, and before the job is imported); the
pid goes to RUN_DIR/.ranks/ (launcher/rank_watch.py); the job is imported and called.

The job receives the resolved config plus a ``run`` section it may read:
``{"dir": run directory, "rank", "world_size", "local_rank", "restart": Slurm restart count}``.
Rank 0 writes the job's returned dict to RUN_DIR/result.json.
"""
from __future__ import annotations

import importlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from ..jobs import stop_signals as signals
from . import rank_output, rank_watch, yamlio
from .errors import ConfigError
from .launch import job_module, run_dir_for


def mpi_none_problem(world_size: int, env: Mapping[str, str]) -> str | None:
    """`srun --mpi=none -n N` starts N unrelated one-rank MPI jobs; say so instead of training N times."""
    if "SLURM_STEP_ID" not in env or world_size != 1:
        return None
    tasks = int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or 1)
    if tasks <= 1:
        return None
    return (f"srun started {tasks} tasks, but each one sees an MPI world of 1 rank: the step has no PMI "
            "(srun --mpi=none, or MpiDefault=none in slurm.conf). Launch with `srun --mpi=pmi2`, "
            "or run `dtorch-run CONFIG` inside the allocation and it will.")


def load_job(entry: str) -> Callable[[dict], Any]:
    """`name` -> dtorch.jobs.name's main; `pkg.module[:function]` -> that function (default main)."""
    module_name, func = job_module(entry), entry.partition(":")[2]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):  # the job itself is missing, not one of its imports
            raise ConfigError(f"job: cannot import {module_name!r} (from job: {entry!r})") from None
        raise
    fn = getattr(module, func or "main", None)
    if not callable(fn):
        raise ConfigError(f"job: {module_name} has no function {func or 'main'}(config)")
    return fn


def _seed(seed: int) -> None:
    import numpy

    import dtorch

    random.seed(seed)
    numpy.random.seed(seed)
    dtorch.manual_seed(seed)


def _run_dir(cfg: dict, env: Mapping[str, str], comm) -> Path:
    """The launcher's DTORCH_RUN_DIR, else one chosen by rank 0 (a rank started by a user's own mpiexec/srun)."""
    if env.get("DTORCH_RUN_DIR"):
        return Path(env["DTORCH_RUN_DIR"])
    return Path(comm.bcast(str(run_dir_for(cfg, env)) if comm.Get_rank() == 0 else None, root=0))


def run(cfg: dict, env: Mapping[str, str] | None = None) -> int:
    """Run this rank's share of the job; the exit status."""
    env = os.environ if env is None else env
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    problem = mpi_none_problem(world.Get_size(), env)
    if problem:
        if env.get("SLURM_PROCID", "0") == "0":
            print(f"dtorch-run: {problem}", file=sys.stderr)
        return 2
    rank, world_size = world.Get_rank(), world.Get_size()
    rank_output.install(rank)
    import dtorch
    import dtorch.distributed as dist
    from dtorch.distributed import leaving
    from dtorch.distributed._node import split_node

    local_rank = split_node(world, rank).Get_rank()
    run_dir = _run_dir(cfg, env, world)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yamlio.dump(cfg), encoding="utf-8")
    rank_watch.write_pid(run_dir, rank, os.getpid())
    if cfg["distributed"]["backend"] == "nccl":
        dtorch.cuda.set_device(local_rank % max(1, dtorch.cuda.device_count()))
    dist.init_process_group(cfg["distributed"]["backend"], timeout=cfg["distributed"]["timeout"])
    leaving.on_leave(lambda r, status, how, last: rank_watch.write_exit(run_dir, r, status, how, last))
    signals.install()
    job_main = load_job(cfg["job"])
    _seed(cfg["train"]["seed"])
    run_info = {"dir": str(run_dir), "rank": rank, "world_size": world_size, "local_rank": local_rank,
                "restart": int(env.get("SLURM_RESTART_COUNT", 0))}
    start = time.time()
    result = job_main({**cfg, "run": run_info})
    if rank == 0:
        summary = {"result": result, "seconds": round(time.time() - start, 3), "world_size": world_size}
        (run_dir / "result.json").write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
    rank_watch.write_exit(run_dir, rank, 0, "its job's main returned", leaving.own_last_collective())
    # not a barrier: it would meet a collective another rank is still in; destroy waits for the node's
    # ranks on the arrival board and names this rank if one of them enters a collective it never will
    dist.destroy_process_group()
    return 0

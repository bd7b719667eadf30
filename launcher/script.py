"""``dtorch-run [--nproc N] SCRIPT.py [ARGS...]``: a plain training script on N ranks, as torchrun runs it.

The script runs unchanged on every rank (``__name__ == "__main__"``, its own ``sys.argv``), under mpiexec or
srun as configs do, with ``import dtorch`` giving it torchrun's RANK/LOCAL_RANK/WORLD_SIZE, rank-prefixed
output, and the same dead-rank handling: each rank records its pid and how it left, and the launcher names
the rank that ended the job from those records.
"""
from __future__ import annotations

import argparse
import os
import runpy
import shlex
import sys
import tempfile
from pathlib import Path

from . import launch, rank_output, rank_watch
from .errors import ConfigError

RANK_FLAG = "--as-rank"


def is_script(argv: list[str]) -> bool:
    """Whether a dtorch-run command line names a Python script (the first non-option argument ends in .py)."""
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--nproc", "-n", "--nproc-per-node", "--nproc_per_node", "--nnodes", "--node-rank",
                 "--node_rank", "--master-addr", "--master_addr", "--master-port", "--master_port"):
            skip = True
            continue
        if a.startswith("-"):
            continue
        return a.endswith(".py")
    return False


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dtorch-run", description="run SCRIPT.py on N ranks (torchrun's way)")
    p.add_argument("--nproc", "--nproc-per-node", "--nproc_per_node", "-n", dest="nproc", type=int, default=1,
                   help="ranks to start (torchrun: --nproc-per-node)")
    p.add_argument("--nnodes", default="1", help="accepted for torchrun's command lines: under srun the "
                   "allocation decides the nodes; with mpiexec all ranks start here")
    p.add_argument("--standalone", action="store_true", help="accepted for torchrun's command lines")
    for flag in ("--node-rank", "--node_rank", "--master-addr", "--master_addr", "--master-port", "--master_port"):
        p.add_argument(flag, help=argparse.SUPPRESS)
    p.add_argument("--dry-run", action="store_true", help="print the command, then exit")
    p.add_argument("script", help="the training script")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="its arguments")
    return p


def cmd_script(argv: list[str], run_watched) -> int:
    """The launcher side: start the ranks through cli.run_watched (or, inside a launch, be one)."""
    args = parser().parse_args(argv)
    if not Path(args.script).is_file():
        raise ConfigError(f"{args.script}: no such script")
    if not 1 <= args.nproc <= 1 << 20:
        raise ConfigError(f"--nproc {args.nproc}: must be between 1 and {1 << 20}")
    env = dict(os.environ)
    mode = launch.detect(env)
    if mode == launch.WORKER:
        return run_rank(args.script, args.script_args)
    inner = [sys.executable, "-m", "mpi4py", "-m", "dtorch.launcher.script", RANK_FLAG, args.script,
             *args.script_args]
    if mode == launch.SRUN:
        cmd = ["srun", "--mpi=pmi2", f"--ntasks={args.nproc}", "--kill-on-bad-exit=1", *inner]
    else:
        mpiexec = launch.find_mpiexec(env)
        if mpiexec is None:
            raise ConfigError("mpiexec not found: install MPI with `pip install mpi4py mpich` (or '.[mpi]')")
        cmd = [mpiexec, "-n", str(args.nproc), *inner]
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    run_dir = Path(tempfile.mkdtemp(prefix="dtorch-run-"))  # the ranks' pid and exit records
    return run_watched(cmd, {**env, "DTORCH_RUN_DIR": str(run_dir)}, mode, run_dir, args.nproc,
                       f"{args.script} failed ({{mode}} exit status {{rc}})")


def run_rank(script: str, script_args: list[str]) -> int:
    """One rank: prefixed output, pid and exit records, then the script as ``__main__``."""
    rank = int(os.environ.get("RANK") or os.environ.get("PMI_RANK") or os.environ.get("SLURM_PROCID") or 0)
    rank_output.install(rank)
    run_dir = Path(os.environ["DTORCH_RUN_DIR"]) if os.environ.get("DTORCH_RUN_DIR") else None
    if run_dir is not None:
        rank_watch.write_pid(run_dir, rank, os.getpid())
        from dtorch.distributed import leaving

        leaving.on_leave(lambda r, status, how, last: rank_watch.write_exit(run_dir, r, status, how, last))
    sys.argv = [script, *script_args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")
    if run_dir is not None:
        from dtorch.distributed import leaving

        rank_watch.write_exit(run_dir, rank, 0, "its script returned", leaving.own_last_collective())
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != RANK_FLAG:
        sys.exit("usage: python -m dtorch.launcher.script --as-rank SCRIPT.py [ARGS...] (dtorch-run starts this)")
    sys.exit(run_rank(sys.argv[2], sys.argv[3:]))

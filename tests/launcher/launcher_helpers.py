"""Running `python -m dtorch.launcher` (dtorch-run) as a user would, in a clean environment."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
TINY = FIXTURES / "tiny.yaml"
LAUNCH_VARS = ("SLURM_", "PMI_", "PMIX_", "OMPI_", "MPI_", "HYDRA_", "DTORCH_")
# what torchrun sets (and `import dtorch` sets from PMI/Slurm inside a launch)
TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT")


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without any MPI/Slurm launch variables (the tests may themselves run under one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCH_VARS) and k not in TORCHRUN_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(FIXTURES)])
    env.update(extra)
    return env


def dtorch_run(*args: str, cwd: pathlib.Path, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dtorch.launcher", *args], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)

"""tests/run.py's `slurm` phase: start the single-node dev cluster, run the `slurm` tests, stop it.

Where the cluster cannot start (not root, no apt, no network for the install...) the phase
prints "skipped: <reason>" and exits 0. A cluster that was already running is left running.
Extra arguments go to pytest.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "slurm" / "dev-cluster.sh"


def _cluster(action: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), action], capture_output=True, text=True, timeout=timeout)


def _start() -> str:
    """Start the cluster; '' on success, else why not."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (slurm/dev-cluster.sh installs and starts Slurm)"
    try:
        r = _cluster("start", timeout=150)
    except subprocess.TimeoutExpired:
        return "slurm/dev-cluster.sh start took over 150 s"
    if r.returncode != 0:
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else f"slurm/dev-cluster.sh start exited {r.returncode}"
    return ""


def main(extra: list[str]) -> int:
    was_running = os.geteuid() == 0 and _cluster("status", timeout=30).returncode == 0
    why = "" if was_running else _start()
    if why:
        print(f"slurm phase skipped: {why}", flush=True)
        return 0
    try:
        cmd = [sys.executable, "-m", "pytest", "-m", "slurm", "--timeout=300", *extra, "tests/launcher"]
        return subprocess.run(cmd, cwd=ROOT).returncode
    finally:
        if not was_running:
            _cluster("stop", timeout=60)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

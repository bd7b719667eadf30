"""Run the whole test suite in its phases; exit non-zero if any phase fails.

1. unit: every test on one process (MPI-marked tests skip there);
2. mpi-2 / mpi-3: the `mpi`-marked tests under `mpiexec -n 2` and `-n 3`
   (`python -m mpi4py` so a failing rank aborts the job instead of hanging it).
3. wheel: the wheel of this checkout installed into a fresh venv runs `dtorch-run digits_mlp` outside it
   (tests/launcher/test_installed_wheel.py; about a minute, most of it pip);
4. slurm: the `slurm`-marked tests on a single-node Slurm started for them (tests/launcher/slurm_phase.py).

Extra arguments go to every pytest call, e.g. `python tests/run.py -x -k allreduce`. After each phase the
shared-memory segments MPICH left in /dev/shm (the tests kill ranks; about 40 per run) are removed.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _mpiexec() -> str | None:
    here = os.path.dirname(sys.executable)
    return shutil.which("mpiexec", path=here + os.pathsep + os.environ.get("PATH", ""))


def phases(extra: list[str]) -> list[tuple[str, list[str] | None, str]]:
    common = ["-q", "-p", "no:cacheprovider", *extra]
    out = [("unit", [sys.executable, "-m", "pytest", "--timeout=900", "-m", "not wheel", *common, "tests"], "")]
    mpiexec = _mpiexec()
    have_mpi = mpiexec is not None and importlib.util.find_spec("mpi4py") is not None
    for n in (2, 3):
        cmd = [mpiexec, "-n", str(n), sys.executable, "-m", "mpi4py", "-m", "pytest", "--with-mpi", "-m", "mpi",
               "--timeout=600", "--timeout-method=thread", *common, "tests"] if have_mpi else None
        out.append((f"mpi-{n}", cmd, "" if have_mpi else "mpi4py/mpiexec missing: pip install -e '.[mpi]'"))
    out.append(("wheel", [sys.executable, "-m", "pytest", "--timeout=600", "-m", "wheel", *common,
                          "tests/launcher/test_installed_wheel.py"], ""))
    # starts the single-node dev Slurm (root + apt), runs the `slurm` tests, stops it; else "skipped: why"
    out.append(("slurm", [sys.executable, "tests/launcher/slurm_phase.py", *common], ""))
    return out


def sweep_mpich_shm(since: float) -> int:
    """Remove the ``/dev/shm/mpich_shm_*`` segments made since ``since`` that no process maps any more."""
    mapped = set()
    for maps in pathlib.Path("/proc").glob("[0-9]*/maps"):
        try:
            mapped.update(re.findall(r"/dev/shm/(mpich_shm_\S+)", maps.read_text()))
        except OSError:
            continue
    removed = 0
    for seg in pathlib.Path("/dev/shm").glob("mpich_shm_*"):
        try:
            if seg.stat().st_mtime >= since and seg.name not in mapped:
                seg.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def main() -> int:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    results = []
    for name, cmd, why in phases(sys.argv[1:]):
        if cmd is None:
            print(f"== {name}: SKIPPED ({why})", flush=True)
            results.append((name, "skipped", 0.0))
            continue
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        start = time.monotonic()
        rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        if swept := sweep_mpich_shm(time.time() - (time.monotonic() - start) - 1):
            print(f"== {name}: removed {swept} shared-memory segments MPICH left in /dev/shm", flush=True)
        # pytest exits 5 when it selects no test (e.g. no mpi tests matched by -k)
        ok = rc == 0 or rc == 5
        results.append((name, "passed" if ok else f"FAILED (exit {rc})", time.monotonic() - start))
    print("\n== summary")
    for name, status, secs in results:
        print(f"   {name:<6} {status:<18} {secs:6.1f} s")
    return 0 if all(s in ("passed", "skipped") for _, s, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())

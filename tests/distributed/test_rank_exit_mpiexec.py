"""A rank that leaves while its process group lives ends the job at once, and one line names it
(plain `mpiexec -n N python script.py`; tests/launcher/test_rank_exit_dtorch_run.py does the same under dtorch-run).

The last rank leaves after the others have waited ~0.2 s in an all_reduce; the time is measured from the
moment it leaves (it writes that moment to a file) and must stay far below the collective deadline (60 s).
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))

pytestmark = pytest.mark.skipif(MPIEXEC is None or not __import__("importlib").util.find_spec("mpi4py"),
                                reason="needs mpi4py and mpiexec (pip install 'dtorch[mpi]')")

SCRIPT = """
import datetime, os, signal, sys, threading, time
import dtorch, dtorch.distributed as dist
kind, stamp = sys.argv[1], sys.argv[2]
start = lambda: dist.init_process_group(timeout=datetime.timedelta(seconds=60))
if kind == "thread_init":  # a thread that then ends starts the group: its life lock's owner is gone
    t = threading.Thread(target=start)
    t.start()
    t.join()
else:
    start()
r, n = dist.get_rank(), dist.get_world_size()
t = dtorch.ones(4)
dist.all_reduce(t)
dist.broadcast(t, 0)
if kind == "all_return":
    sys.exit(0)
if kind in ("clean", "thread_init"):
    dist.destroy_process_group()
    sys.exit(0)
if r != n - 1:
    dist.all_reduce(t)  # the leaving rank never enters it, but for kind "caught"
    dist.destroy_process_group()
    sys.exit(0)
time.sleep(0.2)
if kind == "caught":  # a SystemExit the program catches is not its end
    try:
        sys.exit(4)
    except SystemExit:
        pass
    dist.all_reduce(t)
    dist.destroy_process_group()
    sys.exit(0)
open(stamp, "w").write(repr(time.time()))
if kind == "exception":
    raise ValueError("planned")
if kind == "exit3":
    sys.exit(3)
if kind == "exit0":
    sys.exit(0)
if kind == "os_exit3":
    os._exit(3)
if kind == "sigterm":
    os.kill(os.getpid(), signal.SIGTERM)
if kind == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
# kind == "return": the end of the script
"""

AT = "the last collective it entered: broadcast (seq 2, group WORLD)"
WAITER = "while rank 0 entered all_reduce (seq 3, group WORLD)"
EXPECTED = {  # kind: (what the one line says of the leaving rank R, exit status of mpiexec or None: any non-zero)
    "exception": ("uncaught ValueError on rank R; " + AT, 1),
    "exit3": ("rank R left (sys.exit(3), exit status 3) without destroy_process_group(); " + AT, 3),
    "os_exit3": ("rank R left (os._exit, exit status 3) without destroy_process_group(); " + AT, 3),
    "sigterm": ("rank R left (signal SIGTERM, exit status 143) without destroy_process_group(); " + AT, 143),
    "exit0": ("rank R left (sys.exit(0), exit status 0) without destroy_process_group() " + WAITER + "; " + AT, 1),
    "return": ("rank R left (end of script, exit status 0) without destroy_process_group() " + WAITER + "; " + AT, 1),
}


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("rank_exit") / "job.py"
    path.write_text(SCRIPT)
    return path


def run(script: pathlib.Path, kind: str, n: int) -> tuple[int, str, float]:
    """(exit status, output, seconds from the leaving moment to the end of mpiexec)."""
    stamp = script.parent / f"{kind}-{n}.t"
    stamp.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, str(script), kind, str(stamp)],
                       capture_output=True, text=True, timeout=60, env=env)
    end = time.time()
    left = float(stamp.read_text()) if stamp.exists() else end
    return p.returncode, p.stdout + p.stderr, end - left


def lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "dtorch.distributed:" in line]


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_leaving_rank_ends_the_job_naming_it(script, kind, n):
    rc, out, secs = run(script, kind, n)
    said, status = EXPECTED[kind]
    leaver = n - 1
    assert rc == status, out
    assert secs < 5, out
    assert lines(out) == [f"[rank {leaver}] dtorch.distributed: {said.replace('rank R', f'rank {leaver}')}. "
                          "Aborting the job."], out


@pytest.mark.parametrize("n", [2, 3])
def test_sigkilled_rank_is_named(script, n):
    """No code runs in a SIGKILLed rank: rank 0, blocked on the dying rank's life lock, names it before
    mpiexec's clean-up SIGKILLs the others (mpiexec's own banner gives only a pid)."""
    rc, out, secs = run(script, "sigkill", n)
    assert rc != 0 and secs < 5, out
    said = lines(out)
    assert len(said) == 1 and said[0].startswith(f"[rank 0] dtorch.distributed: rank {n - 1} (pid "), out
    assert said[0].endswith(") died (killed by signal 9 (SIGKILL)) without destroy_process_group(); "
                            f"{AT}. Aborting the job."), out


@pytest.mark.parametrize("kind", ["clean", "all_return", "caught", "thread_init"])
def test_leaving_together_stays_clean(script, kind):
    """destroy_process_group() then exit, every rank ending its script at the same collective, a
    caught sys.exit, and a group started by a thread that has ended: exit 0, nothing said."""
    rc, out, _ = run(script, kind, 3)
    assert rc == 0 and not lines(out), out

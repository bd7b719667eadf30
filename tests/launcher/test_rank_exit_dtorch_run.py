"""Under dtorch-run, a rank that leaves ends the job at once and dtorch-run names it from its own records
(pid files, the ranks' exit records, the pids it watches), whatever mpiexec prints. The job is
fixtures/dtorch_test_jobs/rank_exit.py; tests/distributed/test_rank_exit_mpiexec.py covers plain mpiexec."""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from launcher_helpers import TINY, dtorch_run

from dtorch.launcher import rank_watch

HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and shutil.which(
    "mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")) is not None
pytestmark = pytest.mark.skipif(not HAVE_MPI, reason="mpi4py/mpiexec missing: pip install -e '.[mpi]'")

AT = "the last collective it entered: broadcast (seq 2, group WORLD)"
WAITER = "without destroy_process_group() while rank 0 entered all_reduce (seq 3, group WORLD)"
EXPECTED = {  # kind: what dtorch-run's line says after "rank R (pid P) ended the job: "
    "exception": "uncaught ValueError, exit status 1; " + AT,
    "exit3": "sys.exit(3), exit status 3; " + AT,
    "os_exit3": "os._exit, exit status 3; " + AT,
    "sigterm": "os._exit, exit status 143; " + AT,  # dtorch-run's second SIGTERM: os._exit(143)
    "exit0": "left (sys.exit(0), exit status 0) " + WAITER + ", exit status 1; " + AT,
    "return": "called destroy_process_group() while rank 0 entered all_reduce (seq 3, group WORLD), "
              "exit status 1; " + AT,
}


def run(tmp_path, kind: str, n: int):
    """(the finished process, seconds from the leaving moment to dtorch-run's end, the leaving rank's pid)."""
    r = dtorch_run(str(TINY), "--set", "job=dtorch_test_jobs.rank_exit", "--set", f"model.kind={kind}",
                   "--set", f"distributed.nproc={n}", cwd=tmp_path, timeout=60)
    end = time.time()
    (run_dir,) = (tmp_path / "runs").iterdir()
    left = run_dir / "left"
    pid = (run_dir / ".ranks" / f"{n - 1}.pid").read_text().strip()
    return r, end - (float(left.read_text()) if left.exists() else end), pid


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_dtorch_run_names_the_leaving_rank(tmp_path, kind, n):
    r, secs, pid = run(tmp_path, kind, n)
    leaver = n - 1
    assert r.returncode == 1, r.stderr
    assert secs < 5, r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("dtorch-run: rank")]
    assert said == [f"dtorch-run: rank {leaver} (pid {pid}) ended the job: {EXPECTED[kind]}"], r.stderr
    ranks_said = [line for line in r.stderr.splitlines() if "dtorch.distributed:" in line]
    assert len(ranks_said) == 1 and f"[rank {leaver}] dtorch.distributed:" in ranks_said[0], r.stderr


@pytest.mark.parametrize("n", [2, 3])
def test_dtorch_run_names_a_sigkilled_rank(tmp_path, n):
    r, secs, pid = run(tmp_path, "sigkill", n)
    assert r.returncode == 1 and secs < 5, r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("dtorch-run: rank")]
    # rank 0 saw it die (its life lock on the arrival board) and wrote its exit record before mpiexec
    # killed the others: the launcher need not tell apart deaths its pid watch saw at once
    assert said == [f"dtorch-run: rank {n - 1} (pid {pid}) ended the job: killed by signal 9 (SIGKILL); {AT}"], \
        r.stderr


def test_dtorch_run_clean_end_says_nothing(tmp_path):
    r, _, _ = run(tmp_path, "clean", 3)
    assert r.returncode == 0, r.stderr
    assert "dtorch-run: rank" not in r.stderr and "dtorch.distributed:" not in r.stderr, r.stderr


def test_dead_ranks_message_order_of_trust(tmp_path):
    """A non-zero exit record beats everything; then the first pid seen ending (in the banner's words when
    the banner names it); then the banner alone; then a rank whose job returned."""
    for rank, pid in ((0, 100), (1, 101), (2, 102)):
        rank_watch.write_pid(tmp_path, rank, pid)
    banner = [(100, "vm", "EXIT CODE: 9")]  # mpiexec named a rank it had killed itself
    ended = [[(2, 102, "killed by signal 9 (SIGKILL)")], [(0, 100, None), (1, 101, None)]]
    assert rank_watch.dead_ranks_message(tmp_path, banner, ended) == \
        "rank 2 (pid 102) ended first (killed by signal 9 (SIGKILL))"
    assert rank_watch.dead_ranks_message(tmp_path, banner, [ended[1]]) == \
        "rank 0 (pid 100 on vm) ended abnormally (exit code: 9); mpiexec stopped the other ranks"
    assert rank_watch.dead_ranks_message(tmp_path, banner, []).startswith("rank 0 (pid 100 on vm)")
    assert rank_watch.dead_ranks_message(tmp_path, [], []) is None
    rank_watch.write_exit(tmp_path, 1, 0, "its job's main returned", "broadcast (seq 2, group WORLD)")
    assert rank_watch.dead_ranks_message(tmp_path, [], []) == \
        "rank 1 (pid 101) left first: its job's main returned; the last collective it entered: " \
        "broadcast (seq 2, group WORLD)"
    rank_watch.write_exit(tmp_path, 2, 3, "sys.exit(3)", "all_reduce (seq 5, group WORLD)")
    assert rank_watch.dead_ranks_message(tmp_path, banner, ended) == \
        "rank 2 (pid 102) ended the job: sys.exit(3), exit status 3; the last collective it entered: " \
        "all_reduce (seq 5, group WORLD)"
    (tmp_path / ".ranks" / "0.exit").write_text("{not json")  # a torn record is skipped
    assert 0 not in rank_watch.exit_records(tmp_path)
    time.sleep(0.01)  # a later record written by rank 0 for a peer it saw die does not come first
    rank_watch.write_exit(tmp_path, 0, -9, "killed by signal 9 (SIGKILL)", "broadcast (seq 2, group WORLD)")
    assert rank_watch.dead_ranks_message(tmp_path, banner, ended).startswith("rank 2 (pid 102) ended the job")
    (tmp_path / ".ranks" / "2.exit").unlink()
    assert rank_watch.dead_ranks_message(tmp_path, banner, ended) == \
        "rank 0 (pid 100) ended the job: killed by signal 9 (SIGKILL); the last collective it entered: " \
        "broadcast (seq 2, group WORLD)"


def test_pid_watch_orders_deaths_seen_at_once(tmp_path):
    """Two ranks already dead when the watch first looks (one wake-up, one batch): the one that died
    first comes first, whatever the order of their pidfds (a busy machine once let mpiexec's clean-up kill
    land in the same wake-up as the SIGKILL that ended the job, and the wrong rank was named)."""
    cpu = min(os.sched_getaffinity(0))  # exec_start compares only on one CPU: both ranks run there
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              preexec_fn=lambda: os.sched_setaffinity(0, {cpu})) for _ in range(2)]
    try:
        for rank, p in enumerate(procs):
            rank_watch.write_pid(tmp_path, rank, p.pid)
        for p in reversed(procs):  # rank 1 dies first; neither is reaped until the watch has looked
            p.send_signal(signal.SIGKILL)
            while rank_watch.wait_status(p.pid) is None:
                time.sleep(0.005)
            time.sleep(0.02)
        watch = rank_watch.PidWatch(tmp_path, 2)
        watch.start()
        deadline = time.time() + 10
        while sum(map(len, watch.ended)) < 2 and time.time() < deadline:
            time.sleep(0.01)
        watch.stop()
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert [[rank for rank, _, _ in batch] for batch in watch.ended] == [[1, 0]]
    assert [how for _, _, how in watch.ended[0]] == ["killed by signal 9 (SIGKILL)"] * 2


def test_death_order_compares_run_times_only_on_one_cpu():
    a, b, c = (0, 1, "x"), (1, 2, "y"), (2, 3, "z")
    assert rank_watch.death_order([((0, 5.0), a), ((0, 2.0), b), (None, c)]) == [c, b, a]
    assert rank_watch.death_order([((0, 5.0), a), ((1, 2.0), b)]) == [a, b]  # per-CPU clocks: wake order kept

"""Which rank ended the job? dtorch-run's own bookkeeping, whatever MPI prints.

Each worker writes its pid to RUN_DIR/.ranks/RANK.pid as it starts, and RANK.exit (JSON: status, how,
last collective) when it leaves on its own: an exception, ``sys.exit``, ``os._exit``, SIGTERM
(dtorch.distributed.leaving's hook) or its job's ``main`` returning. While the job runs, ``PidWatch``
holds a pidfd per rank and notes the order in which they end, with the wait status read from /proc
while the process is not yet reaped. MPICH's mpiexec also reports a rank killed by a signal by pid, on
its stdout::

    =   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES
    =   PID 18482 RUNNING AT host
    =   EXIT CODE: 9

dtorch-run passes mpiexec's stdout through ``OutputScan``, which copies it unchanged and notes those
pids. ``dead_ranks_message`` names one rank from all three. (srun names the task itself:
"srun: error: host: task 1: Killed".)
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

BANNER_PID = re.compile(rb"PID (\d+) RUNNING AT (\S+)\s*\n=\s+(EXIT CODE: \d+|KILLED BY SIGNAL: [^\n]*)")


def pid_dir(run_dir: Path) -> Path:
    return run_dir / ".ranks"


def write_pid(run_dir: Path, rank: int, pid: int) -> None:
    """Called by each worker (rank) at start-up."""
    d = pid_dir(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{rank}.pid").write_text(f"{pid}\n")


def clear(run_dir: Path) -> None:
    """Forget a previous run's pids (a resumed run directory)."""
    shutil.rmtree(pid_dir(run_dir), ignore_errors=True)


def ranks_by_pid(run_dir: Path) -> dict[int, int]:
    out = {}
    for f in pid_dir(run_dir).glob("*.pid"):
        try:
            out[int(f.read_text())] = int(f.stem)
        except (ValueError, OSError):
            continue
    return out


class OutputScan(threading.Thread):
    """Copies ``source`` (mpiexec's stdout) to this process's stdout as it comes; ``found`` lists
    (pid, host, how it ended) from mpiexec's bad-termination banners."""

    def __init__(self, source: BinaryIO) -> None:
        super().__init__(name="mpiexec-output", daemon=True)
        self.source, self.found = source, []
        self._tail = b""

    def run(self) -> None:
        out = sys.stdout.buffer
        fd = self.source.fileno()
        while chunk := os.read(fd, 1 << 16):
            out.write(chunk)
            out.flush()
            text = self._tail + chunk
            for m in BANNER_PID.finditer(text):
                hit = (int(m.group(1)), m.group(2).decode(errors="replace"), m.group(3).decode(errors="replace"))
                if hit not in self.found:
                    self.found.append(hit)
            self._tail = text[-512:]


def write_exit(run_dir: Path, rank: int, status: int, how: str, last: str) -> None:
    """Called by a worker (rank) that leaves on its own: RUN_DIR/.ranks/RANK.exit."""
    record = {"status": status, "how": how, "last": last, "time": time.time()}
    (pid_dir(run_dir) / f"{rank}.exit").write_text(json.dumps(record) + "\n")


def exit_records(run_dir: Path) -> dict[int, dict]:
    out = {}
    for f in pid_dir(run_dir).glob("*.exit"):
        try:
            record = json.loads(f.read_text())
            out[int(f.stem)] = {"status": int(record["status"]), "how": str(record["how"]),
                                "last": str(record["last"]), "time": float(record["time"])}
        except (ValueError, OSError, KeyError, TypeError):
            continue
    return out


def wait_status(pid: int) -> str | None:
    """'killed by signal 9 (SIGKILL)' / 'exit status 3' from /proc while ``pid`` is a zombie, else None.
    (dtorch.distributed.leaving reads it the same way; the launcher does not import dtorch.)"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if fields[0] != "Z" or len(fields) < 50:
            return None
        code = int(fields[-1])
    except (OSError, ValueError, IndexError):
        return None
    if code & 0x7F:
        return f"killed by signal {code & 0x7F} ({signal.Signals(code & 0x7F).name})"
    return f"exit status {code >> 8}"


def last_ran(pid: int) -> tuple[int, float] | None:
    """(CPU, when it last ran there) of a process that has ended, while it is not yet reaped and the kernel
    has scheduler statistics (``/proc/PID/stat``'s processor, ``/proc/PID/sched``'s exec_start); else None.
    exec_start is a per-CPU clock (it leaves out interrupt and steal time), so only times on one CPU compare."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            cpu = int(f.read().rsplit(")", 1)[1].split()[36])
        with open(f"/proc/{pid}/sched") as f:
            for line in f:
                if line.startswith("se.exec_start"):
                    return cpu, float(line.split(":", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def death_order(batch: list) -> list:
    """Ends seen in one wake-up, as (last_ran or None, entry): a reaped process first (mpiexec's proxy reaps in
    the order they end), then by when each last ran if all last ran on one CPU; else as the pidfds woke."""
    reaped = [e for t, e in batch if t is None]
    timed = [(t, e) for t, e in batch if t is not None]
    if len({cpu for (cpu, _), _ in timed}) == 1:
        timed.sort(key=lambda te: te[0][1])
    return reaped + [e for _, e in timed]


class PidWatch(threading.Thread):
    """Notes the ranks whose processes end, in order (``ended``: batches of (rank, pid, wait status or None),
    one per wake-up), from the pid files the workers write. Same host only (dtorch-run's mpiexec mode);
    ``stop()`` ends it. A batch of several (a busy machine let mpiexec's clean-up kills land before this
    thread ran) is put in ``death_order``."""

    def __init__(self, run_dir: Path, nproc: int) -> None:
        super().__init__(name="rank-pids", daemon=True)
        self.run_dir, self.nproc = run_dir, nproc
        self.ended: list[list[tuple[int, int, str | None]]] = []
        self._stop_r, self._stop_w = os.pipe()

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self.join(timeout=5)

    def run(self) -> None:
        fds: dict[int, tuple[int, int]] = {}
        seen: set[int] = set()
        while True:
            if len(seen) < self.nproc:
                for pid, rank in ranks_by_pid(self.run_dir).items():
                    if rank not in seen:
                        seen.add(rank)
                        try:
                            fds[os.pidfd_open(pid)] = (rank, pid)
                        except (OSError, AttributeError):  # already gone, or no pidfds
                            pass
            ready, _, _ = select.select([self._stop_r, *fds], [], [], 0.02 if len(seen) < self.nproc else None)
            batch = []
            for fd in ready:
                if fd != self._stop_r:
                    rank, pid = fds.pop(fd)
                    batch.append((last_ran(pid), (rank, pid, wait_status(pid))))
                    os.close(fd)
            if batch:
                self.ended.append(death_order(batch))
            if self._stop_r in ready:
                for fd in fds:
                    os.close(fd)
                return


def dead_ranks_message(run_dir: Path, found: list[tuple[int, str, str]],
                       ended: list[list[tuple[int, int, str | None]]] = ()) -> str | None:
    """One line naming the rank that ended the job, or None. In order of trust: a rank that left on its
    own with a non-zero status or that a same-node rank saw die (its RANK.exit, the earliest); the first
    rank whose process ended (``PidWatch``, in mpiexec's banner words when the banner names the same pid);
    mpiexec's banner alone (it names the first rank it saw end, which with 3 ranks was once one it had
    killed itself); a rank whose job returned while the others still needed it."""
    ranks = ranks_by_pid(run_dir)
    pids = {rank: pid for pid, rank in ranks.items()}
    records = exit_records(run_dir)
    failed = sorted((r for r in records if records[r]["status"] != 0), key=lambda r: records[r]["time"])
    if failed:
        rec = records[failed[0]]
        status = f", exit status {rec['status']}" if rec["status"] > 0 else ""  # < 0: how names the signal
        return (f"rank {failed[0]} (pid {pids.get(failed[0], '?')}) ended the job: {rec['how']}{status}; "
                f"the last collective it entered: {rec['last']}")
    banner = {pid: (host, how) for pid, host, how in found}
    if ended:
        rank, pid, status = ended[0][0]
        if pid in banner:
            return _banner_line(rank, pid, *banner[pid])
        return f"rank {rank} (pid {pid}) ended first ({status or 'its wait status was not visible'})"
    for pid, (host, how) in banner.items():
        return _banner_line(ranks.get(pid, "?"), pid, host, how)
    if records:
        r = min(records, key=lambda r: records[r]["time"])
        return (f"rank {r} (pid {pids.get(r, '?')}) left first: {records[r]['how']}; "
                f"the last collective it entered: {records[r]['last']}")
    return None


def _banner_line(rank, pid: int, host: str, how: str) -> str:
    return f"rank {rank} (pid {pid} on {host}) ended abnormally ({how.lower()}); mpiexec stopped the other ranks"

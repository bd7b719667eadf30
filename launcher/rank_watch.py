"""Which rank died? For the message when one rank is killed and mpiexec stops the others.

Each worker writes its pid to RUN_DIR/.ranks/RANK.pid as it starts. MPICH's mpiexec reports a
rank killed by a signal (SIGKILL, the out-of-memory killer) by pid only, on its stdout::

    =   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES
    =   PID 18482 RUNNING AT host
    =   EXIT CODE: 9

dtorch-run passes mpiexec's stdout through ``OutputScan``, which copies it unchanged and notes
those pids; ``dead_ranks_message`` turns them into ranks. (srun names the task itself:
"srun: error: host: task 1: Killed".)
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import threading
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


def dead_ranks_message(run_dir: Path, found: list[tuple[int, str, str]]) -> str | None:
    """'rank 1 (pid 4242 on host) was killed: EXIT CODE: 9', one line per rank mpiexec reported, or None."""
    ranks = ranks_by_pid(run_dir)
    lines = [f"rank {ranks.get(pid, '?')} (pid {pid} on {host}) ended abnormally ({how.lower()}); "
             "mpiexec stopped the other ranks" for pid, host, how in found]
    return "\n".join(lines) or None

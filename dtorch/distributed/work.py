"""Work: the handle of an asynchronous collective, with a deadline on every wait."""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable

from ..futures import work_future
from ._mpi import mpi


class Work:
    """``async_op=True`` returns this: ``wait(timeout)``, ``is_completed()``, ``result()``."""

    def __init__(self, requests: list, finish: Callable[[], None] | None, describe: Callable[[], str],
                 timeout: float, outputs: list | None = None, statuses: list | None = None) -> None:
        self._requests = requests
        self._statuses = statuses
        self._finish = finish
        self._describe = describe
        self._timeout = timeout
        self._outputs = outputs or []
        self._done = False

    def _complete(self) -> None:
        if not self._done:
            self._done = True
            if self._finish is not None:
                self._finish()

    def is_completed(self) -> bool:
        if self._done:
            return True
        if not self._requests or mpi().Request.Testall(self._requests, self._statuses):
            self._complete()
            return True
        return False

    def is_success(self) -> bool:
        return self.is_completed()

    def wait(self, timeout=None) -> bool:
        """Block until done; past the deadline, report who is missing and abort the job."""
        if self._done:
            return True
        limit = self._timeout if timeout is None else seconds(timeout)
        if self._requests:
            wait_all(self._requests, limit, self._describe, self._statuses)
        self._complete()
        return True

    def result(self) -> list:
        self.wait()
        return self._outputs

    def exception(self):
        return None

    def get_future(self):
        """A Future completed by this work (``then`` chains a callback), as torch's Work.get_future."""

        return work_future(self)

    def source_rank(self) -> int:
        self.wait()
        return getattr(self, "_source", -1)


class WaitHooks:
    """``aborting``, set by ``leaving.py`` while a process group lives, marks this rank's leaving as reported
    before ``abort_job`` ends the job."""

    aborting: Callable[[], None] = staticmethod(lambda: None)


def seconds(t) -> float:
    return t.total_seconds() if hasattr(t, "total_seconds") else float(t)


def wait_all(requests: list, limit: float, describe: Callable[[], str], statuses: list | None = None) -> None:
    """Test the requests (which also drives MPICH's progress) until done or the deadline."""
    Request = mpi().Request
    wait_until(lambda: Request.Testall(requests, statuses), limit, describe)


def wait_until(done: Callable[[], bool], limit: float, describe: Callable[[], str]) -> None:
    """Poll ``done()`` (an MPI test, a CUDA event query) until true; past ``limit`` seconds report what
    was awaited and abort the job."""
    if done():
        return
    start = time.perf_counter()
    deadline = start + limit
    spins = 0
    while True:
        if done():
            return
        spins += 1
        if spins & 63 == 0:
            now = time.perf_counter()
            if now > deadline:
                abort_job(f"timed out after {limit:.1f} s waiting for {describe()}")
            if now - start > 0.01:
                time.sleep(0.0002)  # long waits need not burn a core


def abort_job(message: str, code: int = 1) -> None:
    """Print why on stderr, then end every rank of the job (never leave peers hanging)."""
    MPI = mpi()
    rank = MPI.COMM_WORLD.Get_rank() if MPI.Is_initialized() and not MPI.Is_finalized() else -1
    sys.stderr.write(f"[rank {rank}] dtorch.distributed: {message}. Aborting the job.\n")
    sys.stderr.flush()
    if os.environ.get("DTORCH_DISTRIBUTED_NO_ABORT") == "1":
        raise RuntimeError(message)
    WaitHooks.aborting()
    # mpiexec forwards a rank's output through its proxy; an immediate Abort tears the proxy
    # down first about one time in four here, and the message that says why is lost
    time.sleep(float(os.environ.get("DTORCH_ABORT_GRACE_S", "0.5")))
    # MPICH's MPI_Abort has hung in its teardown (seen once in many CI runs, the peers left waiting for the
    # collective deadline): past this, the rank ends itself, and mpiexec ends the job on its exit status
    watchdog = threading.Timer(float(os.environ.get("DTORCH_ABORT_EXIT_S", "10")), os._exit, args=(code,))
    watchdog.daemon = True
    watchdog.start()
    MPI.COMM_WORLD.Abort(code)

"""A rank that leaves while its process group lives ends the job, and one line names it.

``init_process_group`` calls ``install``; ``destroy_process_group`` calls ``depart`` then ``uninstall``.
Between the two, a rank leaves in one of these ways and is named with its exit status and the last
collective it entered (the arrival board's row):

* Python-level exits, reported by the leaving rank itself: an uncaught exception (``process_group``'s
  excepthook), ``sys.exit(n)`` / ``os._exit(n)`` (wrapped to note the status), SIGTERM (a handler, when
  none was set), or the end of the script (an ``atexit`` hook). A non-zero status ends the job at once.
  Status 0 waits for the node's other ranks to leave too (a rendezvous on the board, like the barrier
  ``destroy_process_group`` is): everyone leaving at the same sequence numbers is a clean end; a peer
  that has entered a collective this rank never will is an error, named at once.
* Deaths no Python code sees (SIGKILL, a crash, ``os._exit`` through a C library): the other ranks of
  the node hold a pidfd per peer and wait on them instead of sleeping in long waits
  (``work.WaitHooks.pause``), so a rank waiting in a collective sees the death within a nap and names
  it, with the status read from ``/proc`` while the process is not yet reaped.

Ranks on other nodes are not visible: their deaths end the job through the launcher (mpiexec, srun),
their leaving through the collective deadline. Measurements and the choice: docs/distributed.md.
"""
from __future__ import annotations

import atexit
import os
import select
import signal
import sys
import threading
import time

from .arrivals import DONE, LEAVING, PID, REPORTED, RUNNING, STATE, STATUS
from .work import WaitHooks, abort_job as _abort_job

_REAL_SYS_EXIT = sys.exit
_REAL_OS_EXIT = os._exit
_UNSET = object()


class _Watch:
    runtime = None           # process_group.RUNTIME while a group lives
    pid = 0
    exit_status = _UNSET     # what the sys.exit that ends the program was given
    pidfds: dict = {}        # pidfd -> board row of a same-node peer
    prev_sigterm = None
    hooks: list = []         # callables(rank, status, how, last) run before this rank's leaving is reported


def install(runtime) -> None:
    """Watch this rank's exits and its same-node peers' deaths from now on."""
    _Watch.runtime, _Watch.pid, _Watch.exit_status = runtime, os.getpid(), _UNSET
    board = runtime.board
    _Watch.pidfds = {}
    for row in range(board.life.shape[0]):
        if row != board.local_rank:
            try:
                _Watch.pidfds[os.pidfd_open(int(board.life[row, PID]))] = row
            except (OSError, AttributeError):  # no pidfds (Linux < 5.3): deaths end the job through mpiexec
                pass
    atexit.register(_at_exit)
    sys.exit, os._exit = _sys_exit, _os_exit
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        _Watch.prev_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    WaitHooks.pause, WaitHooks.aborting = _pause, _aborting


def uninstall() -> None:
    atexit.unregister(_at_exit)
    if sys.exit is _sys_exit:
        sys.exit = _REAL_SYS_EXIT
    if os._exit is _os_exit:
        os._exit = _REAL_OS_EXIT
    if _Watch.prev_sigterm is not None and signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, _Watch.prev_sigterm)
    _Watch.prev_sigterm = None
    WaitHooks.pause, WaitHooks.aborting = time.sleep, lambda: None
    for fd in _Watch.pidfds:
        os.close(fd)
    _Watch.pidfds = {}
    _Watch.runtime = None


def on_leave(hook) -> None:
    """Call ``hook(rank, status, how, last_collective)`` when this rank leaves with its group alive
    (the launcher's worker records it for dtorch-run's report)."""
    _Watch.hooks.append(hook)


def _alive() -> bool:
    rt = _Watch.runtime
    return rt is not None and rt.world is not None and os.getpid() == _Watch.pid


def _me() -> int:
    return _Watch.runtime.world.rank()


def last_collective(row: int) -> str:
    """'broadcast (seq 2, group WORLD)' for local board ``row``, over the groups this rank knows it is in."""
    rt = _Watch.runtime
    rank = next(g for g, r in rt.board.local_of.items() if r == row)
    seen = []
    for pg in rt.groups:
        if pg is not None and rank in pg.ranks:
            seq, op = rt.board.last_entered(row, pg.slot)
            if seq:
                seen.append(f"{op} (seq {seq}, group {pg.name})")
    return ", ".join(seen) or "none"


def own_last_collective() -> str:
    """``last_collective`` of this rank ('none' without a process group)."""
    return last_collective(_Watch.runtime.board.local_rank) if _alive() else "none"


def leave(status: int, how: str, subject: str | None = None) -> None:
    """This rank is leaving with its group alive. Non-zero: name it and end the job. Zero: wait for the
    node's other ranks to leave too, or name it as soon as one enters a collective this rank never will."""
    if not _alive():
        return
    board, me = _Watch.runtime.board, _me()
    if status != 0:
        board.set_life(LEAVING, status, reported=True)
        last = _run_hooks(status, how)
        subject = subject or f"rank {me} left ({how}, exit status {status}) without destroy_process_group()"
        abort_job(f"{subject}; the last collective it entered: {last}", code=status if 0 < status < 256 else 1)
    board.set_life(LEAVING, 0)  # final: ``depart`` on the others decides from it whether to free collectively
    # no deadline: a peer may compute for hours (a last checkpoint) before it ends too
    rendezvous(f"left ({how}, exit status 0) without destroy_process_group()", None)


def depart() -> bool:
    """``destroy_process_group``: wait for the node's other ranks to leave too. True when every one of
    them destroys its group as well (the collective frees are then safe)."""
    board = _Watch.runtime.board
    board.set_life(DONE)
    rendezvous("called destroy_process_group()", _Watch.runtime.world.timeout)
    return all(int(board.life[row, STATE]) == DONE for row in range(board.life.shape[0]))


def _run_hooks(status: int, how: str) -> str:
    last = own_last_collective()
    for hook in _Watch.hooks:
        try:
            hook(_me(), status, how, last)
        except Exception:  # a record that cannot be written must not keep the job alive
            pass
    return last


def rendezvous(what: str, timeout: float | None) -> None:
    """Wait until every same-node rank of this rank's groups has left at the same sequence numbers; name
    this rank ("rank R {what} while ...") as soon as one of them enters a collective it never will."""
    rt = _Watch.runtime
    board = rt.board
    limit = None if timeout is None else time.perf_counter() + timeout
    while True:
        waiting = []
        for pg in rt.groups:
            if pg is None or pg.slot >= len(board.table[0]):
                continue
            mine, _ = board.last_entered(board.local_rank, pg.slot)
            for g in pg.ranks:
                row = board.local_of.get(g)
                if row is None or row == board.local_rank:
                    continue
                theirs, op = board.last_entered(row, pg.slot)
                if theirs > mine:
                    board.set_life(LEAVING, 1, reported=True)
                    how = f"{what} while rank {g} entered {op} (seq {theirs}, group {pg.name})"
                    last = _run_hooks(1, how)
                    abort_job(f"rank {_me()} {how}; the last collective it entered: {last}")
                if int(board.life[row, STATE]) == RUNNING or theirs < mine:
                    waiting.append(g)
        if not waiting:
            return
        if limit is not None and time.perf_counter() > limit:
            abort_job(f"rank {_me()} {what}; timed out after {timeout:.1f} s waiting for ranks "
                      f"{sorted(set(waiting))} to leave too")
        _pause(0.001)


def _pause(seconds: float) -> None:
    """Sleep, unless a same-node peer dies meanwhile: then name it and end the job."""
    if not _Watch.pidfds:
        time.sleep(seconds)
        return
    ready, _, _ = select.select(list(_Watch.pidfds), [], [], seconds)
    for fd in ready:
        _peer_died(fd)


def _peer_died(fd: int) -> None:
    row = _Watch.pidfds.pop(fd)
    os.close(fd)
    rt = _Watch.runtime
    board = rt.board
    life = [int(v) for v in board.life[row]]
    if life[STATE] == DONE or life[REPORTED] or (life[STATE] == LEAVING and life[STATUS] == 0):
        return  # left cleanly, reported itself, or is being waited for at exit
    how = _exit_status(life[PID])
    live = [r for r in range(board.life.shape[0]) if r == board.local_rank or
            (r != row and r in _Watch.pidfds.values())]
    if min(live) != board.local_rank:
        return  # the lowest live rank of the node reports; this one is ended with the job
    rank = next(g for g, r in board.local_of.items() if r == row)
    board.set_life(LEAVING, 1, reported=True)
    abort_job(f"rank {rank} (pid {life[PID]}) died ({how}) without destroy_process_group(); "
              f"the last collective it entered: {last_collective(row)}")


def _exit_status(pid: int) -> str:
    """How ``pid`` ended, from /proc while its parent has not reaped it (its last field is the wait status)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if fields[0] != "Z" or len(fields) < 50:
            raise OSError
        code = int(fields[-1])
    except (OSError, ValueError, IndexError):
        return "exit status not visible: already reaped"
    if code & 0x7F:
        return f"killed by signal {code & 0x7F} ({signal.Signals(code & 0x7F).name})"
    return f"exit status {code >> 8}"


def abort_job(message: str, code: int = 1) -> None:
    """``work.abort_job``, and never return: MPICH's MPI_Abort has been seen to come back (then exit)."""
    _abort_job(message, code)
    _REAL_OS_EXIT(code)


def _status(code) -> int:
    """The process exit status Python gives ``SystemExit(code)``."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


class _Exit(SystemExit):
    """What ``sys.exit`` raises while a group lives. Its status is the rank's exit status when it is freed
    with no Python frame left (the interpreter handled it at the top), not when a program caught it."""

    def __del__(self) -> None:
        try:
            sys._getframe(1)
        except ValueError:
            _Watch.exit_status = self.code


def _sys_exit(*args):
    raise _Exit(*args)


def _os_exit(status):
    if _alive():
        leave(_status(status), "os._exit")
    _REAL_OS_EXIT(status)


def _on_sigterm(signum, frame):
    leave(128 + signum, "signal SIGTERM")
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _at_exit() -> None:
    if not _alive():
        return
    if _Watch.exit_status is _UNSET:
        leave(0, "end of script")
    else:
        leave(_status(_Watch.exit_status), f"sys.exit({_Watch.exit_status!r})")


def _aborting() -> None:
    if _alive():
        rt = _Watch.runtime
        rt.board.life[rt.board.local_rank, REPORTED] = 1

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
* Deaths no Python code sees (SIGKILL, a crash, ``os._exit`` through a C library): each rank holds a
  robust lock on the arrival board while it lives (``_lifelock``), and every other rank of the node has
  a daemon thread blocked on it (no GIL, no cost). The kernel releases the lock as it starts tearing the
  dead rank down, before mpiexec hears of the death and kills the others, so the lowest other rank
  names it at once, with the status the kernel has already set (``/proc/PID/stat``).

Ranks on other nodes are not visible: their deaths end the job through the launcher (mpiexec, srun),
their leaving through the collective deadline. Measurements and the choice: docs/distributed.md.
"""
from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time

from .arrivals import DONE, LEAVING, PID, REPORTED, RUNNING, STATE, STATUS
from .work import WaitHooks, abort_job as _abort_job

_REAL_SYS_EXIT = sys.exit
_REAL_OS_EXIT = os._exit
_UNSET = object()
_PF_EXITING = 0x4  # /proc/PID/stat's flags: the process is being torn down


class _Watch:
    runtime = None           # process_group.RUNTIME while a group lives
    pid = 0
    exit_status = _UNSET     # what the sys.exit that ends the program was given
    watchers: list = []      # a _watch_peer thread per same-node peer
    dead: set = set()        # board rows seen dying unreported
    lock = threading.Lock()
    stopping = False
    prev_sigterm = None
    hooks: list = []         # callables(rank, status, how, last) run before this rank's leaving is reported


def install(runtime) -> None:
    """Watch this rank's exits and its same-node peers' deaths from now on."""
    _Watch.runtime, _Watch.pid, _Watch.exit_status = runtime, os.getpid(), _UNSET
    atexit.register(_at_exit)
    sys.exit, os._exit = _sys_exit, _os_exit
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        _Watch.prev_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    WaitHooks.aborting = _aborting
    board = runtime.board
    _Watch.dead, _Watch.stopping = set(), False
    _Watch.watchers = [threading.Thread(target=_watch_peer, args=(row,), name=f"dtorch-peer-{row}", daemon=True)
                       for row in range(board.life.shape[0]) if row != board.local_rank and board.has_locks]
    for t in _Watch.watchers:  # no glibc robust mutexes: deaths end the job through mpiexec, unnamed
        t.start()


def uninstall() -> None:
    atexit.unregister(_at_exit)
    if sys.exit is _sys_exit:
        sys.exit = _REAL_SYS_EXIT
    if os._exit is _os_exit:
        os._exit = _REAL_OS_EXIT
    if _Watch.prev_sigterm is not None and signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, _Watch.prev_sigterm)
    _Watch.prev_sigterm = None
    WaitHooks.aborting = lambda: None
    if _Watch.runtime is not None:
        _Watch.runtime.board.release_life_lock()
    _Watch.stopping = True
    for t in _Watch.watchers:  # each ends as its peer releases its lock too, or within a second
        t.join()
    _Watch.watchers = []
    _Watch.runtime = None


def on_leave(hook) -> None:
    """Call ``hook(rank, status, how, last_collective)`` when this rank leaves with its group alive, or
    names a same-node peer that died (``rank`` is then the peer's; ``status`` minus the signal that
    killed it). The launcher's worker records it for dtorch-run's report."""
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


def _run_hooks(status: int, how: str, rank: int | None = None, last: str | None = None) -> str:
    """Tell the ``on_leave`` hooks that ``rank`` (default: this rank) left; its last collective."""
    last = own_last_collective() if last is None else last
    for hook in _Watch.hooks:
        try:
            hook(_me() if rank is None else rank, status, how, last)
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
        time.sleep(0.001)


def _watch_peer(row: int) -> None:
    """A daemon thread per same-node peer: blocks (GIL released) on the peer's life lock, and names the
    peer at once if it dies unreported (under plain mpiexec the others are SIGKILLed ~0.5 ms after its
    parent hears of the death; the lock wakes us while the kernel is still tearing the peer down)."""
    board = _Watch.runtime.board
    while not _Watch.stopping:  # a wake-up a second: ``uninstall`` waits for this thread before the board goes
        died = board.wait_for_death(row, 1.0)
        if died is not None:
            if died:
                with _Watch.lock:
                    _peer_died(board, row)
            return


def _peer_died(board, row: int) -> None:
    """Name the first same-node peer this rank sees die unreported, if this is the lowest other rank of
    the node. Later deaths are mpiexec's clean-up; two peers found dying at once are not told apart."""
    life = [int(v) for v in board.life[row]]
    if not _alive() or life[STATE] == DONE or life[REPORTED] or (life[STATE] == LEAVING and life[STATUS] == 0):
        return  # left cleanly, reported itself, or is being waited for at exit
    first = not _Watch.dead
    _Watch.dead.add(row)
    if not first or any(int(board.life[r, REPORTED]) for r in range(board.life.shape[0])):
        return  # a rank already said why the job ends: this death is the launcher's clean-up
    ending = exit_status(life[PID])
    if ending is None:
        return  # the thread that started the group ended, not the process: no longer watched
    others = [r for r in range(board.life.shape[0]) if r not in (row, board.local_rank)]
    if any(r < board.local_rank for r in others) or \
            any(exit_status(int(board.life[r, PID]), tries=1) is not None for r in others):
        return  # a lower rank reports; or another peer is dying too and which died first is not known
    rank = next(g for g, r in board.local_of.items() if r == row)
    board.set_life(LEAVING, 1, reported=True)
    status, how = ending
    last = _run_hooks(status, how, rank, last_collective(row))
    abort_job(f"rank {rank} (pid {life[PID]}) died ({how}) without destroy_process_group(); "
              f"the last collective it entered: {last}")


def exit_status(pid: int, tries: int = 20) -> tuple[int, str] | None:
    """(status, how) of a process that is ending: its exit code, or minus the signal that killed it, as
    ``subprocess`` gives them; None while ``pid`` lives on. The kernel sets the code (a wait status)
    before it tears the process down (flag PF_EXITING) and keeps it while the process is a zombie."""
    for _ in range(tries):  # the thread holding the lock may die a moment before the process's main thread
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            state, flags, code = fields[0], int(fields[6]), int(fields[-1])
        except (OSError, ValueError, IndexError):
            return 1, "exit status not visible: already reaped"
        if state in ("Z", "X") or flags & _PF_EXITING:
            if code & 0x7F:
                return -(code & 0x7F), f"killed by signal {code & 0x7F} ({signal.Signals(code & 0x7F).name})"
            return code >> 8, f"exit status {code >> 8}"
        if tries > 1:
            time.sleep(0.001)
    return None


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

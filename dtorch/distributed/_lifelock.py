"""A robust, process-shared pthread mutex per rank of a node, held by the rank while it lives.

A peer blocked on it wakes with ``EOWNERDEAD`` the moment the kernel starts tearing the holding thread
down (its robust-futex list is walked before its memory is released), several milliseconds before a
pidfd or the parent's SIGCHLD hears of the death: under plain mpiexec the parent is hydra's proxy,
which SIGKILLs every other rank about 0.5 ms after its SIGCHLD. The blocked call releases the GIL
(ctypes), so waiting costs nothing. glibc on Linux only; elsewhere ``available()`` is False.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import sys
import time

SIZE = 64  # bytes reserved per lock (glibc's pthread_mutex_t: 40 on x86-64, 48 on aarch64)
_PROCESS_SHARED, _ROBUST = 1, 1


class _Libc:
    lib = None
    tried = False


def _libc():
    if not _Libc.tried:
        _Libc.tried = True
        name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
        try:
            lib = ctypes.CDLL(name, use_errno=True) if name else None
            if lib is not None:
                lib.pthread_mutexattr_setrobust  # noqa: B018 (glibc >= 2.12)
                for f in ("pthread_mutex_init", "pthread_mutex_timedlock"):
                    getattr(lib, f).argtypes = [ctypes.c_void_p, ctypes.c_void_p]
                for f in ("pthread_mutex_lock", "pthread_mutex_unlock"):
                    getattr(lib, f).argtypes = [ctypes.c_void_p]
            _Libc.lib = lib
        except (OSError, AttributeError):
            _Libc.lib = None
    return _Libc.lib


def available() -> bool:
    return _libc() is not None


def init_and_lock(addr: int) -> None:
    """Make the ``SIZE`` bytes at ``addr`` (shared memory) a robust process-shared mutex, held by the
    calling thread from now on."""
    lib = _libc()
    attr = ctypes.create_string_buffer(64)
    lib.pthread_mutexattr_init(attr)
    lib.pthread_mutexattr_setpshared(attr, _PROCESS_SHARED)
    lib.pthread_mutexattr_setrobust(attr, _ROBUST)
    ctypes.memset(addr, 0, SIZE)
    rc = lib.pthread_mutex_init(addr, attr) or lib.pthread_mutex_lock(addr)
    lib.pthread_mutexattr_destroy(attr)
    if rc:
        raise OSError(rc, f"robust mutex: {errno.errorcode.get(rc, rc)}")


def unlock(addr: int) -> bool:
    """Release this rank's own lock (a clean end: the peers' waits return False). False when the calling
    thread does not hold it (the group was started by another thread)."""
    return _libc().pthread_mutex_unlock(addr) == 0


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def wait(addr: int, timeout: float) -> bool | None:
    """Block up to ``timeout`` seconds until the peer's lock at ``addr`` is released. True: its holder
    died; False: it was unlocked; None: neither yet."""
    lib = _libc()
    deadline = time.time() + timeout  # pthread_mutex_timedlock's clock is CLOCK_REALTIME
    rc = lib.pthread_mutex_timedlock(addr, ctypes.byref(_Timespec(int(deadline), int(deadline % 1 * 1e9))))
    if rc == errno.ETIMEDOUT:
        return None
    if rc in (0, errno.EOWNERDEAD):  # not made consistent: the next waiter gets ENOTRECOVERABLE
        lib.pthread_mutex_unlock(addr)
    return rc != 0

"""Large-file I/O for dtorch.save/load and checkpoint directories.

Writes go out in STEP-sized pieces, each hashed right after it is written (still in the CPU cache),
with the disk's writeback started every CHUNK bytes (Linux sync_file_range), so the fsync at the end
has little left to flush; reads hash each piece right after reading it. Files replace their targets
atomically: temporary file beside the target, fsync, rename, fsync of the directory.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
import sys
import uuid
from typing import Callable

CHUNK = 8 << 20       # writeback is started every CHUNK bytes
STEP = 1 << 20        # write-then-hash / read-then-hash piece: small enough to be hashed from the CPU cache
_SYNC_FILE_RANGE_WRITE = 2


def _load_sync_file_range():
    """libc's sync_file_range (Linux), or None: starts writeback of a range without waiting for it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range()


def write_and_hash(fd: int, buffers: list, h, offset: int = 0) -> int:
    """Write the buffers to ``fd`` in STEP-sized pieces, updating the hash ``h`` with each piece right after
    writing it, and start each CHUNK's writeback as soon as it is written; returns the bytes written.
    ``offset``: where ``fd``'s position is, for the writeback ranges."""
    size = started = offset   # writeback has been started for the bytes before ``started``
    for b in buffers:
        mv = memoryview(b)
        if not mv.nbytes:
            continue   # an empty tensor: nothing to write (and a zero-size view cannot be cast)
        mv = mv.cast("B")
        pos = 0
        while pos < len(mv):
            n = os.write(fd, mv[pos:pos + STEP])
            h.update(mv[pos:pos + n])
            pos += n
            size += n
            if _sync_file_range is not None and size - started >= CHUNK:
                _sync_file_range(fd, started, size - started, _SYNC_FILE_RANGE_WRITE)
                started = size
    return size - offset


def read_and_hash(readinto: Callable[[memoryview], int | None], buf: memoryview, h) -> int:
    """Fill ``buf`` by ``readinto`` calls in STEP-sized pieces, updating ``h`` with each piece right after
    reading it (still in the CPU cache); returns the count read (short only at the end of the stream)."""
    pos = 0
    while pos < len(buf):
        n = _fill(readinto, buf[pos:pos + STEP])
        h.update(buf[pos:pos + n])
        pos += n
        if n < STEP:
            break
    return pos


def _fill(readinto, buf: memoryview) -> int:
    pos = 0
    while pos < len(buf):
        n = readinto(buf[pos:])
        if not n:
            break
        pos += n
    return pos


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str | os.PathLike, fill: Callable[[int], None]) -> None:
    """Replace ``path`` (the file a symlink names) by what ``fill(fd)`` writes: a temporary file beside it, fsync,
    rename over it, fsync the directory. The target never holds a partial file; its permissions are kept."""
    path = os.path.realpath(os.fspath(path))
    parent, name = os.path.split(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not os.path.isdir(parent):
        raise FileNotFoundError(errno.ENOENT, f"parent directory {parent} does not exist", path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    tmp = os.path.join(parent, f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            fill(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(parent)


def write_all(fd: int, data) -> None:
    mv = memoryview(data).cast("B")
    pos = 0
    while pos < len(mv):
        pos += os.write(fd, mv[pos:pos + (16 << 20)])

"""Large-file I/O for dtorch.save/load and checkpoint directories.

Writes go out in STEP-sized pieces with the disk's writeback started every CHUNK bytes (Linux
sync_file_range), so the fsync at the end has little left to flush; reads go in READ_STEP pieces
with the kernel told to read ahead (posix_fadvise). The checksum (any object with hashlib's ``update``,
e.g. blake3 or a sha256, both release the GIL) runs in a helper thread beside the writes or a piece
behind the reads, so a file costs the longer of its I/O and its hashing, not their sum; small files
are hashed inline. Files replace their targets
atomically: temporary file beside the target, fsync, rename, fsync of the directory.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import queue
import stat
import sys
import threading
import uuid
from contextlib import contextmanager
from typing import Callable, Iterator

CHUNK = 8 << 20       # writeback is started every CHUNK bytes
STEP = 1 << 20        # write piece; also the piece hashed inline (from the CPU cache) for small files
READ_STEP = 4 << 20   # read piece, handed to the hash thread as soon as it is in
THREADED_MIN = 4 << 20   # from this many bytes on, hashing runs in a helper thread
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


class _HashThread:
    """Feeds memoryviews to a hashlib object in one helper thread, in the order they are put."""

    def __init__(self, h) -> None:
        self.h, self.error, self.cancelled = h, None, False
        self.pieces: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="dtorch-hash", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (piece := self.pieces.get()) is not None:
            if self.cancelled or self.error is not None:
                continue
            try:
                self.h.update(piece)
            except BaseException as e:   # re-raised in the caller's thread by close()
                self.error = e

    def close(self, cancel: bool = False) -> None:
        self.cancelled = self.cancelled or cancel
        self.pieces.put(None)
        self.thread.join()
        if self.error is not None and not cancel:
            raise self.error


@contextmanager
def hashing(h, nbytes: int) -> Iterator[Callable[[memoryview], None]]:
    """A ``feed(piece)`` that updates ``h`` with the pieces in order: inline below THREADED_MIN bytes, else in
    a helper thread, all of it done when the block ends (on an error, the rest is dropped)."""
    if nbytes < THREADED_MIN:
        yield h.update
        return
    worker = _HashThread(h)
    try:
        yield worker.pieces.put
    except BaseException:
        worker.close(cancel=True)
        raise
    worker.close()


def _byte_views(buffers: list) -> list[memoryview]:
    views = (memoryview(b) for b in buffers)
    return [mv.cast("B") for mv in views if mv.nbytes]   # an empty tensor has nothing to write or hash


def write_and_hash(fd: int, buffers: list, h, offset: int = 0) -> int:
    """Write the buffers to ``fd`` and update the hash ``h`` with them; returns the bytes written.

    Writeback starts every CHUNK bytes. Large data is hashed from memory in a helper thread while it is
    written; small data piece by piece right after writing (still in the CPU cache). ``offset``: where
    ``fd``'s position is, for the writeback ranges."""
    views = _byte_views(buffers)
    total = sum(len(mv) for mv in views)
    size = started = offset   # writeback has been started for the bytes before ``started``
    threaded = total >= THREADED_MIN
    with hashing(h, total) as feed:
        if threaded:
            for mv in views:
                for pos in range(0, len(mv), CHUNK):
                    feed(mv[pos:pos + CHUNK])
        for mv in views:
            pos = 0
            while pos < len(mv):
                n = os.write(fd, mv[pos:pos + STEP])
                if not threaded:
                    feed(mv[pos:pos + n])
                pos += n
                size += n
                if _sync_file_range is not None and size - started >= CHUNK:
                    _sync_file_range(fd, started, size - started, _SYNC_FILE_RANGE_WRITE)
                    started = size
    return size - offset


def read_and_hash(readinto: Callable[[memoryview], int | None], buf: memoryview, h) -> int:
    """Fill ``buf`` by ``readinto`` calls in READ_STEP pieces, updating ``h`` with each piece once it is read
    (in a helper thread for large buffers, so the next piece is read meanwhile); returns the count read
    (short only at the end of the stream)."""
    pos = 0
    with hashing(h, len(buf)) as feed:
        while pos < len(buf):
            n = _fill(readinto, buf[pos:pos + READ_STEP])
            if n:
                feed(buf[pos:pos + n])
            pos += n
            if n < READ_STEP:
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


def advise_sequential(f) -> None:
    """Tell the kernel ``f`` (a file object or descriptor) is read from start to end: a larger readahead."""
    try:
        fd = f if isinstance(f, int) else f.fileno()
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    except (AttributeError, OSError, ValueError):
        pass


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(parent: str, name: str) -> None:
    """Remove the ``.NAME.tmp-PID-...`` files a killed ``write_atomically`` of ``name`` left in ``parent``:
    only those whose writer PID is no process on this host (a live writer's file is never touched)."""
    prefix = f".{name}.tmp-"
    try:
        entries = [e for e in os.listdir(parent) if e.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        pid, sep, _ = entry[len(prefix):].partition("-")
        if not (sep and pid.isdigit()) or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # alive (or another user's process): its writer may still be at work
        except ProcessLookupError:
            pass
        except OSError:
            continue
        try:
            os.unlink(os.path.join(parent, entry))
        except OSError:
            pass


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
    remove_stale_temps(parent, name)
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

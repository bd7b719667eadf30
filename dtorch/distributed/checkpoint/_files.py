"""File-level primitives: hashed writes and reads, fsync, atomic small-file replacement."""
from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ._errors import CheckpointError

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


def _write_and_hash(fd: int, buffers: list) -> tuple[str, int]:
    """Write the buffers to ``fd`` in STEP-sized pieces, hashing each piece right after writing it
    (it is still in the CPU cache), and start each CHUNK's writeback as soon as it is written."""
    h = hashlib.sha256()
    size = started = 0   # writeback has been started for the bytes before ``started``
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
    return h.hexdigest(), size


def write_hashed(files: dict[Path, list]) -> dict[Path, tuple[str, int]]:
    """Write each path's buffers to it and fsync them all; returns {path: (sha256 hex, size)}.

    One thread per file writes and hashes (``os.write`` and ``hashlib`` release the GIL on large
    buffers), reading each piece from memory once. On Linux writeback starts chunk by chunk
    (sync_file_range), so the disk works while later pieces are copied; the fsyncs come last,
    when little is left to flush, so no file's fsync waits for another file still being written.
    """
    fds: dict[Path, int] = {}
    try:
        for path in files:
            fds[path] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        if len(files) <= 1:
            results = {path: _write_and_hash(fds[path], buffers) for path, buffers in files.items()}
        else:
            with ThreadPoolExecutor(len(files), thread_name_prefix="ckpt-write") as ex:
                futures = {path: ex.submit(_write_and_hash, fds[path], buffers) for path, buffers in files.items()}
                results = {path: f.result() for path, f in futures.items()}
        for fd in fds.values():
            os.fsync(fd)
    finally:
        for fd in fds.values():
            os.close(fd)
    return results


def read_hashed(path: Path) -> tuple[memoryview, str]:
    """Read a whole file into a private buffer, hashing each STEP-sized piece right after reading it
    (still in the CPU cache); returns (the buffer, sha256 hex). Files are read in parallel by the caller."""
    try:
        size = os.path.getsize(path)
        mv = memoryview(np.empty(size, np.uint8)).cast("B")
        h = hashlib.sha256()
        pos = 0
        with open(path, "rb", buffering=0) as f:
            while pos < size:
                n = f.readinto(mv[pos:pos + STEP])
                if not n:
                    break
                h.update(mv[pos:pos + n])
                pos += n
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file missing") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e})") from None
    if pos != size:
        raise CheckpointError(f"{path}: file shrank while reading (truncated?)")
    return mv, h.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_small(path: Path, data: bytes) -> None:
    """Write a small file and fsync it (not atomic by itself)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def replace_atomically(path: Path, data: bytes) -> None:
    """Replace ``path``'s content all at once: write a temporary file beside it, fsync, rename, fsync the dir."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")  # same form as _dirs._TMP
    write_small(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)

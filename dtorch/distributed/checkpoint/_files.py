"""File-level primitives: hashed writes and reads, fsync, atomic small-file replacement."""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from ...utils._fileio import fsync_dir, read_and_hash, write_and_hash
from ._errors import CheckpointError


def _write_and_hash(fd: int, buffers: list, new_hash: Callable) -> tuple[str, int]:
    h = new_hash()
    size = write_and_hash(fd, buffers, h)
    return h.hexdigest(), size


def write_hashed(files: dict[Path, list], new_hash: Callable) -> dict[Path, tuple[str, int]]:
    """Write each path's buffers to it and fsync them all; returns {path: (hex digest, size)}, the digests by
    ``new_hash`` (a hashlib-style constructor).

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
            results = {path: _write_and_hash(fds[path], buffers, new_hash) for path, buffers in files.items()}
        else:
            with ThreadPoolExecutor(len(files), thread_name_prefix="ckpt-write") as ex:
                futures = {path: ex.submit(_write_and_hash, fds[path], buffers, new_hash)
                           for path, buffers in files.items()}
                results = {path: f.result() for path, f in futures.items()}
        for fd in fds.values():
            os.fsync(fd)
    finally:
        for fd in fds.values():
            os.close(fd)
    return results


def read_hashed(path: Path, new_hash: Callable) -> tuple[memoryview, str]:
    """Read a whole file into a private buffer, hashing each piece right after reading it (still in the CPU
    cache); returns (the buffer, its ``new_hash`` hex digest). Files are read in parallel by the caller."""
    try:
        size = os.path.getsize(path)
        mv = memoryview(np.empty(size, np.uint8)).cast("B")
        h = new_hash()
        with open(path, "rb", buffering=0) as f:
            pos = read_and_hash(f.readinto, mv, h)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file missing") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e})") from None
    if pos != size:
        raise CheckpointError(f"{path}: file shrank while reading (truncated?)")
    return mv, h.hexdigest()


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

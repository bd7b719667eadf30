"""File-level primitives: hashed writes and reads, fsync, atomic small-file replacement."""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from ._errors import CheckpointError

CHUNK = 8 << 20


def _chunks(buffers: list) -> list[memoryview]:
    out = []
    for b in buffers:
        mv = memoryview(b).cast("B") if not isinstance(b, (bytes, bytearray)) else memoryview(b)
        out.extend(mv[i:i + CHUNK] for i in range(0, len(mv), CHUNK))
    return out


def write_hashed(path: Path, buffers: list) -> tuple[str, int]:
    """Write the buffers to ``path`` and fsync it; the sha256 is computed in a second thread meanwhile.

    Both ``file.write`` and ``hashlib`` release the GIL on large buffers, so hashing
    overlaps with the write and the flush to disk. Returns (sha256 hex, size in bytes).
    """
    chunks = _chunks(buffers)
    h = hashlib.sha256()
    hasher = threading.Thread(target=lambda: [h.update(c) for c in chunks], name="ckpt-sha256")
    hasher.start()
    size = 0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            for c in chunks:
                while len(c):
                    n = os.write(fd, c)
                    size += n
                    c = c[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        hasher.join()
    return h.hexdigest(), size


def read_hashed(path: Path) -> tuple[memoryview, str]:
    """Read a whole file into memory; sha256 is computed chunk by chunk while reading."""
    try:
        size = os.path.getsize(path)
        buf = np.empty(size, np.uint8)
        mv = memoryview(buf).cast("B")
        h = hashlib.sha256()
        done: list[memoryview] = []
        lock = threading.Condition()
        finished = [False]

        def hash_loop() -> None:
            while True:
                with lock:
                    while not done and not finished[0]:
                        lock.wait()
                    if not done:
                        return
                    c = done.pop(0)
                h.update(c)

        t = threading.Thread(target=hash_loop, name="ckpt-sha256")
        t.start()
        try:
            with open(path, "rb", buffering=0) as f:
                pos = 0
                while pos < size:
                    n = f.readinto(mv[pos:pos + CHUNK])
                    if not n:
                        break
                    with lock:
                        done.append(mv[pos:pos + n])
                        lock.notify()
                    pos += n
        finally:
            with lock:
                finished[0] = True
                lock.notify()
            t.join()
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

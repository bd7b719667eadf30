"""dtorch/utils/_fileio.py's hashing pipeline: inline for small data, a helper thread for large data.

The piece sizes and the threshold are lowered here so that small tensors cross every boundary (write piece,
read piece, writeback chunk, threshold) and the tests stay fast; both paths must write identical files.
"""
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import dtorch
from dtorch._safetensors import SafetensorsError
from dtorch.utils import _fileio


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of a few KiB, not multiples of each other; the helper thread from 32 KiB on."""
    monkeypatch.setattr(_fileio, "STEP", 5000)
    monkeypatch.setattr(_fileio, "READ_STEP", 7000)
    monkeypatch.setattr(_fileio, "CHUNK", 12_000)
    monkeypatch.setattr(_fileio, "THREADED_MIN", 32 << 10)


def _hash_threads() -> list:
    return [t for t in threading.enumerate() if t.name == "dtorch-hash"]


def _buffers(sizes, seed=0) -> list:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, n, dtype=np.uint8) for n in sizes]


@pytest.mark.parametrize("sizes", [[0], [1], [4999, 5000, 5001], [0, 31 << 10, 0], [32 << 10], [7000 * 9 + 1, 3],
                                   [100_003, 0, 12_000, 1]])
def test_write_and_read_hash_every_byte_once_in_order(tmp_path, small_pieces, sizes):
    buffers = _buffers(sizes)
    whole = b"".join(b.tobytes() for b in buffers)
    h = hashlib.sha256(b"head")
    path = tmp_path / "f.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert _fileio.write_and_hash(fd, buffers, h, offset=0) == len(whole)
    finally:
        os.close(fd)
    assert h.hexdigest() == hashlib.sha256(b"head" + whole).hexdigest()
    assert path.read_bytes() == whole
    buf = memoryview(bytearray(len(whole) + 10))          # room for more: the read stops at the end
    h2 = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        assert _fileio.read_and_hash(f.readinto, buf, h2) == len(whole)
    assert bytes(buf[:len(whole)]) == whole and h2.hexdigest() == hashlib.sha256(whole).hexdigest()
    assert not _hash_threads()


def test_short_reads_are_filled_and_hashed_once(small_pieces):
    data = bytes(_buffers([90_001], seed=1)[0])
    stream = io.BytesIO(data)
    rng = np.random.default_rng(2)

    def readinto(mv):                       # a pipe or socket: fewer bytes than asked, often
        return stream.readinto(mv[:int(rng.integers(1, 3000))])

    buf = memoryview(bytearray(len(data)))
    h = hashlib.sha256()
    assert _fileio.read_and_hash(readinto, buf, h) == len(data)
    assert bytes(buf) == data and h.hexdigest() == hashlib.sha256(data).hexdigest()


def _state() -> dict:
    base = dtorch.arange(60 * 70, dtype=dtorch.float32).reshape(60, 70)
    return {
        "big": dtorch.randn(30_011, dtype=dtorch.float64),             # about 240 KB: the threaded path
        "empty": dtorch.zeros(0, 5),
        "scalar": dtorch.tensor(3.5),
        "t": base.t(),                                                  # non-contiguous views
        "strided": base[::3, 1::2],
        "ints": dtorch.arange(12_345, dtype=dtorch.int16),
        "flag": dtorch.tensor([True, False, True]),
        "meta": {"epoch": 7, "lr": 1e-3, "names": ["a", "b"]},
    }


def _check(back: dict, want: dict) -> None:
    for k in ("big", "empty", "scalar", "t", "strided", "ints", "flag"):
        assert back[k].shape == want[k].shape and back[k].dtype == want[k].dtype, k
        assert np.array_equal(back[k].numpy(), want[k].numpy()), k
    assert back["meta"] == want["meta"]


def test_threaded_and_inline_saves_write_the_same_file(tmp_path, small_pieces, monkeypatch):
    state = _state()
    dtorch.save(state, tmp_path / "threaded.pt")
    monkeypatch.setattr(_fileio, "THREADED_MIN", 1 << 62)
    dtorch.save(state, tmp_path / "inline.pt")
    assert (tmp_path / "threaded.pt").read_bytes() == (tmp_path / "inline.pt").read_bytes()
    assert (tmp_path / "inline.pt").read_bytes() == dtorch.serialization.save_to_bytes(state)
    _check(dtorch.load(tmp_path / "inline.pt"), state)
    monkeypatch.setattr(_fileio, "THREADED_MIN", 32 << 10)
    _check(dtorch.load(tmp_path / "inline.pt"), state)            # read back through the helper thread
    assert not _hash_threads()


def test_threaded_load_catches_a_flipped_byte_in_every_piece(tmp_path, small_pieces):
    dtorch.save({"big": dtorch.randn(30_011, dtype=dtorch.float64)}, tmp_path / "a.pt")
    raw = (tmp_path / "a.pt").read_bytes()
    for at in range(len(raw) - 1, len(raw) - 240_000, -_fileio.READ_STEP * 3 - 17):
        bad = bytearray(raw)
        bad[at] ^= 0x01
        (tmp_path / "bad.pt").write_bytes(bytes(bad))
        with pytest.raises(SafetensorsError, match="bad.pt: checksum mismatch"):
            dtorch.load(tmp_path / "bad.pt")
    assert not _hash_threads()


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_thread(tmp_path, small_pieces, monkeypatch):
    target = tmp_path / "ckpt.pt"
    dtorch.save({"v": 1, "w": dtorch.ones(40_000)}, target)
    real_write, calls = os.write, [0]

    def failing_write(fd, data):
        calls[0] += 1
        if calls[0] == 9:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(OSError, match="No space left"):
        dtorch.save({"v": 2, "w": dtorch.zeros(40_000)}, target)
    monkeypatch.setattr(os, "write", real_write)
    back = dtorch.load(target)
    assert back["v"] == 1 and float(back["w"].sum()) == 40_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"] and not _hash_threads()


def test_an_error_in_the_hash_thread_reaches_the_caller(small_pieces, tmp_path):
    class Broken:
        def __init__(self) -> None:
            self.n = 0

        def update(self, piece) -> None:
            self.n += 1
            if self.n == 3:
                raise MemoryError("hash state lost")

    buffers = _buffers([100_000])
    fd = os.open(tmp_path / "x", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with pytest.raises(MemoryError, match="hash state lost"):
            _fileio.write_and_hash(fd, buffers, Broken())
    finally:
        os.close(fd)
    assert not _hash_threads()


_KILLED_SAVES = r"""
import json, os, random, signal, sys, time
import dtorch
from dtorch.utils import _fileio
_fileio.STEP, _fileio.READ_STEP, _fileio.CHUNK, _fileio.THREADED_MIN = 5000, 7000, 12_000, 32 << 10
folder, out, rng = sys.argv[1], [], random.Random(3)
def obj(v):
    return {"v": v, "w": dtorch.full((300_000,), float(v)), "tail": dtorch.arange(5) * v}
for i in range(10):
    path = os.path.join(folder, f"k{i}.pt")
    dtorch.save(obj(0), path)
    pid = os.fork()
    if pid == 0:
        v = 1
        while True:
            dtorch.save(obj(v), path)
            v += 1
    time.sleep(rng.uniform(0, 0.06))
    os.kill(pid, signal.SIGKILL)
    out.append([path, os.waitpid(pid, 0)[1]])
print(json.dumps(out))
"""


def test_threaded_saves_killed_at_random_moments_leave_a_complete_file(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _KILLED_SAVES, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    cases = json.loads(proc.stdout)
    assert len(cases) == 10
    for path, status in cases:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        back = dtorch.load(path)
        v = back["v"]
        assert np.all(back["w"].numpy() == v) and back["tail"].tolist() == [i * v for i in range(5)]

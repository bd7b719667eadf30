"""dtorch.save / dtorch.load: safetensors + JSON, no pickle, clear errors on bad files."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest

import dtorch
from dtorch._safetensors import SafetensorsError


def test_state_dict_round_trip_is_plain_safetensors(tmp_path):
    sd = {"layer.weight": dtorch.randn(3, 4), "layer.bias": dtorch.zeros(4, dtype=dtorch.float64),
          "steps": dtorch.tensor([1, 2, 3]), "mask": dtorch.tensor([True, False])}
    path = tmp_path / "model.safetensors"
    dtorch.save(sd, path)
    back = dtorch.load(path)
    assert list(back) == list(sd)
    for k in sd:
        assert back[k].dtype == sd[k].dtype
        np.testing.assert_array_equal(back[k].numpy(), sd[k].numpy())


def test_nested_structure_round_trip():
    obj = {"step": 7, "lr": 0.5, "inf": math.inf, "name": "run", "none": None, "flag": True,
           "state": {0: {"exp_avg": dtorch.ones(2)}, 1: {}}, "groups": [{"params": [0, 1], "lr": 0.1}],
           "pair": (1, dtorch.arange(3))}
    buf = io.BytesIO()
    dtorch.save(obj, buf)
    buf.seek(0)
    back = dtorch.load(buf)
    assert back["step"] == 7 and back["lr"] == 0.5 and back["inf"] == math.inf and back["none"] is None
    assert back["flag"] is True and back["groups"] == [{"params": [0, 1], "lr": 0.1}]
    assert isinstance(back["pair"], tuple) and back["pair"][1].tolist() == [0, 1, 2]
    assert back["state"][0]["exp_avg"].tolist() == [1.0, 1.0] and back["state"][1] == {}


def test_requires_grad_survives(tmp_path):
    p = dtorch.randn(2, requires_grad=True)
    dtorch.save({"p": p}, tmp_path / "p.st")
    assert dtorch.load(tmp_path / "p.st")["p"].requires_grad


def test_unsupported_objects_are_refused():
    with pytest.raises(TypeError, match="cannot store an object of type object"):
        dtorch.save({"x": object()}, io.BytesIO())


def _saved_bytes() -> bytes:
    buf = io.BytesIO()
    dtorch.save({"w": dtorch.arange(16, dtype=dtorch.float32)}, buf)
    return buf.getvalue()


def test_truncated_file_is_refused(tmp_path):
    data = _saved_bytes()
    (tmp_path / "t.st").write_bytes(data[:-5])
    with pytest.raises(SafetensorsError, match="t.st.*(truncated|does not fit)"):
        dtorch.load(tmp_path / "t.st")


def test_flipped_data_byte_is_refused(tmp_path):
    data = bytearray(_saved_bytes())
    data[-3] ^= 0xFF
    (tmp_path / "f.st").write_bytes(bytes(data))
    with pytest.raises(SafetensorsError, match="checksum mismatch"):
        dtorch.load(tmp_path / "f.st")


def test_garbage_and_pickle_files_are_refused(tmp_path):
    (tmp_path / "g").write_bytes(b"hello world, not a tensor file at all")
    with pytest.raises(SafetensorsError, match="not a safetensors file"):
        dtorch.load(tmp_path / "g")
    (tmp_path / "p").write_bytes(b"\x80\x04\x95 pickle bytes")
    with pytest.raises(SafetensorsError, match="pickle"):
        dtorch.load(tmp_path / "p")


def test_map_location(tmp_path):
    dtorch.save({"a": dtorch.ones(1)}, tmp_path / "a.st")
    assert dtorch.load(tmp_path / "a.st", map_location="cpu")["a"].device.type == "cpu"


def test_interop_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    sd = {"w": dtorch.randn(2, 3), "b": dtorch.tensor([1, 2], dtype=dtorch.int32)}
    dtorch.save(sd, tmp_path / "ours.safetensors")
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    for k in sd:
        np.testing.assert_array_equal(theirs[k], sd[k].numpy())
    st.save_file({"x": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(tmp_path / "theirs.safetensors"))
    back = dtorch.load(tmp_path / "theirs.safetensors")
    assert back["x"].shape == (2, 3) and back["x"].dtype == dtorch.float32


def test_zero_dim_tensors_keep_their_shape():
    buf = io.BytesIO()
    dtorch.save({"step": dtorch.tensor(3.0), "v": dtorch.ones(2)}, buf)
    buf.seek(0)
    back = dtorch.load(buf)
    assert back["step"].shape == () and back["step"].item() == 3.0 and back["v"].shape == (2,)


def test_safetensors_read_without_copy_gives_views_except_where_misaligned():
    from dtorch import _safetensors

    arrays = {"a": np.arange(3, dtype=np.float32), "b": np.arange(2, dtype=np.float64)}  # b starts at byte 12
    head, buffers = _safetensors.encode(arrays)
    buf = np.frombuffer(head + b"".join(bytes(x) for x in buffers), np.uint8).copy()
    out, _ = _safetensors.read(memoryview(buf), copy=False)
    assert np.shares_memory(out["a"], buf) and out["a"].flags.writeable
    assert not np.shares_memory(out["b"], buf) and out["b"].flags.aligned   # float64 at offset 12: copied
    assert out["a"].tolist() == [0, 1, 2] and out["b"].tolist() == [0, 1]
    copied, _ = _safetensors.read(memoryview(buf))
    assert not any(np.shares_memory(v, buf) for v in copied.values())


# --- atomic save: kill points -------------------------------------------------------------------------------------

_KILL_DRIVER = r"""
import json, os, random, resource, signal, sys, time
import numpy as np
import dtorch

folder, mode = sys.argv[1], sys.argv[2]
def obj(v, n):
    return {"v": v, "name": f"version {v}", "w": dtorch.full((n,), float(v)), "rest": [dtorch.arange(7) * v]}
out = []
if mode == "fsize":          # a file-size limit at many byte counts: SIGXFSZ kills the save, or EFBIG stops it
    full = len(dtorch.serialization.save_to_bytes(obj(2, 3000)))
    limits = sorted({0, 1, 7, 8, 9, 64, 200, 511, 512, 1000, 4096, full // 2, full - 8, full - 1, full, full + 1,
                     *random.Random(0).sample(range(full), 8)})
    for i, n in enumerate(limits):
        for ignore in (False, True):
            path = os.path.join(folder, f"f{i}{'i' * ignore}.st")
            dtorch.save(obj(1, 3000), path)
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN if ignore else signal.SIG_DFL)  # Python ignores it
                resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
                try:
                    dtorch.save(obj(2, 3000), path)
                except OSError:
                    os._exit(3)
                os._exit(0)
            out.append([path, os.waitpid(pid, 0)[1], n, full])
else:                        # SIGKILL at random moments of a loop of saves
    rng = random.Random(1)
    for i in range(int(mode)):
        path = os.path.join(folder, f"k{i}.st")
        dtorch.save(obj(0, 200_000), path)
        pid = os.fork()
        if pid == 0:
            v = 1
            while True:
                dtorch.save(obj(v, 200_000), path)
                v += 1
        time.sleep(rng.uniform(0, 0.08))
        os.kill(pid, signal.SIGKILL)
        out.append([path, os.waitpid(pid, 0)[1], 0, 0])
print(json.dumps(out))
"""


def _run_kills(tmp_path, mode):
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _KILL_DRIVER, str(tmp_path), mode], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _version(path) -> int:
    back = dtorch.load(path)
    v = back["v"]
    assert back["name"] == f"version {v}" and back["rest"][0].tolist() == [i * v for i in range(7)]
    assert np.all(back["w"].numpy() == v)
    return v


def test_save_killed_by_a_file_size_limit_leaves_the_old_file(tmp_path):
    import os
    import signal

    cases = _run_kills(tmp_path, "fsize")
    assert len(cases) >= 30
    outcomes = set()
    for path, status, limit, full in cases:
        v = _version(path)
        if os.WIFSIGNALED(status):
            assert os.WTERMSIG(status) == signal.SIGXFSZ and v == 1 and limit < full
            outcomes.add("killed")
        elif os.WEXITSTATUS(status) == 3:       # SIGXFSZ ignored: the write fails with EFBIG, save raises
            assert v == 1 and limit < full
            outcomes.add("raised")
        else:
            assert os.WEXITSTATUS(status) == 0 and v == 2 and limit >= full
            outcomes.add("saved")
    assert outcomes == {"killed", "raised", "saved"}
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    killed = sum(os.WIFSIGNALED(s) for _, s, _, _ in cases)
    assert len(leftovers) <= killed        # a save that raised removed its temporary file


def test_save_killed_at_random_moments_leaves_a_complete_file(tmp_path):
    cases = _run_kills(tmp_path, "12")
    versions = [_version(path) for path, _, _, _ in cases]
    assert len(versions) == 12 and all(v >= 0 for v in versions)


def test_save_to_a_path_replaces_atomically_and_keeps_mode_and_symlinks(tmp_path):
    import os

    target = tmp_path / "real.st"
    dtorch.save({"a": dtorch.ones(2)}, target)
    os.chmod(target, 0o640)
    link = tmp_path / "link.st"
    link.symlink_to(target)
    dtorch.save({"a": dtorch.zeros(3)}, link)
    assert link.is_symlink() and dtorch.load(target)["a"].tolist() == [0.0, 0.0, 0.0]
    assert (os.stat(target).st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.st", "real.st"]
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        dtorch.save({"a": 1}, tmp_path)
    with pytest.raises(FileNotFoundError, match="parent directory"):
        dtorch.save({"a": 1}, tmp_path / "no" / "x.st")


def test_large_file_round_trip_and_a_flipped_byte_anywhere_is_caught(tmp_path):
    """Files of several read pieces: the data is hashed as it is read (a helper thread reads ahead)."""
    from dtorch.utils import _fileio

    big = dtorch.arange(3 * _fileio.STEP // 4 + 17, dtype=dtorch.float64)    # about 3 pieces, not a multiple
    dtorch.save({"big": big, "step": 5}, tmp_path / "big.st")
    back = dtorch.load(tmp_path / "big.st")
    assert back["step"] == 5 and np.array_equal(back["big"].numpy(), big.numpy())
    raw = (tmp_path / "big.st").read_bytes()
    for at in (len(raw) // 3, 2 * len(raw) // 3, len(raw) - 1):
        bad = bytearray(raw)
        bad[at] ^= 0x40
        (tmp_path / "bad.st").write_bytes(bytes(bad))
        with pytest.raises(SafetensorsError, match="bad.st: checksum mismatch"):
            dtorch.load(tmp_path / "bad.st")


def test_file_objects_with_only_read(tmp_path):
    data = _saved_bytes()

    class ReadOnly:
        def __init__(self) -> None:
            self.buf = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self.buf.read(n)

    assert dtorch.load(ReadOnly())["w"].tolist() == list(range(16))


@pytest.mark.parametrize("low_bytes", [b"\x80", b"PK"])
def test_header_lengths_that_begin_like_a_pickle_or_zip_still_load(low_bytes):
    """A header of 0x..80 or 0x4B50 bytes starts the file with a pickle's or a zip's magic bytes."""
    for pad in range(2000) if low_bytes == b"\x80" else range(19000, 19400):   # 0x4B50 = 19280
        data = dtorch.serialization.save_to_bytes({"pad": "x" * pad, "w": dtorch.ones(2)})
        if data.startswith(low_bytes):
            break
    assert data.startswith(low_bytes)
    back = dtorch.load(io.BytesIO(data))
    assert back["pad"] == "x" * pad and back["w"].tolist() == [1.0, 1.0]

"""Checkpoint format, checksums, refusal cases, retention and latest()."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import dtorch
import dtorch.distributed.checkpoint as dcp
from dtorch import nn


def _state(seed: int = 0):
    dtorch.manual_seed(seed)
    model = nn.Linear(8, 4)
    return {"model": model, "step": seed, "note": "hello", "scale": dtorch.full((3,), float(seed))}


def _save(tmp_path, seed: int = 0, **kw):
    return dcp.save(_state(seed), tmp_path / f"step_{seed:04d}", **kw)


def test_empty_and_zero_dim_tensors_round_trip(tmp_path):
    src = {"t": {"empty": dtorch.zeros(0), "rows": dtorch.zeros(0, 5), "scalar": dtorch.tensor(3.5),
                 "ints": dtorch.arange(4)}}
    dcp.save(src, tmp_path / "ck")
    out = {"t": None}
    dcp.load(out, tmp_path / "ck")
    assert {k: tuple(v.shape) for k, v in out["t"].items()} == {"empty": (0,), "rows": (0, 5), "scalar": (),
                                                                  "ints": (4,)}
    assert float(out["t"]["scalar"]) == 3.5 and out["t"]["ints"].tolist() == [0, 1, 2, 3]


def test_roundtrip_in_place_and_manifest(tmp_path):
    src = _state(1)
    path = dcp.save(src, tmp_path / "ck", metadata={"user": [1, 2]})
    dst = _state(2)
    weight = dst["model"].weight
    out = dcp.load(dst, path)
    assert dst["model"].weight is weight and dtorch.equal(weight, src["model"].weight)
    assert dst["step"] == 1 and dst["note"] == "hello" and dtorch.equal(dst["scale"], src["scale"])
    doc = json.loads((path / "manifest.json").read_text())
    assert doc["format"] == "dtorch.checkpoint" and doc["version"] == 2 and doc["world_size"] == 1
    assert doc["metadata"] == {"user": [1, 2]} and out["__manifest__"]["step"] == 1
    info = doc["files"]["model.safetensors"]
    assert info["tensors"]["weight"] == {"dtype": "F32", "shape": [4, 8]} and len(info["blake3"]) == 64
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_model_file_is_plain_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    src = _state(3)
    path = dcp.save(src, tmp_path / "ck")
    arrays = st.load_file(str(path / "model.safetensors"))
    np.testing.assert_array_equal(arrays["weight"], src["model"].weight.detach().numpy())
    assert set(dtorch.load(path / "model.safetensors")) == {"weight", "bias"}


def _corrupt_cases():
    def truncate(p):
        f = p / "model.safetensors"
        f.write_bytes(f.read_bytes()[:-7])

    def flip(p):
        f = p / "model.safetensors"
        b = bytearray(f.read_bytes())
        b[-5] ^= 0x10
        f.write_bytes(bytes(b))

    def missing(p):
        os.unlink(p / "model.safetensors")

    def edit_manifest(p):
        m = p / "manifest.json"
        doc = json.loads(m.read_text())
        doc["files"]["model.safetensors"]["tensors"]["weight"]["shape"] = [8, 4]
        m.write_text(json.dumps(doc))

    def truncate_manifest(p):
        m = p / "manifest.json"
        m.write_bytes(m.read_bytes()[:50])

    def no_manifest(p):
        os.unlink(p / "manifest.json")

    def foreign(p):
        m = p / "manifest.json"
        m.write_text(json.dumps({"format": "something.else"}))

    return {"truncated file": (truncate, "model.safetensors", "bytes"),
            "flipped byte": (flip, "model.safetensors", "blake3 mismatch"),
            "missing file": (missing, "model.safetensors", "missing"),
            "manifest edited": (edit_manifest, "manifest.json", "edited"),
            "manifest truncated": (truncate_manifest, "manifest.json", "JSON"),
            "no manifest": (no_manifest, "manifest.json", "not a (complete) dtorch checkpoint"),
            "foreign manifest": (foreign, "manifest.json", "not a dtorch checkpoint")}


@pytest.mark.parametrize("case", list(_corrupt_cases()))
def test_refusals_name_file_and_problem(tmp_path, case):
    damage, fname, words = _corrupt_cases()[case]
    path = _save(tmp_path, 1)
    damage(path)
    with pytest.raises(dcp.CheckpointError) as ei:
        dcp.load(_state(), path)
    assert fname in str(ei.value) and words in str(ei.value)
    assert dcp.latest(tmp_path, verify=True) is None
    if case != "flipped byte":      # same size: only the checksum (load, verify=True) sees it
        assert dcp.latest(tmp_path) is None


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(dcp.CheckpointError, match="not a"):
        dcp.load(_state(), tmp_path / "junk")
    with pytest.raises(dcp.CheckpointError, match="not a directory"):
        dcp.load(_state(), tmp_path / "nope")
    assert dcp.latest(tmp_path) is None and dcp.latest(tmp_path / "nope") is None


def test_bad_tensor_header_refused(tmp_path):
    path = _save(tmp_path, 1)
    f = path / "model.safetensors"
    raw = bytearray(f.read_bytes())
    raw[8:10] = b"[["  # header no longer JSON; re-sign so only the parser catches it
    f.write_bytes(bytes(raw))
    m = path / "manifest.json"
    doc = json.loads(m.read_text())
    import blake3

    doc["files"]["model.safetensors"]["blake3"] = blake3.blake3(bytes(raw)).hexdigest()
    from dtorch.distributed.checkpoint import _manifest

    m.write_bytes(_manifest.encode(doc))
    with pytest.raises(dcp.CheckpointError, match="model.safetensors: corrupt safetensors header"):
        dcp.load(_state(), path)


def test_missing_entry_is_strict(tmp_path):
    path = _save(tmp_path, 1)
    with pytest.raises(KeyError, match="optimizer"):
        dcp.load(dict(_state(), optimizer=0), path)
    st = dict(_state(), optimizer=0)
    dcp.load(st, path, strict=False)
    assert st["optimizer"] == 0 and st["step"] == 1


def test_latest_and_pointer(tmp_path):
    for s in (1, 2, 3):
        _save(tmp_path, s)
    assert dcp.latest(tmp_path).name == "step_0003"
    assert (tmp_path / "latest").read_text().strip() == "step_0003"
    os.unlink(tmp_path / "step_0003" / "model.safetensors")       # newest broken: fall back
    assert dcp.latest(tmp_path).name == "step_0002"
    (tmp_path / "latest").write_text("step_0001\n")                  # stale pointer does not hide newer
    assert dcp.latest(tmp_path).name == "step_0002"


def test_overwrite_same_name(tmp_path):
    dcp.save(_state(1), tmp_path / "ck")
    dcp.save(_state(2), tmp_path / "ck")
    st = _state(0)
    dcp.load(st, dcp.latest(tmp_path))
    assert st["step"] == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["ck", "latest"]


def test_keep_last_retention(tmp_path):
    for s in range(1, 6):
        _save(tmp_path, s, keep_last=2)
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert names == ["step_0004", "step_0005"]
    # a broken newer checkpoint does not count as good: the good one survives
    os.unlink(tmp_path / "step_0005" / "model.safetensors")
    _save(tmp_path, 6, keep_last=1)
    assert [p.name for p in dcp.complete_checkpoints(tmp_path)] == ["step_0006"]
    with pytest.raises(ValueError):
        _save(tmp_path, 7, keep_last=0)
    assert dcp.latest(tmp_path).name == "step_0007"   # written before retention refused


def test_leftovers_of_crashed_saves_are_ignored_and_cleaned(tmp_path):
    _save(tmp_path, 1)
    stale = tmp_path / ".step_0002.tmp-deadbeef"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    assert dcp.latest(tmp_path).name == "step_0001"
    _save(tmp_path, 3)
    assert not stale.exists() and dcp.latest(tmp_path).name == "step_0003"


def test_rng_state_roundtrip(tmp_path):
    import random

    state = {"rng": dcp.RNGState()}
    dcp.save(state, tmp_path / "ck")
    a = (random.random(), np.random.rand(), dtorch.rand(3).tolist())
    dcp.load(state, tmp_path / "ck")
    assert (random.random(), np.random.rand(), dtorch.rand(3).tolist()) == a


def test_no_pickle_in_the_package():
    here = os.path.dirname(dcp.__file__)
    src = "".join(open(os.path.join(here, f)).read() for f in os.listdir(here) if f.endswith(".py"))
    assert "import pickle" not in src and "pickle." not in src


def test_async_save_and_error_surfaces(tmp_path):
    ck = dcp.AsyncCheckpointer()
    st = _state(4)
    ck.save(st, tmp_path / "a")
    st["model"].weight.data.fill_(99.0)      # training goes on: the snapshot is unaffected
    ck.wait()
    out = _state(0)
    dcp.load(out, tmp_path / "a")
    assert not bool((out["model"].weight == 99.0).any())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ck.save(st, blocker / "b")              # parent is a file: the writer fails
    with pytest.raises(dcp.CheckpointError, match="asynchronous save failed"):
        ck.save(st, tmp_path / "c")
    ck.save(st, tmp_path / "d")
    ck.wait()
    assert dcp.latest(tmp_path).name == "d"

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

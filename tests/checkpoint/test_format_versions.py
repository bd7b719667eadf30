"""dcp's manifest versions: version 2 (each file's blake3) is written; version 1 (each file's sha256), which dtorch
wrote before, is still read, from a real checkpoint kept here; a checksum under the other version's key, or a
version this dtorch does not know, is refused by name."""
from __future__ import annotations

import base64
import json

import blake3
import pytest

import dtorch
import dtorch.distributed.checkpoint as dcp
from dtorch import nn
from dtorch.distributed.checkpoint import _manifest

# What the previous dtorch's dcp.save (manifest version 1, at commit d057bfe) wrote for
# {"model": nn.Linear(3, 2) after manual_seed(5), "step": 7, "note": "v1"}
_V1_MANIFEST = base64.b64decode(
    "ewogImNyZWF0ZWRfbnMiOiAxNzk2NTkwMjAyMTI4MTY1MTQ2LAogImVudHJpZXMiOiB7CiAgIm1vZGVsIjogewogICAiZmlsZSI6ICJt"
    "b2RlbC5zYWZldGVuc29ycyIsCiAgICJzY29wZSI6ICJyZXBsaWNhdGVkIiwKICAgInN0YXRlZnVsIjogdHJ1ZSwKICAgInN0cnVjdHVy"
    "ZSI6IHsKICAgICJfX2RpY3RfXyI6IFsKICAgICBbCiAgICAgICJ3ZWlnaHQiLAogICAgICB7CiAgICAgICAiX190ZW5zb3JfXyI6ICJ3"
    "ZWlnaHQiCiAgICAgIH0KICAgICBdLAogICAgIFsKICAgICAgImJpYXMiLAogICAgICB7CiAgICAgICAiX190ZW5zb3JfXyI6ICJiaWFz"
    "IgogICAgICB9CiAgICAgXQogICAgXQogICB9CiAgfSwKICAibm90ZSI6IHsKICAgInNjb3BlIjogInJlcGxpY2F0ZWQiLAogICAic3Rh"
    "dGVmdWwiOiBmYWxzZSwKICAgInN0cnVjdHVyZSI6ICJ2MSIKICB9LAogICJzdGVwIjogewogICAic2NvcGUiOiAicmVwbGljYXRlZCIs"
    "CiAgICJzdGF0ZWZ1bCI6IGZhbHNlLAogICAic3RydWN0dXJlIjogNwogIH0KIH0sCiAiZmlsZXMiOiB7CiAgIm1vZGVsLnNhZmV0ZW5z"
    "b3JzIjogewogICAiYnl0ZXMiOiAxOTIsCiAgICJzaGEyNTYiOiAiOWE1NjdiZGRmN2MwNDRiYjNjZTAxMTg5MGU4YzBiOWM1Y2FkZjEw"
    "YmU5N2FjOTkxNzk2Y2IxZjkyZGNkNDE2NiIsCiAgICJ0ZW5zb3JzIjogewogICAgImJpYXMiOiB7CiAgICAgImR0eXBlIjogIkYzMiIs"
    "CiAgICAgInNoYXBlIjogWwogICAgICAyCiAgICAgXQogICAgfSwKICAgICJ3ZWlnaHQiOiB7CiAgICAgImR0eXBlIjogIkYzMiIsCiAg"
    "ICAgInNoYXBlIjogWwogICAgICAyLAogICAgICAzCiAgICAgXQogICAgfQogICB9CiAgfQogfSwKICJmb3JtYXQiOiAiZHRvcmNoLmNo"
    "ZWNrcG9pbnQiLAogIm1hbmlmZXN0X3NoYTI1NiI6ICIxMTA3ODJjMjc3Yzk3ZWNmNmJjNmJhZWYxOWU5YTg1NDAzYWFjNTNhNzJiOWFj"
    "ZTIwMDY0ZDE2ZmM3ODg4MDVlIiwKICJtZXRhZGF0YSI6IHt9LAogInJhbmtfc3RydWN0dXJlcyI6IFsKICBudWxsCiBdLAogInN0ZXAi"
    "OiA3LAogInZlcnNpb24iOiAxLAogIndvcmxkX3NpemUiOiAxCn0=")
_V1_MODEL = base64.b64decode(
    "mAAAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJmb3JtYXQiOiJwdCJ9LCJ3ZWlnaHQiOnsiZHR5cGUiOiJGMzIiLCJzaGFwZSI6WzIsM10s"
    "ImRhdGFfb2Zmc2V0cyI6WzAsMjRdfSwiYmlhcyI6eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbMl0sImRhdGFfb2Zmc2V0cyI6WzI0LDMy"
    "XX19INxRtD6BDrY+HPiQPHRFfb4N3AO//OcJvuxx2L0Nawa/")
_V1_WEIGHT = [[0.35218703746795654, 0.3555794060230255, 0.017696432769298553],
              [-0.2473352551460266, -0.5150764584541321, -0.13467401266098022]]
_V1_BIAS = [-0.10568603873252869, -0.5250709652900696]


def _v1_checkpoint(root):
    ckpt = root / "step_0007"
    ckpt.mkdir(parents=True)
    (ckpt / "manifest.json").write_bytes(_V1_MANIFEST)
    (ckpt / "model.safetensors").write_bytes(_V1_MODEL)
    return ckpt


def _state() -> dict:
    return {"model": nn.Linear(3, 2), "step": 0, "note": ""}


def test_version_1_checkpoint_still_loads(tmp_path):
    ckpt = _v1_checkpoint(tmp_path)
    doc = json.loads(_V1_MANIFEST)
    assert doc["version"] == 1 and "sha256" in doc["files"]["model.safetensors"]
    assert dcp.latest(tmp_path, verify=True) == ckpt
    state = _state()
    dcp.load(state, ckpt)
    assert state["step"] == 7 and state["note"] == "v1"
    assert state["model"].weight.tolist() == _V1_WEIGHT and state["model"].bias.tolist() == _V1_BIAS


def test_version_1_checksum_still_checked(tmp_path):
    ckpt = _v1_checkpoint(tmp_path)
    raw = bytearray(_V1_MODEL)
    raw[-1] ^= 1
    (ckpt / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(dcp.CheckpointError, match="model.safetensors: sha256 mismatch"):
        dcp.load(_state(), ckpt)
    assert dcp.latest(tmp_path, verify=True) is None


def test_new_checkpoints_are_version_2_with_blake3(tmp_path):
    dtorch.manual_seed(0)
    state = _state()
    ckpt = dcp.save(state, tmp_path / "ck")
    doc = json.loads((ckpt / "manifest.json").read_text())
    assert doc["version"] == 2 == _manifest.VERSION
    info = doc["files"]["model.safetensors"]
    assert "sha256" not in info
    assert info["blake3"] == blake3.blake3((ckpt / "model.safetensors").read_bytes()).hexdigest()


def _resigned(ckpt, edit) -> None:
    m = ckpt / "manifest.json"
    doc = json.loads(m.read_bytes())
    edit(doc)
    doc["manifest_sha256"] = _manifest._digest(doc)  # a valid self-checksum: only the edited field is wrong
    m.write_bytes(json.dumps(doc).encode())


def _relabel(old: str, new: str):
    def edit(doc):
        info = doc["files"]["model.safetensors"]
        info[new] = info.pop(old)
    return edit


@pytest.mark.parametrize("case, edit, words", [
    ("v2 manifest, the blake3 under sha256", _relabel("blake3", "sha256"), "blake3 None is not 64 hex digits"),
    ("v2 claimed as v1", lambda d: d.__setitem__("version", 1), "sha256 None is not 64 hex digits"),
    ("version 3", lambda d: d.__setitem__("version", 3), "format version 3; this dtorch reads versions 1, 2"),
    ("version true", lambda d: d.__setitem__("version", True), "format version True"),
    ("version 2.0", lambda d: d.__setitem__("version", 2.0), "format version 2.0"),
])
def test_wrong_checksum_key_or_version_refused(tmp_path, case, edit, words):
    dtorch.manual_seed(0)
    ckpt = dcp.save(_state(), tmp_path / "ck")
    _resigned(ckpt, edit)
    with pytest.raises(dcp.CheckpointError) as info:
        dcp.load(_state(), ckpt)
    assert "manifest.json" in str(info.value) and words in str(info.value), case
    assert dcp.latest(tmp_path) is None


def test_v1_manifest_with_a_v2_checksum_key_refused(tmp_path):
    ckpt = _v1_checkpoint(tmp_path)
    _resigned(ckpt, _relabel("sha256", "blake3"))
    with pytest.raises(dcp.CheckpointError, match="sha256 None is not 64 hex digits"):
        dcp.load(_state(), ckpt)

"""Crafted checkpoint manifests, each with a valid self-checksum: dcp.load refuses them with a message naming
the manifest and the problem, and latest() skips them for the newest good checkpoint instead of raising."""
from __future__ import annotations

import json
import os

import blake3
import pytest

import dtorch
import dtorch.distributed.checkpoint as dcp
from dtorch import nn
from dtorch.distributed.checkpoint import _manifest


def _state(seed: int = 0) -> dict:
    dtorch.manual_seed(seed)
    return {"model": nn.Linear(3, 2), "step": seed, "note": "hello", "rng": dcp.RNGState()}


def _resign(doc: dict) -> bytes:
    doc = dict(doc)
    doc["manifest_sha256"] = _manifest._digest(doc)
    return json.dumps(doc).encode()


def _doc_edit(fn):
    """An edit of the manifest's JSON document, re-signed so its self-checksum is valid."""
    def apply(ckpt):
        m = ckpt / "manifest.json"
        doc = json.loads(m.read_bytes())
        fn(doc, ckpt)
        m.write_bytes(_resign(doc))
    return apply


def _set(key, value):
    return _doc_edit(lambda d, c: d.__setitem__(key, value))


def _rename_file(new_name: str, outside: bool):
    """Point the model's file entry at another name (a copy placed there when it is inside reach)."""
    def edit(doc, ckpt):
        doc["files"][new_name] = doc["files"].pop("model.safetensors")
        doc["entries"]["model"]["file"] = new_name
        if outside:   # the real bytes, so only the name check can refuse it
            (ckpt.parent / "evil.safetensors").write_bytes((ckpt / "model.safetensors").read_bytes())
    return _doc_edit(edit)


def _model_file(fn):
    return _doc_edit(lambda d, c: fn(d["files"]["model.safetensors"]))


def _model_entry(fn):
    return _doc_edit(lambda d, c: fn(d["entries"]["model"]))


def _write(content: bytes | str):
    def apply(ckpt):
        (ckpt / "manifest.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    return apply


def _replace_manifest(kind: str):
    def apply(ckpt):
        m = ckpt / "manifest.json"
        m.unlink()
        if kind == "dir":
            m.mkdir()
        else:
            m.symlink_to("/dev/zero")
    return apply


def _wrong_structure_tensor(doc, ckpt):
    doc["entries"]["model"]["structure"] = {"__dict__": [["weight", {"__tensor__": "nope"}]]}


def _drop_rank_key(doc, ckpt):
    doc["rank_structures"][0] = {"__dict__": []}


# id -> (damage(ckpt dir); message fragment; does latest() still pick the damaged (newer) checkpoint?)
CASES = {
    "files a list": (_set("files", ["model.safetensors"]), "files is list, not an object", False),
    "world_size 'two'": (_set("world_size", "two"), "world_size is 'two', not an integer >= 1", False),
    "world_size 0": (_set("world_size", 0), "world_size is 0", False),
    "world_size true": (_set("world_size", True), "world_size is True", False),
    "world_size 10**12": (_set("world_size", 10**12), "rank_structures is not a list of world_size", False),
    "created_ns text": (_set("created_ns", "yesterday"), "created_ns is 'yesterday'", False),
    "created_ns negative": (_set("created_ns", -1), "created_ns is -1", False),
    "step text": (_set("step", "3"), "step is '3'", False),
    "metadata a list": (_set("metadata", [1]), "metadata is list", False),
    "entries a list": (_set("entries", ["model"]), "entries is list", False),
    "entries missing": (_doc_edit(lambda d, c: d.pop("entries")), "manifest lacks 'entries'", False),
    "entry not an object": (_doc_edit(lambda d, c: d["entries"].__setitem__("model", "x")),
                            "entries['model']: is str", False),
    "entry scope unknown": (_model_entry(lambda e: e.__setitem__("scope", "global")),
                            "entries['model']: scope 'global'", False),
    "entry missing structure": (_model_entry(lambda e: e.pop("structure")), "entries['model']: missing structure",
                                False),
    "entry file not listed": (_model_entry(lambda e: e.__setitem__("file", "other.safetensors")),
                              "is not listed in files", False),
    "entry file a number": (_model_entry(lambda e: e.__setitem__("file", 3)), "file 3 is not listed", False),
    "file name with ..": (_rename_file("../evil.safetensors", True), "files['../evil.safetensors']", False),
    "file name absolute": (_rename_file("/tmp/evil.safetensors", False), "no '/' or '..'", False),
    "file name in a subdirectory": (_rename_file("sub/model.safetensors", False), "no '/' or '..'", False),
    "file name the manifest": (_rename_file("manifest.json", False), "NAME.safetensors", False),
    "file name hidden": (_rename_file(".model.safetensors", False), "not a plain file name", False),
    "file entry a list": (_doc_edit(lambda d, c: d["files"].__setitem__("model.safetensors", [1])), "is list",
                          False),
    "blake3 not hex": (_model_file(lambda f: f.__setitem__("blake3", "z" * 64)), "is not 64 hex digits", False),
    "bytes negative": (_model_file(lambda f: f.__setitem__("bytes", -1)), "bytes -1", False),
    "bytes text": (_model_file(lambda f: f.__setitem__("bytes", "12")), "bytes '12'", False),
    "tensors a list": (_model_file(lambda f: f.__setitem__("tensors", [])), "tensors is not an object", False),
    "tensor dtype unknown": (_model_file(lambda f: f["tensors"]["weight"].__setitem__("dtype", "Q4")),
                             "tensor 'weight'", False),
    "tensor shape negative": (_model_file(lambda f: f["tensors"]["weight"].__setitem__("shape", [-2, 3])),
                              "tensor 'weight'", False),
    "rank_structures missing": (_doc_edit(lambda d, c: d.pop("rank_structures")), "rank_structures", False),
    "rank_structures too short": (_set("rank_structures", []), "rank_structures is not a list", False),
    "version as text": (_doc_edit(lambda d, c: d.__setitem__("version", "1")), "format version '1'", False),
    "manifest a list": (_write("[1, 2]"), "not a dtorch checkpoint manifest", False),
    "manifest nested 100,000 deep": (_write("[" * 100_000 + "]" * 100_000), "nested too deeply", False),
    "manifest not UTF-8": (_write(b"\xff\xfe{}"), "not valid JSON", False),
    "manifest int of 5000 digits": (_write('{"format": ' + "9" * 5000 + "}"), "not valid JSON", False),
    "manifest a directory": (_replace_manifest("dir"), "not a regular file", False),
    "manifest a link to /dev/zero": (_replace_manifest("zero"), "not a regular file", False),
    "structure names a missing tensor": (_doc_edit(_wrong_structure_tensor), "missing tensor 'nope'", True),
    "rank structure lacks its entry": (_doc_edit(_drop_rank_key), "rank 0's structure has no entry 'rng'", True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_manifest_is_refused_and_latest_falls_back(tmp_path, case):
    damage, fragment, still_latest = CASES[case]
    good = dcp.save(_state(1), tmp_path / "step_0001")
    bad = dcp.save(_state(2), tmp_path / "step_0002")
    assert dcp.latest(tmp_path) == bad
    damage(bad)
    with pytest.raises(dcp.CheckpointError) as info:
        dcp.load(_state(), bad)
    assert "manifest.json" in str(info.value) or "model.safetensors" in str(info.value)
    assert fragment in str(info.value)
    assert dcp.latest(tmp_path) == (bad if still_latest else good)
    assert dcp.latest(tmp_path, verify=True) == (bad if still_latest else good)
    state = _state()
    dcp.load(state, dcp.latest(tmp_path) if not still_latest else good)
    assert state["step"] == 1 or still_latest


def test_table_is_big_enough():
    assert len(CASES) >= 35


def test_a_name_outside_the_checkpoint_is_never_read(tmp_path):
    """The issue's case: a manifest naming ../evil.safetensors with that file's real checksum and size."""
    bad = dcp.save(_state(2), tmp_path / "step_0002")
    outside = tmp_path / "evil.safetensors"
    outside.write_bytes((bad / "model.safetensors").read_bytes())
    m = bad / "manifest.json"
    doc = json.loads(m.read_bytes())
    info = doc["files"].pop("model.safetensors")
    info["blake3"] = blake3.blake3(outside.read_bytes()).hexdigest()
    doc["files"]["../evil.safetensors"] = info
    doc["entries"]["model"]["file"] = "../evil.safetensors"
    os.unlink(bad / "model.safetensors")
    m.write_bytes(_resign(doc))
    before = os.stat(outside).st_atime_ns
    with pytest.raises(dcp.CheckpointError, match="manifest.json: files\\['../evil.safetensors'\\]: not a plain"):
        dcp.load(_state(), bad)
    assert dcp.latest(tmp_path) is None and os.stat(outside).st_atime_ns == before


def test_every_file_name_the_writer_gives_is_accepted(tmp_path):
    keys = ["a" * 100, "a.", "x..y", "rank", "with space", "-dash", "_u"]
    state = {k: {"t": dtorch.full((2,), float(i))} for i, k in enumerate(keys)}
    dcp.save(state, tmp_path / "ck")
    out = {k: None for k in keys}
    dcp.load(out, tmp_path / "ck")
    assert [out[k]["t"].tolist() for k in keys] == [[float(i)] * 2 for i in range(len(keys))]
    assert dcp.latest(tmp_path, verify=True) == tmp_path / "ck"

"""dtorch.jit.save/load: one zip without pickle, loaded without the model's class; crafted archives refused."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import dtorch
from dtorch import jit
from tests.jit.models import cnn, gpt_block

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CHILD = """
import sys, numpy as np, dtorch
m = dtorch.jit.load(sys.argv[1])
x = dtorch.from_numpy(np.load(sys.argv[2]))
with dtorch.no_grad():
    out = m(x)
np.save(sys.argv[3], out.numpy())
assert not any(k.startswith("tests") for k in sys.modules), "the child imported the test models"
print(type(m).__name__, m.original_name)
"""


@pytest.mark.parametrize("make,shape", [(gpt_block, (3, 8, 16)), (cnn, (3, 3, 8, 8))])
def test_load_in_a_fresh_process_without_the_class(tmp_path, make, shape):
    model = make(dtorch).eval()
    x = dtorch.randn(*shape)
    traced = jit.trace(model, dtorch.randn(2, *shape[1:]))
    traced.save(tmp_path / "m.pt")
    np.save(tmp_path / "x.npy", x.numpy())
    env = dict(os.environ, PYTHONPATH=ROOT)
    res = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "m.pt"), str(tmp_path / "x.npy"),
                          str(tmp_path / "y.npy")], capture_output=True, text=True, env=env, cwd=str(tmp_path),
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["ScriptModule", type(model).__name__]
    with dtorch.no_grad():
        np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model(x).numpy())


def test_round_trip_keeps_state_hierarchy_code_and_functions(tmp_path):
    model = gpt_block(dtorch).eval()
    traced = jit.trace(model, dtorch.randn(2, 8, 16))
    buf = io.BytesIO()
    jit.save(traced, buf)
    buf.seek(0)
    loaded = jit.load(buf, map_location="cpu")
    assert str(loaded) == str(traced) and loaded.code == traced.code
    assert str(loaded.graph) == str(traced.graph)
    for (k, a), (k2, b) in zip(traced.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and np.array_equal(a.numpy(), b.numpy())
    assert all(p.requires_grad for p in loaded.parameters()) and not loaded.training
    x = dtorch.randn(4, 8, 16)
    loaded(x).sum().backward()  # a loaded model fine-tunes
    assert loaded.attn.c_attn.weight.grad is not None
    fn = jit.trace(lambda a, b: (a * b).softmax(-1), (x, x))
    fn.save(tmp_path / "f.pt")
    f2 = jit.load(str(tmp_path / "f.pt"))
    assert isinstance(f2, jit.ScriptFunction)
    np.testing.assert_array_equal(f2(x, x).numpy(), fn(x, x).numpy())
    with zipfile.ZipFile(tmp_path / "f.pt") as zf:
        assert sorted(zf.namelist()) == ["code.py", "constants.safetensors", "graph.json", "manifest.json",
                                         "weights.safetensors"]


# ---- crafted archives ----------------------------------------------------------------------------
def _valid(tmp_path) -> dict[str, bytes]:
    model = cnn(dtorch).eval()
    path = tmp_path / "valid.pt"
    jit.trace(model, dtorch.randn(2, 3, 8, 8)).save(path)
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(parts: dict, fix_manifest: bool = True, compress=zipfile.ZIP_STORED) -> bytes:
    parts = dict(parts)
    if fix_manifest and "manifest.json" in parts:
        man = json.loads(parts["manifest.json"])
        for k in man["parts"]:
            if k in parts:
                man["parts"][k]["sha256"] = hashlib.sha256(parts[k]).hexdigest()
        parts["manifest.json"] = json.dumps(man).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in parts.items():
            zf.writestr(k, v, compress)
    return buf.getvalue()


def _graph_edit(parts, fn) -> dict:
    g = json.loads(parts["graph.json"])
    fn(g)
    return {**parts, "graph.json": json.dumps(g).encode()}


def _set_op(g, op):
    g["nodes"][-1]["op"] = op


def _nested(g):
    deep = {"t": "none"}
    for _ in range(200):
        deep = {"t": "list", "v": [deep]}
    g["nodes"][-1]["attrs"]["x"] = deep


def _flip_crc(parts):
    raw = bytearray(_zip(parts))
    i = raw.find(b"F32")  # inside weights.safetensors, stored uncompressed
    raw[i + 200] ^= 0xFF
    return bytes(raw)


CRAFTED = {
    "not_a_zip": (lambda p: b"\x80\x04\x95 this is a pickle, not a zip" * 10, "not a readable dtorch.jit archive"),
    "empty": (lambda p: b"", "not a readable dtorch.jit archive"),
    "truncated": (lambda p: _zip(p)[: len(_zip(p)) // 2], "not a readable dtorch.jit archive"),
    "crc_mismatch": (lambda p: _flip_crc(p), "not a readable dtorch.jit archive"),
    "tampered_graph": (lambda p: _zip(_graph_edit(p, lambda g: g["nodes"].pop()), fix_manifest=False),
                       "graph.json does not match the sha256"),
    "unknown_op": (lambda p: _zip(_graph_edit(p, lambda g: _set_op(g, "os.system"))), "unknown op 'os.system'"),
    "path_traversal": (lambda p: _zip({**p, "../../etc/evil": b"x"}), "unexpected entry '../../etc/evil'"),
    "pickle_entry": (lambda p: _zip({**p, "data.pkl": b"\x80\x04"}), "unexpected entry 'data.pkl'"),
    "zip_bomb": (lambda p: _zip({**p, "graph.json": b"\0" * (24 << 20)}, compress=zipfile.ZIP_DEFLATED),
                 "zip bomb"),
    "wrong_format": (lambda p: _zip({**p, "manifest.json": json.dumps({"format": "torchscript"}).encode()}, False),
                     "not a dtorch.jit archive (manifest format 'torchscript')"),
    "no_manifest": (lambda p: _zip({k: v for k, v in p.items() if k != "manifest.json"}), "no manifest.json"),
    "future_version": (lambda p: _zip({**p, "manifest.json": p["manifest.json"].replace(b'"version": 1',
                                                                                    b'"version": 9')}),
                       "version '9' is not supported"),
    "use_before_def": (lambda p: _zip(_graph_edit(p, lambda g: g["nodes"][0].update(inputs=[999]))),
                       "reads value 999 before it is defined"),
    "deep_attr": (lambda p: _zip(_graph_edit(p, _nested)), "nested deeper than"),
    "missing_weight": (lambda p: _zip({**p, "weights.safetensors": _st({"fc.bias": np.zeros(5, np.float32)})}),
                       "weights.safetensors has no tensor"),
    "bad_safetensors": (lambda p: _zip({**p, "constants.safetensors": b"\xff" * 16}), "constants.safetensors"),
}


def _st(arrays) -> bytes:
    from dtorch import _safetensors

    buf = io.BytesIO()
    _safetensors.write(buf, arrays)
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_archives_are_refused_by_name(tmp_path, case):
    make, phrase = CRAFTED[case]
    path = tmp_path / f"{case}.pt"
    path.write_bytes(make(_valid(tmp_path)))
    with pytest.raises(jit.ArchiveError) as info:
        jit.load(path)
    msg = str(info.value)
    assert str(path) in msg and phrase in msg, msg


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(jit.ArchiveError, match="is a directory"):
        jit.load(tmp_path)

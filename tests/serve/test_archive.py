"""dtorch-model-archiver's .mar layout, the checks before a .mar is extracted, and the handlers in a worker."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import dtorch
import dtorch.jit
from dtorch.serve.archiver import main as archiver_main
from dtorch.serve.mar import MANIFEST, ArchiveError, extract, read_manifest
from dtorch.serve.protocol import encode, read_frame


def test_manifest_is_torchserves(store):
    root, _ = store
    with zipfile.ZipFile(root / "digits.mar") as zf:
        manifest = json.loads(zf.read(MANIFEST))
        names = set(zf.namelist())
    assert manifest["runtime"] == "python" and manifest["archiverVersion"]
    assert manifest["model"] == {"modelName": "digits", "modelVersion": "1.0", "handler": "classifier",
                                 "serializedFile": "mlp_weights.safetensors", "modelFile": "model_mlp.py"}
    assert names == {MANIFEST, "mlp_weights.safetensors", "model_mlp.py", "index_to_name.json"}
    assert read_manifest(root / "digits.mar") == manifest


def test_archiver_refuses_overwrite_and_missing_files(store, tmp_path, capsys):
    root, _ = store
    args = ["--model-name", "mlp", "--version", "1", "--serialized-file", str(root.parent / "mlp_weights.safetensors"),
            "--export-path", str(root)]
    assert archiver_main(args) == 2
    assert "exists; use -f" in capsys.readouterr().err
    assert archiver_main(args[:5] + ["nope.safetensors", "--export-path", str(tmp_path)]) == 2
    assert "'nope.safetensors': no such file" in capsys.readouterr().err
    assert archiver_main(args[:6] + ["--handler", "resnet", "--export-path", str(tmp_path)]) == 2
    assert "not a built-in handler" in capsys.readouterr().err


def _crafted(path, members: dict[str, bytes], handler="tensor", compress=zipfile.ZIP_STORED):
    manifest = {"model": {"modelName": "x", "modelVersion": "1", "serializedFile": "w.safetensors",
                          "handler": handler}}
    with zipfile.ZipFile(path, "w", compress) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest))
        zf.writestr("w.safetensors", b"0")
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("members, handler, message", [
    ({"../evil.py": b"x"}, "tensor", "path outside the archive"),
    ({"/etc/evil": b"x"}, "tensor", "path outside the archive"),
    ({"a/../../evil": b"x"}, "tensor", "path outside the archive"),
    ({"bomb.bin": b"\0" * (64 << 20)}, "tensor", "zip bomb"),
    ({f"small{i}.bin": b"\0" * (1 << 20) for i in range(8)}, "tensor", "10 members expand"),
    ({"handler.py": b"def handle(d, c): return d"}, "handler.py", "runs only with --allow-custom-handlers"),
    ({}, "missing.py", "neither a built-in handler .* nor a file"),
])
def test_crafted_archives_are_refused(tmp_path, members, handler, message):
    mar = _crafted(tmp_path / "x.mar", members, handler, zipfile.ZIP_DEFLATED)
    with pytest.raises(ArchiveError, match=message) as e:
        extract(mar, tmp_path / "out")
    assert "x.mar" in str(e.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.py").exists()


def test_not_a_zip_and_no_manifest(tmp_path):
    (tmp_path / "a.mar").write_bytes(b"not a zip")
    with pytest.raises(ArchiveError, match="a.mar: not a readable zip"):
        extract(tmp_path / "a.mar", tmp_path / "o")
    with zipfile.ZipFile(tmp_path / "b.mar", "w") as zf:
        zf.writestr("w.bin", b"1")
    with pytest.raises(ArchiveError, match="no MAR-INF/MANIFEST.json"):
        extract(tmp_path / "b.mar", tmp_path / "o")


def _worker(model_dir, handler_config=None):
    settings = json.dumps({"batch_size": 4, "handler_config": handler_config or {}})
    proc = subprocess.Popen([sys.executable, "-m", "dtorch.serve.worker", str(model_dir), settings],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    header, _ = read_frame(proc.stdout)
    assert header["op"] == "ready"
    return proc


def _ask(proc, bodies: list[tuple[str, bytes]]):
    reqs = [{"fields": [["body", ctype, i]], "headers": {}} for i, (ctype, _) in enumerate(bodies)]
    proc.stdin.write(encode({"op": "predict", "requests": reqs}, [b for _, b in bodies]))
    proc.stdin.flush()
    header, parts = read_frame(proc.stdout)
    return [(it["status"], json.loads(parts[it["part"]]) if "part" in it else it["message"]) for it in header["items"]]


def test_worker_batches_json_and_npy_and_answers_bad_input_alone(store, tmp_path):
    root, model = store
    extract(root / "mlp.mar", tmp_path / "mlp")
    x = np.random.default_rng(0).random((3, 64), dtype=np.float32)
    npy = io.BytesIO()
    np.save(npy, x[2])
    proc = _worker(tmp_path / "mlp")
    try:
        out = _ask(proc, [("application/json", json.dumps(x[0].tolist()).encode()),
                          ("application/octet-stream", json.dumps({"data": x[1].tolist()}).encode()),
                          ("application/octet-stream", b"\x93NUMPY garbage"),
                          ("application/octet-stream", npy.getvalue())])
    finally:
        proc.stdin.close()
        proc.wait(10)
    with dtorch.no_grad():
        want = model(dtorch.from_numpy(x)).numpy()
    assert [s for s, _ in out] == [200, 200, 400, 200]
    assert "not a readable .npy or safetensors array" in out[2][1]
    np.testing.assert_allclose(np.array([out[0][1], out[1][1], out[3][1]]), want, rtol=1e-5, atol=1e-6)


def test_classifier_top_k_labels(store, tmp_path):
    root, model = store
    extract(root / "digits.mar", tmp_path / "digits")
    x = np.random.default_rng(1).random(64, dtype=np.float32)
    proc = _worker(tmp_path / "digits", {"topk": 3})
    try:
        [(status, top)] = _ask(proc, [("application/json", json.dumps(x.tolist()).encode())])
    finally:
        proc.stdin.close()
        proc.wait(10)
    with dtorch.no_grad():
        p = dtorch.softmax(model(dtorch.from_numpy(x[None])), dim=1).numpy()[0]
    best = np.argsort(-p)[:3]
    assert status == 200 and list(top) == [f"digit-{i}" for i in best]
    np.testing.assert_allclose(list(top.values()), p[best], rtol=1e-5)


def test_a_traced_jit_archive_needs_no_model_file(store, tmp_path):
    _, model = store
    dtorch.jit.save(dtorch.jit.trace(model, dtorch.zeros(2, 64)), tmp_path / "traced.pt")
    assert archiver_main(["--model-name", "traced", "--version", "2", "--serialized-file", str(tmp_path / "traced.pt"),
                          "--export-path", str(tmp_path)]) == 0
    _serves_like(model, tmp_path / "traced.mar", np.random.default_rng(2).random((2, 64), dtype=np.float32))


def _serves_like(model, mar, x: np.ndarray) -> None:
    """The archive's worker answers each JSON row of ``x`` with 200 and ``model``'s output."""
    extract(mar, mar.with_suffix(""))
    proc = _worker(mar.with_suffix(""))
    try:
        out = _ask(proc, [("application/json", json.dumps(row.tolist()).encode()) for row in x])
    finally:
        proc.stdin.close()
        proc.wait(10)
    with dtorch.no_grad():
        want = model(dtorch.from_numpy(x)).numpy()
    assert [s for s, _ in out] == [200] * len(x)
    np.testing.assert_allclose(np.array([o for _, o in out]), want, rtol=1e-5, atol=1e-6)


def test_an_onnx_model_is_served_through_onnxruntime(store, tmp_path):
    pytest.importorskip("onnxruntime")
    _, model = store
    dtorch.onnx.export(model, dtorch.zeros(2, 64), str(tmp_path / "mlp.onnx"), input_names=["x"],
                       dynamic_axes={"x": {0: "batch"}})
    assert archiver_main(["--model-name", "onnxmlp", "--version", "1", "--serialized-file", str(tmp_path / "mlp.onnx"),
                          "--handler", "tensor", "--export-path", str(tmp_path)]) == 0
    _serves_like(model, tmp_path / "onnxmlp.mar", np.random.default_rng(3).random((3, 64), dtype=np.float32))


def test_a_broken_onnx_file_is_refused_by_name(tmp_path):
    from dtorch.serve.loading import ModelLoadError, OnnxModel

    pytest.importorskip("onnxruntime")
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(ModelLoadError, match="bad.onnx: ONNX Runtime cannot load it"):
        OnnxModel(tmp_path / "bad.onnx")

"""Fixtures for the serve tests: a tiny model, its state dict and archives."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

import dtorch
from dtorch.serve.archiver import main as archiver_main

HERE = Path(__file__).parent


def make_weights(path: Path, seed: int = 0):
    spec = importlib.util.spec_from_file_location("model_mlp_fixture", HERE / "model_mlp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dtorch.manual_seed(seed)
    model = module.TinyMLP().eval()
    dtorch.save(model.state_dict(), path)
    return model


def archive(store: Path, name: str, weights: Path, *extra: str) -> Path:
    args = ["--model-name", name, "--version", "1.0", "--serialized-file", str(weights),
            "--model-file", str(HERE / "model_mlp.py"), "--export-path", str(store), "-f", *extra]
    assert archiver_main(args) == 0
    return store / f"{name}.mar"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A model store with `mlp` (tensor handler) and `digits` (classifier, labels) and the eager model."""
    root = tmp_path_factory.mktemp("store")
    weights = root.parent / "mlp_weights.safetensors"
    model = make_weights(weights)
    labels = root.parent / "index_to_name.json"
    labels.write_text(json.dumps({str(i): f"digit-{i}" for i in range(10)}))
    archive(root, "mlp", weights)
    archive(root, "digits", weights, "--handler", "classifier", "--extra-files", str(labels))
    yield root, model
    shutil.rmtree(root, ignore_errors=True)

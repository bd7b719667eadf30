"""Load the model an archive holds: an eager class with a state dict, a ``dtorch.jit`` archive, or an ONNX file
(run by ONNX Runtime).

One function, ``load_model``, so a new format is one more branch here. ``dtorch.jit.load`` is looked up
at run time: the jit package may not be installed with this version.
"""
from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from dtorch._creation import from_numpy
from dtorch.nn.modules.module import Module
from dtorch.serialization import load

_counter = itertools.count()


class ModelLoadError(Exception):
    """The archive's model cannot be built; the message names the file."""


def import_file(path: Path) -> ModuleType:
    """Run a Python file from an extracted archive as a fresh module (its own name, not in sys.modules)."""
    spec = importlib.util.spec_from_file_location(f"dtorch_serve_archive_{next(_counter)}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model_class(path: Path) -> type:
    module = import_file(path)
    classes = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, Module) and v.__module__ == module.__name__]
    if len(classes) != 1:
        names = ", ".join(c.__name__ for c in classes) or "none"
        raise ModelLoadError(f"{path.name}: a model file must define exactly one nn.Module class (found: {names})")
    return classes[0]


class OnnxModel:
    """An ``.onnx`` file (dtorch.onnx.export's, or any other) run by ONNX Runtime, called like a module:
    tensors in, a tensor (or a tuple of them) out."""

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelLoadError(f"{path.name}: serving ONNX models needs onnxruntime: pip install onnxruntime") \
                from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT's own exception types for malformed models
            raise ModelLoadError(f"{path.name}: ONNX Runtime cannot load it: {str(e).splitlines()[0]}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def eval(self) -> "OnnxModel":
        return self

    def __call__(self, *args):
        feeds = {name: a.detach().cpu().numpy() for name, a in zip(self.input_names, args)}
        outs = [from_numpy(o) for o in self.session.run(None, feeds)]
        return outs[0] if len(outs) == 1 else tuple(outs)


def jit_load() -> Any:
    """``dtorch.jit.load`` when this dtorch has it, else None."""
    if importlib.util.find_spec("dtorch.jit") is None:
        return None
    return getattr(importlib.import_module("dtorch.jit"), "load", None)


def load_model(model_dir: str | Path, manifest: dict[str, Any]) -> Any:
    """The archive's model in eval mode (on the CPU)."""
    model_dir = Path(model_dir)
    spec = manifest["model"]
    weights = model_dir / spec["serializedFile"]
    if spec.get("modelFile"):
        model = _model_class(model_dir / spec["modelFile"])()
        try:
            model.load_state_dict(load(weights))
        except (RuntimeError, ValueError, KeyError) as e:
            raise ModelLoadError(f"{weights.name}: does not fit {type(model).__name__}: {e}") from None
    elif weights.suffix == ".onnx":
        model = OnnxModel(weights)
    else:
        loader = jit_load()
        if loader is None:
            raise ModelLoadError(f"{weights.name}: no --model-file, and this dtorch has no dtorch.jit.load to read a "
                                 "traced archive")
        model = loader(str(weights))
    return model.eval() if hasattr(model, "eval") else model

"""Load the model an archive holds: an eager class with a state dict, or a ``dtorch.jit`` archive.

One function, ``load_model``, so a new format (ONNX) is one more branch here. ``dtorch.jit.load`` is looked up
at run time: the jit package may not be installed with this version.
"""
from __future__ import annotations

import importlib
import importlib.util
import itertools
from pathlib import Path
from types import ModuleType
from typing import Any

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
        raise ModelLoadError(f"{weights.name}: serving ONNX models needs the dtorch.onnx runtime path (not built yet)")
    else:
        loader = jit_load()
        if loader is None:
            raise ModelLoadError(f"{weights.name}: no --model-file, and this dtorch has no dtorch.jit.load to read a "
                                 "traced archive")
        model = loader(str(weights))
    return model.eval() if hasattr(model, "eval") else model

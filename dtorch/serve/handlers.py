"""Handlers with TorchServe's shape: ``initialize(context)``, ``preprocess``, ``inference``, ``postprocess``,
``handle(data, context)`` — a list of requests in, a list of the same length out.

Each request is a dict: ``{"body": bytes}`` for a raw upload, ``{"body": value}`` for ``application/json``,
one key per field for multipart form data. A ``ValueError`` a handler raises is the client's fault: that
request is answered 400 with the message. Built-in: ``tensor`` (a JSON array, ``{"data": array}``, a ``.npy``
or a safetensors file in, the output as JSON out) and ``classifier`` (softmax, then the top-k labels from
``index_to_name.json``).
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from dtorch._creation import from_numpy
from dtorch._safetensors import read
from dtorch.autograd.grad_mode import no_grad

from . import codec
from .loading import import_file, load_model

NPY_MAGIC = b"\x93NUMPY"


class Context:
    """What TorchServe hands ``initialize`` and ``handle``: the manifest, system properties, request headers."""

    def __init__(self, model_dir: str, manifest: dict[str, Any], batch_size: int,
                 model_yaml_config: dict[str, Any] | None = None) -> None:
        self.manifest = manifest
        self.model_name = manifest["model"]["modelName"]
        self.system_properties = {"model_dir": model_dir, "batch_size": batch_size, "gpu_id": None}
        self.model_yaml_config = model_yaml_config or {}
        self.request_headers: list[dict[str, str]] = []

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self.request_headers[idx].get(key.lower())


class BadInput(ValueError):
    """A request the handler cannot read (answered 400)."""


def _payload(row: dict[str, Any]) -> Any:
    for key in ("data", "body"):
        if key in row:
            return row[key]
    if len(row) == 1:
        return next(iter(row.values()))
    raise BadInput(f"expected a body or one form field, got fields {sorted(row)}")


def _is_safetensors(data: bytes) -> bool:
    return len(data) > 9 and data[8:9] == b"{" and int.from_bytes(data[:8], "little") <= len(data) - 8


def _binary_array(data: bytes) -> np.ndarray:
    """A ``.npy`` file (read with allow_pickle=False) or a safetensors file of one tensor (or one named data)."""
    try:
        if data.startswith(NPY_MAGIC):
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        else:
            arrays, _ = read(data, "request body")
            if len(arrays) != 1 and "data" not in arrays:
                raise BadInput(f"request body: safetensors with tensors {sorted(arrays)} (send one, or one named "
                               "'data')")
            arr = arrays["data"] if "data" in arrays else next(iter(arrays.values()))
    except BadInput:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise BadInput(f"request body: not a readable .npy or safetensors array ({e})") from None
    if arr.dtype.kind not in "biuf":
        raise BadInput(f"request body: array of dtype {arr.dtype} (expected numbers)")
    return arr


def to_array(value: Any, float_dtype: str = "float32") -> np.ndarray:
    """A request's tensor: a parsed JSON value, JSON text, ``.npy`` or safetensors bytes."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value)
        if value.startswith(NPY_MAGIC) or _is_safetensors(value):
            return _binary_array(value)
        try:
            value = codec.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadInput("request body is neither JSON nor a .npy array") from None
    if isinstance(value, dict):
        if "data" not in value:
            raise BadInput(f"JSON object without a 'data' key (keys: {sorted(value)})")
        value = value["data"]
    try:
        arr = np.asarray(value)
    except ValueError as e:
        raise BadInput(f"JSON value is not a rectangular array of numbers ({e})") from None
    if arr.dtype.kind not in "biuf" or arr.size == 0:
        raise BadInput(f"JSON value is not a non-empty array of numbers (got {arr.dtype} of shape {arr.shape})")
    return arr.astype(float_dtype) if arr.dtype.kind in "biuf" and float_dtype else arr


class BaseHandler:
    """Loads the archive's model; runs same-shaped requests as one batch (one forward per shape)."""

    def __init__(self) -> None:
        self.model = None
        self.context: Context | None = None
        self.initialized = False

    def initialize(self, context: Context) -> None:
        self.context = context
        self.model = load_model(context.system_properties["model_dir"], context.manifest)
        self.initialized = True

    def preprocess(self, data: list[dict[str, Any]]) -> list[np.ndarray | BadInput]:
        cfg = self.context.model_yaml_config if self.context else {}
        dtype = cfg.get("input_dtype", "float32")
        out: list[np.ndarray | BadInput] = []
        for row in data:
            try:
                out.append(to_array(_payload(row), None if dtype == "keep" else dtype))
            except BadInput as e:
                out.append(e)
        return out

    def inference(self, arrays: list[np.ndarray | BadInput]) -> list[np.ndarray | BadInput]:
        results: list[Any] = list(arrays)
        groups: dict[tuple, list[int]] = {}
        for i, a in enumerate(arrays):
            if isinstance(a, np.ndarray):
                groups.setdefault((a.shape, a.dtype.str), []).append(i)
        with no_grad():
            for idx in groups.values():
                batch = from_numpy(np.ascontiguousarray(np.stack([arrays[i] for i in idx])))
                out = self.model(batch).numpy()
                for k, i in enumerate(idx):
                    results[i] = out[k]
        return results

    def postprocess(self, outputs: list[Any]) -> list[Any]:
        return [o if isinstance(o, BadInput) else o.tolist() for o in outputs]

    def handle(self, data: list[dict[str, Any]], context: Context) -> list[Any]:
        return self.postprocess(self.inference(self.preprocess(data)))


class TensorHandler(BaseHandler):
    pass


class ClassifierHandler(BaseHandler):
    """Softmax over the last dimension; ``{label: probability}`` for the top ``topk`` (model-config, default 5)."""

    def initialize(self, context: Context) -> None:
        super().initialize(context)
        mapping = Path(context.system_properties["model_dir"]) / "index_to_name.json"
        self.labels: dict[str, Any] = json.loads(mapping.read_text()) if mapping.is_file() else {}

    def _label(self, i: int) -> str:
        name = self.labels.get(str(i), str(i))
        return name[-1] if isinstance(name, list) else str(name)

    def postprocess(self, outputs: list[Any]) -> list[Any]:
        k = int(self.context.model_yaml_config.get("topk", 5))
        out: list[Any] = []
        for o in outputs:
            if isinstance(o, BadInput):
                out.append(o)
                continue
            logits = o.reshape(-1).astype(np.float64)
            p = np.exp(logits - logits.max())
            p /= p.sum()
            top = np.argsort(-p, kind="stable")[:k]
            out.append({self._label(int(i)): float(p[i]) for i in top})
        return out


BUILTIN = {"tensor": TensorHandler, "classifier": ClassifierHandler}


def make_handler(model_dir: str, handler: str) -> Any:
    """A handler instance: a built-in one by name, or the class (or module with ``handle``) in a .py file."""
    if handler in BUILTIN:
        return BUILTIN[handler]()
    module = import_file(Path(model_dir) / handler)
    classes = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__
               and callable(getattr(v, "handle", None))]
    if len(classes) == 1:
        return classes[0]()
    if callable(getattr(module, "handle", None)):
        return module
    raise ValueError(f"{handler}: defines no handler class with a handle method and no module-level handle()")

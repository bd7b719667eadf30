"""``dtorch.jit.save`` / ``load``: one zip holding the graph as JSON, weights and tensor constants as
safetensors, the ``.code`` text and a manifest with the sha256 of each part. No pickle, no code run:
loading builds the module tree from JSON and looks every op up in the registry.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from typing import Any

import numpy as np

from .. import _safetensors
from .._device import as_device, move_array
from ..nn.parameter import Parameter
from ..tensor import _make
from ._codec import ArchiveError, graph_from_json, graph_to_json
from ._module import ScriptFunction, ScriptModule, _GraphRunner
from ._script_module import RecursiveScriptModule, ScriptedFunction, attach_method, exported_methods
from ._printer import code_text

FORMAT = "dtorch.jit"
VERSION = 1
MANIFEST = "manifest.json"
PARTS = ("graph.json", "weights.safetensors", "constants.safetensors", "code.py")
LIMITS = {MANIFEST: 1 << 20, "graph.json": 256 << 20, "code.py": 256 << 20,
          "weights.safetensors": 64 << 30, "constants.safetensors": 64 << 30}
MAX_RATIO = 200  # a larger expansion of a part over 1 MiB is a zip bomb


def _tree(m: ScriptModule) -> dict:
    return {"name": m.original_name, "training": m.training,
            "params": [[k, p.requires_grad] for k, p in m._parameters.items() if p is not None],
            "buffers": [[k, k not in m._non_persistent_buffers_set] for k, b in m._buffers.items() if b is not None],
            "children": [[k, _tree(c)] for k, c in m._modules.items() if c is not None]}


def _host(t) -> np.ndarray:
    a = t._data
    return a if isinstance(a, np.ndarray) else a.get()


def save(m, f, _extra_files=None) -> None:
    """torch.jit.save: write a traced ScriptModule or ScriptFunction to ``f`` (a path or binary file)."""
    if _extra_files:
        raise NotImplementedError("dtorch.jit.save: _extra_files is not supported")
    if not isinstance(m, (ScriptModule, ScriptFunction)) or (m._graph is None and not isinstance(
            m, (ScriptedFunction, RecursiveScriptModule))):
        raise TypeError(f"dtorch.jit.save: expected a top-level ScriptModule or ScriptFunction, got {type(m).__name__}")
    constants: dict = {}
    graph = graph_to_json(m.graph, constants)
    scripted = isinstance(m, (ScriptedFunction, RecursiveScriptModule))
    if scripted:
        graph["script"] = True
    if isinstance(m, RecursiveScriptModule):
        graph["methods"] = {k: graph_to_json(g, constants) for k, g in exported_methods(m).items()}
    weights: dict = {}
    if isinstance(m, ScriptModule):
        graph["module"] = _tree(m)
        for k, t in list(m.named_parameters()) + list(m.named_buffers()):
            weights[k] = _host(t)
    else:
        graph["function"] = m.name
    parts = {"graph.json": json.dumps(graph, allow_nan=False).encode(),
             "weights.safetensors": _st_bytes(weights), "constants.safetensors": _st_bytes(constants),
             "code.py": code_text(m.graph).encode()}
    manifest = {"format": FORMAT, "version": VERSION, "kind": "module" if isinstance(m, ScriptModule) else "function",
                "parts": {k: {"sha256": hashlib.sha256(v).hexdigest(), "size": len(v)} for k, v in parts.items()}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1), zipfile.ZIP_DEFLATED)
        for k, v in parts.items():
            zf.writestr(k, v, zipfile.ZIP_STORED if k.endswith(".safetensors") else zipfile.ZIP_DEFLATED)
    data = buf.getvalue()
    if isinstance(f, (str, os.PathLike)):
        tmp = f"{os.fspath(f)}.tmp{os.getpid()}"
        with open(tmp, "wb") as out:
            out.write(data)
        os.replace(tmp, f)
    else:
        f.write(data)


def _st_bytes(arrays: dict) -> bytes:
    out = io.BytesIO()
    _safetensors.write(out, arrays)
    return out.getvalue()


# ---- load ------------------------------------------------------------------------------------------
def _read_source(f) -> tuple[bytes, str]:
    if isinstance(f, (str, os.PathLike)):
        name = os.fspath(f)
        try:
            with open(name, "rb") as fh:
                return fh.read(), name
        except IsADirectoryError:
            raise ArchiveError(f"{name}: is a directory, not a dtorch.jit archive") from None
    return f.read(), getattr(f, "name", "<stream>")


def _parts(zf: zipfile.ZipFile, name: str) -> dict[str, bytes]:
    infos = zf.infolist()
    seen = set()
    for info in infos:
        entry = info.filename
        if entry in seen:
            raise ArchiveError(f"{name}: entry {entry!r} appears twice")
        seen.add(entry)
        if entry not in LIMITS:
            raise ArchiveError(f"{name}: unexpected entry {entry!r} (a dtorch.jit archive holds only "
                               f"{', '.join((MANIFEST,) + PARTS)})")
        if info.file_size > LIMITS[entry]:
            raise ArchiveError(f"{name}: entry {entry!r} declares {info.file_size} bytes, over the limit")
        if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ArchiveError(f"{name}: entry {entry!r} expands {info.file_size // max(info.compress_size, 1)}x "
                               "(a zip bomb?)")
    out = {}
    for info in infos:
        with zf.open(info) as fh:
            data = fh.read(info.file_size + 1)
        if len(data) != info.file_size:
            raise ArchiveError(f"{name}: entry {info.filename!r} does not have its declared size")
        out[info.filename] = data
    return out


def _manifest(parts: dict, name: str) -> dict:
    if MANIFEST not in parts:
        raise ArchiveError(f"{name}: no {MANIFEST}: not a dtorch.jit archive")
    try:
        man = json.loads(parts[MANIFEST])
    except (ValueError, RecursionError) as e:
        raise ArchiveError(f"{name}: {MANIFEST} is not valid JSON ({str(e)[:100]})") from None
    fmt = man.get("format") if isinstance(man, dict) else None
    if fmt != FORMAT:
        raise ArchiveError(f"{name}: not a dtorch.jit archive (manifest format {str(fmt)[:40]!r})")
    if man.get("version") != VERSION:
        raise ArchiveError(f"{name}: dtorch.jit archive version {str(man.get('version'))[:20]!r} is not supported "
                           f"(this dtorch reads version {VERSION})")
    listed = man.get("parts")
    if not isinstance(listed, dict) or set(listed) != set(PARTS) or set(parts) != set(PARTS) | {MANIFEST}:
        raise ArchiveError(f"{name}: the archive's parts do not match its manifest")
    for part in PARTS:
        info = listed[part]
        digest = hashlib.sha256(parts[part]).hexdigest()
        if not isinstance(info, dict) or info.get("sha256") != digest:
            raise ArchiveError(f"{name}: {part} does not match the sha256 in the manifest (tampered or corrupt)")
    if man.get("kind") not in ("module", "function"):
        raise ArchiveError(f"{name}: unknown archive kind {str(man.get('kind'))[:40]!r}")
    return man


def _safetensors_part(parts: dict, part: str, name: str, device) -> dict:
    try:
        arrays, _ = _safetensors.read(parts[part], f"{name}:{part}")
    except _safetensors.SafetensorsError as e:
        raise ArchiveError(str(e)) from None
    if device is not None:
        arrays = {k: move_array(a, device) for k, a in arrays.items()}
    return arrays


def _build(tree: Any, weights: dict, prefix: str, name: str, depth: int = 0, cls=ScriptModule) -> ScriptModule:
    if depth > 64 or not isinstance(tree, dict) or not isinstance(tree.get("name"), str):
        raise ArchiveError(f"{name}: malformed module tree at {prefix or '<root>'!r}")
    m = cls(tree["name"])
    m.train(bool(tree.get("training", False)))
    try:
        for key, rg in tree.get("params", []):
            m.register_parameter(key, Parameter(_make(weights[prefix + key]), requires_grad=bool(rg)))
        for key, persistent in tree.get("buffers", []):
            m.register_buffer(key, _make(weights[prefix + key]), bool(persistent))
        for key, child in tree.get("children", []):
            m.add_module(key, _build(child, weights, f"{prefix}{key}.", name, depth + 1))
    except KeyError as e:
        raise ArchiveError(f"{name}: weights.safetensors has no tensor {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise ArchiveError(f"{name}: malformed module tree at {prefix or '<root>'!r} ({str(e)[:100]})") from None
    return m


def load(f, map_location=None, _extra_files=None):
    """torch.jit.load: the ScriptModule or ScriptFunction saved in ``f``, built without its Python class."""
    if _extra_files:
        raise NotImplementedError("dtorch.jit.load: _extra_files is not supported")
    data, name = _read_source(f)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            parts = _parts(zf, name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError) as e:
        raise ArchiveError(f"{name}: not a readable dtorch.jit archive ({e})") from None
    man = _manifest(parts, name)
    device = as_device(map_location) if map_location is not None else None
    if device is not None and device.type == "cpu":
        device = None
    constants = _safetensors_part(parts, "constants.safetensors", name, device)
    weights = _safetensors_part(parts, "weights.safetensors", name, device)
    try:
        obj = json.loads(parts["graph.json"])
    except (ValueError, RecursionError) as e:
        raise ArchiveError(f"{name}: graph.json is not valid JSON ({str(e)[:100]})") from None
    try:
        graph = graph_from_json(obj, constants, f"{name}:graph.json")
    except RecursionError:
        raise ArchiveError(f"{name}: graph.json is nested too deeply") from None
    except RuntimeError as e:
        raise ArchiveError(str(e) if name in str(e) else f"{name}: {e}") from None
    scripted = obj.get("script") is True
    if man["kind"] == "function":
        fname = str(obj.get("function", "fn"))
        return ScriptedFunction(None, graph, fname) if scripted else ScriptFunction(graph, fname)
    m = _build(obj.get("module"), weights, "", name, cls=RecursiveScriptModule if scripted else ScriptModule)
    try:
        m._set_graph(graph)
        m._state_tensors()
        if scripted:
            _load_methods(m, obj.get("methods", {}), constants, name)
    except (AttributeError, RuntimeError, KeyError) as e:
        if isinstance(e, ArchiveError):
            raise
        raise ArchiveError(f"{name}: the graph reads a parameter the module tree does not have ({e})") from None
    return m


def _load_methods(m: RecursiveScriptModule, methods, constants: dict, name: str) -> None:
    """The ``@export`` methods' graphs: plain identifiers that name nothing the module already has."""
    if not isinstance(methods, dict) or len(methods) > 256:
        raise ArchiveError(f"{name}: malformed methods")
    for key, obj in methods.items():
        if not key.isidentifier() or key.startswith("_") or hasattr(m, key):
            raise ArchiveError(f"{name}: method name {key[:60]!r} is not allowed (private, or it shadows an attribute)")
        graph = graph_from_json(obj, constants, f"{name}:graph.json method {key}")
        attach_method(m, key, graph)
        m._state_for(graph)


def _method_save(self, f, _extra_files=None) -> None:
    save(self, f, _extra_files)


_GraphRunner.save = _method_save  # installed from above: the module types do not import serialization

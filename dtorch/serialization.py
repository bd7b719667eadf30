"""dtorch.save / dtorch.load: tensors in safetensors, structure in JSON — nothing is unpickled.

``save`` takes any nesting of dicts (str or int keys), lists and tuples of tensors,
numbers, strings, bools and None. The file is a plain safetensors file: a flat
``{name: tensor}`` dict (a model's state_dict) is stored under its own names, so other
frameworks read it directly; the structure of anything else and a sha256 of the data
live in the header's ``__metadata__``. Loading never executes code.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Any

import numpy as np

from . import _safetensors
from ._device import as_device, move_array
from .tensor import Tensor, _make

FORMAT = "dtorch.v1"


class _Flattener:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.devices: dict[str, str] = {}
        self.requires_grad: list[str] = []
        self.versions: dict[str, tuple[list, int]] = {}   # name -> (version counter, its value when encoded)

    def encode(self, obj: Any, path: str) -> Any:
        if isinstance(obj, Tensor):
            name = path or "tensor"
            if name in self.arrays:
                name = f"{name}#{len(self.arrays)}"
            data = obj.detach()._data
            if type(data) is not np.ndarray:
                self.devices[name] = str(obj.device)
                data = data.get()
            self.arrays[name] = data
            self.versions[name] = (obj._vc, obj._vc[0])
            if obj.requires_grad:
                self.requires_grad.append(name)
            return {"__tensor__": name}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, (int, float, np.integer, np.floating)):
            v = obj.item() if isinstance(obj, np.generic) else obj
            if isinstance(v, float) and not np.isfinite(v):
                return {"__float__": repr(v)}
            return v
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                if not isinstance(k, (str, int)) or isinstance(k, bool):
                    raise TypeError(f"dtorch.save: dict keys must be str or int, got {type(k).__name__} at {path!r}")
                items.append([k, self.encode(v, f"{path}.{k}" if path else str(k))])
            return {"__dict__": items}
        if isinstance(obj, (list, tuple)):
            enc = [self.encode(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(obj)]
            return {"__tuple__": enc} if isinstance(obj, tuple) else {"__list__": enc}
        raise TypeError(
            f"dtorch.save cannot store an object of type {type(obj).__name__} at {path or 'the top level'!r}: "
            "only tensors, numbers, strings, None and dicts/lists/tuples of them (dtorch never pickles)"
        )


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name, arr in arrays.items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def save(obj: Any, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True) -> None:
    """Write ``obj`` to a path or binary file object as safetensors + JSON structure."""
    fl = _Flattener()
    structure = fl.encode(obj, "")
    meta = {"format": FORMAT, "structure": json.dumps(structure, separators=(",", ":")),
            "sha256": _digest(fl.arrays)}
    if fl.devices:
        meta["devices"] = json.dumps(fl.devices)
    if fl.requires_grad:
        meta["requires_grad"] = json.dumps(fl.requires_grad)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            _safetensors.write(fh, fl.arrays, meta)
    else:
        _safetensors.write(f, fl.arrays, meta)


def _target_device(saved: str | None, map_location):
    if map_location is None:
        return as_device(saved) if saved else None
    if callable(map_location) and not isinstance(map_location, str):
        return map_location(saved or "cpu")
    if isinstance(map_location, dict):
        return as_device(map_location.get(saved or "cpu", saved or "cpu"))
    return as_device(map_location)


def load(f, map_location=None, pickle_module=None, *, weights_only: bool = True, mmap=None, **_kw) -> Any:
    """Read what :func:`save` wrote (or any safetensors file, as a flat dict of tensors)."""
    source = str(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "<file object>")
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            data = fh.read()
    else:
        data = f.read()
    if data[:2] == b"PK" or data[:1] == b"\x80":
        raise _safetensors.SafetensorsError(
            f"{source}: this is a pickled/zip file (torch.save?), which dtorch never loads because unpickling "
            "runs code; save it as safetensors instead"
        )
    arrays, meta = _safetensors.read(data, source)
    if meta.get("format") == FORMAT:
        if _digest(arrays) != meta.get("sha256"):
            raise _safetensors.SafetensorsError(
                f"{source}: checksum mismatch: the tensor data was modified or corrupted"
            )
        try:
            structure = json.loads(meta["structure"])
            devices = json.loads(meta.get("devices", "{}"))
            rg = set(json.loads(meta.get("requires_grad", "[]")))
        except (KeyError, json.JSONDecodeError) as e:
            raise _safetensors.SafetensorsError(f"{source}: corrupt dtorch structure metadata ({e})") from None
    else:
        structure = {"__dict__": [[k, {"__tensor__": k}] for k in arrays]}
        devices, rg = {}, set()
    tensors = {}
    for name, arr in arrays.items():
        dev = _target_device(devices.get(name), map_location)
        if dev is not None and dev.type != "cpu":
            arr = move_array(arr, dev)
        t = _make(arr)
        if name in rg:
            t.requires_grad_(True)
        tensors[name] = t
    return _decode(structure, tensors, source)


def _decode(node: Any, tensors: dict, source: str) -> Any:
    if isinstance(node, dict):
        if "__tensor__" in node:
            try:
                return tensors[node["__tensor__"]]
            except KeyError:
                raise _safetensors.SafetensorsError(f"{source}: structure names a missing tensor {node!r}") from None
        if "__dict__" in node:
            return {k: _decode(v, tensors, source) for k, v in node["__dict__"]}
        if "__list__" in node:
            return [_decode(v, tensors, source) for v in node["__list__"]]
        if "__tuple__" in node:
            return tuple(_decode(v, tensors, source) for v in node["__tuple__"])
        if "__float__" in node:
            return float(node["__float__"])
        raise _safetensors.SafetensorsError(f"{source}: unknown structure entry {node!r}")
    return node


def save_to_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    save(obj, buf)
    return buf.getvalue()

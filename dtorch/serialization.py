"""dtorch.save / dtorch.load: tensors in safetensors, structure in JSON — nothing is unpickled.

``save`` takes any nesting of dicts (str or int keys), lists and tuples of tensors,
numbers, strings, bools and None. The file is a plain safetensors file: a flat
``{name: tensor}`` dict (a model's state_dict) is stored under its own names, so other
frameworks read it directly; the structure of anything else and a checksum live in the
header's ``__metadata__``. The checksum covers the whole header (every dtype, shape, offset
and the structure with its Python values) and all the data: a BLAKE3 under the key ``blake3``
in format dtorch.v3 (what ``save`` writes), a sha256 under ``sha256`` in dtorch.v2 (still read).
Loading never executes code.

Saving to a path is atomic: the file is written under a temporary name beside the target,
fsynced and renamed over it (then the directory is fsynced), so the target holds the old or
the new content, complete, whatever interrupts the save.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import zipfile
from typing import Any

import blake3
import numpy as np

from . import _safetensors
from ._device import as_device, move_array
from ._safetensors import SafetensorsError
from ._saved_objects import decode_module, encode_module, end_load, module_class
from ._torch_format import load_torch_zip, save_torch_zip
from .tensor import Tensor, _make
from .utils import _fileio

FORMAT = "dtorch.v3"
# format -> (the metadata key of its checksum over the header and the data, a new hash object)
DIGESTS = {"dtorch.v3": ("blake3", blake3.blake3), "dtorch.v2": ("sha256", hashlib.sha256)}
OLD_FORMATS = ("dtorch.v1",)   # their checksum covered tensor names and bytes only, not the header
_META_KEYS = frozenset(("format", "structure", "devices", "requires_grad"))   # a dtorch file's, but its checksum
MAX_DEPTH = 200                # nesting levels of a saved structure (each is two JSON levels)
_TAGS = ("__tensor__", "__dict__", "__list__", "__tuple__", "__float__", "__ndarray__", "__namespace__", "__module__")
_DEVICE = re.compile(r"(cpu|cuda)(:\d{1,4})?")
_PLACEHOLDER = "0" * 64   # the digest's place in the header while the data is written and hashed (both 32 bytes)


class _Flattener:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.devices: dict[str, str] = {}
        self.requires_grad: list[str] = []
        self.versions: dict[str, tuple[list, int]] = {}   # name -> (version counter, its value when encoded)
        self.seen: dict[int, tuple] = {}   # id of a tensor/array already stored -> (it, its structure node)

    def encode(self, obj: Any, path: str, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError(f"dtorch.save: the object is nested more than {MAX_DEPTH} levels deep at {_short(path)}")
        if isinstance(obj, (Tensor, np.ndarray)) and id(obj) in self.seen:
            return self.seen[id(obj)][1]  # the same object twice (a tied weight): one entry, one object at load
        if isinstance(obj, np.ndarray) and obj.dtype.kind in "biuf":
            node = {"__ndarray__": self.encode(_make(np.ascontiguousarray(obj)), path, depth)["__tensor__"]}
            self.seen[id(obj)] = (obj, node)
            return node
        if isinstance(obj, argparse.Namespace):
            return {"__namespace__": self.encode(dict(vars(obj)), path, depth + 1)}
        Module = module_class()
        if Module is not None and isinstance(obj, Module):
            return {"__module__": encode_module(obj, lambda o, p: self.encode(o, p, depth + 1), path)}
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
            self.seen[id(obj)] = (obj, {"__tensor__": name})  # holding obj keeps its id from being reused
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
                items.append([k, self.encode(v, f"{path}.{k}" if path else str(k), depth + 1)])
            return {"__dict__": items}
        if isinstance(obj, (list, tuple)):
            enc = []
            for i, v in enumerate(obj):
                enc.append(self.encode(v, f"{path}.{i}" if path else str(i), depth + 1))
            return {"__tuple__": enc} if isinstance(obj, tuple) else {"__list__": enc}
        raise TypeError(
            f"dtorch.save cannot store an object of type {type(obj).__name__} at {path or 'the top level'!r}: "
            "only tensors, numbers, strings, None and dicts/lists/tuples of them (dtorch never pickles)"
        )


def _header_hash(entries: dict[str, _safetensors.Entry], meta: dict[str, str]):
    """The hash of ``meta``'s format fed with the whole header (tensor table and metadata but the digest
    itself); the data follows."""
    key, new_hash = DIGESTS[meta["format"]]
    table = sorted([name, e.code, list(e.shape), e.begin, e.end] for name, e in entries.items())
    rest = {k: v for k, v in meta.items() if k != key}
    h = new_hash()
    h.update(json.dumps({"metadata": rest, "tensors": table}, sort_keys=True, separators=(",", ":")).encode())
    return h


def _digest(entries: dict[str, _safetensors.Entry], meta: dict[str, str], data: list) -> str:
    """The checksum of ``meta``'s format: the whole header and then the data bytes."""
    h = _header_hash(entries, meta)
    for b in data:
        mv = memoryview(b)
        if mv.nbytes:
            h.update(mv.cast("B"))
    return h.hexdigest()


def save(obj: Any, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True) -> None:
    """Write ``obj`` to a path (atomically) or a binary file object as safetensors + JSON structure."""
    _save(obj, f, FORMAT)


def _save(obj: Any, f, fmt: str) -> None:
    """``save`` in format ``fmt`` (a key of DIGESTS: the tests write the older dtorch.v2 with it)."""
    fl = _Flattener()
    structure = fl.encode(obj, "")
    entries, buffers = _safetensors.layout(fl.arrays)
    meta = {"format": fmt, "structure": json.dumps(structure, separators=(",", ":"))}
    if fl.devices:
        meta["devices"] = json.dumps(fl.devices)
    if fl.requires_grad:
        meta["requires_grad"] = json.dumps(fl.requires_grad)
    if isinstance(f, (str, os.PathLike)):
        _fileio.write_atomically(f, lambda fd: _write_hashed(fd, entries, meta, buffers))
        return
    meta[DIGESTS[fmt][0]] = _digest(entries, meta, buffers)
    f.write(_safetensors.encode_header(entries, meta))
    for b in buffers:
        if b.size:
            f.write(memoryview(b).cast("B"))


def save_torch(obj: Any, f) -> None:
    """Write ``obj`` (tensors, dicts, lists, tuples, numbers, strings) in torch.save's zip format, which
    ``torch.load(f, weights_only=True)`` reads: the way to hand a checkpoint to PyTorch. Paths are written
    atomically."""
    data = save_torch_zip(obj)
    if isinstance(f, (str, os.PathLike)):
        _fileio.write_atomically(f, lambda fd: _fileio.write_all(fd, data))
    else:
        f.write(data)


def _write_hashed(fd: int, entries: dict, meta: dict, buffers: list) -> None:
    """Header with a placeholder digest, the data hashed as it is written, then the digest in its place."""
    key = DIGESTS[meta["format"]][0]
    h = _header_hash(entries, meta)
    head = _safetensors.encode_header(entries, {**meta, key: _PLACEHOLDER})
    at = head.rindex(f'"{key}":"{_PLACEHOLDER}"'.encode()) + len(f'"{key}":"')
    _fileio.write_all(fd, head)
    _fileio.write_and_hash(fd, buffers, h, offset=len(head))
    os.pwrite(fd, h.hexdigest().encode(), at)


def _target_device(saved: str | None, map_location):
    if map_location is None:
        return as_device(saved) if saved else None
    if callable(map_location) and not isinstance(map_location, str):
        return map_location(saved or "cpu")
    if isinstance(map_location, dict):
        return as_device(map_location.get(saved or "cpu", saved or "cpu"))
    return as_device(map_location)


def _refuse_foreign(source: str):
    def check(first: bytes) -> None:
        if first[:2] == b"PK" or first[:1] == b"\x80":
            raise SafetensorsError(
                f"{source}: this is a pickled/zip file that is not torch.save's zip format; dtorch never unpickles "
                "(unpickling runs code): save it as safetensors, or with torch.save"
            )
    return check


def _is_torch_zip(fh) -> bool:
    """Whether a seekable binary file starts a zip holding torch.save's data.pkl (position restored)."""
    if not (hasattr(fh, "seekable") and fh.seekable()):
        return False
    pos = fh.tell()
    head = fh.read(4)
    fh.seek(pos)
    if head != b"PK\x03\x04":
        return False
    try:
        names = zipfile.ZipFile(fh).namelist()
    except zipfile.BadZipFile:
        return False
    finally:
        fh.seek(pos)
    return any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)


def _to_device(obj: Any, map_location) -> Any:
    if isinstance(obj, Tensor):
        dev = _target_device("cpu", map_location)
        return obj if dev is None or dev.type == "cpu" else obj.to(dev)
    if isinstance(obj, dict):
        return type(obj)((k, _to_device(v, map_location)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, map_location) for v in obj)
    return obj


def _load_torch(fh, source: str, map_location) -> Any:
    """A checkpoint torch.save wrote, read without unpickling (dtorch/_torch_format.py)."""
    obj = load_torch_zip(fh, source)
    return obj if map_location is None else _to_device(obj, map_location)


def _json_meta(meta: dict, key: str, default: str, kind: type, source: str) -> Any:
    try:
        value = json.loads(meta.get(key, default))
    except ValueError as e:
        raise SafetensorsError(f"{source}: corrupt dtorch {key!r} metadata ({e})") from None
    except RecursionError:
        raise SafetensorsError(f"{source}: dtorch {key!r} metadata is nested too deeply") from None
    if kind is not object and not isinstance(value, kind):
        raise SafetensorsError(f"{source}: dtorch {key!r} metadata is {type(value).__name__}, not {kind.__name__}")
    return value


def _hasher(entries: dict, meta: dict):
    return _header_hash(entries, meta) if meta.get("format") in DIGESTS else None


def _check_digest(meta: dict, digest: str | None, source: str) -> None:
    """The file's checksum (under its format's key) against ``digest``, computed as the file was read."""
    fmt = meta["format"]
    key = DIGESTS[fmt][0]
    if key not in meta:
        unknown = sorted(set(meta) - _META_KEYS)
        if unknown:
            raise SafetensorsError(f"{source}: unknown checksum {', '.join(map(repr, unknown))} in a {fmt} file "
                                   f"(its checksum is {key!r})")
    if digest != meta.get(key):
        raise SafetensorsError(f"{source}: checksum mismatch: the header or the tensor data was modified or corrupted")


def _dtorch_meta(entries: dict, meta: dict, digest: str | None, source: str) -> tuple[Any, dict, set]:
    """(structure, devices, requires_grad names) of a dtorch file after checking its checksum."""
    fmt = meta.get("format")
    readable = " and ".join(DIGESTS)
    if fmt in OLD_FORMATS:
        raise SafetensorsError(
            f"{source}: written by an older dtorch (format {fmt}), whose checksum did not cover the header; this "
            f"dtorch reads formats {readable} only (its tensors load as a flat dict with safetensors.numpy.load_file)")
    if fmt not in DIGESTS:
        raise SafetensorsError(f"{source}: unknown dtorch format {fmt!r} (this dtorch reads {readable})")
    _check_digest(meta, digest, source)
    if "structure" not in meta:
        raise SafetensorsError(f"{source}: dtorch metadata lacks 'structure'")
    structure = _json_meta(meta, "structure", "null", object, source)
    devices = _json_meta(meta, "devices", "{}", dict, source)
    rg = _json_meta(meta, "requires_grad", "[]", list, source)
    for name, dev in devices.items():
        if name not in entries or not isinstance(dev, str) or not _DEVICE.fullmatch(dev):
            raise SafetensorsError(f"{source}: bad device entry {_short(name)}: {_short(dev)}")
    for name in rg:
        if not isinstance(name, str) or name not in entries or entries[name].dtype.kind != "f":
            raise SafetensorsError(f"{source}: requires_grad names {_short(name)}, not a floating-point tensor")
    return structure, devices, set(rg)


def load(f, map_location=None, pickle_module=None, *, weights_only: bool = True, mmap=None, **_kw) -> Any:
    """Read what :func:`save` wrote (or any safetensors file, as a flat dict of tensors).

    Reads only as many bytes as the file's header lists; a bad file raises SafetensorsError (a
    ValueError naming the file and the problem), a missing or unreadable one an OSError."""
    if isinstance(f, (str, os.PathLike)):
        source = os.fspath(f)
        with open(f, "rb") as fh:
            _fileio.advise_sequential(fh)
            if _is_torch_zip(fh):
                return _load_torch(fh, source, map_location)
            entries, meta, body, digest = _safetensors.read_stream(fh, source, _refuse_foreign(source), _hasher)
    else:
        source = str(getattr(f, "name", "<file object>"))
        if _is_torch_zip(f):
            return _load_torch(f, source, map_location)
        entries, meta, body, digest = _safetensors.read_stream(f, source, _refuse_foreign(source), _hasher)
    if isinstance(meta.get("format"), str) and meta["format"].startswith("dtorch."):
        structure, devices, rg = _dtorch_meta(entries, meta, digest, source)
    else:
        structure = {"__dict__": [[k, {"__tensor__": k}] for k in entries]}
        devices, rg = {}, set()
    arrays = _safetensors.arrays_from(entries, body, source, copy=False)   # views of the private read buffer
    tensors = {}
    for name, arr in arrays.items():
        dev = _target_device(devices.get(name), map_location)
        if dev is not None and dev.type != "cpu":
            arr = move_array(arr, dev)
        t = _make(arr)
        if name in rg:
            t.requires_grad_(True)
        tensors[name] = t
    try:
        return _decode(structure, tensors, source)
    except RecursionError:   # MAX_DEPTH keeps well inside the limit; this is for a caller already deep in it
        raise SafetensorsError(f"{source}: structure nested too deeply for this call stack") from None
    finally:
        end_load()


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


def _decode(node: Any, tensors: dict, source: str, depth: int = 0) -> Any:
    """A structure tree back to Python values; every malformed node is a SafetensorsError naming it."""
    if node is None or isinstance(node, (bool, str, int, float)):
        return node
    if depth >= MAX_DEPTH:
        raise SafetensorsError(f"{source}: structure nested more than {MAX_DEPTH} levels deep")
    if not isinstance(node, dict) or len(node) != 1 or next(iter(node)) not in _TAGS:
        raise SafetensorsError(f"{source}: unknown structure entry {_short(node)}")
    (tag, body), = node.items()
    if tag == "__tensor__":
        if not isinstance(body, str) or body not in tensors:
            raise SafetensorsError(f"{source}: structure names a missing tensor {_short(body)}")
        return tensors[body]
    if tag == "__ndarray__":
        if not isinstance(body, str) or body not in tensors:
            raise SafetensorsError(f"{source}: structure names a missing array {_short(body)}")
        return tensors[body].detach().cpu().numpy()
    if tag == "__namespace__":
        items = _decode(body, tensors, source, depth + 1)
        if not isinstance(items, dict) or not all(isinstance(k, str) and k.isidentifier() for k in items):
            raise SafetensorsError(f"{source}: bad argparse.Namespace entry {_short(body)}")
        return argparse.Namespace(**items)
    if tag == "__module__":
        try:
            return decode_module(body, lambda n: _decode(n, tensors, source, depth + 1), source)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise SafetensorsError(str(e) if str(e).startswith(source) else f"{source}: {e}") from None
    if tag == "__float__":
        if body not in ("inf", "-inf", "nan"):
            raise SafetensorsError(f"{source}: bad non-finite float {_short(body)} in the structure")
        return float(body)
    if not isinstance(body, list):
        raise SafetensorsError(f"{source}: {tag} holds {type(body).__name__}, not a list: {_short(body)}")
    if tag != "__dict__":
        items = []
        for v in body:
            items.append(_decode(v, tensors, source, depth + 1))
        return tuple(items) if tag == "__tuple__" else items
    out = {}
    for item in body:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], (str, int))
                and not isinstance(item[0], bool)):
            raise SafetensorsError(f"{source}: bad dict item {_short(item)} in the structure (want [key, value])")
        out[item[0]] = _decode(item[1], tensors, source, depth + 1)
    return out


def save_to_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    save(obj, buf)
    return buf.getvalue()

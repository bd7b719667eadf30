"""The manifest: ``manifest.json`` at the top of a checkpoint directory.

```
{"format": "dtorch.checkpoint", "version": 2, "world_size": W, "created_ns": ..., "step": ...,
 "metadata": {...user JSON...},
 "entries": {key: {"scope": "replicated" | "per_rank", "stateful": bool,
                   "structure": <JSON tree> (replicated) | [<JSON tree> per rank] (per_rank)}},
 "files": {"model.safetensors": {"blake3": hex, "bytes": n,
                                 "tensors": {name: {"dtype": "F32", "shape": [...]}}}, ...},
 "manifest_sha256": hex of this document without this field}
```

Structure trees are ``dtorch.serialization``'s: tensors appear as ``{"__tensor__": name}``
and are found in the entry's file (replicated: ``files[entry_file(key)]``; per-rank:
``files[rank_file(r)]``). The self-checksum catches an edited or damaged manifest. Version 1, which
dtorch wrote before, is still read: its files' checksums are sha256 (key ``"sha256"``), 2.5x slower to
compute than blake3.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Callable

import blake3

from ..._safetensors import CODE_DTYPES
from ._errors import CheckpointError

FORMAT = "dtorch.checkpoint"
VERSION = 2
# format version -> each file's checksum: its key in "files" and its hash
FILE_DIGESTS: dict[int, tuple[str, Callable]] = {1: ("sha256", hashlib.sha256), 2: ("blake3", blake3.blake3)}
MANIFEST = "manifest.json"
_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\.safetensors")   # what entry_file and rank_file give
_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_MANIFEST = 256 << 20
SCOPES = ("replicated", "per_rank")


def entry_file(key: str, index: int) -> str:
    """File of a replicated entry: ``<key>.safetensors`` when the key is a safe file name."""
    return f"{key}.safetensors" if _SAFE.match(key) and not key.startswith("rank") else f"entry{index:03d}.safetensors"


def rank_file(rank: int) -> str:
    return f"rank{rank:05d}.safetensors"


def _digest(doc: dict) -> str:
    body = {k: v for k, v in doc.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def encode(doc: dict) -> bytes:
    doc = dict(doc, format=FORMAT, version=VERSION)
    doc["manifest_sha256"] = _digest(doc)
    return json.dumps(doc, sort_keys=True, indent=1).encode()


def _read_bytes(path: Path) -> bytes:
    """The manifest's bytes: a regular file of at most MAX_MANIFEST bytes (never a device or a pipe)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise CheckpointError(f"{path}: not a regular file")
            if st.st_size > MAX_MANIFEST:
                raise CheckpointError(f"{path}: {st.st_size} bytes, more than a manifest can be ({MAX_MANIFEST})")
            return f.read(MAX_MANIFEST + 1)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing — {path.parent} is not a (complete) dtorch checkpoint") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: not a regular file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e})") from None


def read(ckpt_dir: Path) -> dict[str, Any]:
    """Parse and check the manifest; raise CheckpointError naming the problem."""
    path = Path(ckpt_dir) / MANIFEST
    if not Path(ckpt_dir).is_dir():
        raise CheckpointError(f"{ckpt_dir}: not a directory")
    raw = _read_bytes(path)
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e}); truncated or corrupt") from None
    except RecursionError:
        raise CheckpointError(f"{path}: not a dtorch checkpoint manifest (JSON nested too deeply)") from None
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if fmt != FORMAT:
        raise CheckpointError(f"{path}: not a dtorch checkpoint manifest (format {_short(fmt)})")
    version = doc.get("version")
    if type(version) is not int or version not in FILE_DIGESTS:
        raise CheckpointError(f"{path}: format version {_short(version)}; this dtorch reads versions "
                              f"{', '.join(map(str, FILE_DIGESTS))}")
    try:
        ok = doc.get("manifest_sha256") == _digest(doc)
    except (TypeError, ValueError, RecursionError):   # keys json.dumps cannot sort, nesting too deep
        ok = False
    if not ok:
        raise CheckpointError(f"{path}: manifest checksum mismatch — the manifest was edited or corrupted")
    problem = _problem(doc)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    return doc


def file_digest(doc: dict) -> tuple[str, Callable]:
    """The checksum of a (checked) manifest's files: its key in each file's record and its hash."""
    return FILE_DIGESTS[doc["version"]]


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(v: Any, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _problem(doc: dict) -> str | None:
    """What is wrong with a manifest's fields (their types and cross-references), or None."""
    for key in ("world_size", "entries", "files"):
        if key not in doc:
            return f"manifest lacks {key!r}"
    if not _is_int(doc["world_size"], 1):
        return f"world_size is {_short(doc['world_size'])}, not an integer >= 1"
    if not _is_int(doc.get("created_ns", 0)):
        return f"created_ns is {_short(doc.get('created_ns'))}, not an integer >= 0"
    if doc.get("step") is not None and not _is_int(doc["step"]):
        return f"step is {_short(doc['step'])}, not an integer >= 0 or null"
    if not isinstance(doc.get("metadata", {}), dict):
        return f"metadata is {type(doc['metadata']).__name__}, not an object"
    if not isinstance(doc["files"], dict):
        return f"files is {type(doc['files']).__name__}, not an object"
    for name, info in doc["files"].items():
        problem = _file_problem(name, info, file_digest(doc)[0])
        if problem:
            return f"files[{_short(name)}]: {problem}"
    if not isinstance(doc["entries"], dict):
        return f"entries is {type(doc['entries']).__name__}, not an object"
    for key, entry in doc["entries"].items():
        problem = _entry_problem(entry, doc["files"])
        if problem:
            return f"entries[{_short(key)}]: {problem}"
    rs = doc.get("rank_structures")
    if not isinstance(rs, list) or len(rs) != doc["world_size"]:
        return f"rank_structures is not a list of world_size ({doc['world_size']}) structures"
    return None


def _file_problem(name: str, info: Any, key: str) -> str | None:
    if not _FILE.fullmatch(name):
        return "not a plain file name of this checkpoint (NAME.safetensors, no '/' or '..')"
    if not isinstance(info, dict):
        return f"is {type(info).__name__}, not an object"
    if not (isinstance(info.get(key), str) and _HEX64.fullmatch(info[key])):
        return f"{key} {_short(info.get(key))} is not 64 hex digits"
    if not _is_int(info.get("bytes")):
        return f"bytes {_short(info.get('bytes'))} is not an integer >= 0"
    tensors = info.get("tensors")
    if not isinstance(tensors, dict):
        return "tensors is not an object"
    for t, spec in tensors.items():
        if not (isinstance(spec, dict) and spec.get("dtype") in CODE_DTYPES and isinstance(spec.get("shape"), list)
                and all(_is_int(d) for d in spec["shape"])):
            return f"tensor {_short(t)}: {_short(spec)} is not {{dtype, shape}}"
    return None


def _entry_problem(entry: Any, files: dict) -> str | None:
    if not isinstance(entry, dict):
        return f"is {type(entry).__name__}, not an object"
    if entry.get("scope") not in SCOPES:
        return f"scope {_short(entry.get('scope'))} is not one of {', '.join(SCOPES)}"
    if entry["scope"] == "replicated" and "structure" not in entry:
        return "missing structure"
    if "file" in entry and (not isinstance(entry["file"], str) or entry["file"] not in files):
        return f"file {_short(entry['file'])} is not listed in files"
    return None


def check_files_present(ckpt_dir: Path, doc: dict) -> None:
    """Cheap completeness check: every listed file exists with the listed size."""
    for name, info in doc["files"].items():
        p = Path(ckpt_dir) / name
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            raise CheckpointError(f"{p}: file missing (listed in the manifest)") from None
        if size != info["bytes"]:
            raise CheckpointError(f"{p}: {size} bytes, the manifest says {info['bytes']} (truncated or replaced)")

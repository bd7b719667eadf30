"""The manifest: ``manifest.json`` at the top of a checkpoint directory.

```
{"format": "dtorch.checkpoint", "version": 1, "world_size": W, "created_ns": ..., "step": ...,
 "metadata": {...user JSON...},
 "entries": {key: {"scope": "replicated" | "per_rank", "stateful": bool,
                   "structure": <JSON tree> (replicated) | [<JSON tree> per rank] (per_rank)}},
 "files": {"model.safetensors": {"sha256": hex, "bytes": n,
                                 "tensors": {name: {"dtype": "F32", "shape": [...]}}}, ...},
 "manifest_sha256": hex of this document without this field}
```

Structure trees are ``dtorch.serialization``'s: tensors appear as ``{"__tensor__": name}``
and are found in the entry's file (replicated: ``files[entry_file(key)]``; per-rank:
``files[rank_file(r)]``). The self-checksum catches an edited or damaged manifest.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ._errors import CheckpointError

FORMAT = "dtorch.checkpoint"
VERSION = 1
MANIFEST = "manifest.json"
_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


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


def read(ckpt_dir: Path) -> dict[str, Any]:
    """Parse and check the manifest; raise CheckpointError naming the problem."""
    path = Path(ckpt_dir) / MANIFEST
    if not Path(ckpt_dir).is_dir():
        raise CheckpointError(f"{ckpt_dir}: not a directory")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing — {ckpt_dir} is not a (complete) dtorch checkpoint") from None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e}); truncated or corrupt") from None
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if fmt != FORMAT:
        raise CheckpointError(f"{path}: not a dtorch checkpoint manifest (format {fmt!r})")
    if doc.get("version") != VERSION:
        raise CheckpointError(f"{path}: format version {doc.get('version')!r}; this dtorch reads version {VERSION}")
    if doc.get("manifest_sha256") != _digest(doc):
        raise CheckpointError(f"{path}: manifest checksum mismatch — the manifest was edited or corrupted")
    for key in ("world_size", "entries", "files"):
        if key not in doc:
            raise CheckpointError(f"{path}: manifest lacks {key!r}")
    return doc


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

"""load(): verify a checkpoint directory and restore ``state`` from it (resharding per-rank entries)."""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ... import _safetensors
from . import _manifest
from ._errors import CheckpointError
from ._files import read_hashed
from ._group import rank_world
from ._state import PER_RANK, restore, unflatten, unwrap


def read_file(ckpt: Path, name: str, doc: dict) -> dict:
    """One data file's arrays, after checking its checksum and its tensor table against the manifest ``doc``."""
    path, info = ckpt / name, doc["files"][name]
    key, new_hash = _manifest.file_digest(doc)
    data, digest = read_hashed(path, new_hash)
    if len(data) != info["bytes"]:
        raise CheckpointError(f"{path}: {len(data)} bytes, the manifest says {info['bytes']} (truncated?)")
    if digest != info[key]:
        raise CheckpointError(f"{path}: {key} mismatch (file {digest[:12]}…, manifest {info[key][:12]}…): "
                              "the file was modified or corrupted")
    try:
        arrays, _ = _safetensors.read(data, str(path), copy=False)   # views of the private read buffer
    except _safetensors.SafetensorsError as e:
        raise CheckpointError(str(e)) from None
    table = {k: {"dtype": _safetensors.DTYPE_CODES[a.dtype], "shape": list(a.shape)} for k, a in arrays.items()}
    if table != info["tensors"]:
        raise CheckpointError(f"{path}: tensors do not match the manifest's list (names, dtypes or shapes)")
    return arrays


class _Reader:
    def __init__(self, ckpt: Path, doc: dict) -> None:
        self.ckpt, self.doc, self._cache = ckpt, doc, {}

    def prefetch(self, names: list[str]) -> None:
        """Read and verify these files at once, one thread each (reading and hashing release the GIL)."""
        names = [n for n in dict.fromkeys(names) if n in self.doc["files"] and n not in self._cache]
        if len(names) < 2:
            return
        with ThreadPoolExecutor(len(names), thread_name_prefix="ckpt-read") as ex:
            futures = {n: ex.submit(read_file, self.ckpt, n, self.doc) for n in names}
            self._cache.update({n: f.result() for n, f in futures.items()})

    def arrays(self, name: str | None) -> dict:
        if name is None:
            return {}
        if name not in self._cache:
            if name not in self.doc["files"]:
                raise CheckpointError(f"{self.ckpt / _manifest.MANIFEST}: names no file {name!r}")
            self._cache[name] = read_file(self.ckpt, name, self.doc)
        return self._cache[name]

    def replicated(self, key: str) -> Any:
        entry = self.doc["entries"][key]
        return _unflatten(entry["structure"], self.arrays(entry.get("file")), self.ckpt / (entry.get("file") or ""))

    def rank_tree(self, r: int) -> dict:
        name = _manifest.rank_file(r)
        arrays = self.arrays(name) if name in self.doc["files"] else {}
        tree = _unflatten(self.doc["rank_structures"][r], arrays, self.ckpt / name)
        return tree if isinstance(tree, dict) else {}

    def rank_value(self, r: int, key: str) -> Any:
        tree = self.rank_tree(r)
        if key not in tree:
            raise CheckpointError(f"{self.ckpt / _manifest.MANIFEST}: rank {r}'s structure has no entry {key!r}")
        return tree[key]


def _unflatten(structure: Any, arrays: dict, path: Path) -> Any:
    try:
        return unflatten(structure, arrays, str(path))
    except _safetensors.SafetensorsError as e:
        raise CheckpointError(str(e)) from None


def load(state: dict, checkpoint_dir: str | os.PathLike, *, strict: bool = True, process_group=None) -> dict:
    """Restore ``state`` in place from ``checkpoint_dir``; returns ``{key: loaded value}`` plus the manifest
    under ``"__manifest__"``.

    Stateful objects get ``load_state_dict``; tensors are copied into in place (so views, e.g. an
    optimizer's flat buffers, stay valid); other values are replaced in ``state``. Keys of ``state``
    absent from the checkpoint raise KeyError when ``strict``. Every file read is checked against the
    manifest's checksum first; nothing is unpickled or executed. Per-rank entries saved at world size W
    and loaded at W' != W go through the object's ``reshard_state_dict(states, rank, world_size)`` when
    it has one; otherwise ranks below W take their own entry and new ranks keep theirs (with a warning).
    """
    ckpt = Path(checkpoint_dir)
    doc = _manifest.read(ckpt)
    _manifest.check_files_present(ckpt, doc)
    missing = [k for k in state if k not in doc["entries"]]
    if missing and strict:
        raise KeyError(f"{ckpt}: checkpoint has no entries {missing} (it has {sorted(doc['entries'])})")
    rank, world = rank_world(process_group)
    saved_world = int(doc["world_size"])
    reader = _Reader(ckpt, doc)
    wanted = [k for k in state if k not in missing]
    reader.prefetch([doc["entries"][k].get("file") for k in wanted if doc["entries"][k]["scope"] != PER_RANK]
                    + [_manifest.rank_file(rank)])
    loaded: dict[str, Any] = {}
    for key in state:
        if key in missing:
            continue
        if doc["entries"][key]["scope"] != PER_RANK:
            loaded[key] = reader.replicated(key)
        elif saved_world == world:
            loaded[key] = reader.rank_value(rank, key)
        else:
            value = _resharded(reader, key, unwrap(state[key]), saved_world, rank, world)
            if value is None:
                continue
            loaded[key] = value
        restore(state, key, loaded[key])
    loaded["__manifest__"] = doc
    return loaded


def _resharded(reader: _Reader, key: str, target: Any, saved_world: int, rank: int, world: int) -> Any:
    reshard = getattr(target, "reshard_state_dict", None)
    if callable(reshard):
        return reshard([reader.rank_value(r, key) for r in range(saved_world)], rank, world)
    if rank < saved_world:
        return reader.rank_value(rank, key)
    warnings.warn(f"checkpoint entry {key!r} was saved by {saved_world} ranks; rank {rank} has no saved "
                  "state and keeps its own", stacklevel=3)
    return None

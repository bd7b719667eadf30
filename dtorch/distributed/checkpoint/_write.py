"""Executing a Plan: files into the temporary directory, then (rank 0) manifest, rename, pointer, retention.

No collective runs here, so this can run on a background thread while training goes on.
Ranks other than 0 finish by leaving ``rank<r>.done.json`` (their file records and per-rank
structure, fsynced, renamed into place); rank 0 waits for all of them, merges them into the
manifest, fsyncs, and renames the directory into place. Until that rename the target shows
nothing new, so a crash at any moment leaves the previous checkpoint as the newest complete one.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ... import _safetensors
from . import _dirs, _manifest
from ._errors import CheckpointError
from ._files import fsync_dir, write_hashed
from ._plan import Plan

_ST_METADATA = {"format": "pt"}   # what Hugging Face tools expect of a PyTorch-compatible safetensors file
_DONE = "rank{:05d}.done.json"


def _write_files(tmp: Path, plan: Plan) -> dict:
    """This rank's safetensors files, written and hashed; their manifest records by file name."""
    encoded = {name: _safetensors.encode(flat.arrays, _ST_METADATA) for name, flat in plan.files.items()}
    key, new_hash = _manifest.FILE_DIGESTS[_manifest.VERSION]
    written = write_hashed({tmp / name: [head, *buffers] for name, (head, buffers) in encoded.items()}, new_hash)
    records = {}
    for name in plan.files:
        digest, size = written[tmp / name]
        tensors = {t: {"dtype": _safetensors.DTYPE_CODES[a.dtype], "shape": list(a.shape)}
                   for t, a in plan.files[name].arrays.items()}
        records[name] = {key: digest, "bytes": size, "tensors": tensors}
    return records


def _wait_for_ranks(tmp: Path, plan: Plan) -> list[dict]:
    deadline = time.monotonic() + plan.timeout
    reports = []
    for r in range(1, plan.world_size):
        path = tmp / _DONE.format(r)
        while not path.exists():
            if time.monotonic() > deadline:
                raise CheckpointError(f"{plan.target}: rank {r} did not finish writing its files within "
                                      f"{plan.timeout:.0f} s ({path} never appeared)")
            time.sleep(0.002)
        reports.append(json.loads(path.read_bytes()))
    return reports


def execute(plan: Plan) -> None:
    """Write this rank's share; on rank 0 also complete the checkpoint."""
    target = plan.target
    tmp = _dirs.tmp_dir(target, plan.nonce)
    tmp.mkdir(parents=True, exist_ok=True)
    records = _write_files(tmp, plan)
    report = {"files": records, "structure": plan.rank_structure}
    if plan.rank != 0:
        done = tmp / _DONE.format(plan.rank)
        part = done.with_name(done.name + ".part")
        part.write_bytes(json.dumps(report).encode())
        with open(part, "rb+") as f:
            os.fsync(f.fileno())
        os.rename(part, done)
        fsync_dir(tmp)
        return
    reports = [report] + _wait_for_ranks(tmp, plan)
    files: dict = {}
    for rep in reports:
        files.update(rep["files"])
    for r in range(1, plan.world_size):
        os.unlink(tmp / _DONE.format(r))
    doc = dict(plan.header, world_size=plan.world_size, entries=plan.entries, files=files,
               rank_structures=[rep["structure"] for rep in reports])
    data = _manifest.encode(doc)
    with open(tmp / _manifest.MANIFEST, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(tmp)
    _dirs.move_into_place(tmp, target, plan.nonce)
    _dirs.update_pointer(target.parent, target.name)
    _dirs.clean_and_retain(target.parent, plan.keep_last, target, plan.nonce)

"""What one rank writes for a save: its files (name -> arrays) and its part of the manifest."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _manifest
from ._state import PER_RANK, Flat, flatten, is_stateful, plain, scope_of, snapshot, unwrap


@dataclass
class Plan:
    target: Path
    rank: int
    world_size: int
    nonce: str
    files: dict[str, Flat] = field(default_factory=dict)
    entries: dict[str, dict] = field(default_factory=dict)   # key -> {"scope", "stateful", ["structure", "file"]}
    rank_structure: Any = None                                # this rank's per-rank tree
    header: dict = field(default_factory=dict)                # step, metadata, created_ns
    keep_last: int | None = None
    timeout: float = 600.0


def make_plan(state: dict, target: Path, rank: int, world_size: int, nonce: str | None, *, copy: bool,
              pool: dict | None = None, metadata: dict | None = None, keep_last: int | None = None) -> Plan:
    """Collect this rank's share of ``state``; with ``copy`` the arrays are private host copies."""
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise TypeError("checkpoint state must be a dict with str keys")
    plan = Plan(Path(target), rank, world_size, nonce or uuid.uuid4().hex, keep_last=keep_last)
    per_rank = {}
    for i, (key, value) in enumerate(state.items()):
        scope = scope_of(value)
        entry = {"scope": scope, "stateful": is_stateful(unwrap(value))}
        plan.entries[key] = entry
        if scope == PER_RANK:
            per_rank[key] = plain(value)
        elif rank == 0:
            flat = flatten(plain(value), "")
            entry["structure"] = flat.structure
            if flat.arrays:
                entry["file"] = _manifest.entry_file(key, i)
                plan.files[entry["file"]] = flat
    if per_rank:
        flat = flatten(per_rank, "")
        plan.rank_structure = flat.structure
        if flat.arrays:
            plan.files[_manifest.rank_file(rank)] = flat
    if copy:
        for flat in plan.files.values():
            snapshot(flat, pool)
    step = state.get("step")
    plan.header = {"created_ns": time.time_ns(), "metadata": dict(metadata or {}),
                   "step": int(unwrap(step)) if isinstance(unwrap(step), int) else None}
    return plan

"""save(): the synchronous checkpoint save (AsyncCheckpointer, in _async.py, is the background one)."""
from __future__ import annotations

import os
from pathlib import Path

from ._group import barrier, rank_world, shared_nonce
from ._plan import make_plan
from ._write import execute


def save(state: dict, checkpoint_dir: str | os.PathLike, *, metadata: dict | None = None,
         keep_last: int | None = None, process_group=None) -> Path:
    """Write ``state`` as the checkpoint directory ``checkpoint_dir`` and return its path.

    Collective when a process group exists: every rank calls it. Replicated entries are written
    by rank 0 only, per-rank entries (RNG, data position, :class:`PerRank`) by every rank. The
    directory appears all at once (temporary name, fsync, rename); ``<parent>/latest`` then names
    it, and with ``keep_last`` older complete checkpoints beyond the newest ``keep_last`` are removed.
    """
    rank, world = rank_world(process_group)
    nonce = shared_nonce(process_group)
    plan = make_plan(state, Path(checkpoint_dir), rank, world, nonce, copy=False, metadata=metadata,
                     keep_last=keep_last)
    execute(plan)
    barrier(process_group)   # every rank returns once the checkpoint is in place
    return plan.target

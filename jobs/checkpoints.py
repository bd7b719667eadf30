"""A run's checkpoints: RUN_DIR/<checkpoint.dir>/step_NNNNNNNN, written by dtorch.distributed.checkpoint.

Saving is collective (every rank calls it; rank 0 writes the replicated model/optimizer/scheduler,
each rank its own RNG and data position). Resuming takes the newest checkpoint that every rank can
load: a checkpoint whose files fail their checksum on some rank is skipped for an older one, by all
ranks together.
"""
from __future__ import annotations

import sys
from pathlib import Path

import dtorch
import dtorch.distributed as dist
import dtorch.distributed.checkpoint as dcp


def all_ranks_agree(ok: bool) -> bool:
    """True when ``ok`` is true on every rank (no process group: just ``ok``)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return ok
    flag = dtorch.tensor([1 if ok else 0], dtype=dtorch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


class Checkpoints:
    """Save and restore a ``dcp.training_state`` dict under ``run_dir`` as the ``checkpoint`` section says."""

    def __init__(self, run_dir: str | Path, cfg: dict) -> None:
        self.dir = Path(run_dir) / cfg["dir"]
        self.keep_last = cfg["keep_last"]
        self.writer = dcp.AsyncCheckpointer() if cfg["async"] else None

    def restore(self, state: dict) -> Path | None:
        """Load the newest checkpoint all ranks can read into ``state``; the one loaded, or None."""
        candidates = dcp.complete_checkpoints(self.dir)
        if dist.is_initialized() and dist.get_world_size() > 1:  # rank 0's list, so all try the same ones
            box = [[str(p) for p in candidates]]
            dist.broadcast_object_list(box, src=0)
            candidates = [Path(p) for p in box[0]]
        for ckpt in candidates:
            try:
                dcp.load(state, ckpt)
                ok = True
            except (dcp.CheckpointError, KeyError, ValueError) as e:
                print(f"checkpoint {ckpt} cannot be loaded, trying an older one: {e}", file=sys.stderr)
                ok = False
            if all_ranks_agree(ok):
                return ckpt
        return None

    def save(self, state: dict, step: int, wait: bool = False) -> Path:
        """Write ``state`` as step_<step>; ``wait``: return only once it is on disk (also when async)."""
        target = self.dir / f"step_{step:08d}"
        meta = {"step": step}
        if self.writer is None:
            dcp.save(state, target, metadata=meta, keep_last=self.keep_last)
        else:
            self.writer.save(state, target, metadata=meta, keep_last=self.keep_last)
            if wait:
                self.writer.wait()
        return target

    def wait(self) -> None:
        if self.writer is not None:
            self.writer.wait()

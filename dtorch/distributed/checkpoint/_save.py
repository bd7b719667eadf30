"""save(): synchronous; AsyncCheckpointer: snapshot now, write in a background thread."""
from __future__ import annotations

import atexit
import os
import sys
import threading
import traceback
import weakref
from pathlib import Path

from ._errors import CheckpointError
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


_LIVE: "weakref.WeakSet[AsyncCheckpointer]" = weakref.WeakSet()


class AsyncCheckpointer:
    """Saves in the background: ``save()`` only snapshots the state to host memory and returns.

    At most one save is in flight: the next ``save()`` (or :meth:`wait`) waits for the previous
    one and raises its error, if any. A save still running at interpreter exit is finished;
    if it failed and nobody called :meth:`wait`, the error is printed and the process exits with
    status 1, so a failed checkpoint never goes unnoticed. Snapshot buffers are reused between
    saves, so after the first save a snapshot is a plain memory copy.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._error_target: Path | None = None
        self._pool: dict = {}
        _LIVE.add(self)

    def save(self, state: dict, checkpoint_dir: str | os.PathLike, *, metadata: dict | None = None,
             keep_last: int | None = None, process_group=None) -> None:
        self.wait()
        rank, world = rank_world(process_group)
        nonce = shared_nonce(process_group)
        plan = make_plan(state, Path(checkpoint_dir), rank, world, nonce, copy=True, pool=self._pool,
                         metadata=metadata, keep_last=keep_last)
        self._thread = threading.Thread(target=self._run, args=(plan,), name="ckpt-async-writer")
        self._thread.start()

    def _run(self, plan) -> None:
        try:
            execute(plan)
        except BaseException as e:  # surfaced by wait() / the next save / exit
            self._error, self._error_target = e, plan.target

    def pending(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self) -> None:
        """Block until the save in flight is written; raise CheckpointError if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, target = self._error, self._error_target
            self._error = None
            raise CheckpointError(f"{target}: the asynchronous save failed: {type(err).__name__}: {err}") from err

    def __enter__(self) -> "AsyncCheckpointer":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.wait()
        elif self._thread is not None:
            self._thread.join()


@atexit.register
def _finish_at_exit() -> None:
    for ckpt in list(_LIVE):
        try:
            ckpt.wait()
        except CheckpointError:
            sys.stderr.write("dtorch.distributed.checkpoint: " + traceback.format_exc())
            sys.stderr.flush()
            os._exit(1)

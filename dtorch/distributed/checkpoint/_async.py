"""AsyncCheckpointer: the training thread hands the state over; a background thread copies and writes it.

What the training thread pays for a save is the hand-over: the state is walked (``state_dict()``),
small arrays and everything that is not a module or an optimizer are copied at once. The big
arrays of modules and optimizers (parameters, buffers, optimizer state) are copied to host
memory ("staged") by the background thread while training goes on. Until staging is done,
the two things that write them in a training loop wait for it: every optimizer's ``step``
(a global step pre-hook) and the forward of modules in the state that own buffers (BatchNorm's
running statistics). Anything else that writes these tensors in place before the next optimizer
step must call :meth:`AsyncCheckpointer.wait_staged` first; if a tensor's version counter moved
while it was being staged, the save fails with a CheckpointError (at the next save, ``wait`` or
exit) instead of writing a checkpoint that never existed.
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import traceback
import weakref
from pathlib import Path

from ...nn import Module
from ...optim import Optimizer
from ...optim.optimizer import register_optimizer_step_pre_hook
from ._errors import CheckpointError
from ._group import rank_world, shared_nonce
from ._plan import Plan, make_plan
from ._state import Flat, modified_since_flatten, snapshot, unwrap
from ._write import execute

_SMALL_BYTES = 1 << 16   # arrays below this are copied by the training thread: not worth deferring
_WRITER_NICE = 10        # the writer yields the CPU to training (Linux: niceness is per thread, inherited)


def _yield_cpu_to_training() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _WRITER_NICE)
    except (AttributeError, OSError):   # not Linux, or not allowed: the writer just competes
        pass

_LIVE: "weakref.WeakSet[AsyncCheckpointer]" = weakref.WeakSet()


def _writers(state: dict) -> tuple[set, list]:
    """Entry keys whose big arrays may be staged later, and the modules whose forward writes buffers."""
    deferrable, buffered_modules = set(), []
    for key, value in state.items():
        obj = unwrap(value)
        if isinstance(obj, Optimizer):
            deferrable.add(key)
        elif isinstance(obj, Module):
            deferrable.add(key)
            buffered_modules += [m for m in obj.modules() if m._buffers]
    return deferrable, buffered_modules


class AsyncCheckpointer:
    """Saves in the background: ``save()`` hands the state over and returns; training continues.

    At most one save is in flight: the next ``save()`` (or :meth:`wait`) waits for the previous
    one and raises its error, if any. A save still running at interpreter exit is finished;
    if it failed and nobody called :meth:`wait`, the error is printed and the process exits with
    status 1, so a failed checkpoint never goes unnoticed. Staging buffers are reused between
    saves. ``stage_in_background=False`` copies everything inside ``save()`` (no hooks at all).
    ``blocked_s`` accumulates the time the training thread spent in ``save()`` and waiting for
    staging.
    """

    def __init__(self, *, stage_in_background: bool = True) -> None:
        self.stage_in_background = stage_in_background
        self.blocked_s = 0.0
        self._thread: threading.Thread | None = None
        self._staged = threading.Event()
        self._staged.set()
        self._guards: list = []
        self._error: BaseException | None = None
        self._error_target: Path | None = None
        self._pool: dict = {}
        _LIVE.add(self)

    def save(self, state: dict, checkpoint_dir: str | os.PathLike, *, metadata: dict | None = None,
             keep_last: int | None = None, process_group=None) -> None:
        self.wait()
        start = time.perf_counter()
        rank, world = rank_world(process_group)
        nonce = shared_nonce(process_group)
        plan = make_plan(state, Path(checkpoint_dir), rank, world, nonce, copy=False, metadata=metadata,
                         keep_last=keep_last)
        deferrable, buffered_modules = _writers(state) if self.stage_in_background else (set(), [])
        deferred = self._stage_now(plan, deferrable)
        self._staged = threading.Event()
        if deferred:
            self._guard(buffered_modules)
        else:
            self._staged.set()
        self._thread = threading.Thread(target=self._run, args=(plan, deferred), name="ckpt-async-writer")
        self._thread.start()
        self.blocked_s += time.perf_counter() - start

    def _stage_now(self, plan: Plan, deferrable: set) -> list[Flat]:
        """Copy what must be copied now; return the Flats (of ``deferrable`` entries) whose big arrays the
        writer stages."""
        deferred_files = {e["file"] for k, e in plan.entries.items() if k in deferrable and "file" in e}
        deferred = []
        for name, flat in plan.files.items():
            if name not in deferred_files:
                snapshot(flat, self._pool)
                continue
            small = Flat(None, {n: a for n, a in flat.arrays.items() if a.nbytes < _SMALL_BYTES}, flat.from_device)
            snapshot(small, self._pool)
            flat.arrays.update(small.arrays)
            big = {n for n in flat.arrays if n not in small.arrays and n not in flat.from_device}  # GPU: copied
            flat.versions = {n: v for n, v in flat.versions.items() if n in big}
            deferred.append(flat)
        return deferred

    def _guard(self, buffered_modules: list) -> None:
        hook = self._wait_staged_hook
        self._guards = [register_optimizer_step_pre_hook(hook)]
        self._guards += [m.register_forward_pre_hook(hook) for m in buffered_modules]

    def _wait_staged_hook(self, *_args) -> None:
        if not self._staged.is_set():
            self.wait_staged()

    def wait_staged(self) -> None:
        """Block until the save in flight has copied the state (it may then be modified freely)."""
        if not self._staged.is_set():
            start = time.perf_counter()
            self._staged.wait()
            self.blocked_s += time.perf_counter() - start

    def _run(self, plan: Plan, deferred: list[Flat]) -> None:
        _yield_cpu_to_training()
        try:
            try:
                changed = []
                for flat in deferred:
                    snapshot(flat, self._pool)
                    changed += modified_since_flatten(flat)
            finally:
                self._staged.set()
            if changed:
                raise CheckpointError(
                    f"tensors {changed[:5]} were modified in place while being staged; call "
                    "AsyncCheckpointer.wait_staged() before writing to saved tensors outside optimizer.step "
                    "and module forward")
            execute(plan)
        except BaseException as e:  # surfaced by wait() / the next save / exit
            self._error, self._error_target = e, plan.target

    def _unguard(self) -> None:
        for handle in self._guards:
            handle.remove()
        self._guards = []

    def pending(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self) -> None:
        """Block until the save in flight is written; raise CheckpointError if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._unguard()
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
            self._unguard()


@atexit.register
def _finish_at_exit() -> None:
    for ckpt in list(_LIVE):
        try:
            ckpt.wait()
        except CheckpointError:
            sys.stderr.write("dtorch.distributed.checkpoint: " + traceback.format_exc())
            sys.stderr.flush()
            os._exit(1)

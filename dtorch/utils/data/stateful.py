"""StatefulDataLoader: a DataLoader whose position in the epoch can be saved and restored exactly.

How it works (map-style datasets):

* At the start of each epoch the loader draws what a DataLoader draws (the workers' base seed,
  then the sampler's order) and lists the epoch's index batches at once. ``state_dict()``
  records the epoch count, the batches handed out so far, the indices of the batches still to
  come and the base seed — not the generator that made them, so restoring never rewinds a
  generator (the process's generators are restored by the checkpoint's ``RNGState`` as they
  were at the save).
* With worker processes each batch is fetched after seeding Python's, numpy's and dtorch's
  generators from (base seed, batch number), so random augmentations in ``__getitem__`` are
  reproduced however the batches were spread over workers or where the run was resumed.
* Iterable datasets: the state records the number of batches handed out; a resumed epoch
  restarts the dataset and drops that many batches (the dataset must be deterministic).

Resharding (``reshard_state_dict``; a checkpoint saved by W ranks loaded by W' ranks): the
ranks' remaining indices are interleaved in the order a DistributedSampler deals them
(position p went to rank p % W) and dealt again to the W' ranks (position p to rank p % W'),
then batched with this loader's ``batch_size``/``drop_last``. Every sample not yet handed out is
handed out exactly once in the rest of the epoch; nothing handed out before is repeated. With
``reshard_pad=True`` (the default, what DDP needs) a rank short of one sample gets a repeat of
the first remaining samples — at most W'-1 repeats, exactly as DistributedSampler pads — so all
ranks run the same number of steps; ``reshard_pad=False`` never repeats and ranks may differ by
one sample. The next epoch comes from the sampler as configured for W'.
"""
from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np

from ...random import manual_seed
from ...tensor import _make
from .dataloader import DataLoader, _WorkerPool, get_worker_info
from .sampler import _draw_seed

__all__ = ["StatefulDataLoader"]


def _batch_seed(base_seed: int, batch_number: int) -> int:
    return int(np.random.SeedSequence([base_seed, batch_number]).generate_state(1, np.uint64)[0] >> 1)


class _SeededBatch(list):
    """A batch of indices that seeds the worker's generators when the worker starts reading it."""

    seed = 0

    def __iter__(self):
        if get_worker_info() is not None:

            random.seed(self.seed)
            np.random.seed(self.seed % 2 ** 32)
            manual_seed(self.seed)
        return super().__iter__()


class StatefulDataLoader(DataLoader):
    """torch DataLoader + ``state_dict()`` / ``load_state_dict()`` / ``reshard_state_dict()``.

    Extra argument: ``reshard_pad`` (see the module docstring).
    """

    checkpoint_scope = "per_rank"

    def __init__(self, *args: Any, reshard_pad: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reshard_pad = reshard_pad
        self._epoch = 0              # epochs started
        self._batches: list | None = None   # the epoch's batches from _offset on; None outside an epoch
        self._offset = 0             # batches handed out before _batches[0]
        self._taken = 0              # batches handed out from _batches
        self._base_seed: int | None = None
        self._resume = False         # next __iter__ continues the loaded epoch
        self._stream = None

    # ---- iteration --------------------------------------------------------------------------
    def __iter__(self):
        if not self._resume:
            self._base_seed = _draw_seed(self.generator)
            self._batches = None if self._iterable else list(super()._index_stream())
            self._offset = self._taken = 0
            self._epoch += 1
        self._resume = False
        return self._run()

    def _index_stream(self):
        return self._stream

    def _run(self):
        start = self._offset + self._taken
        if self._iterable:
            self._stream = None
            it = itertools.islice(self._open(), self._taken, None)
        else:
            todo = self._batches[self._taken:]
            if self.num_workers > 0 and self._auto_collation:
                todo = [self._seeded(b, start + i) for i, b in enumerate(todo)]
            self._stream = iter(todo)
            it = self._open()
        for batch in it:
            self._taken += 1
            yield batch
        self._batches = None
        self._offset = self._taken = 0

    def _seeded(self, batch, number: int) -> _SeededBatch:
        b = _SeededBatch(batch)
        b.seed = _batch_seed(self._base_seed, number)
        return b

    def _open(self):
        if self.num_workers == 0:
            return self._single_process(self._stream)
        if self._workers is None or not self.persistent_workers:
            if self._workers is not None:
                self._workers.shutdown()
            self._workers = _WorkerPool(self, self._base_seed)
        return self._workers.epoch(self._stream, self)

    # ---- state ------------------------------------------------------------------------------
    def _in_epoch(self) -> bool:
        return self._batches is not None or (self._iterable and self._taken > 0)

    def state_dict(self) -> dict[str, Any]:
        sd: dict[str, Any] = {"epoch": self._epoch, "in_epoch": self._in_epoch(),
                              "consumed": self._offset + self._taken, "base_seed": self._base_seed}
        if self._batches is not None:
            rest = self._batches[self._taken:]
            batched = self._auto_collation
            flat = [i for b in rest for i in b] if batched else list(rest)
            if not all(isinstance(i, (int, np.integer)) for i in flat):
                raise TypeError("StatefulDataLoader.state_dict: the sampler must yield integer indices")
            sd["remaining"] = _make(np.asarray(flat, np.int64).reshape(-1))
            sd["batch_sizes"] = _make(np.asarray([len(b) for b in rest] if batched else [], np.int64))
            sd["batched"] = batched
        if self.generator is not None:
            sd["generator"] = self.generator.get_state()
        return sd

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._epoch = int(state["epoch"])
        self._base_seed = state.get("base_seed")
        if state.get("generator") is not None and self.generator is not None:
            self.generator.set_state(state["generator"])
        self._batches, self._offset, self._taken, self._resume = None, 0, 0, False
        if not state["in_epoch"]:
            return
        if self._iterable:
            self._taken = int(state["consumed"])
        else:
            flat = [int(i) for i in state["remaining"].numpy()]
            if state.get("batched", True):
                bounds = np.cumsum([0] + [int(n) for n in state["batch_sizes"].numpy()])
                self._batches = [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
            else:
                self._batches = flat
            self._offset = int(state["consumed"])
        self._resume = True

    def reshard_state_dict(self, states: list[dict], rank: int, world_size: int) -> dict[str, Any]:
        """This rank's state when ``states`` (one per saved rank) were written at another world size."""
        mine = dict(states[rank]) if rank < len(states) else dict(states[0], generator=None)
        if self._iterable or not any(s["in_epoch"] for s in states):
            return mine
        rests = [[int(i) for i in s["remaining"].numpy()] if s["in_epoch"] else [] for s in states]
        merged = [r[j] for j in range(max(map(len, rests))) for r in rests if j < len(r)]
        if self.reshard_pad and merged and len(merged) % world_size:
            need = world_size - len(merged) % world_size
            merged += (merged * (need // len(merged) + 1))[:need]
        part = merged[rank::world_size]
        bs = self.batch_size if self.batch_size is not None else 1
        batches = [part[i:i + bs] for i in range(0, len(part), bs)]
        if self.drop_last and batches and len(batches[-1]) < bs:
            batches.pop()
        flat = [i for b in batches for i in b]
        mine.update(in_epoch=True, remaining=_make(np.asarray(flat, np.int64)), batched=self._auto_collation,
                    batch_sizes=_make(np.asarray([len(b) for b in batches], np.int64)))
        return mine

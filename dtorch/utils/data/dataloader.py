"""DataLoader: batches from a dataset, in the main process or in worker processes."""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import queue
import random
import traceback
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...cuda import is_available as cuda_available
from ...random import manual_seed
from ...tensor import Tensor, _make
from ._collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler, _draw_seed

__all__ = ["DataLoader", "get_worker_info"]


@dataclass
class WorkerInfo:
    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """Inside a DataLoader worker: its id, the number of workers, its seed and dataset copy."""
    return _worker_info


class DataLoader:
    """torch.utils.data.DataLoader: batching, shuffling, samplers and worker processes."""

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn: Callable | None = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "") -> None:
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None.")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = 2 if (num_workers > 0 and prefetch_factor is None) else prefetch_factor
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.persistent_workers = persistent_workers
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, "
                                 f"but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                                 f"but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
            if sampler is not None and shuffle:
                raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                             "drop_last")
        if sampler is None and not self._iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = default_collate if batch_size is not None or batch_sampler is not None else default_convert
        self.collate_fn = collate_fn
        self._workers: _WorkerPool | None = None

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None or (self._iterable and self.batch_size is not None)

    def _index_stream(self):
        if self._iterable:
            return None
        return iter(self.batch_sampler) if self.batch_sampler is not None else iter(self.sampler)

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is not None:
                return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self.batch_sampler) if self.batch_sampler is not None else len(self.sampler)

    def __iter__(self):
        batches = self._batches()
        if not self.pin_memory:
            return batches
        if not cuda_available():
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then device pinned "
                          "memory won't be used.", stacklevel=2)
            return batches
        return (_pinned(b) for b in batches)

    def _batches(self):
        if self.persistent_workers and self._workers is not None:
            return self._workers.epoch(self._index_stream(), self)  # torch's _reset: no new base seed
        indices = self._index_stream()
        # torch draws the workers' base seed for every new iterator, with workers or without, so a
        # seeded run takes the same draws from the generator whatever num_workers is
        base_seed = _draw_seed(self.generator)
        if self.num_workers == 0:
            return self._single_process(indices)
        if self._workers is not None:
            self._workers.shutdown()
        self._workers = _WorkerPool(self, base_seed)
        return self._workers.epoch(indices, self)

    def _single_process(self, indices):
        if self._iterable:
            yield from _iterable_batches(iter(self.dataset), self.batch_size, self.drop_last, self.collate_fn)
            return
        for idx in indices:
            if self._auto_collation:
                yield self.collate_fn([self.dataset[i] for i in idx])
            else:
                yield self.collate_fn(self.dataset[idx])

    def __del__(self) -> None:
        if getattr(self, "_workers", None) is not None:
            self._workers.shutdown()


def _pinned(batch):
    """``batch`` with every tensor in page-locked memory (torch's pin_memory thread, done inline)."""
    if isinstance(batch, Tensor):
        return batch.pin_memory()
    if isinstance(batch, dict):
        return {k: _pinned(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_pinned(v) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_pinned(v) for v in batch)
    return batch


def _iterable_batches(it, batch_size, drop_last: bool, collate_fn):
    if batch_size is None:
        for sample in it:
            yield collate_fn(sample)
        return
    while True:
        batch = list(itertools.islice(it, batch_size))
        if not batch or (drop_last and len(batch) < batch_size):
            return
        yield collate_fn(batch)


# ---- worker processes ------------------------------------------------------------------------
def _to_wire(obj):
    """Tensors travel between processes as numpy arrays (dtorch tensors refuse pickling)."""
    if isinstance(obj, Tensor):
        return _WireTensor(obj.detach().cpu()._data)
    if isinstance(obj, dict):
        return {k: _to_wire(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_to_wire(v) for v in obj)
    return obj


def _from_wire(obj):
    if isinstance(obj, _WireTensor):
        return _make(obj.array)
    if isinstance(obj, dict):
        return {k: _from_wire(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_from_wire(v) for v in obj)
    return obj


class _WireTensor:
    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __getstate__(self):
        return self.array

    def __setstate__(self, state) -> None:
        self.array = state


class _WorkerError:
    def __init__(self, worker_id: int, text: str) -> None:
        self.worker_id = worker_id
        self.text = text


_WATCHDOG_S = 5.0  # how often an idle worker checks that the process that started it is alive (torch's too)


def _worker_loop(loader_parts: dict, worker_id: int, num_workers: int, seed: int, index_queue, result_queue) -> None:
    global _worker_info

    dataset = loader_parts["dataset"]
    random.seed(seed)
    manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    try:
        if loader_parts["worker_init_fn"] is not None:
            loader_parts["worker_init_fn"](worker_id)
    except Exception:
        result_queue.put((None, _WorkerError(worker_id, traceback.format_exc())))
        return
    collate = loader_parts["collate_fn"]
    auto = loader_parts["auto_collation"]
    stream = None
    parent = os.getppid()
    while True:
        try:
            task = index_queue.get(timeout=_WATCHDOG_S)
        except queue.Empty:
            if os.getppid() != parent:  # the loader's process died (SIGKILL): nobody will send the stop
                return
            continue
        if task is None:
            return
        send_idx, indices = task
        try:
            if loader_parts["iterable"]:
                if stream is None or indices == "reset":
                    stream = _iterable_batches(iter(dataset), loader_parts["batch_size"], loader_parts["drop_last"],
                                               collate)
                    if indices == "reset":
                        continue
                try:
                    data = next(stream)
                except StopIteration:
                    result_queue.put((send_idx, _Exhausted(worker_id)))
                    continue
            elif auto:
                data = collate([dataset[i] for i in indices])
            else:
                data = collate(dataset[indices])
            result_queue.put((send_idx, _to_wire(data)))
        except Exception:
            result_queue.put((send_idx, _WorkerError(worker_id, traceback.format_exc())))


class _Exhausted:
    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id


class _WorkerPool:
    def __init__(self, loader: DataLoader, base_seed: int) -> None:
        ctx = loader.multiprocessing_context
        if ctx is None or isinstance(ctx, str):
            ctx = mp.get_context(ctx or ("fork" if os.name == "posix" else "spawn"))
        # the pool refers to its loader weakly (an epoch holds it strongly), so a dropped loader is collected
        # at once and its persistent workers stopped then, not at interpreter exit
        self._loader = weakref.ref(loader)
        self.n = loader.num_workers
        self.iterable, self.persistent = loader._iterable, loader.persistent_workers
        self.prefetch_factor, self.timeout = loader.prefetch_factor, loader.timeout
        self.result_queue = ctx.Queue()
        self.index_queues = [ctx.Queue() for _ in range(self.n)]
        parts = {"dataset": loader.dataset, "collate_fn": loader.collate_fn, "worker_init_fn": loader.worker_init_fn,
                 "auto_collation": loader._auto_collation, "iterable": loader._iterable,
                 "batch_size": loader.batch_size, "drop_last": loader.drop_last}
        self.procs = []
        for i in range(self.n):
            p = ctx.Process(target=_worker_loop, args=(parts, i, self.n, base_seed + i, self.index_queues[i],
                                                       self.result_queue), daemon=True)
            p.start()
            self.procs.append(p)
        self.first_epoch = True

    def epoch(self, index_stream, loader: DataLoader):
        if self.iterable:
            yield from self._iterable_epoch()
        else:
            yield from self._map_epoch(index_stream)

    def _receive(self, idx: int, pending: dict):
        """Result ``idx`` (results arrive in any order: earlier arrivals wait in ``pending``)."""
        while idx not in pending:
            got, data = self._get()
            if isinstance(data, _WorkerError):
                self.shutdown()
                raise RuntimeError(f"Caught an exception in DataLoader worker process {data.worker_id}.\n"
                                   f"Original {data.text}")
            pending[got] = data
        return pending.pop(idx)

    def _map_epoch(self, index_stream):
        pending: dict[int, Any] = {}
        send_idx = recv_idx = 0
        limit = self.n * self.prefetch_factor
        for indices in itertools.islice(index_stream, limit):
            self.index_queues[send_idx % self.n].put((send_idx, indices))
            send_idx += 1
        while recv_idx < send_idx:
            data = self._receive(recv_idx, pending)
            recv_idx += 1
            nxt = next(index_stream, None)
            if nxt is not None:
                self.index_queues[send_idx % self.n].put((send_idx, nxt))
                send_idx += 1
            yield _from_wire(data)
        if not self.persistent:
            self.shutdown()

    def _iterable_epoch(self):
        if not self.first_epoch:
            for q in self.index_queues:
                q.put((-1, "reset"))
        self.first_epoch = False
        active = list(range(self.n))
        send_idx = 0
        pending: dict[int, Any] = {}
        order: list[int] = []
        for _ in range(self.prefetch_factor):
            for w in active:
                self.index_queues[w].put((send_idx, None))
                order.append(w)
                send_idx += 1
        recv_idx = 0
        done: set[int] = set()
        while recv_idx < send_idx:
            data = self._receive(recv_idx, pending)
            worker = order[recv_idx]
            recv_idx += 1
            if isinstance(data, _Exhausted):
                done.add(worker)
                continue
            if worker not in done:
                self.index_queues[worker].put((send_idx, None))
                order.append(worker)
                send_idx += 1
            yield _from_wire(data)
        if not self.persistent:
            self.shutdown()

    def _get(self):
        timeout = self.timeout or None
        waited = 0.0
        while True:
            try:
                return self.result_queue.get(timeout=1.0 if timeout is None else min(1.0, timeout))
            except queue.Empty:
                waited += 1.0
                dead = [p for p in self.procs if not p.is_alive()]
                if dead:
                    self.shutdown()
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(str(p.pid) for p in dead)}) "
                                       "exited unexpectedly") from None
                if timeout is not None and waited >= timeout:
                    self.shutdown()
                    raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None

    def shutdown(self) -> None:
        for q, p in zip(self.index_queues, self.procs):
            if p.is_alive():
                try:
                    q.put(None)
                except (OSError, ValueError):
                    pass
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        if self.procs:
            # close the queues here, not at garbage collection, where their feeder threads can find the
            # pipes already closed
            for q in (*self.index_queues, self.result_queue):
                q.cancel_join_thread()
                q.close()
        self.procs = []
        loader = self._loader()
        if loader is not None and loader._workers is self:
            loader._workers = None

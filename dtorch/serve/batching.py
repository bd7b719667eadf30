"""A model version's request queue and how a worker takes a batch from it.

A batch closes when it holds ``batch_size`` requests or ``max_batch_delay`` ms after its first request was
taken. Crashed batches go back to the front (``put_front``), ahead of newer requests.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class Job:
    """One inference request: its fields ``(name, content type, bytes)`` and where its answer goes."""
    fields: list[tuple[str, str, bytes]]
    headers: dict[str, str]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)
    tries: int = 0

    def answer(self, reply: Reply) -> None:
        if not self.future.done():
            self.future.set_result(reply)


class JobQueue:
    """A bounded FIFO that hands a job straight to a waiting worker."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.items: deque[Job] = deque()
        self.waiters: deque[asyncio.Future] = deque()

    def __len__(self) -> int:
        return len(self.items)

    def _hand_over(self, job: Job) -> bool:
        while self.waiters:
            w = self.waiters.popleft()
            if not w.done():
                w.set_result(job)
                return True
        return False

    def put(self, job: Job) -> bool:
        """False when the queue is full (the caller answers 503)."""
        if len(self.items) >= self.maxsize:      # drop the ones already answered (timed out) first
            self.items = deque(j for j in self.items if not j.future.done())
            if len(self.items) >= self.maxsize:
                return False
        if not self._hand_over(job):
            self.items.append(job)
        return True

    def put_front(self, job: Job) -> None:
        if not self._hand_over(job):
            self.items.appendleft(job)

    async def get(self, timeout: float | None = None) -> Job | None:
        """The next live job (None after ``timeout`` seconds)."""
        while self.items:
            job = self.items.popleft()
            if not job.future.done():
                return job
        if timeout is not None and timeout <= 0:
            return None
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await (waiter if timeout is None else asyncio.wait_for(waiter, timeout))
        except asyncio.TimeoutError:
            return None
        except asyncio.CancelledError:      # handed a job, then cancelled before taking it: it goes back
            if waiter.done() and not waiter.cancelled():
                self.put_front(waiter.result())
            raise
        finally:
            if not waiter.done():
                waiter.cancel()

    def fail_all(self, reply: Reply) -> None:
        while self.items:
            self.items.popleft().answer(reply)


async def next_batch(queue: JobQueue, batch_size: int, max_delay_ms: float) -> list[Job]:
    """Wait for one job, then gather up to ``batch_size`` until ``max_delay_ms`` after it."""
    first = await queue.get()
    batch = [first]
    deadline = time.perf_counter() + max_delay_ms / 1000
    try:
        while len(batch) < batch_size:
            job = await queue.get(timeout=deadline - time.perf_counter())
            if job is None:
                break
            batch.append(job)
    except asyncio.CancelledError:          # the worker is stopping: the jobs in hand go back
        for job in reversed(batch):
            queue.put_front(job)
        raise
    return [j for j in batch if not j.future.done()]


def error(status: int, kind: str, message: str) -> Reply:
    """TorchServe's error body: {"code", "type", "message"}."""
    return Reply(status, json.dumps({"code": status, "type": kind, "message": message}).encode())


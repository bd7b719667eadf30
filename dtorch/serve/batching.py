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
from typing import Callable


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class Job:
    """One inference request: its fields ``(name, content type, bytes)`` and where its answer goes.

    ``on_answer`` is called once, with the first reply (the worker's, a timeout's or a refusal's).
    """
    fields: list[tuple[str, str, bytes]]
    headers: dict[str, str]
    on_answer: Callable[[Reply], None]
    enqueued: float = field(default_factory=time.perf_counter)
    tries: int = 0
    done: bool = False

    def answer(self, reply: Reply) -> None:
        if not self.done:
            self.done = True
            self.on_answer(reply)


class JobQueue:
    """A bounded FIFO that hands a job straight to a waiting worker."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.items: deque[Job] = deque()
        self.waiters: deque[asyncio.Future] = deque()
        self.fillers: list[tuple[int, asyncio.Future]] = []

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
            self.items = deque(j for j in self.items if not j.done)
            if len(self.items) >= self.maxsize:
                return False
        if not self._hand_over(job):
            self.items.append(job)
            for n, filler in self.fillers:
                if len(self.items) >= n and not filler.done():
                    filler.set_result(None)
        return True

    def put_front(self, job: Job) -> None:
        if not self._hand_over(job):
            self.items.appendleft(job)

    async def get(self) -> Job:
        """The next live job."""
        while self.items:
            job = self.items.popleft()
            if not job.done:
                return job
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:      # handed a job, then cancelled before taking it: it goes back
            if waiter.done() and not waiter.cancelled():
                self.put_front(waiter.result())
            raise
        finally:
            if not waiter.done():
                waiter.cancel()

    def take(self, n: int) -> list[Job]:
        """Up to ``n`` live jobs that are waiting now."""
        out = []
        while self.items and len(out) < n:
            job = self.items.popleft()
            if not job.done:
                out.append(job)
        return out

    async def fill(self, n: int, timeout: float) -> None:
        """Wait until ``n`` jobs wait (or ``timeout`` seconds): one wakeup per batch, not one per job."""
        if len(self.items) >= n or timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        entry = (n, loop.create_future())
        self.fillers.append(entry)
        timer = loop.call_later(timeout, lambda: entry[1].done() or entry[1].set_result(None))
        try:
            await entry[1]
        finally:
            timer.cancel()
            self.fillers.remove(entry)

    def fail_all(self, reply: Reply) -> None:
        while self.items:
            self.items.popleft().answer(reply)


async def next_batch(queue: JobQueue, batch_size: int, max_delay_ms: float) -> list[Job]:
    """Wait for one job, then gather up to ``batch_size`` until ``max_delay_ms`` after it.

    The worker's task sleeps until the batch is full or the delay is over, then takes the jobs in one go.
    """
    first = await queue.get()
    try:
        await queue.fill(batch_size - 1, max_delay_ms / 1000)
    except asyncio.CancelledError:          # the worker is stopping: the job in hand goes back
        queue.put_front(first)
        raise
    return [j for j in [first, *queue.take(batch_size - 1)] if not j.done]


def error(status: int, kind: str, message: str) -> Reply:
    """TorchServe's error body: {"code", "type", "message"}."""
    return Reply(status, json.dumps({"code": status, "type": kind, "message": message}).encode())


"""Worker processes as the server sees them: start, feed batches, notice a crash or a hang, restart.

Each ``Worker`` is one ``python -m dtorch.serve.worker`` child and one asyncio task that takes batches from its
model version's queue. A batch whose worker dies (kill -9, a segfault, an exception in the handler) or outlives
``response_timeout`` is answered: its jobs go back to the front of the queue once (``retry_on_crash``), then get
a 500 (or 504); the worker is started again with a growing back-off, and the restart is counted.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from typing import Any

from collections import deque

from .batching import Job, JobQueue, Reply, error, next_batch
from .protocol import Frame, FrameParser, ProtocolError, encode

BACKOFF = (0.1, 0.5, 1, 2, 5)
START_TIMEOUT = 120                 # seconds for a worker to import and load its model


class WorkerStartError(Exception):
    """The worker process could not load the model; the message is the worker's reason."""


def _time_out(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


class Child(asyncio.SubprocessProtocol):
    """The server's end of one worker process: the frames on its stdout, its exit.

    Frames are parsed as the pipe delivers them and handed to ``frame()``: one wakeup of the worker's task
    per answer, no task per read.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.parser = FrameParser()
        self.frames: deque[Frame] = deque()
        self.error: ProtocolError | None = None
        self.waiter: asyncio.Future | None = None
        self.exited = loop.create_future()
        self.transport: asyncio.SubprocessTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if self.error is None:
            try:
                self.frames.extend(self.parser.feed(data))
            except ProtocolError as e:
                self.error = e
                self.transport.get_pipe_transport(1).close()
            self._wake()

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1 and self.error is None:
            inside = " in the middle of a frame" if self.parser.pending() else ""
            self.error = ProtocolError(f"the worker process exited{inside}")
        self._wake()

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(self.transport.get_returncode())
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def send(self, data: bytes) -> None:
        self.transport.get_pipe_transport(0).write(data)

    async def frame(self, timeout: float) -> Frame:
        """The next frame (ProtocolError once the process has gone, TimeoutError after ``timeout`` s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.frames:
            if self.error is not None:
                raise self.error
            self.waiter = loop.create_future()
            timer = loop.call_at(deadline, _time_out, self.waiter)
            try:
                await self.waiter
            finally:
                timer.cancel()
                self.waiter = None
        return self.frames.popleft()


class Worker:
    def __init__(self, version: Any, index: int) -> None:
        self.version = version          # registry.ModelVersion
        self.index = index
        self.child: Child | None = None
        self.task: asyncio.Task | None = None
        self.started_at = 0.0
        self.ready = False
        self.stopping = False
        self.busy = False

    @property
    def pid(self) -> int | None:
        return self.child.transport.get_pid() if self.child else None

    def alive(self) -> bool:
        return self.child is not None and not self.child.exited.done()

    async def spawn(self) -> None:
        """Start the process and wait for its ``ready`` (raises WorkerStartError with the worker's reason)."""
        v = self.version
        settings = json.dumps({"batch_size": v.settings["batch_size"], "handler_config": v.handler_config})
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        loop = asyncio.get_running_loop()
        _, self.child = await loop.subprocess_exec(
            lambda: Child(loop), sys.executable, "-m", "dtorch.serve.worker", str(v.model_dir), settings,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None, env=env,
            start_new_session=True)
        try:
            header, _ = await self.child.frame(START_TIMEOUT)
        except (ProtocolError, asyncio.TimeoutError) as e:
            await self.kill()
            why = str(e) or f"no answer within {START_TIMEOUT} s"
            raise WorkerStartError(f"worker for {v.name} did not start: {why}") from None
        if header.get("op") != "ready":
            await self.kill()
            raise WorkerStartError(f"worker for {v.name} could not load the model: {header.get('message')}")
        self.ready, self.started_at = True, time.time()
        child = self.child
        child.exited.add_done_callback(lambda _: self._exited(child))
        v.observed.workers_alive.inc()

    async def kill(self) -> None:
        if self.ready:
            self.ready = False
            self.version.observed.workers_alive.dec()
        if self.child:
            if self.alive():
                with contextlib.suppress(ProcessLookupError):
                    self.child.transport.send_signal(signal.SIGKILL)
                await self.child.exited
            self.child.transport.close()

    async def stop(self) -> None:
        """Finish the batch in hand, then end the process (EOF on its stdin)."""
        self.stopping = True
        if self.task:
            if not self.busy:
                self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.alive():
            self.child.transport.get_pipe_transport(0).close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.child.exited), 5)
        await self.kill()

    def run(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        v = self.version
        failures = 0
        while not self.stopping:
            if not self.ready:
                await asyncio.sleep(BACKOFF[min(failures, len(BACKOFF) - 1)])
                try:
                    await self.spawn()
                except WorkerStartError as e:
                    print(f"dtorch-serve: {e}", file=sys.stderr)
                    failures += 1
                    continue
            batch = await self._take_or_die(v.queue)
            if batch is None:               # the process died while idle
                await self.kill()
                v.observed.restarts.inc()
                failures += 1
                continue
            self.busy = True
            ok = await self._run(batch) if batch else True
            self.busy = False
            if not ok:
                failures += 1
                v.observed.restarts.inc()
            else:
                failures = 0

    def _exited(self, child: Child) -> None:
        """The child ended: if this worker's task is idle in the queue, wake it (it restarts the child)."""
        if child is self.child and self.ready and not self.busy and not self.stopping and self.task:
            self.task.cancel()

    async def _take_or_die(self, queue: JobQueue) -> list[Job] | None:
        """The next batch, or None when the child exits first (killed while idle)."""
        try:
            return await self._take(queue)
        except asyncio.CancelledError:
            if self.stopping or self.alive():
                raise
            task = asyncio.current_task()
            if hasattr(task, "uncancel"):        # Python >= 3.11 counts cancellations
                task.uncancel()
            return None

    async def _take(self, queue: JobQueue) -> list[Job]:
        v = self.version
        batch = await next_batch(queue, v.settings["batch_size"], v.settings["max_batch_delay"])
        if batch:
            now = time.perf_counter()
            for job in batch:
                v.observed.queue_latency.observe(now - job.enqueued)
            v.observed.batch_size.observe(len(batch))
        return batch

    async def _run(self, batch: list[Job]) -> bool:
        """One batch through the worker; False when the worker had to be replaced."""
        v = self.version
        parts, requests = [], []
        for job in batch:
            fields = []
            for name, ctype, data in job.fields:
                fields.append([name, ctype, len(parts)])
                parts.append(data)
            requests.append({"fields": fields, "headers": job.headers})
        t0 = time.perf_counter()
        try:
            self.child.send(encode({"op": "predict", "requests": requests}, parts))
            header, out = await self.child.frame(v.settings["response_timeout"])
            if header.get("op") != "result" or len(header.get("items", ())) != len(batch):
                raise ProtocolError(header.get("message") or f"unexpected answer {header.get('op')!r}")
        except asyncio.TimeoutError:
            await self._replace(batch, error(504, "TimeoutException", f"model {v.name} did not answer within "
                                             f"response_timeout ({v.settings['response_timeout']} s)"), retry=False)
            return False
        except (ProtocolError, ConnectionError, BrokenPipeError) as e:
            await self._replace(batch, error(500, "InternalServerException", f"the worker for model {v.name} "
                                             f"crashed while running this request's batch: {e}"), retry=True)
            return False
        v.observed.inference_latency.observe(time.perf_counter() - t0)
        for job, item in zip(batch, header["items"]):
            if item["status"] == 200:
                job.answer(Reply(200, out[item["part"]], item["content_type"]))
            else:
                job.answer(error(item["status"], "BadRequestException", item.get("message", "bad input")))
        return True

    async def _replace(self, batch: list[Job], reply: Reply, retry: bool) -> None:
        await self.kill()
        for job in reversed(batch):
            if retry and self.version.retry_on_crash and job.tries == 0 and not job.done:
                job.tries += 1
                self.version.queue.put_front(job)
            else:
                job.answer(reply)

"""The inference port's HTTP/1.1: an ``asyncio.Protocol`` per connection on the httptools parser.

Why not Uvicorn here (it still serves management and metrics): per request Uvicorn builds an ASGI scope, a
task and two coroutine sends, and writes the status line and the body in two syscalls; on an echo route that
is 1.2-2x the server CPU of this file, 2-3x with Starlette (bench/serve_load.py ``http_stack``). Here a
request is parsed in the protocol's callbacks, handed to ``handler`` (api.py) with a function that answers
it, and the answer goes out in one write. What a client may rely on: keep-alive (HTTP/1.1, or
``Connection: keep-alive``), requests pipelined on one connection answered in order, chunked request bodies,
``Expect: 100-continue`` (the 100 goes out only after the path, model and declared length are accepted, so a
refusal comes before the upload), ``TCP_NODELAY``, idle connections closed after ``keep_alive`` seconds,
graceful shutdown (stop listening, answer what is in flight, then close).
"""
from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools

from .batching import Reply, error

MAX_HEADER_BYTES = 64 * 1024
MAX_PIPELINED = 32                      # complete requests queued on one connection before reading pauses
REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]                              # lower-case names, the last of repeated ones
    raw_headers: list[tuple[bytes, bytes]]               # lower-case names, as sent
    keep_alive: bool
    target: Any = None                                   # what handler.accept() made of method and path
    body: list[bytes] = field(default_factory=list)
    size: int = 0
    refused: Reply | None = None


def encode_reply(reply: Reply, close: bool) -> bytes:
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n" % (
        reply.status, REASONS.get(reply.status, b"Unknown"), reply.content_type.encode(), len(reply.body))
    if reply.status == 503:
        head += b"retry-after: 1\r\n"
    if close:
        head += b"connection: close\r\n"
    return head + b"\r\n" + reply.body


class Connection(asyncio.Protocol):
    """One client connection: parse, hand each request to the handler, answer in order."""

    def __init__(self, listener: Listener) -> None:
        self.listener, self.handler = listener, listener.handler
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: deque[Request] = deque()           # complete, waiting for the one in flight
        self.in_flight = False
        self.request: Request | None = None
        self.url, self.raw_headers, self.header_bytes = b"", [], 0
        self.discarding = False                          # a refusal went out early: drop the rest, then close
        self.last_active = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.listener.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        self.pending.clear()

    def idle(self) -> bool:
        return not self.in_flight and not self.pending and self.request is None

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse_now(error(400, "BadRequestException", "protocol upgrades are not supported"))
        except httptools.HttpParserError as e:
            self._refuse_now(error(400, "BadRequestException", f"malformed HTTP request: {e}"))

    # httptools callbacks: they must not raise (the parser turns that into an error of its own)
    def on_message_begin(self) -> None:
        self.url, self.raw_headers, self.header_bytes = b"", [], 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name.lower(), value))
        self._count(len(name) + len(value))

    def _count(self, n: int) -> None:
        self.header_bytes += n
        if self.header_bytes > MAX_HEADER_BYTES and not self.discarding:
            self.url, self.raw_headers = b"", []
            self._refuse_now(error(431, "BadRequestException", f"request line and headers over {MAX_HEADER_BYTES} "
                                                               "bytes"))

    def on_headers_complete(self) -> None:
        if self.discarding:
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.raw_headers}
        try:
            path = unquote(httptools.parse_url(self.url).path.decode("latin-1"))
        except httptools.HttpParserInvalidURLError:
            path = ""
        req = self.request = Request(self.parser.get_method().decode("latin-1"), path, headers, self.raw_headers,
                                     self.parser.should_keep_alive())
        req.target, req.refused = self.handler.accept(req)
        body_follows = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        if req.refused is not None:
            if body_follows and self.idle_but_this():
                self._refuse_now(req.refused)
        elif headers.get("expect", "").lower() == "100-continue" and self.idle_but_this():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def idle_but_this(self) -> bool:
        return not self.in_flight and not self.pending

    def on_body(self, chunk: bytes) -> None:
        req = self.request
        if req is None or req.refused is not None:
            return
        req.size += len(chunk)
        if req.size > self.handler.max_body:
            req.refused, req.body = self.handler.too_big(), []
            if self.idle_but_this():
                self._refuse_now(req.refused)
            return
        req.body.append(chunk)

    def on_message_complete(self) -> None:
        req, self.request = self.request, None
        if self.discarding:
            self.transport.close()
            return
        self.pending.append(req)
        if len(self.pending) > MAX_PIPELINED:
            self.transport.pause_reading()
        self._next()

    def _next(self) -> None:
        while not self.in_flight and self.pending and not self.transport.is_closing():
            req = self.pending.popleft()
            if len(self.pending) == MAX_PIPELINED:
                self.transport.resume_reading()
            self.in_flight = True
            if req.refused is not None:
                self._answer(req, req.refused)
            else:
                self.handler.handle(req, lambda reply, req=req: self._answer(req, reply))

    def _answer(self, req: Request, reply: Reply) -> None:
        self.in_flight = False
        if self.transport.is_closing():
            return
        close = not req.keep_alive or self.listener.closing
        self.transport.write(encode_reply(reply, close))
        if close:
            self.transport.close()
        else:
            self._next()

    def _refuse_now(self, reply: Reply) -> None:
        """Answer before the body (or after garbage) and close once the client is done sending."""
        if self.transport.is_closing():
            return
        self.transport.write(encode_reply(reply, close=True))
        self.discarding = True
        if self.request is None or reply.status == 400:
            self.transport.close()


class Listener:
    """The inference port: connections, their idle timeout, graceful close."""

    def __init__(self, handler: Any, keep_alive: float = 30, drain_timeout: float = 30) -> None:
        self.handler = handler
        self.keep_alive, self.drain_timeout = keep_alive, drain_timeout
        self.connections: set[Connection] = set()
        self.closing = False
        self.server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: Connection(self), host, port)

    async def serve(self, stop: asyncio.Event) -> None:
        """Close idle connections until ``stop`` is set, then close gracefully."""
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), min(self.keep_alive, 5))
            now = time.monotonic()
            for conn in list(self.connections):
                if (conn.idle() or conn.discarding) and now - conn.last_active > self.keep_alive:
                    conn.transport.close()
        await self.close()

    async def close(self) -> None:
        self.closing = True
        if self.server is not None:
            self.server.close()
        deadline = time.monotonic() + self.drain_timeout
        while self.connections and time.monotonic() < deadline:
            for conn in list(self.connections):
                if conn.idle():
                    conn.transport.close()
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.transport.abort()


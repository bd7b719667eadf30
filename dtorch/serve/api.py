"""The inference API as a plain ASGI app, and the JSON responses the management API (Starlette) shares.

Inference (:8080): ``/ping``, ``/predictions[/{name}[/{version}]]``. Errors are ``{"code", "type", "message"}``,
never a traceback. The inference path is the hot one: it routes on the path itself and talks ASGI to Uvicorn
directly (Starlette's Request/Response and middleware cost as much per request as the rest of the server);
only a multipart form goes through Starlette's form parser.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable

from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response

from .batching import Job, Reply, error
from .registry import ServeError

SKIP_HEADERS = {"authorization", "cookie"}
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
NOT_FOUND = ServeError(404, "ResourceNotFoundException", "Requested resource is not found, please refer to API "
                                                         "document.")


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(obj, indent=2), status, headers, media_type="application/json")


def error_response(e: ServeError, headers: dict[str, str] | None = None) -> Response:
    reply = error(e.status, e.kind, str(e))
    return Response(reply.body, e.status, headers, media_type="application/json")


def guarded(fn):
    """A route whose ServeError becomes TorchServe's JSON error (other errors: 500 without a traceback)."""
    async def route(request: Request) -> Response:
        try:
            return await fn(request)
        except ServeError as e:
            return error_response(e, {"Retry-After": "1"} if e.status == 503 else None)
    return route


async def respond(send: Send, reply: Reply) -> None:
    headers = [(b"content-type", reply.content_type.encode()), (b"content-length", b"%d" % len(reply.body))]
    if reply.status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


def json_reply(obj: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(obj, indent=2).encode())


def request_headers(scope: dict[str, Any]) -> dict[str, str]:
    """The request's headers as lower-case names (the last of repeated ones), less credentials."""
    out = {}
    for k, v in scope["headers"]:
        name = k.decode("latin-1").lower()
        if name not in SKIP_HEADERS:
            out[name] = v.decode("latin-1")
    return out


def too_big(limit: int) -> ServeError:
    return ServeError(413, "PayloadTooLargeException", f"request body over max_request_size ({limit} bytes)")


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The whole body (chunked or not), refusing with 413 as soon as it passes ``limit`` bytes.

    A declared length over the limit is refused before the first ``receive``, so a client waiting for
    ``100 Continue`` gets the 413 instead and never sends the upload.
    """
    length = headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise too_big(limit)
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ServeError(400, "BadRequestException", "the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_big(limit)
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def form_fields(scope: dict[str, Any], body: bytes, limit: int) -> list[tuple[str, str, bytes]]:
    """A multipart form's fields ``(name, content type, bytes)`` through Starlette's parser."""
    replayed = False

    async def receive() -> dict[str, Any]:
        nonlocal replayed
        if replayed:
            return {"type": "http.disconnect"}
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, receive).form(max_files=1000, max_fields=1000, max_part_size=limit)
    except (MultiPartException, ValueError) as e:
        raise ServeError(400, "BadRequestException", f"malformed multipart form data: {e}") from None
    fields = []
    for name, value in form.multi_items():
        if isinstance(value, str):
            fields.append((name, "text/plain", value.encode()))
        else:
            fields.append((name, value.content_type or "application/octet-stream", await value.read()))
    return fields


def route(method: str, path: str) -> tuple[str, list[str]]:
    """(endpoint, path parameters) for an inference request; ServeError 404/405 when none matches."""
    parts = path.strip("/").split("/") if path != "/" else []
    endpoint = None
    if parts == ["ping"]:
        endpoint, allowed = "ping", ("GET",)
    elif parts == ["predictions"]:
        endpoint, allowed = "list", ("GET",)
    elif len(parts) in (2, 3) and parts[0] == "predictions" and all(parts):
        endpoint, allowed = "predict", ("POST", "PUT")
    if endpoint is None:
        raise NOT_FOUND
    if method not in allowed:
        raise ServeError(405, "MethodNotAllowedException", f"{method} {path}: use {' or '.join(allowed)}")
    return endpoint, parts[1:]


def expire(job: Job, mv: Any) -> None:
    timeout = mv.settings["response_timeout"]
    job.answer(error(504, "TimeoutException", f"model {mv.name}: no answer within response_timeout ({timeout} s)"))


def inference_app(server: Any) -> Callable[[dict, Receive, Send], Awaitable[None]]:
    reg, cfg = server.registry, server.cfg
    limit = cfg["max_request_size"]

    def ping() -> Reply:
        healthy = all(mv.alive() or mv.settings["min_workers"] == 0
                      for versions in reg.models.values() for mv in versions.values())
        return json_reply({"status": "Healthy" if healthy else "Unhealthy"}, 200 if healthy else 500)

    async def predict(scope: dict[str, Any], receive: Receive, name: str, version: str | None) -> Reply:
        t0 = time.perf_counter()
        mv = reg.get(name, version)
        headers = request_headers(scope)
        body = await read_body(receive, headers, limit)
        ctype = headers.get("content-type", "application/octet-stream")
        fields = await form_fields(scope, body, limit) if ctype.startswith("multipart/form-data") \
            else [("body", ctype, body)]
        loop = asyncio.get_running_loop()
        job = Job(fields, headers, loop.create_future())
        if not mv.workers:
            reply = error(503, "ServiceUnavailableException", f"model {mv.name} has no workers (scale it up)")
        elif not mv.queue.put(job):
            reply = error(503, "ServiceUnavailableException", f"model {mv.name}: job queue full "
                                                              f"({cfg['job_queue_size']})")
        else:
            timer = loop.call_later(mv.settings["response_timeout"], expire, job, mv)
            reply = await job.future
            timer.cancel()
        mv.observed.answered(reply.status)
        mv.observed.latency.observe(time.perf_counter() - t0)
        return reply

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            endpoint, params = route(scope["method"], scope["path"])
            if endpoint == "predict":
                reply = await predict(scope, receive, *params, *[None] * (2 - len(params)))
            elif endpoint == "ping":
                reply = ping()
            else:
                reply = json_reply({"models": [{"modelName": n, "modelVersion": reg.defaults[n]}
                                               for n in reg.models]})
        except ServeError as e:
            reply = error(e.status, e.kind, str(e))
        await respond(send, reply)
    return app

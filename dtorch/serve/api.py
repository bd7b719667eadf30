"""The inference API on ``http.py``'s connections, and the JSON responses the management API (Starlette) shares.

Inference (:8080): ``/ping``, ``/predictions[/{name}[/{version}]]``. Errors are ``{"code", "type", "message"}``,
never a traceback. The inference path is the hot one: routes are matched on the path itself, a request becomes
a ``Job`` whose answer is written straight to its connection (no task or future per request); only a multipart
form goes through Starlette's form parser.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable

from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response

from .batching import Job, Reply, error
from .http import Request as HttpRequest
from .registry import ServeError

SKIP_HEADERS = {"authorization", "cookie"}
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


def json_reply(obj: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(obj, indent=2).encode())


def too_big(limit: int) -> ServeError:
    return ServeError(413, "PayloadTooLargeException", f"request body over max_request_size ({limit} bytes)")


async def form_fields(raw_headers: list[tuple[bytes, bytes]], body: bytes,
                      limit: int) -> list[tuple[str, str, bytes]]:
    """A multipart form's fields ``(name, content type, bytes)`` through Starlette's parser."""
    replayed = False

    async def receive() -> dict[str, Any]:
        nonlocal replayed
        if replayed:
            return {"type": "http.disconnect"}
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": raw_headers}
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


class InferenceAPI:
    """What ``http.Connection`` calls: ``accept`` when a request's head is in, ``handle`` when its body is."""

    def __init__(self, server: Any) -> None:
        self.reg, self.cfg = server.registry, server.cfg
        self.max_body = self.cfg["max_request_size"]

    def too_big(self) -> Reply:
        e = too_big(self.max_body)
        return error(e.status, e.kind, str(e))

    def accept(self, req: HttpRequest) -> tuple[Any, Reply | None]:
        """(the route and model version, None), or (None, the refusal) before the body is read."""
        try:
            endpoint, params = route(req.method, req.path)
            if endpoint != "predict":
                return (endpoint, None), None
            length = req.headers.get("content-length")
            if length and length.isdigit() and int(length) > self.max_body:
                return None, self.too_big()
            return (endpoint, self.reg.get(*params)), None
        except ServeError as e:
            return None, error(e.status, e.kind, str(e))

    def handle(self, req: HttpRequest, answer: Callable[[Reply], None]) -> None:
        endpoint, mv = req.target
        if endpoint == "ping":
            answer(self.ping())
        elif endpoint == "list":
            reg = self.reg
            answer(json_reply({"models": [{"modelName": n, "modelVersion": reg.defaults[n]} for n in reg.models]}))
        else:
            body = req.body[0] if len(req.body) == 1 else b"".join(req.body)
            headers = {k: v for k, v in req.headers.items() if k not in SKIP_HEADERS}
            ctype = req.headers.get("content-type", "application/octet-stream")
            if ctype.startswith("multipart/form-data"):
                asyncio.ensure_future(self._multipart(mv, req, body, headers, answer))
            else:
                self.predict(mv, [("body", ctype, body)], headers, answer)

    def ping(self) -> Reply:
        healthy = all(mv.alive() or mv.settings["min_workers"] == 0
                      for versions in self.reg.models.values() for mv in versions.values())
        return json_reply({"status": "Healthy" if healthy else "Unhealthy"}, 200 if healthy else 500)

    async def _multipart(self, mv: Any, req: HttpRequest, body: bytes, headers: dict[str, str],
                         answer: Callable[[Reply], None]) -> None:
        try:
            fields = await form_fields(req.raw_headers, body, self.max_body)
        except ServeError as e:
            answer(error(e.status, e.kind, str(e)))
            return
        except Exception as e:  # noqa: BLE001 - whatever the form parser trips on, the request is answered
            answer(error(400, "BadRequestException", f"malformed multipart form data: {type(e).__name__}: {e}"))
            return
        self.predict(mv, fields, headers, answer)

    def predict(self, mv: Any, fields: list[tuple[str, str, bytes]], headers: dict[str, str],
                answer: Callable[[Reply], None]) -> None:
        """Queue one request; ``answer`` is called once with its reply (from the worker's batch, or a refusal)."""
        t0 = time.perf_counter()
        timer = None

        def done(reply: Reply) -> None:
            if timer is not None:
                timer.cancel()
            mv.observed.answered(reply.status)
            mv.observed.latency.observe(time.perf_counter() - t0)
            answer(reply)

        job = Job(fields, headers, done)
        if not mv.workers:
            job.answer(error(503, "ServiceUnavailableException", f"model {mv.name} has no workers (scale it up)"))
        elif not mv.queue.put(job):
            job.answer(error(503, "ServiceUnavailableException", f"model {mv.name}: job queue full "
                                                                 f"({self.cfg['job_queue_size']})"))
        else:
            timer = asyncio.get_running_loop().call_later(mv.settings["response_timeout"], expire, job, mv)

"""The three HTTP APIs as Starlette apps, with TorchServe's paths, status codes and JSON error bodies.

Inference (:8080): ``/ping``, ``/predictions[/{name}[/{version}]]``. Management (:8081, token by default):
``/models``... Metrics (:8082): ``/metrics``. Errors are ``{"code", "type", "message"}``, never a traceback.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .batching import Job, error
from .registry import ServeError

SKIP_HEADERS = {"authorization", "cookie"}


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


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body (chunked or not), refusing with 413 as soon as it passes ``limit`` bytes."""
    too_big = ServeError(413, "PayloadTooLargeException", f"request body over max_request_size ({limit} bytes)")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def request_fields(request: Request, limit: int) -> list[tuple[str, str, bytes]]:
    body = await read_body(request, limit)
    ctype = request.headers.get("content-type", "application/octet-stream")
    if not ctype.startswith("multipart/form-data"):
        return [("body", ctype, body)]
    replayed = False

    async def receive() -> dict[str, Any]:
        nonlocal replayed
        if replayed:
            return {"type": "http.disconnect"}
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, receive).form(max_files=1000, max_fields=1000, max_part_size=limit)
    except (MultiPartException, ValueError) as e:
        raise ServeError(400, "BadRequestException", f"malformed multipart form data: {e}") from None
    fields = []
    for name, value in form.multi_items():
        if isinstance(value, str):
            fields.append((name, "text/plain", value.encode()))
        else:
            fields.append((name, value.content_type or "application/octet-stream", await value.read()))
    return fields


def inference_app(server: Any) -> Starlette:
    reg, metrics, cfg = server.registry, server.metrics, server.cfg

    async def ping(request: Request) -> Response:
        healthy = all(mv.alive() or mv.settings["min_workers"] == 0
                      for versions in reg.models.values() for mv in versions.values())
        return json_response({"status": "Healthy" if healthy else "Unhealthy"}, 200 if healthy else 500)

    async def list_models(request: Request) -> Response:
        return json_response({"models": [{"modelName": n, "modelVersion": reg.defaults[n]} for n in reg.models]})

    @guarded
    async def predict(request: Request) -> Response:
        t0 = time.perf_counter()
        mv = reg.get(request.path_params["name"], request.path_params.get("version"))
        fields = await request_fields(request, cfg["max_request_size"])
        headers = {k: v for k, v in request.headers.items() if k not in SKIP_HEADERS}
        job = Job(fields, headers, asyncio.get_running_loop().create_future())
        if not mv.workers:
            reply = error(503, "ServiceUnavailableException", f"model {mv.name} has no workers (scale it up)")
        elif not mv.queue.put(job):
            reply = error(503, "ServiceUnavailableException", f"model {mv.name}: job queue full "
                                                              f"({cfg['job_queue_size']})")
        else:
            timeout = mv.settings["response_timeout"]
            timer = asyncio.get_running_loop().call_later(timeout, job.answer, error(
                504, "TimeoutException", f"model {mv.name}: no answer within response_timeout ({timeout} s)"))
            reply = await job.future
            timer.cancel()
        metrics.requests.labels(mv.name, mv.version, str(reply.status)).inc()
        metrics.latency.labels(mv.name, mv.version).observe(time.perf_counter() - t0)
        extra = {"Retry-After": "1"} if reply.status == 503 else None
        return Response(reply.body, reply.status, extra, media_type=reply.content_type)

    methods = ["POST", "PUT"]
    return Starlette(routes=[
        Route("/ping", ping, methods=["GET"]), Route("/predictions", list_models, methods=["GET"]),
        Route("/predictions/{name}", predict, methods=methods),
        Route("/predictions/{name}/{version}", predict, methods=methods)])

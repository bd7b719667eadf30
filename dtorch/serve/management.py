"""The management API (TorchServe's paths) and the metrics API.

Every management request must carry ``Authorization: Bearer <token>`` unless token auth is turned off; the
token is made at start and written to a file only its user can read.
"""
from __future__ import annotations

import hmac
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import error_response, guarded, json_response
from .registry import ServeError
from .workers import WorkerStartError

INT_PARAMS = ("batch_size", "initial_workers", "min_worker", "max_worker")
NUM_PARAMS = ("max_batch_delay", "response_timeout")


def _params(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in request.query_params.items():
        try:
            out[key] = int(value) if key in INT_PARAMS else float(value) if key in NUM_PARAMS else value
        except ValueError:
            raise ServeError(400, "BadRequestException", f"query parameter {key}={value!r}: expected a "
                                                         f"{'whole ' if key in INT_PARAMS else ''}number") from None
    return out


def _authorized(request: Request, token: str) -> bool:
    given = request.headers.get("authorization", "")
    return given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode())


def management_app(server: Any) -> Starlette:
    reg = server.registry

    @guarded
    async def models(request: Request) -> Response:
        if request.method == "GET":
            return json_response({"models": [{"modelName": n, "modelUrl": reg.get(n).url} for n in reg.models]})
        p = _params(request)
        if "url" not in p:
            raise ServeError(400, "BadRequestException", "Parameter url is required.")
        overrides = {"batch_size": p.get("batch_size"), "max_batch_delay": p.get("max_batch_delay"),
                     "response_timeout": p.get("response_timeout")}
        mv = await reg.register(p["url"], p.get("model_name"), overrides, p.get("initial_workers"))
        return json_response({"status": f'Model "{mv.name}" Version: {mv.version} registered with '
                                        f"{len(mv.workers)} initial workers"})

    @guarded
    async def model(request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params.get("version")
        if request.method == "GET":
            if version == "all":
                reg.get(name)
                return json_response([mv.describe() for mv in reg.models[name].values()])
            return json_response([reg.get(name, version).describe()])
        if request.method == "DELETE":
            mv = reg.get(name, version)
            await reg.unregister(name, version)
            what = f"version {version}" if version else "all versions"
            return json_response({"status": f'Model "{name}" unregistered ({what}, last default {mv.version})'})
        return await _scale(reg, reg.get(name, version), _params(request))

    @guarded
    async def set_default(request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params["version"]
        reg.set_default(name, version)
        return json_response({"status": f"Default version successfully updated for model \"{name}\" to "
                                        f"\"{version}\""})

    return guard_token(Starlette(routes=[
        Route("/models", models, methods=["GET", "POST"]),
        Route("/models/{name}", model, methods=["GET", "PUT", "DELETE"]),
        Route("/models/{name}/{version}", model, methods=["GET", "PUT", "DELETE"]),
        Route("/models/{name}/{version}/set-default", set_default, methods=["PUT"])]), server)


async def _scale(reg: Any, mv: Any, p: dict[str, Any]) -> Response:
    lo = p.get("min_worker", mv.settings["min_workers"])
    hi = p.get("max_worker", max(mv.settings["max_workers"], lo))
    if lo < 0 or hi < 1 or hi < lo:
        raise ServeError(400, "BadRequestException", f"min_worker={lo}, max_worker={hi}: need 0 <= min_worker <= "
                                                     "max_worker and max_worker >= 1")
    async with reg.lock:
        mv.settings.update(min_workers=lo, max_workers=hi)
        try:
            await mv.scale(lo)
        except WorkerStartError as e:
            raise ServeError(500, "InternalServerException", str(e)) from None
    return json_response({"status": f"Workers scaled to {lo} for model: {mv.name}, version: {mv.version}"})


def guard_token(app: Starlette, server: Any) -> Any:
    """Wrap ``app`` so requests without the management token get 401."""
    async def asgi(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and server.token is not None and not _authorized(Request(scope), server.token):
            e = ServeError(401, "UnauthorizedException", "missing or wrong management token (send 'Authorization: "
                                                         f"Bearer <token>', the token is in {server.token_file})")
            await error_response(e, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        await app(scope, receive, send)
    return asgi


def metrics_app(server: Any) -> Starlette:
    async def metrics(request: Request) -> Response:
        body, ctype = server.metrics.exposition()
        return Response(body, 200, media_type=ctype)
    return Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])

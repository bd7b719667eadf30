"""One dtorch-serve process: the registry, the three listeners on one event loop, the token, shutdown.

Inference is ``http.py``'s listener; management and metrics are Starlette apps on Uvicorn. SIGTERM/SIGINT stop
the listeners, let in-flight requests finish (graceful shutdown), then stop the workers. The management token
is written to ``STATE_DIR/token`` (mode 0600) and printed.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import uvicorn

from .api import InferenceAPI
from .config import split_address
from .http import Listener
from .management import management_app, metrics_app
from .metrics import Metrics
from .registry import Registry, ServeError


class _Server(uvicorn.Server):
    """Uvicorn's server without its own signal handling (three share one loop; Serve handles the signals)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only this user can read (created 0600, never through a wider mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class Serve:
    def __init__(self, cfg: dict[str, Any], store: Path) -> None:
        self.cfg = cfg
        self.state_dir = Path(cfg["state_dir"]).expanduser()
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.metrics = Metrics()
        self.registry = Registry(cfg, store, self.metrics, self.state_dir / f"models-{os.getpid()}")
        self.token_file = self.state_dir / "token"
        self.token = secrets.token_urlsafe(32) if cfg["token_auth"] else None
        self.servers: list[_Server] = []
        self.listener = Listener(InferenceAPI(self))
        self.inference_started = False
        self.stopping: asyncio.Event | None = None

    def _uvicorn(self, app: Any, address: str) -> _Server:
        host, port = split_address(address)
        return _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                      http="httptools", lifespan="off", proxy_headers=False,
                                      timeout_graceful_shutdown=30,
                                      timeout_keep_alive=30))

    async def _serve(self, server: _Server) -> None:
        try:
            await server.serve()
        except SystemExit:               # Uvicorn exits when it cannot bind; stop the other two
            self.stop()

    def stop(self) -> None:
        for s in self.servers:
            s.should_exit = True
        if self.stopping is not None:
            self.stopping.set()

    async def _serve_inference(self) -> None:
        address = self.cfg["inference_address"]
        try:
            await self.listener.start(*split_address(address))
        except OSError as e:
            print(f"dtorch-serve: error: inference_address {address}: {e}", file=sys.stderr)
            self.stop()
            return
        self.inference_started = True
        await self.listener.serve(self.stopping)

    async def run(self, models: list[tuple[str | None, str]]) -> int:
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        try:
            for name, url in models:
                mv = await self.registry.register(url, name)
                print(f"dtorch-serve: model {mv.name} version {mv.version}: {len(mv.workers)} workers", flush=True)
        except ServeError as e:
            print(f"dtorch-serve: error: {e}", file=sys.stderr)
            await self.registry.close()
            return 1
        cfg = self.cfg
        self.servers = [self._uvicorn(management_app(self), cfg["management_address"]),
                        self._uvicorn(metrics_app(self), cfg["metrics_address"])]
        if self.token:
            write_private(self.token_file, self.token + "\n")
            print(f"dtorch-serve: management token (also in {self.token_file}): {self.token}", flush=True)
        state = {"pid": os.getpid(), "token_file": str(self.token_file) if self.token else None,
                 **{k: cfg[k] for k in ("inference_address", "management_address", "metrics_address")}}
        write_private(self.state_dir / "serve.json", json.dumps(state))
        try:
            await asyncio.gather(self._serve_inference(), *(self._serve(s) for s in self.servers))
        finally:
            await self.registry.close()
            with contextlib.suppress(OSError):
                (self.state_dir / "serve.json").unlink()
            with contextlib.suppress(OSError):
                self.registry.extract_root.rmdir()
        return 0 if self.inference_started and all(s.started for s in self.servers) else 1

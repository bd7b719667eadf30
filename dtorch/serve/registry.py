"""The models being served: versions, their settings, queues and workers; register, scale, unregister.

A ``url`` is the name of a ``.mar`` directly inside the model store; nothing is ever fetched and no path
leaves the store (TorchServe's remote-URL registration was the way in for CVE-2023-43654).
"""
from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from dtorch.launcher.errors import ConfigError

from .batching import JobQueue, error
from .config import archive_model_config, model_settings
from .mar import ArchiveError, extract
from .metrics import Metrics, VersionMetrics
from .workers import Worker, WorkerStartError


class ServeError(Exception):
    """A management or inference request that cannot be done: HTTP status, TorchServe's type, message."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


def not_found(name: str, version: str | None = None) -> ServeError:
    what = f"Model not found: {name}" + (f", version {version}" if version else "")
    return ServeError(404, "ModelNotFoundException", what)


class ModelVersion:
    def __init__(self, name: str, version: str, url: str, model_dir: Path, manifest: dict, settings: dict,
                 handler_config: dict, server: Any) -> None:
        self.name, self.version, self.url = name, version, url
        self.model_dir, self.manifest = model_dir, manifest
        self.settings, self.handler_config = settings, handler_config
        self.metrics: Metrics = server.metrics
        self.observed = VersionMetrics(server.metrics, name, version)
        self.retry_on_crash: bool = server.cfg["retry_on_crash"]
        self.queue = JobQueue(server.cfg["job_queue_size"])
        self.workers: list[Worker] = []
        self._next_index = 0

    def alive(self) -> int:
        return sum(w.ready for w in self.workers)

    async def scale(self, n: int) -> None:
        """Start or stop workers until there are ``n`` (new ones are ready when this returns)."""
        while len(self.workers) > n:
            await self.workers.pop().stop()
        new = []
        while len(self.workers) + len(new) < n:
            new.append(Worker(self, self._next_index))
            self._next_index += 1
        try:
            await asyncio.gather(*(w.spawn() for w in new))
        except WorkerStartError:
            await asyncio.gather(*(w.kill() for w in new))
            raise
        for w in new:
            w.run()
        self.workers += new

    async def close(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))
        self.workers = []
        self.queue.fail_all(error(503, "ServiceUnavailableException", f"model {self.name} was unregistered"))
        self.metrics.remove(self.name, self.version)
        shutil.rmtree(self.model_dir.parent, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {"modelName": self.name, "modelVersion": self.version, "modelUrl": self.url,
                "runtime": self.manifest.get("runtime", "python"), "minWorkers": s["min_workers"],
                "maxWorkers": s["max_workers"], "batchSize": s["batch_size"], "maxBatchDelay": s["max_batch_delay"],
                "responseTimeout": s["response_timeout"], "handler": self.manifest["model"]["handler"],
                "queueLength": len(self.queue),
                "workers": [{"id": str(w.index), "pid": w.pid, "status": "READY" if w.ready else "UNLOADING",
                             "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(w.started_at))}
                            for w in self.workers]}


class Registry:
    def __init__(self, cfg: dict[str, Any], store: Path, metrics: Metrics, extract_root: Path) -> None:
        self.cfg, self.store, self.metrics = cfg, store.resolve(), metrics
        self.extract_root = extract_root
        self.models: dict[str, dict[str, ModelVersion]] = {}
        self.defaults: dict[str, str] = {}
        self.lock = asyncio.Lock()

    def resolve_url(self, url: str) -> Path:
        """The .mar a ``url`` names, which must be a file directly inside the model store."""
        if "://" in url or url.startswith(("/", "~")) or "\\" in url or "/" in url.strip("/") or ".." in url:
            raise ServeError(400, "BadRequestException", f"url {url!r}: only the name of a .mar file in the "
                                                         "model store is accepted (no URLs, no paths)")
        path = (self.store / url).resolve()
        if path.parent != self.store or path.suffix != ".mar":
            raise ServeError(400, "BadRequestException", f"url {url!r}: not a .mar file in the model store")
        if not path.is_file():
            raise ServeError(404, "ModelNotFoundException", f"Model archive not found in the model store: {url}")
        return path

    def get(self, name: str, version: str | None = None) -> ModelVersion:
        versions = self.models.get(name)
        if not versions:
            raise not_found(name)
        version = version or self.defaults[name]
        if version not in versions:
            raise not_found(name, version)
        return versions[version]

    async def register(self, url: str, name: str | None = None, overrides: dict[str, Any] | None = None,
                       workers: int | None = None) -> ModelVersion:
        path = self.resolve_url(url)
        async with self.lock:
            mv = await self._load(path, url, name, overrides or {})
            try:
                await mv.scale(mv.settings["min_workers"] if workers is None else workers)
            except WorkerStartError as e:
                await mv.close()
                raise ServeError(400, "ModelLoadException", str(e)) from None
            self.models.setdefault(mv.name, {})[mv.version] = mv
            self.defaults.setdefault(mv.name, mv.version)
            mv.observed.workers_alive.inc(0)
            mv.observed.restarts.inc(0)
            return mv

    async def _load(self, path: Path, url: str, name: str | None, overrides: dict[str, Any]) -> ModelVersion:
        self.extract_root.mkdir(parents=True, exist_ok=True)
        model_dir = Path(tempfile.mkdtemp(prefix=path.stem + "-", dir=self.extract_root)) / "model"
        try:
            manifest = await asyncio.to_thread(extract, path, model_dir, max_bytes=self.cfg["max_archive_size"],
                                               allow_custom_handlers=self.cfg["allow_custom_handlers"])
            spec = manifest["model"]
            name = name or spec["modelName"]
            version = str(spec.get("modelVersion") or "1.0")
            if version in self.models.get(name, {}):
                raise ServeError(409, "ConflictStatusException", f"Model version {version} is already registered "
                                                                 f"for model {name}")
            archive, handler_cfg = {}, {}
            if spec.get("configFile"):
                text = (model_dir / spec["configFile"]).read_text()
                archive, handler_cfg = archive_model_config(text, f"{url}:{spec['configFile']}")
            settings = model_settings(self.cfg, name, archive, overrides)
        except (ArchiveError, ConfigError, UnicodeDecodeError) as e:
            shutil.rmtree(model_dir.parent, ignore_errors=True)
            raise ServeError(400, "BadRequestException", str(e)) from None
        except ServeError:
            shutil.rmtree(model_dir.parent, ignore_errors=True)
            raise
        return ModelVersion(name, version, url, model_dir, manifest, settings, handler_cfg, self)

    async def unregister(self, name: str, version: str | None = None) -> None:
        async with self.lock:
            versions = self.models.get(name)
            if not versions or (version and version not in versions):
                raise not_found(name, version)
            for v in [version] if version else list(versions):
                await versions.pop(v).close()
            if not versions:
                del self.models[name], self.defaults[name]
            elif self.defaults[name] not in versions:
                self.defaults[name] = next(iter(versions))

    def set_default(self, name: str, version: str) -> None:
        self.get(name, version)
        self.defaults[name] = version

    async def close(self) -> None:
        for name in list(self.models):
            await self.unregister(name)

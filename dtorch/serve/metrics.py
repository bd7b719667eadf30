"""The server's Prometheus metrics (prometheus_client, in a registry of their own)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30, 60, 120)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r, mv = self.registry, ("model", "version")
        self.requests = Counter("dtorch_serve_requests", "Inference requests answered, by HTTP status",
                                ("model", "version", "status"), registry=r)
        self.latency = Histogram("dtorch_serve_request_latency_seconds", "Request received to response ready",
                                 mv, buckets=LATENCY_BUCKETS, registry=r)
        self.queue_latency = Histogram("dtorch_serve_queue_latency_seconds", "Time a request waited for a batch",
                                       mv, buckets=LATENCY_BUCKETS, registry=r)
        self.inference_latency = Histogram("dtorch_serve_inference_latency_seconds",
                                           "One batch in the worker: send, handle, answer", mv,
                                           buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("dtorch_serve_batch_size", "Requests per forward", mv, buckets=BATCH_BUCKETS,
                                    registry=r)
        self.workers_alive = Gauge("dtorch_serve_workers_alive", "Worker processes ready", mv, registry=r)
        self.restarts = Counter("dtorch_serve_worker_restarts", "Workers restarted after a crash or timeout", mv,
                                registry=r)

    def remove(self, model: str, version: str) -> None:
        """Forget a model version's gauge (counters stay: they only go up)."""
        try:
            self.workers_alive.remove(model, version)
        except KeyError:
            pass

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class VersionMetrics:
    """One model version's labelled series, looked up once (``labels()`` costs a lock and a dict per call)."""

    def __init__(self, metrics: Metrics, model: str, version: str) -> None:
        mv = (model, version)
        self._requests, self._by_status = metrics.requests, {}
        self.mv = mv
        self.latency = metrics.latency.labels(*mv)
        self.queue_latency = metrics.queue_latency.labels(*mv)
        self.inference_latency = metrics.inference_latency.labels(*mv)
        self.batch_size = metrics.batch_size.labels(*mv)
        self.workers_alive = metrics.workers_alive.labels(*mv)
        self.restarts = metrics.restarts.labels(*mv)

    def answered(self, status: int) -> None:
        counter = self._by_status.get(status)
        if counter is None:
            counter = self._by_status[status] = self._requests.labels(*self.mv, str(status))
        counter.inc()

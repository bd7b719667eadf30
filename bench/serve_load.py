"""dtorch-serve under closed-loop load: the digits MLP and nanoGPT-mini behind the server, 1/8/64 clients,
batching on and off.

    python bench/serve_load.py [--seconds 3]

Prints one JSON line: per model and setting (``batch1``: batch_size 1; ``batch64``: batch_size 64,
max_batch_delay 2 ms) and client count, requests/s, p50/p99 latency in ms, ``mean_batch`` (requests per
forward, from the server's /metrics) and ``client_cpu`` (the load generator's CPU time over wall time); per
model ``batching_speedup_64`` (throughput with batching over without, 64 clients), ``forward_ms`` (the model's
forward on one input, in process) and ``overhead_ms_1`` (p50 at 1 client without batching minus that
forward); ``load_avg`` (the 1-minute load average before and after: other jobs on the machine skew every
figure); ``http_stack`` (the choice measured: keep-alive POSTs of 3 KB against an echo route on stdlib
ThreadingHTTPServer, Starlette on Uvicorn, a plain ASGI app on Uvicorn, and dtorch-serve's own inference
listener ``dtorch/serve/http.py``; 1 and 64 clients, and the server process's CPU time per request at 64).

Clients are asyncio connections in this process (keep-alive, hand-written HTTP/1.1, one protocol object per
connection, no coroutine per request), the same for both settings; they share the machine's cores with the
server and its worker. One client process is enough: its ``client_cpu`` stays well under one core at 64
clients, and more client processes would only take cores from the server and worker on a 2-core machine.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import dtorch
from dtorch.serve.archiver import main as archive
from dtorch.serve.digits_model import DigitsMLP

MODEL_FILE = Path(__file__).resolve().parent.parent / "dtorch" / "serve" / "digits_model.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Client(asyncio.Protocol):
    """One keep-alive connection in a closed loop: send, read the whole answer, send again until ``until``.

    A protocol rather than streams: no coroutine or future per request, so the load generator costs the
    shared cores as little as it can.
    """

    def __init__(self, request: bytes, until: float, lat: list[float], done: asyncio.Future) -> None:
        self.request, self.until, self.lat, self.done = request, until, lat, done
        self.buf, self.need, self.t0 = b"", -1, 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send()

    def _send(self) -> None:
        self.t0 = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            if not head.startswith(b"http/1.1 200"):
                self._finish(RuntimeError(f"{self.buf[:300]!r}"))
                return
            self.need = end + 4 + int(head.split(b"content-length:")[1].split(b"\r\n")[0])
        if len(self.buf) < self.need:
            return
        now = time.perf_counter()
        self.lat.append(now - self.t0)
        self.buf, self.need = self.buf[self.need:], -1
        if now < self.until:
            self._send()
        else:
            self._finish(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc or RuntimeError("the server closed the connection"))

    def _finish(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc) if exc else self.done.set_result(None)
        self.transport.close()


def closed_loop(port: int, path: str, body: bytes, clients: int, seconds: float) -> dict:
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def run() -> list[float]:
        loop, lat = asyncio.get_running_loop(), []
        until = time.perf_counter() + seconds
        done = [loop.create_future() for _ in range(clients)]
        for d in done:
            await loop.create_connection(lambda d=d: _Client(request, until, lat, d), "127.0.0.1", port)
        await asyncio.gather(*done)
        return lat
    t0, cpu0 = time.perf_counter(), time.process_time()
    lat = asyncio.run(run())
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1e3
    return {"rps": round(len(lat) / wall, 1), "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "client_cpu": round((time.process_time() - cpu0) / wall, 2)}


def batch_counts(metrics_port: int, name: str) -> tuple[float, float]:
    """(requests, forwards) the server has batched for ``name`` so far, from its /metrics."""
    with socket.create_connection(("127.0.0.1", metrics_port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        text = b"".join(iter(lambda: s.recv(65536), b"")).decode()
    found = {}
    for line in text.splitlines():
        for key in ("sum", "count"):
            if line.startswith(f"dtorch_serve_batch_size_{key}{{") and f'model="{name}"' in line:
                found[key] = float(line.rsplit(" ", 1)[1])
    return found.get("sum", 0.0), found.get("count", 0.0)


def start_server(store: Path, tmp: Path, name: str, batch_size: int,
                 delay_ms: float) -> tuple[subprocess.Popen, int, int]:
    """The server process, its inference port and its metrics port."""
    port, metrics_port = free_port(), free_port()
    cfg = tmp / f"config-{name}-{batch_size}.yaml"
    cfg.write_text(f"inference_address: 127.0.0.1:{port}\nmanagement_address: 127.0.0.1:{free_port()}\n"
                   f"metrics_address: 127.0.0.1:{metrics_port}\nstate_dir: {tmp}/state-{name}-{batch_size}\n"
                   f"job_queue_size: 1000\ndefault:\n  batch_size: {batch_size}\n  max_batch_delay: {delay_ms}\n")
    proc = subprocess.Popen([sys.executable, "-m", "dtorch.serve.cli", "--start", "--foreground", "--model-store",
                             str(store), "--models", f"{name}.mar", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port, metrics_port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def forward_ms(model: object, x: np.ndarray, n: int = 500) -> float:
    t = dtorch.from_numpy(x[None])
    times = []
    with dtorch.no_grad(), threadpool_limits(1):           # as in the workers (OMP_NUM_THREADS=1)
        for _ in range(n):
            t0 = time.perf_counter()
            model(t).numpy()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


STDLIB = r'''
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version, disable_nagle_algorithm = "HTTP/1.1", True
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        out = b'{"n": %d}' % len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a): pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''
RAW_ASGI = r'''
import sys, uvicorn
async def app(scope, receive, send):
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    out = b'{"n": %d}' % len(body)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]})
    await send({"type": "http.response.body", "body": out})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, http="httptools",
            lifespan="off", proxy_headers=False)
'''
OWN = r'''
import asyncio, sys
from dtorch.serve.batching import Reply
from dtorch.serve.http import Listener
class Echo:
    max_body = 1 << 20
    def accept(self, req):
        return None, None
    def handle(self, req, answer):
        answer(Reply(200, b'{"n": %d}' % sum(map(len, req.body))))
async def main():
    listener = Listener(Echo())
    await listener.start("127.0.0.1", int(sys.argv[1]))
    await listener.serve(asyncio.Event())
asyncio.run(main())
'''
ASGI = r'''
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def echo(request):
    return JSONResponse({"n": len(await request.body())})
app = Starlette(routes=[Route("/p", echo, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, http="httptools")
'''


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_stacks(seconds: float) -> dict:
    out = {}
    for name, src in (("stdlib_threading", STDLIB), ("starlette_uvicorn", ASGI), ("raw_asgi_uvicorn", RAW_ASGI),
                      ("dtorch_serve_http", OWN)):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-c", src, str(port)])
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    time.sleep(0.05)
            one = closed_loop(port, "/p", b"x" * 3000, 1, seconds)
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            many = closed_loop(port, "/p", b"x" * 3000, 64, seconds)
            per_request = (cpu_seconds(proc.pid) - cpu0) / (many["rps"] * (time.perf_counter() - t0))
            out[name] = {"p50_ms_1": one["p50_ms"], "rps_64": many["rps"],
                         "server_cpu_us_per_request_64": round(per_request * 1e6, 1)}
        finally:
            proc.terminate()
            proc.wait()
    return out


GPT_MODEL_FILE = """
import dtorch
from dtorch.jobs.models import gpt
from dtorch.nn.modules.module import Module


class GPTMini(Module):
    def __init__(self):
        super().__init__()
        self.gpt = gpt(dtorch, 65, context=32, layers=2, heads=4, width=64)   # configs/gpt_char.yaml's shape

    def forward(self, idx):
        return self.gpt(idx)[:, -1]                                           # next-token logits
"""


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_archives(tmp: Path) -> dict[str, tuple[object, np.ndarray, bytes]]:
    """Archive the digits MLP and nanoGPT-mini into tmp/store; (model, one input, its JSON body) per name."""
    (tmp / "store").mkdir()
    (tmp / "gpt_model.py").write_text(GPT_MODEL_FILE)
    (tmp / "gpt_config.yaml").write_text("handler:\n  input_dtype: int64\n")
    x_mlp = (np.random.default_rng(0).integers(0, 17, 64) / 16).astype(np.float32)
    x_gpt = np.random.default_rng(0).integers(0, 65, 32)
    out = {}
    for name, model, model_file, x, extra in (
            ("digits", DigitsMLP().eval(), MODEL_FILE, x_mlp, []),
            ("gpt", _import(tmp / "gpt_model.py").GPTMini().eval(), tmp / "gpt_model.py", x_gpt,
             ["--config-file", str(tmp / "gpt_config.yaml")])):
        dtorch.save(model.state_dict(), tmp / f"{name}.safetensors")
        with contextlib.redirect_stdout(io.StringIO()):
            archive(["--model-name", name, "--version", "1", "--serialized-file", str(tmp / f"{name}.safetensors"),
                     "--model-file", str(model_file), "--export-path", str(tmp / "store"), *extra])
        out[name] = (model, x, json.dumps(x.tolist()).encode())
    return out


def load_levels(store: Path, tmp: Path, name: str, body: bytes, seconds: float) -> dict:
    result = {}
    for setting, (bs, delay) in {"batch1": (1, 0), "batch64": (64, 2)}.items():
        proc, port, metrics_port = start_server(store, tmp, name, bs, delay)
        try:
            closed_loop(port, f"/predictions/{name}", body, 8, 1.0)          # warm up
            result[setting] = {}
            for c in (1, 8, 64):
                n0, b0 = batch_counts(metrics_port, name)
                r = result[setting][f"clients_{c}"] = closed_loop(port, f"/predictions/{name}", body, c, seconds)
                n1, b1 = batch_counts(metrics_port, name)
                r["mean_batch"] = round((n1 - n0) / max(b1 - b0, 1), 1)
        finally:
            proc.terminate()
            proc.wait()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    result: dict = {"bench": "serve_load", "seconds": args.seconds, "load_avg": [round(os.getloadavg()[0], 2)],
                    "models": {"digits": "MLP 64-128-128-10", "gpt": "nanoGPT-mini 2x64, context 32, vocab 65"}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, (model, x, body) in make_archives(tmp).items():
            r = result[name] = load_levels(tmp / "store", tmp, name, body, args.seconds)
            r["forward_ms"] = round(forward_ms(model, x), 4)
            r["overhead_ms_1"] = round(r["batch1"]["clients_1"]["p50_ms"] - r["forward_ms"], 3)
            r["batching_speedup_64"] = round(r["batch64"]["clients_64"]["rps"] / r["batch1"]["clients_64"]["rps"], 2)
    result["http_stack"] = http_stacks(args.seconds)
    result["load_avg"].append(round(os.getloadavg()[0], 2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

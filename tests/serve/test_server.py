"""A real dtorch-serve (one per module) driven with curl and concurrent HTTP clients."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile

import numpy as np
import pytest
from conftest import HERE, archive
from prometheus_client.parser import text_string_to_metric_families
from serve_util import Server, write_config

import dtorch
from dtorch._safetensors import write

CONFIG = """job_queue_size: 80
max_request_size: 100000
allow_custom_handlers: true
default:
  batch_size: 8
  max_batch_delay: 20
models:
  echo:
    batch_size: 1
  slow:
    batch_size: 1
    max_batch_delay: 0
    response_timeout: 1.5
  echo8:
    batch_size: 8
    max_batch_delay: 300
"""


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    root, model = store
    tmp = tmp_path_factory.mktemp("serve")
    archive(root, "echo", root.parent / "mlp_weights.safetensors", "--handler", str(HERE / "handler_echo.py"))
    with zipfile.ZipFile(root / "evil.mar", "w") as zf:
        zf.writestr("MAR-INF/MANIFEST.json", json.dumps({"model": {"modelName": "evil", "serializedFile": "w",
                                                                   "handler": "tensor"}}))
        zf.writestr("w", b"1")
        zf.writestr("../../escaped.txt", b"x")
    ports = write_config(tmp / "config.yaml", tmp / "state", CONFIG)
    srv = Server(root, tmp / "config.yaml", ports, tmp / "state", "--models", "mlp=mlp.mar", "digits=digits.mar",
                 "echo=echo.mar", "slow=echo.mar", "echo8=echo.mar")
    srv.model, srv.tmp = model, tmp
    yield srv
    answers: list = [None]
    in_flight = threading.Thread(target=_fire, args=(srv, "/predictions/echo", [b'{"sleep": 1}'], answers))
    in_flight.start()
    time.sleep(0.3)
    code, out = srv.stop()                          # graceful: the request in flight is still answered
    in_flight.join(60)
    assert code == 0, out
    assert answers[0][0] == 200 and answers[0][1]["echo"] == {"sleep": 1}


def expected(model, x: np.ndarray) -> np.ndarray:
    with dtorch.no_grad():
        return model(dtorch.from_numpy(np.asarray(x, np.float32).reshape(-1, 64))).numpy()


def test_ping_and_list(server):
    assert server.curl(server.url("inference", "/ping")) == (200, {"status": "Healthy"})
    code, body = server.curl(server.url("inference", "/predictions"))
    assert code == 200 and {m["modelName"] for m in body["models"]} == {"mlp", "digits", "echo", "slow", "echo8"}


def test_every_upload_form_gives_the_models_output(server, tmp_path):
    x = np.random.default_rng(3).random(64, dtype=np.float32)
    (tmp_path / "x.json").write_text(json.dumps(x.tolist()))
    np.save(tmp_path / "x.npy", x)
    with open(tmp_path / "x.safetensors", "wb") as f:
        write(f, {"data": x})
    url = server.url("inference", "/predictions/mlp")
    answers = [
        server.curl("-X", "POST", url, "-T", str(tmp_path / "x.json")),                  # Expect: 100-continue
        server.curl("-X", "POST", url, "-T", "-", stdin=json.dumps(x.tolist()).encode()),  # chunked
        server.curl(url, "-H", "Content-Type: application/json", "-d", json.dumps({"data": x.tolist()})),
        server.curl(url, "-F", f"data=@{tmp_path / 'x.json'}"),                              # multipart
        server.curl(url, "--data-binary", f"@{tmp_path / 'x.npy'}"),                          # raw .npy
        server.curl(url, "--data-binary", f"@{tmp_path / 'x.safetensors'}"),                  # safetensors
        server.curl("-T", str(tmp_path / "x.npy"), url + "/1.0"),                             # PUT, a version
    ]
    want = expected(server.model, x)[0]
    for code, body in answers:
        assert code == 200, body
        np.testing.assert_allclose(body, want, rtol=1e-5, atol=1e-6)


def test_classifier_labels(server):
    x = np.random.default_rng(4).random(64, dtype=np.float32)
    code, top = server.curl(server.url("inference", "/predictions/digits"), "-d", json.dumps(x.tolist()))
    logits = expected(server.model, x)[0]
    assert code == 200 and list(top)[0] == f"digit-{int(np.argmax(logits))}" and len(top) == 5


def test_error_statuses(server):
    url = server.url("inference", "/predictions/")
    code, body = server.curl(url + "nope", "-d", "[1]")
    assert (code, body["type"]) == (404, "ModelNotFoundException") and "nope" in body["message"]
    assert server.curl(url + "mlp/9.9", "-d", "[1]")[0] == 404
    code, body = server.curl(url + "mlp", "-d", "not json")
    assert code == 400 and body == {"code": 400, "type": "BadRequestException",
                                    "message": "request body is neither JSON nor a .npy array"}
    code, body = server.curl(url + "mlp", "-d", "[1, 2]")          # wrong shape: the model's error, no traceback
    assert code in (400, 500) and "Traceback" not in json.dumps(body)
    code, body = server.curl(url + "echo", "-d", '{"bad": "odd value"}')
    assert code == 400 and body["message"] == "bad input: odd value"
    code, body = server.curl(url + "mlp", "-T", "-", stdin=b"[" + b"1," * 60000 + b"1]")
    assert code == 413 and body["type"] == "PayloadTooLargeException"
    code, body = server.curl(url + "slow", "-d", '{"sleep": 3}')
    assert code == 504 and "response_timeout" in body["message"]


def test_unknown_paths_methods_and_uploads_over_the_limit(server, tmp_path):
    code, body = server.curl(server.url("inference", "/nope"))
    assert (code, body["type"]) == (404, "ResourceNotFoundException")
    code, body = server.curl(server.url("inference", "/predictions/mlp"))            # GET
    assert (code, body["type"]) == (405, "MethodNotAllowedException")
    (tmp_path / "big.json").write_bytes(b"[" + b"1," * 60000 + b"1]")
    code, body = server.curl("-T", str(tmp_path / "big.json"), server.url("inference", "/predictions/mlp"))
    assert code == 413 and body["type"] == "PayloadTooLargeException"              # refused before the upload
    for ctype in ("multipart/form-data", "multipart/form-data; boundary=xyz"):
        code, body, _ = server.request("POST", "/predictions/mlp", b"garbage", headers={"Content-Type": ctype})
        assert code == 400 and body["type"] == "BadRequestException", body


def _fire(server, path: str, bodies: list[bytes], results: list, headers=None) -> None:
    def one(i: int) -> None:
        results[i] = server.request("POST", path, bodies[i], headers=headers)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


def test_full_queue_answers_503_with_retry_after(server):
    results: list = [None] * 100
    _fire(server, "/predictions/slow", [b'{"sleep": 0.2}'] * 100, results)
    codes = [r[0] for r in results]
    assert set(codes) <= {200, 503, 504} and codes.count(503) >= 1
    assert all(r[2].get("retry-after") == "1" for r in results if r[0] == 503)
    assert json.loads(json.dumps(next(r[1] for r in results if r[0] == 503)))["type"] == "ServiceUnavailableException"


def _metric(server, name: str, **labels) -> float:
    text = server.request("GET", "/metrics", api="metrics")[1]
    for family in text_string_to_metric_families(text if isinstance(text, str) else text.decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_64_concurrent_clients_are_batched(server):
    xs = np.random.default_rng(5).random((64, 64), dtype=np.float32)
    count0, sum0 = (_metric(server, f"dtorch_serve_batch_size_{k}", model="mlp") for k in ("count", "sum"))
    results: list = [None] * 64
    _fire(server, "/predictions/mlp", [json.dumps(x.tolist()).encode() for x in xs], results)
    assert all(r[0] == 200 for r in results)
    np.testing.assert_allclose(np.array([r[1] for r in results]), expected(server.model, xs), rtol=1e-5, atol=1e-6)
    batches = _metric(server, "dtorch_serve_batch_size_count", model="mlp") - count0
    requests = _metric(server, "dtorch_serve_batch_size_sum", model="mlp") - sum0
    assert requests == 64 and requests / batches > 1


def _pids(server, name: str) -> list[int]:
    return [w["pid"] for w in server.manage("GET", f"/models/{name}")[1][0]["workers"]]


def test_kill_9_a_worker_under_load(server):
    xs = np.random.default_rng(6).random((16, 8, 64), dtype=np.float32)
    restarts0 = _metric(server, "dtorch_serve_worker_restarts_total", model="mlp")
    [pid] = _pids(server, "mlp")
    results: list = [[None] * 8 for _ in range(16)]

    def client(c: int) -> None:
        for i in range(8):
            results[c][i] = server.request("POST", "/predictions/mlp", json.dumps(xs[c, i].tolist()).encode())
    threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
    for t in threads:
        t.start()
    while sum(r is not None for row in results for r in row) < 16:
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    for t in threads:
        t.join(120)
    flat = [r for row in results for r in row]
    assert all(r is not None for r in flat), "a request got no answer"
    assert {r[0] for r in flat} <= {200, 500} and [r[0] for r in flat].count(200) >= 16
    ok = [i for i, r in enumerate(flat) if r[0] == 200]
    np.testing.assert_allclose(np.array([flat[i][1] for i in ok]), expected(server.model, xs.reshape(-1, 64)[ok]),
                               rtol=1e-5, atol=1e-6)
    for _ in range(100):
        [worker] = server.manage("GET", "/models/mlp")[1][0]["workers"]
        if worker["status"] == "READY" and worker["pid"] != pid:
            break
        time.sleep(0.1)
    assert _pids(server, "mlp") != [pid]
    assert server.request("POST", "/predictions/mlp", json.dumps(xs[0, 0].tolist()).encode())[0] == 200
    assert _metric(server, "dtorch_serve_worker_restarts_total", model="mlp") >= restarts0 + 1
    assert _metric(server, "dtorch_serve_workers_alive", model="mlp") == 1


def _until_answered(server, model: str, request: dict, tries: int = 100) -> tuple[int, dict]:
    """POST ``request`` to ``model`` until it answers 200 (a restarting worker) or ``tries`` run out."""
    for _ in range(tries):
        code, body, _ = server.request("POST", f"/predictions/{model}", json.dumps(request).encode())
        if code == 200:
            break
        time.sleep(0.1)
    return code, body


def test_handler_crash_is_retried_once_then_500(server):
    code, body, _ = server.request("POST", "/predictions/echo", b'{"crash": true}')
    assert code == 500 and "crashed" in body["message"] and "asked to crash" in body["message"]
    code, body = _until_answered(server, "echo", {"n": 1})   # the worker comes back
    assert code == 200 and body["echo"] == {"n": 1}


def _responses(sock: socket.socket, n: int) -> list[tuple[int, dict, bytes]]:
    """Read ``n`` HTTP responses off one connection (content-length bodies), then what follows (b'' if closed)."""
    data, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        while len(data) < int(headers["content-length"]):
            data += sock.recv(65536)
        size = int(headers["content-length"])
        out.append((int(lines[0].split()[1]), headers, data[:size]))
        data = data[size:]
    return out


def test_keep_alive_pipelining_and_bad_requests(server):
    xs = np.random.default_rng(8).random((2, 64), dtype=np.float32)
    posts = b"".join(b"POST /predictions/mlp HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(b), b) for b in (json.dumps(x.tolist()).encode() for x in xs))
    with socket.create_connection(("127.0.0.1", server.ports["inference"]), timeout=60) as sock:
        sock.sendall(posts + b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        (c1, _, b1), (c2, _, b2), (c3, _, b3), (c4, _, _) = _responses(sock, 4)      # in order, one connection
        assert (c1, c2, c3, c4) == (200, 200, 200, 404)
        np.testing.assert_allclose(np.array([json.loads(b1), json.loads(b2)]), expected(server.model, xs),
                                   rtol=1e-5, atol=1e-6)
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")                     # still open
        assert _responses(sock, 1)[0][0] == 200
    for request, status in ((b"GET /ping HTTP/1.0\r\n\r\n", 200),                    # HTTP/1.0: then closed
                            (b"NOT HTTP AT ALL\r\n\r\n", 400),
                            (b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431)):
        with socket.create_connection(("127.0.0.1", server.ports["inference"]), timeout=60) as sock:
            sock.sendall(request)
            [(code, headers, _)] = _responses(sock, 1)
            assert code == status and headers.get("connection") == "close"
            assert sock.recv(100) == b""


def test_a_batch_whose_worker_dies_midway_answers_every_request(server):
    restarts0 = _metric(server, "dtorch_serve_worker_restarts_total", model="echo8")
    bodies = [b'{"n": %d}' % i for i in range(5)] + [b'{"exit": true}']
    results: list = [None] * len(bodies)
    _fire(server, "/predictions/echo8", bodies, results)
    assert all(r is not None for r in results), "a request got no answer"
    assert results[-1][0] == 500 and {r[0] for r in results} <= {200, 500}    # retried once, then 500
    assert all("crashed while running this request's batch" in r[1]["message"] for r in results if r[0] == 500)
    assert all(r[1]["echo"] == {"n": i} for i, r in enumerate(results) if r[0] == 200)
    assert _metric(server, "dtorch_serve_worker_restarts_total", model="echo8") >= restarts0 + 2
    code, body = _until_answered(server, "echo8", {"n": 9})  # the worker comes back
    assert code == 200 and body["echo"] == {"n": 9}


def test_management_needs_the_token(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": server.token}):
        code, body, hdrs = server.request("GET", "/models", api="management", headers=headers, token=False)
        assert code == 401 and body["type"] == "UnauthorizedException" and hdrs["www-authenticate"] == "Bearer"
    assert oct((server.state / "token").stat().st_mode & 0o777) == "0o600"
    code, body = server.curl("-H", f"Authorization: Bearer {server.token}", server.url("management", "/models"))
    assert code == 200 and {m["modelName"] for m in body["models"]} == {"mlp", "digits", "echo", "slow", "echo8"}


@pytest.mark.parametrize("url", ["../mlp.mar", "/etc/passwd", "http://example.com/x.mar", "file:///tmp/x.mar",
                                 "sub/x.mar", "mlp_weights.safetensors", "%2e%2e/mlp.mar"])
def test_register_refuses_urls_outside_the_store(server, url):
    code, body, _ = server.manage("POST", "/models?url=" + url)
    assert code == 400 and body["type"] == "BadRequestException", body


def test_register_refuses_a_crafted_archive(server):
    code, body, _ = server.manage("POST", "/models?url=evil.mar")
    assert code == 400 and "outside the archive" in body["message"]
    assert not (server.state.parent / "escaped.txt").exists()
    assert server.manage("POST", "/models?url=missing.mar")[0] == 404


def test_register_scale_default_unregister(server):
    code, body, _ = server.manage("POST", "/models?url=mlp.mar&model_name=mlp2&batch_size=4&max_batch_delay=5"
                                          "&initial_workers=1&response_timeout=30")
    assert code == 200 and body["status"] == 'Model "mlp2" Version: 1.0 registered with 1 initial workers'
    assert server.manage("POST", "/models?url=mlp.mar&model_name=mlp2")[0] == 409
    [desc] = server.manage("GET", "/models/mlp2")[1]
    assert (desc["batchSize"], desc["maxBatchDelay"], desc["responseTimeout"], len(desc["workers"])) == (4, 5, 30, 1)
    code, body, _ = server.manage("PUT", "/models/mlp2?min_worker=2&max_worker=3")
    assert code == 200 and len(_pids(server, "mlp2")) == 2
    assert server.manage("PUT", "/models/mlp2?min_worker=3&max_worker=1")[0] == 400
    assert server.manage("PUT", "/models/mlp2?min_worker=x")[0] == 400
    assert server.manage("PUT", "/models/mlp2/1.0/set-default")[0] == 200
    assert server.manage("PUT", "/models/mlp2/2.0/set-default")[0] == 404
    assert server.manage("PUT", "/models/mlp2?min_worker=0")[0] == 200
    code, body, hdrs = server.request("POST", "/predictions/mlp2", b"[1]")
    assert code == 503 and hdrs["retry-after"] == "1"
    assert server.request("GET", "/ping")[0] == 200
    assert server.manage("DELETE", "/models/mlp2")[0] == 200
    assert server.manage("GET", "/models/mlp2")[0] == 404
    assert server.request("POST", "/predictions/mlp2", b"[1]")[0] == 404


def test_metrics_parse(server):
    assert _metric(server, "dtorch_serve_requests_total", model="mlp", status="200") >= 1
    assert _metric(server, "dtorch_serve_requests_total", model="mlp", status="400") >= 1
    assert _metric(server, "dtorch_serve_request_latency_seconds_count", model="mlp") >= 1
    assert _metric(server, "dtorch_serve_queue_latency_seconds_count", model="digits") >= 1
    assert _metric(server, "dtorch_serve_inference_latency_seconds_count", model="digits") >= 1
    assert _metric(server, "dtorch_serve_workers_alive", model="digits") == 1


def test_config_errors_exit_2_without_traceback(tmp_path):
    (tmp_path / "c.yaml").write_text("inference_adress: 127.0.0.1:1\ndefault:\n  batch_sise: 0\n")
    out = subprocess.run([sys.executable, "-m", "dtorch.serve.cli", "--start", "--model-store", str(tmp_path),
                          "--config", str(tmp_path / "c.yaml")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "inference_adress: unknown key; did you mean inference_address?" in out.stderr
    assert "default.batch_sise: unknown key; did you mean default.batch_size?" in out.stderr


def test_start_in_background_status_stop(store, tmp_path):
    root, _ = store
    write_config(tmp_path / "c.yaml", tmp_path / "state")
    cli = [sys.executable, "-m", "dtorch.serve.cli", "--config", str(tmp_path / "c.yaml")]
    started = subprocess.run(cli + ["--start", "--model-store", str(root), "--models", "mlp.mar", "--ncs"],
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    token = (tmp_path / "state" / "token").read_text().strip()
    assert token in started.stdout
    status = subprocess.run(cli + ["--status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "Healthy" in status.stdout
    assert subprocess.run(cli + ["--stop"], capture_output=True, timeout=60).returncode == 0
    assert subprocess.run(cli + ["--status"], capture_output=True, timeout=60).returncode == 1
    assert not list((tmp_path / "state").glob("models-*/*"))


def test_models_argument_names_and_all(tmp_path):
    from dtorch.serve.cli import _models
    from dtorch.serve.config import validate
    for name in ("b.mar", "a.mar", "notes.txt"):
        (tmp_path / name).write_text("")
    cfg = validate({"load_models": ["x=a.mar"]})
    assert _models(cfg, tmp_path, ["all"]) == [(None, "a.mar"), (None, "b.mar")]
    assert _models(cfg, tmp_path, ["d=b.mar", "a.mar"]) == [("d", "b.mar"), (None, "a.mar")]
    assert _models(cfg, tmp_path, None) == [("x", "a.mar")]

"""Start a real dtorch-serve on free ports and talk to it with curl and http.client."""
from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def write_config(path: Path, state: Path, extra: str = "") -> dict[str, int]:
    inf, mgmt, met = free_ports(3)
    path.write_text(f"inference_address: 127.0.0.1:{inf}\nmanagement_address: 127.0.0.1:{mgmt}\n"
                    f"metrics_address: 127.0.0.1:{met}\nstate_dir: {state}\n{extra}")
    return {"inference": inf, "management": mgmt, "metrics": met}


class Server:
    def __init__(self, store: Path, config: Path, ports: dict[str, int], state: Path, *args: str) -> None:
        self.ports, self.state = ports, state
        self.proc = subprocess.Popen([sys.executable, "-m", "dtorch.serve.cli", "--start", "--foreground",
                                      "--model-store", str(store), "--config", str(config), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.proc.stdout.read()}")
            try:
                if self.request("GET", "/ping")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        self.token = (state / "token").read_text().strip()

    def url(self, api: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[api]}{path}"

    def request(self, method: str, path: str, body: bytes | None = None, api: str = "inference",
                headers: dict[str, str] | None = None, token: bool = True) -> tuple[int, object, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.ports[api], timeout=60)
        headers = dict(headers or {})
        if api == "management" and token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn.request(method, path, body, headers)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        try:
            data = json.loads(data)
        except ValueError:
            pass
        return r.status, data, {k.lower(): v for k, v in r.getheaders()}

    def manage(self, method: str, path: str, **kw) -> tuple[int, object, dict]:
        return self.request(method, path, api="management", **kw)

    def curl(self, *args: str, api: str = "inference", stdin: bytes | None = None) -> tuple[int, object]:
        out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], input=stdin, capture_output=True,
                             timeout=60, check=True)
        body, _, code = out.stdout.rpartition(b"\n")
        try:
            body = json.loads(body)
        except ValueError:
            pass
        return int(code), body

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        return self.proc.returncode, out

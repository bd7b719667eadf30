"""dtorch-serve: ``--start`` (in the background unless ``--foreground``), ``--stop``, ``--status``.

Bad configs and usage exit 2 with one line per problem, no traceback.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from dtorch.launcher.errors import ConfigError

from .config import load, split_address


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dtorch-serve", description="Serve .mar model archives over HTTP.")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--start", action="store_true", help="start the server")
    mode.add_argument("--stop", action="store_true", help="stop the running server")
    mode.add_argument("--status", action="store_true", help="say whether a server runs and is healthy")
    p.add_argument("--model-store", help="directory of .mar files (the only place models load from)")
    p.add_argument("--models", nargs="+", default=None, help="NAME=FILE.mar, FILE.mar, or all")
    p.add_argument("--config", help="YAML config (see dtorch/serve/config.py for the keys)")
    p.add_argument("--foreground", action="store_true", help="stay in the foreground")
    p.add_argument("--ncs", action="store_true", help="no config snapshots (accepted; none are written)")
    p.add_argument("--allow-custom-handlers", action="store_true", help="run Python handlers from archives")
    p.add_argument("--disable-token-auth", action="store_true", help="management API without a token")
    p.add_argument("--bind", help="listen on this host instead of the config's (e.g. 0.0.0.0: all interfaces)")
    return p


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load(args.config)
    if args.model_store:
        cfg["model_store"] = args.model_store
    if args.allow_custom_handlers:
        cfg["allow_custom_handlers"] = True
    if args.disable_token_auth:
        cfg["token_auth"] = False
    if args.bind:
        for key in ("inference_address", "management_address", "metrics_address"):
            cfg[key] = f"{args.bind}:{split_address(cfg[key])[1]}"
    return cfg


def _models(cfg: dict[str, Any], store: Path, given: list[str] | None) -> list[tuple[str | None, str]]:
    entries = cfg["load_models"] if given is None else given
    if entries == ["all"]:
        return [(None, p.name) for p in sorted(store.glob("*.mar"))]
    out = []
    for entry in entries:
        name, _, url = entry.rpartition("=")
        out.append((name or None, url))
    return out


def _state(cfg: dict[str, Any]) -> dict[str, Any] | None:
    path = Path(cfg["state_dir"]).expanduser() / "serve.json"
    try:
        state = json.loads(path.read_text())
        os.kill(state["pid"], 0)
        return state
    except (OSError, ValueError, KeyError):
        return None


def _ping(address: str) -> str | None:
    host, port = split_address(address)
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/ping", timeout=2) as r:
            return json.loads(r.read())["status"]
    except OSError as e:
        body = getattr(e, "read", None)
        return json.loads(body())["status"] if body and getattr(e, "code", None) == 500 else None


def _start_background(argv: list[str], cfg: dict[str, Any]) -> int:
    log = Path(cfg["state_dir"]).expanduser() / "serve.log"
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dtorch.serve.cli", *argv, "--foreground"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    while proc.poll() is None:
        state = _state(cfg)
        if state and state["pid"] == proc.pid and _ping(cfg["inference_address"]):
            print(f"dtorch-serve: started (pid {proc.pid}), inference at http://{cfg['inference_address']}, "
                  f"log {log}")
            if state.get("token_file"):
                print(f"dtorch-serve: management token: {Path(state['token_file']).read_text().strip()} "
                      f"(in {state['token_file']})")
            return 0
        time.sleep(0.2)
    print(f"dtorch-serve: the server exited ({proc.returncode}) during start; see {log}:", file=sys.stderr)
    print(log.read_text()[-2000:], file=sys.stderr)
    return 1


def _stop(cfg: dict[str, Any]) -> int:
    state = _state(cfg)
    if state is None:
        print("dtorch-serve: no server is running", file=sys.stderr)
        return 1
    os.kill(state["pid"], signal.SIGTERM)
    for _ in range(600):
        try:
            os.kill(state["pid"], 0)
        except OSError:
            print(f"dtorch-serve: stopped (pid {state['pid']})")
            return 0
        time.sleep(0.1)
    print(f"dtorch-serve: pid {state['pid']} is still shutting down after 60 s", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    try:
        cfg = _settings(args)
        if args.stop:
            return _stop(cfg)
        if args.status:
            state = _state(cfg)
            status = _ping(state["inference_address"]) if state else None
            print(f"dtorch-serve: running (pid {state['pid']}), {status}" if state else "dtorch-serve: not running")
            return 0 if status == "Healthy" else 1
        if not cfg["model_store"] or not Path(cfg["model_store"]).is_dir():
            raise ConfigError(f"--model-store {cfg['model_store']!r}: not a directory (required with --start)")
        if _state(cfg):
            raise ConfigError(f"a server is already running (pid {_state(cfg)['pid']}); dtorch-serve --stop first")
        if not args.foreground:
            return _start_background(argv, cfg)
        try:
            from .server import Serve
        except ImportError as e:
            raise ConfigError(f"dtorch-serve needs the serve extra (pip install 'dtorch[serve]'): {e}") from None
        store = Path(cfg["model_store"])
        return asyncio.run(Serve(cfg, store).run(_models(cfg, store, args.models)))
    except ConfigError as e:
        for line in e.problems:
            print(f"dtorch-serve: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

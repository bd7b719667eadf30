"""A model's worker process: ``python -m dtorch.serve.worker MODEL_DIR SETTINGS_JSON``.

Loads the archive's handler and model, says ``ready``, then answers one ``predict`` frame per batch on its
stdin/stdout (``protocol.py``). Anything the model or handler prints goes to stderr, never into the pipe.
A ``ValueError`` from the handler answers its request 400; any other exception is reported as ``crash`` and the
process exits, so the server starts a fresh one.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, BinaryIO

from . import codec
from .handlers import Context, make_handler
from .protocol import encode, read_frame


def _rows(header: dict[str, Any], parts: list[bytes]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    rows, headers = [], []
    for req in header["requests"]:
        row: dict[str, Any] = {}
        for name, ctype, idx in req["fields"]:
            raw = parts[idx]
            if ctype.split(";")[0].strip() == "application/json":
                try:
                    row[name] = codec.loads(raw)
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    row[name] = ValueError(f"field {name!r}: invalid JSON ({e})")
            else:
                row[name] = raw
        rows.append(row)
        headers.append(req.get("headers", {}))
    return rows, headers


def _encode_item(item: Any) -> tuple[dict[str, Any], bytes | None]:
    if isinstance(item, BaseException):
        return {"status": 400, "message": str(item) or type(item).__name__}, None
    if isinstance(item, (bytes, bytearray)):
        return {"status": 200, "content_type": "application/octet-stream"}, bytes(item)
    if isinstance(item, str):
        return {"status": 200, "content_type": "text/plain; charset=utf-8"}, item.encode()
    return {"status": 200, "content_type": "application/json"}, codec.dumps(item, default=_jsonable)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"handler output of type {type(obj).__name__} is not JSON serializable")



def _run(handler: Any, context: Context, rows: list[dict[str, Any]]) -> list[Any]:
    bad = [(i, v) for i, row in enumerate(rows) for v in row.values() if isinstance(v, ValueError)]
    if bad:
        out = _run(handler, context, [r for i, r in enumerate(rows) if i not in {j for j, _ in bad}]) \
            if len(bad) < len(rows) else []
        errors = dict(bad)
        return [errors[i] if i in errors else out.pop(0) for i in range(len(rows))]
    try:
        out = handler.handle(rows, context)
    except ValueError as e:
        if len(rows) == 1:
            return [e]
        return [_run(handler, context, [r])[0] for r in rows]
    if not isinstance(out, list) or len(out) != len(rows):
        got = f"a list of {len(out)}" if isinstance(out, list) else type(out).__name__
        raise RuntimeError(f"handle() returned {got} for {len(rows)} requests (TorchServe's contract: a list of "
                           "the same length)")
    return out


def serve(model_dir: str, settings: dict[str, Any], rfile: BinaryIO, wfile: BinaryIO) -> None:
    manifest = json.loads(open(os.path.join(model_dir, "MAR-INF", "MANIFEST.json")).read())
    context = Context(model_dir, manifest, settings.get("batch_size", 1), settings.get("handler_config"))
    handler = make_handler(model_dir, manifest["model"]["handler"])
    if hasattr(handler, "initialize"):
        handler.initialize(context)
    wfile.write(encode({"op": "ready", "pid": os.getpid()}))
    wfile.flush()
    while (frame := read_frame(rfile)) is not None:
        header, parts = frame
        rows, context.request_headers = _rows(header, parts)
        items, out_parts = [], []
        for item in _run(handler, context, rows):
            meta, data = _encode_item(item)
            if data is not None:
                meta["part"] = len(out_parts)
                out_parts.append(data)
            items.append(meta)
        wfile.write(encode({"op": "result", "items": items}, out_parts))
        wfile.flush()


def main() -> None:
    pipe_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                       # prints from models and handlers go to stderr
    sys.stdout = sys.stderr
    try:
        serve(sys.argv[1], json.loads(sys.argv[2]), sys.stdin.buffer, pipe_out)
    except Exception as e:  # noqa: BLE001 - reported to the server, which restarts this worker
        traceback.print_exc()
        try:
            pipe_out.write(encode({"op": "crash", "message": f"{type(e).__name__}: {e}"}))
            pipe_out.flush()
        except OSError:
            pass
        os._exit(1)


if __name__ == "__main__":
    main()

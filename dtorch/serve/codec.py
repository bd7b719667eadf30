"""JSON on the serving hot path: orjson when it is installed (the ``serve`` extra), else the standard library.

orjson parses and writes numbers several times faster than ``json`` (request bodies, model outputs, the
frames between server and worker). Where it refuses what ``json`` accepts (``NaN``/``Infinity`` literals in;
non-string keys, integers over 64 bits, lone surrogates out) the standard library takes over, so the results
and the errors are ``json``'s. Output is compact (``[1,2]``); a NaN output is written ``null`` by orjson.
"""
from __future__ import annotations

import json
from typing import Any, Callable

try:
    import orjson
except ImportError:                 # the serve extra without orjson: the standard library alone
    orjson = None


def loads(data: bytes | str) -> Any:
    """``json.loads``: the same values, the same exceptions."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON; ``default`` turns what JSON cannot hold into what it can (or raises TypeError)."""
    if orjson is not None:
        try:
            return orjson.dumps(obj, default=default)
        except TypeError:
            pass
    return json.dumps(obj, default=default, separators=(",", ":")).encode()

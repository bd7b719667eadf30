"""The pipe between the server and a worker process: JSON headers and raw bytes, never pickle.

A frame is ``<header length: u32><payload length: u64>``, the header (UTF-8 JSON) and the payload.
The header names slices of the payload (``[offset, length]``) for every request body or form field,
so an uploaded ``.npy`` file crosses as its own bytes.
"""
from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

_PREFIX = struct.Struct("<IQ")
MAX_HEADER = 64 << 20


class ProtocolError(Exception):
    """The other end sent something that is not a frame (it died mid-write, or is not a worker)."""


def encode(header: dict[str, Any], parts: list[bytes] = ()) -> bytes:
    """One frame: ``header`` gains ``"parts"`` (the [offset, length] of each of ``parts``)."""
    spans, offset = [], 0
    for p in parts:
        spans.append([offset, len(p)])
        offset += len(p)
    head = json.dumps({**header, "parts": spans}, separators=(",", ":")).encode()
    return b"".join([_PREFIX.pack(len(head), offset), head, *parts])


def decode_header(prefix: bytes) -> tuple[int, int]:
    """(header length, payload length) from a frame's first bytes."""
    n_head, n_payload = _PREFIX.unpack(prefix)
    if n_head > MAX_HEADER:
        raise ProtocolError(f"frame header of {n_head} bytes (at most {MAX_HEADER})")
    return n_head, n_payload


def split(head: bytes, payload: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """The header dict and the payload slices it names."""
    try:
        header = json.loads(head)
        parts = [payload[o:o + n] for o, n in header.pop("parts")]
    except (ValueError, KeyError, TypeError) as e:
        raise ProtocolError(f"malformed frame header: {e}") from None
    return header, parts


PREFIX_SIZE = _PREFIX.size


def read_frame(stream: BinaryIO) -> tuple[dict[str, Any], list[bytes]] | None:
    """Read one frame from a blocking stream; None at a clean end of stream."""
    prefix = stream.read(PREFIX_SIZE)
    if not prefix:
        return None
    if len(prefix) < PREFIX_SIZE:
        raise ProtocolError("stream ended inside a frame")
    n_head, n_payload = decode_header(prefix)
    head, payload = stream.read(n_head), stream.read(n_payload)
    if len(head) < n_head or len(payload) < n_payload:
        raise ProtocolError("stream ended inside a frame")
    return split(head, payload)

"""The pipe between the server and a worker process: JSON headers and raw bytes, never pickle.

A frame is ``<header length: u32><payload length: u64>``, the header (UTF-8 JSON) and the payload.
The header names slices of the payload (``[offset, length]``) for every request body or form field,
so an uploaded ``.npy`` file crosses as its own bytes. One frame carries a whole batch each way.
A frame whose lengths pass ``MAX_HEADER``/``MAX_PAYLOAD``, or whose slices leave the payload, is refused
with ``ProtocolError`` before anything is allocated for it.
"""
from __future__ import annotations

import struct
from typing import Any, BinaryIO

from . import codec

_PREFIX = struct.Struct("<IQ")
PREFIX_SIZE = _PREFIX.size
MAX_HEADER = 64 << 20
MAX_PAYLOAD = 4 << 30

Frame = tuple[dict[str, Any], list[bytes]]


class ProtocolError(Exception):
    """The other end sent something that is not a frame (it died mid-write, or is not a worker)."""


def encode(header: dict[str, Any], parts: list[bytes] = ()) -> bytes:
    """One frame: ``header`` gains ``"parts"`` (the [offset, length] of each of ``parts``)."""
    spans, offset = [], 0
    for p in parts:
        spans.append([offset, len(p)])
        offset += len(p)
    head = codec.dumps({**header, "parts": spans})
    return b"".join([_PREFIX.pack(len(head), offset), head, *parts])


def decode_header(prefix: bytes) -> tuple[int, int]:
    """(header length, payload length) from a frame's first bytes."""
    n_head, n_payload = _PREFIX.unpack(prefix)
    if n_head > MAX_HEADER:
        raise ProtocolError(f"frame header of {n_head} bytes (at most {MAX_HEADER}): not a dtorch-serve frame")
    if n_payload > MAX_PAYLOAD:
        raise ProtocolError(f"frame payload of {n_payload} bytes (at most {MAX_PAYLOAD}): not a dtorch-serve frame")
    return n_head, n_payload


def split(head: bytes, payload: bytes) -> Frame:
    """The header dict and the payload slices it names."""
    try:
        header = codec.loads(head)
        spans = header.pop("parts")
        parts = []
        for o, n in spans:
            if not (isinstance(o, int) and isinstance(n, int) and 0 <= o and 0 <= n and o + n <= len(payload)):
                raise ValueError(f"slice [{o}, {n}] outside the {len(payload)}-byte payload")
            parts.append(payload[o:o + n])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ProtocolError(f"malformed frame header: {e}") from None
    return header, parts


def read_frame(stream: BinaryIO) -> Frame | None:
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


class FrameParser:
    """Frames out of a byte stream that arrives in pieces of any size (an asyncio pipe's reads)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.sizes: tuple[int, int] | None = None

    def pending(self) -> int:
        """Bytes of an unfinished frame held."""
        return len(self.buf)

    def feed(self, data: bytes) -> list[Frame]:
        """The frames ``data`` completes (ProtocolError on a corrupt or oversized one)."""
        self.buf += data
        frames = []
        while True:
            if self.sizes is None:
                if len(self.buf) < PREFIX_SIZE:
                    return frames
                self.sizes = decode_header(bytes(self.buf[:PREFIX_SIZE]))
            n_head, n_payload = self.sizes
            end = PREFIX_SIZE + n_head + n_payload
            if len(self.buf) < end:
                return frames
            head, payload = bytes(self.buf[PREFIX_SIZE:PREFIX_SIZE + n_head]), bytes(self.buf[PREFIX_SIZE + n_head:end])
            del self.buf[:end]
            self.sizes = None
            frames.append(split(head, payload))

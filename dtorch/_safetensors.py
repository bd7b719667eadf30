"""The safetensors file format, read and written with numpy only (no pickling, no code).

Layout: an 8-byte little-endian header length N, N bytes of JSON header
``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the tensors' bytes. Any safetensors reader (the `safetensors` package, Hugging Face
tools, torch via safetensors.torch.load_file) reads what this writes.
"""
from __future__ import annotations

import json
import struct
from typing import BinaryIO

import numpy as np

DTYPE_CODES = {
    np.dtype(np.bool_): "BOOL", np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8", np.dtype(np.int16): "I16",
    np.dtype(np.int32): "I32", np.dtype(np.int64): "I64", np.dtype(np.uint16): "U16", np.dtype(np.uint32): "U32",
    np.dtype(np.uint64): "U64", np.dtype(np.float16): "F16",
    np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}
MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file; the message names the file and the problem."""


def encode(arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> tuple[bytes, list]:
    """(header bytes incl. the length prefix, list of array buffers in file order)."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    buffers = []
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr).reshape(np.shape(arr))  # ascontiguousarray makes a 0-d array 1-d
        if arr.dtype not in DTYPE_CODES:
            raise TypeError(f"{name}: dtype {arr.dtype} cannot be stored in safetensors")
        n = arr.nbytes
        header[name] = {"dtype": DTYPE_CODES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + n]}
        buffers.append(arr)
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # align the data to 8 bytes, as the reference writer does
    return struct.pack("<Q", len(raw)) + raw, buffers


def write(f: BinaryIO, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    head, buffers = encode(arrays, metadata)
    f.write(head)
    for b in buffers:
        f.write(memoryview(b).cast("B") if b.size else b"")


def read(data: bytes | memoryview, source: str = "<bytes>", copy: bool = True
         ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse and validate a whole file's bytes; arrays are copies owning their memory, or with
    ``copy=False`` views of ``data`` (which must then be a private, writable buffer; a view whose
    address does not suit its dtype is copied anyway)."""
    view = memoryview(data)
    if len(view) < 8:
        raise SafetensorsError(f"{source}: not a safetensors file (only {len(view)} bytes)")
    (n,) = struct.unpack("<Q", view[:8])
    if n > MAX_HEADER or 8 + n > len(view):
        raise SafetensorsError(
            f"{source}: not a safetensors file or truncated (header claims {n} bytes, file has {len(view)})"
        )
    try:
        header = json.loads(bytes(view[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{source}: corrupt safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{source}: corrupt safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    body = view[8 + n:]
    arrays = {}
    spans = []
    for name, info in header.items():
        try:
            dt = CODE_DTYPES[info["dtype"]]
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{source}: tensor {name!r}: malformed or unsupported entry {info!r}") from None
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * dt.itemsize or begin < 0 or end > len(body):
            raise SafetensorsError(
                f"{source}: tensor {name!r}: data [{begin}, {end}) does not fit shape {list(shape)} of {info['dtype']}"
                f" inside {len(body)} data bytes (truncated?)"
            )
        spans.append((begin, end, name))
        arr = np.frombuffer(body[begin:end], dtype=dt).reshape(shape)
        arrays[name] = arr.copy() if copy or not arr.flags.aligned else arr
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise SafetensorsError(f"{source}: tensor {name!r}: overlapping or non-contiguous data offsets")
        pos = end
    if pos != len(body):
        raise SafetensorsError(f"{source}: {len(body) - pos} trailing bytes after the last tensor")
    return arrays, metadata

"""The safetensors file format, read and written with numpy only (no pickling, no code).

Layout: an 8-byte little-endian header length N, N bytes of JSON header
``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the tensors' bytes. Any safetensors reader (the `safetensors` package, Hugging Face
tools, torch via safetensors.torch.load_file) reads what this writes.

Reading trusts nothing in the file: every field is type- and range-checked, and a stream is
read only as far as its own header says (so ``/dev/zero`` or a pipe cannot make it read forever);
every problem is a :class:`SafetensorsError` naming the source and what is wrong.
"""
from __future__ import annotations

import json
import os
import stat
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .utils._fileio import read_and_hash

DTYPE_CODES = {
    np.dtype(np.bool_): "BOOL", np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8", np.dtype(np.int16): "I16",
    np.dtype(np.int32): "I32", np.dtype(np.int64): "I64", np.dtype(np.uint16): "U16", np.dtype(np.uint32): "U32",
    np.dtype(np.uint64): "U64", np.dtype(np.float16): "F16",
    np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.complex64): "C64",
}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}
MAX_HEADER = 100 * 1024 * 1024
MAX_NDIM = 32
_READ_PIECE = 16 << 20


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file; the message names the file and the problem."""


@dataclass(frozen=True)
class Entry:
    """One tensor's header entry, checked: dtype code, shape, [begin, end) within the data section."""
    code: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def dtype(self) -> np.dtype:
        return CODE_DTYPES[self.code]


def layout(arrays: dict[str, np.ndarray]) -> tuple[dict[str, Entry], list[np.ndarray]]:
    """The header entries and the contiguous array buffers, in file order."""
    entries, buffers, offset = {}, [], 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr).reshape(np.shape(arr))  # ascontiguousarray makes a 0-d array 1-d
        if arr.dtype not in DTYPE_CODES:
            hint = " (safetensors has C64 only: save t.to(dtorch.complex64) or dtorch.view_as_real(t))" \
                if arr.dtype.kind == "c" else ""
            raise TypeError(f"{name}: dtype {arr.dtype} cannot be stored in safetensors{hint}")
        entries[name] = Entry(DTYPE_CODES[arr.dtype], tuple(arr.shape), offset, offset + arr.nbytes)
        buffers.append(arr)
        offset += arr.nbytes
    return entries, buffers


def encode_header(entries: dict[str, Entry], metadata: dict[str, str] | None = None) -> bytes:
    """The header bytes, length prefix included, padded so the data starts 8-byte aligned."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, e in entries.items():
        header[name] = {"dtype": e.code, "shape": list(e.shape), "data_offsets": [e.begin, e.end]}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # align the data to 8 bytes, as the reference writer does
    return struct.pack("<Q", len(raw)) + raw


def encode(arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> tuple[bytes, list]:
    """(header bytes incl. the length prefix, list of array buffers in file order)."""
    entries, buffers = layout(arrays)
    return encode_header(entries, metadata), buffers


def write(f: BinaryIO, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    head, buffers = encode(arrays, metadata)
    f.write(head)
    for b in buffers:
        f.write(memoryview(b).cast("B") if b.size else b"")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _entry(name: str, info: Any, source: str) -> Entry:
    where = f"{source}: tensor {name!r}"
    if not isinstance(info, dict):
        raise SafetensorsError(f"{where}: header entry is {type(info).__name__}, not a JSON object")
    code, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(code, str) or code not in CODE_DTYPES:
        raise SafetensorsError(f"{where}: unsupported dtype {code!r} (dtorch reads {', '.join(CODE_DTYPES)})")
    if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
        raise SafetensorsError(f"{where}: shape {shape!r} is not a list of non-negative integers")
    if len(shape) > MAX_NDIM:
        raise SafetensorsError(f"{where}: {len(shape)} dimensions (at most {MAX_NDIM})")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(x) for x in offsets)):
        raise SafetensorsError(f"{where}: data_offsets {offsets!r} is not a list of two integers")
    begin, end = offsets
    count = 1
    for s in shape:
        count *= s
    if begin < 0 or end < begin or end - begin != count * CODE_DTYPES[code].itemsize:
        raise SafetensorsError(f"{where}: data_offsets [{begin}, {end}) do not fit shape {shape} of {code} "
                               f"({count * CODE_DTYPES[code].itemsize} bytes)")
    return Entry(code, tuple(shape), begin, end)


def parse_header(raw: bytes, source: str = "<bytes>") -> tuple[dict[str, Entry], dict[str, str], int]:
    """Check a header's JSON: (entries, metadata, size of the data section the entries cover)."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:   # JSONDecodeError, and ints longer than Python allows
        raise SafetensorsError(f"{source}: corrupt safetensors header ({e})") from None
    except RecursionError:
        raise SafetensorsError(f"{source}: corrupt safetensors header (JSON nested too deeply)") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{source}: corrupt safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{source}: __metadata__ must be a JSON object of strings")
    entries = {name: _entry(name, info, source) for name, info in header.items()}
    pos = 0
    for name, e in sorted(entries.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
        if e.begin != pos:
            raise SafetensorsError(f"{source}: tensor {name!r}: overlapping or non-contiguous data offsets")
        pos = e.end
    return entries, metadata, pos


def arrays_from(entries: dict[str, Entry], body: memoryview, source: str = "<bytes>",
                copy: bool = True) -> dict[str, np.ndarray]:
    """The arrays of checked entries over the data section ``body`` (views unless ``copy``; a view whose
    address does not suit its dtype is copied anyway)."""
    arrays = {}
    for name, e in entries.items():
        try:
            arr = np.frombuffer(body[e.begin:e.end], dtype=e.dtype).reshape(e.shape)
        except (ValueError, OverflowError) as err:
            raise SafetensorsError(f"{source}: tensor {name!r}: shape {list(e.shape)}: {err}") from None
        arrays[name] = arr.copy() if copy or not arr.flags.aligned else arr
    return arrays


def split(data: bytes | memoryview, source: str = "<bytes>") -> tuple[dict[str, Entry], dict[str, str], memoryview]:
    """A whole file's bytes: (entries, metadata, the data section)."""
    view = memoryview(data).cast("B")
    if len(view) < 8:
        raise SafetensorsError(f"{source}: not a safetensors file (only {len(view)} bytes)")
    (n,) = struct.unpack("<Q", view[:8])
    if n > MAX_HEADER or 8 + n > len(view):
        raise SafetensorsError(
            f"{source}: not a safetensors file or truncated (header claims {n} bytes, file has {len(view)})"
        )
    entries, metadata, size = parse_header(bytes(view[8:8 + n]), source)
    _check_size(source, size, len(view) - 8 - n)
    return entries, metadata, view[8 + n:]


def _check_size(source: str, wanted: int, have: int) -> None:
    if have < wanted:
        raise SafetensorsError(f"{source}: truncated: the header lists {wanted} data bytes, the file has {have}")
    if have > wanted:
        raise SafetensorsError(f"{source}: {have - wanted} trailing bytes after the last tensor")


def read(data: bytes | memoryview, source: str = "<bytes>", copy: bool = True
         ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse and validate a whole file's bytes; arrays are copies owning their memory, or with
    ``copy=False`` views of ``data`` (which must then be a private, writable buffer)."""
    entries, metadata, body = split(data, source)
    return arrays_from(entries, body, source, copy), metadata


def _read_into(f, buf: memoryview, source: str) -> int:
    """Fill ``buf`` from ``f`` (fewer bytes only at the end of the stream); returns the count read."""
    pos = 0
    readinto = getattr(f, "readinto", None)
    while pos < len(buf):
        piece = buf[pos:pos + _READ_PIECE]
        if readinto is not None:
            n = readinto(piece)
        else:
            chunk = f.read(len(piece))
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise SafetensorsError(f"{source}: read() returned {type(chunk).__name__}, not bytes: "
                                       "open the file in binary mode ('rb')")
            n = len(chunk)
            piece[:n] = chunk
        if not n:
            break
        pos += n
    return pos


def _known_size(f) -> int | None:
    """Bytes left in ``f`` when it is a regular file or a seekable buffer, else None (a pipe, a device)."""
    try:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
    except (AttributeError, OSError, ValueError):
        pass
    try:
        if not f.seekable():
            return None
        here = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError):
        return None


def _read_header(f, source: str, prefix: memoryview, got: int, size: int | None
                 ) -> tuple[dict[str, Entry], dict[str, str], int, int]:
    if got < 8:
        raise SafetensorsError(f"{source}: not a safetensors file (only {got} bytes)")
    (n,) = struct.unpack("<Q", prefix)
    if n > MAX_HEADER or (size is not None and 8 + n > size):
        raise SafetensorsError(f"{source}: not a safetensors file or truncated (header claims {n} bytes"
                               + (f", file has {size})" if size is not None else ")"))
    raw = memoryview(bytearray(n))
    if _read_into(f, raw, source) < n:
        raise SafetensorsError(f"{source}: truncated inside the header ({n} bytes claimed)")
    entries, metadata, wanted = parse_header(bytes(raw), source)
    return entries, metadata, wanted, n


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def read_stream(f: BinaryIO, source: str, magic_check=None, hasher=None
                ) -> tuple[dict[str, Entry], dict[str, str], memoryview, str | None]:
    """Read a file object only as far as its header says: (entries, metadata, the data section in a
    private buffer, its hash). ``magic_check(first 8 bytes)`` may name a foreign file (pickle, zip) when
    the header cannot be read; ``hasher(entries, metadata)`` may give a hash object (hashlib's interface) to
    feed the data section to as it is read (the last item is then its hexdigest, else None)."""
    size = _known_size(f)
    prefix = memoryview(bytearray(8))
    got = _read_into(f, prefix, source)
    try:
        entries, metadata, wanted, n = _read_header(f, source, prefix, got, size)
    except SafetensorsError:
        if magic_check is not None:   # a pickle's or zip's first bytes can also begin a valid header's length
            magic_check(bytes(prefix[:got]))
        raise
    if size is not None:
        _check_size(source, wanted, size - 8 - n)
    elif wanted > _memory_bytes():
        raise SafetensorsError(f"{source}: the header claims {wanted} bytes of tensor data, more than this "
                               "machine's memory")
    body = memoryview(np.empty(wanted, np.uint8)).cast("B")
    h = hasher(entries, metadata) if hasher is not None else None
    if h is not None and hasattr(f, "readinto"):
        have = read_and_hash(f.readinto, body, h)
    else:
        have = _read_into(f, body, source)
        if h is not None:
            h.update(body[:have])
    if have == wanted and size is None:
        have += _read_into(f, memoryview(bytearray(1)), source)   # a stream: anything after the data is an error
    _check_size(source, wanted, have)
    return entries, metadata, body, (h.hexdigest() if h is not None else None)

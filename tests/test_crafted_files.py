"""Crafted files given to dtorch.load: each gets its own clear error (a ValueError or OSError subclass
naming the file and the problem), never a bare numpy/Type/Key/Attribute/Recursion/MemoryError or a hang,
and nothing in a file is ever executed."""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile

import pytest

import dtorch
from dtorch import serialization
from dtorch._safetensors import SafetensorsError, parse_header
from dtorch._torch_format import TorchFormatError


def _raw(header: dict | bytes | str, data: bytes = b"", n: int | None = None) -> bytes:
    body = header if isinstance(header, bytes) else (header if isinstance(header, str) else json.dumps(header)).encode()
    return struct.pack("<Q", len(body) if n is None else n) + body + data


def _good(fmt: str = serialization.FORMAT) -> bytes:
    """A small good file; ``fmt`` "dtorch.v2" writes the previous format (a sha256 instead of a blake3)."""
    buf = io.BytesIO()
    serialization._save({"epoch": 3, "w": dtorch.arange(4, dtype=dtorch.float32), "i": dtorch.arange(2)}, buf, fmt)
    return buf.getvalue()


def _split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _edited(edit, resign: bool, fmt: str = serialization.FORMAT) -> bytes:
    """The good file with its header edited; ``resign`` recomputes the checksum (of a format this dtorch reads)
    so only the other checks see it."""
    header, data = _split(_good(fmt))
    edit(header, header["__metadata__"])
    if resign and header["__metadata__"]["format"] in serialization.DIGESTS:
        entries, meta, _ = parse_header(json.dumps(header).encode())
        header["__metadata__"][serialization.DIGESTS[meta["format"]][0]] = serialization._digest(entries, meta, [data])
    return _raw(header, data)


def _flip_last(fmt: str):
    return lambda d: _good(fmt)[:-1] + bytes([_good(fmt)[-1] ^ 1])


def _rename(old: str, new: str):
    def edit(header, meta):
        meta[new] = meta.pop(old)
    return edit


def _structure(text: str):
    def edit(header, meta):
        meta["structure"] = text
    return edit


def _set(path: list, value):
    def edit(header, meta):
        node = header
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
    return edit


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


class _Marker:
    """A pickle whose loading would create a file: proves the loader never unpickles."""
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _zip(name: str = "archive/data.pkl", pkl: bytes = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R.") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, pkl)
    return buf.getvalue()


TB = 1 << 40
W = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}

# id -> (file bytes, or a callable(tmp_path) -> bytes; exception type; message fragment)
CASES = {
    "empty file": (b"", SafetensorsError, "only 0 bytes"),
    "3 bytes": (b"abc", SafetensorsError, "only 3 bytes"),
    "text file": (b"hello world, not a tensor file at all", SafetensorsError, "not a safetensors file"),
    "pickle protocol 4": (lambda d: pickle.dumps(_Marker(str(d / "marker")), protocol=4), SafetensorsError,
                          "pickled/zip"),
    "pickle protocol 2": (lambda d: pickle.dumps(_Marker(str(d / "marker")), protocol=2), SafetensorsError,
                          "pickled/zip"),
    "pickle protocol 0": (lambda d: pickle.dumps(_Marker(str(d / "marker")), protocol=0), SafetensorsError,
                          "not a safetensors file"),
    "zip (torch.save) calling os.system": (_zip(), TorchFormatError, "refusing to load global os.system"),
    "zip, not torch's": (_zip("notes.txt", b"hello"), SafetensorsError, "pickled/zip"),
    "header claims a terabyte": (_raw(b"{}", n=TB), SafetensorsError, f"header claims {TB} bytes"),
    "header longer than file": (_raw(b"{}", n=64), SafetensorsError, "truncated"),
    "header not JSON": (_raw(b"{nope"), SafetensorsError, "corrupt safetensors header"),
    "header not UTF-8": (_raw(b"\xff\xfe{}"), SafetensorsError, "corrupt safetensors header"),
    "header a list": (_raw(b"[1, 2]"), SafetensorsError, "not a JSON object"),
    "header nested 100,000 deep": (_raw(_nested(100_000)), SafetensorsError, "nested too deeply"),
    "header int of 5000 digits": (_raw('{"w": {"dtype": "F32", "shape": [' + "9" * 5000 + "]}}"), SafetensorsError,
                                  "corrupt safetensors header"),
    "unknown dtype": (_raw({"w": dict(W, dtype="Q4")}, b"\0" * 8), SafetensorsError, "unsupported dtype 'Q4'"),
    "dtype a list": (_raw({"w": dict(W, dtype=["F32"])}, b"\0" * 8), SafetensorsError, "unsupported dtype"),
    "negative shape": (_raw({"w": dict(W, shape=[-2])}, b"\0" * 8), SafetensorsError, "non-negative integers"),
    "float shape": (_raw({"w": dict(W, shape=[2.0])}, b"\0" * 8), SafetensorsError, "non-negative integers"),
    "shape infinite": (_raw('{"w": {"dtype": "F32", "shape": [Infinity], "data_offsets": [0, 8]}}', b"\0" * 8),
                       SafetensorsError, "non-negative integers"),
    "overflowing shape": (_raw({"w": dict(W, shape=[TB, TB, TB])}, b"\0" * 8), SafetensorsError, "do not fit"),
    "zero-size shape numpy cannot hold": (_raw({"w": {"dtype": "F32", "shape": [0, 1 << 63],
                                                      "data_offsets": [0, 0]}}), SafetensorsError, "shape [0, "),
    "40 dimensions": (_raw({"w": {"dtype": "U8", "shape": [1] * 40, "data_offsets": [0, 1]}}, b"\0"),
                      SafetensorsError, "40 dimensions"),
    "offsets past the end": (_raw({"w": {"dtype": "F64", "shape": [TB], "data_offsets": [0, 8 * TB]}}, b"\0" * 8),
                             SafetensorsError, "truncated"),
    "negative offsets": (_raw({"w": dict(W, data_offsets=[-8, 0])}, b"\0" * 8), SafetensorsError, "do not fit"),
    "offsets a string": (_raw({"w": dict(W, data_offsets="0-8")}, b"\0" * 8), SafetensorsError, "data_offsets"),
    "overlapping tensors": (_raw({"a": W, "b": W}, b"\0" * 8), SafetensorsError, "overlapping"),
    "gap between tensors": (_raw({"a": dict(W, data_offsets=[8, 16])}, b"\0" * 16), SafetensorsError,
                            "non-contiguous"),
    "trailing bytes": (_raw({"w": W}, b"\0" * 12), SafetensorsError, "4 trailing bytes"),
    "entry a string": (_raw({"w": "F32"}), SafetensorsError, "not a JSON object"),
    "__metadata__ a list": (_raw({"__metadata__": [1]}), SafetensorsError, "__metadata__"),
    "structure not a string": (_edited(_set(["__metadata__", "structure"], {"__list__": []}), False),
                               SafetensorsError, "__metadata__ must be a JSON object of strings"),
    "dtype edited F32 -> I32": (_edited(_set(["w", "dtype"], "I32"), False), SafetensorsError, "checksum mismatch"),
    "shape edited [4] -> [2, 2]": (_edited(_set(["w", "shape"], [2, 2]), False), SafetensorsError,
                                   "checksum mismatch"),
    "offsets of two tensors swapped": (_edited(lambda h, m: (h["w"].update(data_offsets=[16, 32]),
                                                             h["i"].update(data_offsets=[0, 16])), False),
                                       SafetensorsError, "checksum mismatch"),
    "saved value edited epoch 3 -> 2": (_edited(lambda h, m: m.update(structure=m["structure"].replace(
        '["epoch",3]', '["epoch",2]')), False), SafetensorsError, "checksum mismatch"),
    "blake3 removed": (_edited(lambda h, m: m.pop("blake3"), False), SafetensorsError, "checksum mismatch"),
    "data byte flipped": (_flip_last("dtorch.v3"), SafetensorsError, "checksum mismatch"),
    "blake3 of the wrong length": (_edited(_set(["__metadata__", "blake3"], "ab" * 16), False), SafetensorsError,
                                   "checksum mismatch"),
    "blake3 renamed to an unknown checksum": (_edited(_rename("blake3", "xxh3"), False), SafetensorsError,
                                              "unknown checksum 'xxh3' in a dtorch.v3 file (its checksum is 'blake3')"),
    "v3 with a sha256 instead of its blake3": (_edited(_rename("blake3", "sha256"), False), SafetensorsError,
                                               "unknown checksum 'sha256' in a dtorch.v3 file"),
    "v2: data byte flipped": (_flip_last("dtorch.v2"), SafetensorsError, "checksum mismatch"),
    "v2: dtype edited F32 -> I32": (_edited(_set(["w", "dtype"], "I32"), False, "dtorch.v2"), SafetensorsError,
                                    "checksum mismatch"),
    "v2: sha256 removed": (_edited(lambda h, m: m.pop("sha256"), False, "dtorch.v2"), SafetensorsError,
                           "checksum mismatch"),
    "v2 relabelled v3 (sha256 kept)": (_edited(_set(["__metadata__", "format"], "dtorch.v3"), False, "dtorch.v2"),
                                       SafetensorsError, "unknown checksum 'sha256' in a dtorch.v3 file"),
    "v3 relabelled v2 (blake3 kept)": (_edited(_set(["__metadata__", "format"], "dtorch.v2"), False),
                                       SafetensorsError, "unknown checksum 'blake3' in a dtorch.v2 file"),
    "old format v1": (_edited(_set(["__metadata__", "format"], "dtorch.v1"), True), SafetensorsError,
                      "older dtorch (format dtorch.v1)"),
    "future format": (_edited(_set(["__metadata__", "format"], "dtorch.v9"), True), SafetensorsError,
                      "unknown dtorch format 'dtorch.v9'"),
    "structure not JSON": (_edited(_structure("{oops"), True), SafetensorsError, "corrupt dtorch 'structure'"),
    "structure missing": (_edited(lambda h, m: m.pop("structure"), True), SafetensorsError, "lacks 'structure'"),
    "structure nested 100,000 deep": (_edited(_structure(_nested(100_000)), True), SafetensorsError,
                                      "nested too deeply"),
    "structure nested 300 levels": (_edited(_structure('{"__list__":[' * 300 + "]}" * 300), True),
                                    SafetensorsError, "nested more than 200 levels"),
    "structure a bare list": (_edited(_structure("[1, 2]"), True), SafetensorsError, "unknown structure entry"),
    "structure unknown tag": (_edited(_structure('{"__set__": [1]}'), True), SafetensorsError,
                              "unknown structure entry"),
    "structure two tags": (_edited(_structure('{"__list__": [], "__tuple__": []}'), True), SafetensorsError,
                           "unknown structure entry"),
    "structure dict item not a pair": (_edited(_structure('{"__dict__": [["a"]]}'), True), SafetensorsError,
                                       "bad dict item"),
    "structure dict key a list": (_edited(_structure('{"__dict__": [[["a"], 1]]}'), True), SafetensorsError,
                                  "bad dict item"),
    "structure list not a list": (_edited(_structure('{"__list__": 5}'), True), SafetensorsError, "not a list"),
    "structure names a missing tensor": (_edited(_structure('{"__tensor__": "nope"}'), True), SafetensorsError,
                                         "missing tensor 'nope'"),
    "structure tensor name a list": (_edited(_structure('{"__tensor__": ["w"]}'), True), SafetensorsError,
                                     "missing tensor"),
    "structure float code": (_edited(_structure('{"__float__": "__import__(\'os\')"}'), True), SafetensorsError,
                             "bad non-finite float"),
    "devices not a dict": (_edited(_set(["__metadata__", "devices"], "[1]"), True), SafetensorsError,
                           "'devices' metadata is list"),
    "device unknown": (_edited(_set(["__metadata__", "devices"], '{"w": "banana"}'), True), SafetensorsError,
                       "bad device entry"),
    "requires_grad on an int tensor": (_edited(_set(["__metadata__", "requires_grad"], '["i"]'), True),
                                       SafetensorsError, "not a floating-point tensor"),
    "requires_grad not a list": (_edited(_set(["__metadata__", "requires_grad"], '"w"'), True), SafetensorsError,
                                 "'requires_grad' metadata is str"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_file_is_refused_with_a_clear_error(tmp_path, case):
    content, kind, fragment = CASES[case]
    path = tmp_path / "crafted.pt"
    path.write_bytes(content(tmp_path) if callable(content) else content)
    with pytest.raises(kind) as info:
        dtorch.load(path)
    assert type(info.value) is kind and str(path) in str(info.value) and fragment in str(info.value)
    assert not (tmp_path / "marker").exists()      # a pickle never runs
    with pytest.raises(kind, match="<file object>|crafted.pt"):   # the same from an open file object
        dtorch.load(io.BytesIO(path.read_bytes()))


def test_table_is_big_enough_and_the_good_file_loads():
    assert len(CASES) >= 40
    back = dtorch.load(io.BytesIO(_good()))
    assert back["epoch"] == 3 and back["w"].tolist() == [0, 1, 2, 3]
    for fmt in serialization.DIGESTS:
        assert dtorch.load(io.BytesIO(_good(fmt)))["i"].tolist() == [0, 1]
        resigned = dtorch.load(io.BytesIO(_edited(lambda h, m: None, True, fmt)))   # _edited's re-signing is faithful
        assert resigned["epoch"] == 3


def test_directory_and_missing_file_are_os_errors(tmp_path):
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        dtorch.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        dtorch.load(tmp_path / "nope.pt")


def test_dev_zero_and_unbounded_streams_end_quickly():
    with pytest.raises(SafetensorsError, match="/dev/zero: corrupt safetensors header"):
        dtorch.load("/dev/zero")

    class Endless(io.RawIOBase):
        def __init__(self, head: bytes) -> None:
            self.head, self.name = head, "endless"

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            n = len(b)
            take, self.head = self.head[:n], self.head[n:]
            b[:len(take)] = take
            b[len(take):n] = bytes(n - len(take))
            return n

    huge = _raw({"w": {"dtype": "U8", "shape": [1 << 60], "data_offsets": [0, 1 << 60]}})
    with pytest.raises(SafetensorsError, match="endless: the header claims .* more than this machine's memory"):
        dtorch.load(Endless(huge))
    small = _raw({"w": {"dtype": "U8", "shape": [1 << 20], "data_offsets": [0, 1 << 20]}})
    with pytest.raises(SafetensorsError, match="endless: .*trailing bytes"):
        dtorch.load(Endless(small))


def test_text_mode_file_object(tmp_path):
    path = tmp_path / "t.pt"
    path.write_bytes(_good())
    with open(path, encoding="latin-1") as f, pytest.raises(SafetensorsError, match="binary mode"):
        dtorch.load(f)


def test_pipe_reads_only_what_the_header_lists(tmp_path):
    r, w = os.pipe()
    data = _good()
    os.write(w, data + b"x" * 100)
    os.close(w)
    with os.fdopen(r, "rb") as f, pytest.raises(SafetensorsError, match="trailing bytes"):
        dtorch.load(f)

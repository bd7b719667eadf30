"""dtorch.save's file formats: dtorch.v3 (a blake3 over the header and the data) is written; dtorch.v2 (a sha256),
which dtorch wrote before, is still read. Crafted v2/v3 files: tests/test_crafted_files.py."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import struct

import blake3
import numpy as np
import pytest

import dtorch
from dtorch import serialization
from dtorch._safetensors import SafetensorsError
from dtorch.utils import _fileio

# What the previous dtorch's save (format dtorch.v2, at commit e3ee54e) wrote for _v2_object()
_V2_FILE = base64.b64decode(
    "KAIAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJmb3JtYXQiOiJkdG9yY2gudjIiLCJzdHJ1Y3R1cmUiOiJ7XCJfX2RpY3RfX1wiOltb"
    "XCJlcG9jaFwiLDNdLFtcIm5hbWVcIixcInYyXCJdLFtcIndcIix7XCJfX3RlbnNvcl9fXCI6XCJ3XCJ9XSxbXCJpXCIse1wiX190"
    "ZW5zb3JfX1wiOlwiaVwifV0sW1wibmVzdGVkXCIse1wiX190dXBsZV9fXCI6W3tcIl9fdGVuc29yX19cIjpcIm5lc3RlZC4wXCJ9"
    "LHtcIl9fbGlzdF9fXCI6W251bGwsdHJ1ZSx7XCJfX2Zsb2F0X19cIjpcImluZlwifV19XX1dXX0iLCJyZXF1aXJlc19ncmFkIjoi"
    "W1wid1wiXSIsInNoYTI1NiI6IjMyNzVhZWE2YzVlNGE4NWYwNmE4Nzk1MjY3OGRkOGI2NjU0YjY3ZjFiZjExYjc1NGFmMmZkNmNh"
    "MWE4ZTIwODMifSwidyI6eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbMiwzXSwiZGF0YV9vZmZzZXRzIjpbMCwyNF19LCJpIjp7ImR0"
    "eXBlIjoiSTY0Iiwic2hhcGUiOlszXSwiZGF0YV9vZmZzZXRzIjpbMjQsNDhdfSwibmVzdGVkLjAiOnsiZHR5cGUiOiJGMzIiLCJz"
    "aGFwZSI6WzJdLCJkYXRhX29mZnNldHMiOls0OCw1Nl19fSAAAAAAAACAPwAAAEAAAEBAAACAQAAAoEAAAAAAAAAAAAEAAAAAAAAA"
    "AgAAAAAAAAAAAMA/AAAAwA==")


def _v2_object() -> dict:
    return {"epoch": 3, "name": "v2", "w": dtorch.nn.Parameter(dtorch.arange(6, dtype=dtorch.float32).reshape(2, 3)),
            "i": dtorch.arange(3), "nested": (dtorch.tensor([1.5, -2.0]), [None, True, math.inf])}


def _header(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _check_v2_object(back: dict) -> None:
    assert back["epoch"] == 3 and back["name"] == "v2" and back["i"].tolist() == [0, 1, 2]
    assert back["w"].tolist() == [[0, 1, 2], [3, 4, 5]] and back["w"].requires_grad and not back["i"].requires_grad
    t, rest = back["nested"]
    assert t.tolist() == [1.5, -2.0] and rest == [None, True, math.inf]


def test_save_writes_v3_with_a_blake3_over_the_header_and_the_data(tmp_path):
    obj = {"step": 4, "w": dtorch.randn(5, 3), "b": dtorch.arange(7)}
    dtorch.save(obj, tmp_path / "a.pt")
    raw = (tmp_path / "a.pt").read_bytes()
    header, data = _header(raw)
    meta = header.pop("__metadata__")
    assert meta["format"] == "dtorch.v3" and "sha256" not in meta
    # the documented definition, computed here from the file alone
    table = sorted([k, v["dtype"], v["shape"], *v["data_offsets"]] for k, v in header.items())
    rest = {k: v for k, v in meta.items() if k != "blake3"}
    h = blake3.blake3(json.dumps({"metadata": rest, "tensors": table}, sort_keys=True, separators=(",", ":")).encode())
    h.update(data)
    assert meta["blake3"] == h.hexdigest()
    assert serialization.save_to_bytes(obj) == raw      # a file object gets the same bytes as a path
    back = dtorch.load(tmp_path / "a.pt")
    assert back["step"] == 4 and back["b"].tolist() == list(range(7))
    assert np.array_equal(back["w"].numpy(), obj["w"].numpy())


def test_a_v2_file_the_previous_dtorch_wrote_still_loads(tmp_path):
    _check_v2_object(dtorch.load(io.BytesIO(_V2_FILE)))
    (tmp_path / "old.pt").write_bytes(_V2_FILE)
    _check_v2_object(dtorch.load(tmp_path / "old.pt"))
    buf = io.BytesIO()
    serialization._save(_v2_object(), buf, "dtorch.v2")
    assert buf.getvalue() == _V2_FILE               # the tests' v2 writer is the previous code path, byte for byte
    bad = bytearray(_V2_FILE)
    bad[-3] ^= 0x10
    (tmp_path / "bad.pt").write_bytes(bytes(bad))
    with pytest.raises(SafetensorsError, match="bad.pt: checksum mismatch"):
        dtorch.load(tmp_path / "bad.pt")


@pytest.mark.parametrize("fmt", ["dtorch.v2", "dtorch.v3"])
def test_large_files_of_each_format_are_hashed_in_the_helper_thread(tmp_path, fmt):
    """Above THREADED_MIN bytes both the save and the load hash in the helper thread, for either checksum."""
    big = dtorch.arange(_fileio.THREADED_MIN // 8 + 4099, dtype=dtorch.float64)
    path = tmp_path / "big.pt"
    serialization._save({"big": big, "tag": fmt}, path, fmt)
    key = serialization.DIGESTS[fmt][0]
    header, data = _header(path.read_bytes())
    assert header["__metadata__"]["format"] == fmt and len(header["__metadata__"][key]) == 64
    assert len(data) >= _fileio.THREADED_MIN
    back = dtorch.load(path)
    assert back["tag"] == fmt and np.array_equal(back["big"].numpy(), big.numpy())
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(SafetensorsError, match="big.pt: checksum mismatch"):
        dtorch.load(path)


def test_the_v2_checksum_is_a_sha256_of_the_header_and_the_data():
    header, data = _header(_V2_FILE)
    meta = header.pop("__metadata__")
    table = sorted([k, v["dtype"], v["shape"], *v["data_offsets"]] for k, v in header.items())
    rest = {k: v for k, v in meta.items() if k != "sha256"}
    h = hashlib.sha256(json.dumps({"metadata": rest, "tensors": table}, sort_keys=True,
                                  separators=(",", ":")).encode())
    h.update(data)
    assert meta["sha256"] == h.hexdigest()

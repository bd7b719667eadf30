"""The server-worker frames, the batch queue and the inference routes, without a server."""
from __future__ import annotations

import asyncio
import io
import json
import struct

import pytest

from dtorch.serve.api import route
from dtorch.serve.batching import Job, JobQueue, next_batch
from dtorch.serve.protocol import MAX_HEADER, MAX_PAYLOAD, FrameParser, ProtocolError, encode, read_frame
from dtorch.serve.registry import ServeError


def test_frames_survive_any_split_of_the_stream():
    frames = [encode({"op": "predict", "n": i}, [b"x" * i, b"\x00\x01", b""]) for i in range(3)]
    stream = b"".join(frames)
    for piece in (1, 7, len(stream)):
        parser, got = FrameParser(), []
        for i in range(0, len(stream), piece):
            got += parser.feed(stream[i:i + piece])
        assert got == [({"op": "predict", "n": i}, [b"x" * i, b"\x00\x01", b""]) for i in range(3)]
        assert parser.pending() == 0
    assert read_frame(io.BytesIO(stream)) == ({"op": "predict", "n": 0}, [b"", b"\x00\x01", b""])


@pytest.mark.parametrize("prefix, message", [
    (struct.pack("<IQ", MAX_HEADER + 1, 0), "frame header of"),
    (struct.pack("<IQ", 2, MAX_PAYLOAD + 1), "frame payload of"),
])
def test_an_oversized_frame_is_refused_before_it_is_read(prefix, message):
    with pytest.raises(ProtocolError, match=message):
        FrameParser().feed(prefix)
    with pytest.raises(ProtocolError, match=message):
        read_frame(io.BytesIO(prefix))


@pytest.mark.parametrize("head, payload, message", [
    (b"not json", b"", "malformed frame header"),
    (b'{"op": "x"}', b"", "malformed frame header"),                     # no "parts"
    (json.dumps({"parts": [[0, 5]]}).encode(), b"abc", "outside the 3-byte payload"),
    (json.dumps({"parts": [[-1, 1]]}).encode(), b"abc", "outside"),
    (json.dumps({"parts": [["0", 1]]}).encode(), b"abc", "outside"),
    (json.dumps({"parts": 7}).encode(), b"", "malformed frame header"),
])
def test_a_corrupt_frame_is_a_protocol_error(head, payload, message):
    frame = struct.pack("<IQ", len(head), len(payload)) + head + payload
    with pytest.raises(ProtocolError, match=message):
        FrameParser().feed(frame)


def test_a_stream_that_ends_inside_a_frame():
    frame = encode({"op": "result"}, [b"12345"])
    with pytest.raises(ProtocolError, match="ended inside a frame"):
        read_frame(io.BytesIO(frame[:-2]))
    parser = FrameParser()
    assert parser.feed(frame[:-2]) == [] and parser.pending() == len(frame) - 2


def _jobs(loop: asyncio.AbstractEventLoop, n: int) -> list[Job]:
    return [Job([("body", "application/json", b"%d" % i)], {}, lambda reply: None) for i in range(n)]


def test_a_full_batch_does_not_wait_for_the_delay():
    async def main() -> None:
        queue = JobQueue(100)
        jobs = _jobs(asyncio.get_running_loop(), 10)
        taker = asyncio.create_task(next_batch(queue, 4, 60_000))     # a minute's delay: only a full batch ends it
        await asyncio.sleep(0)
        for job in jobs:
            queue.put(job)
        assert await asyncio.wait_for(taker, 10) == jobs[:4]
        jobs[4].answer(None)                                           # answered (timed out) while queued: skipped
        assert await asyncio.wait_for(next_batch(queue, 4, 60_000), 10) == jobs[5:9]
        assert len(queue) == 1
    asyncio.run(main())


def test_a_batch_closes_after_the_delay_with_what_came():
    async def main() -> None:
        queue = JobQueue(100)
        jobs = _jobs(asyncio.get_running_loop(), 3)
        for job in jobs:
            queue.put(job)
        assert await asyncio.wait_for(next_batch(queue, 64, 20), 10) == jobs
        assert queue.fillers == []
        taker = asyncio.create_task(next_batch(queue, 64, 60_000))
        await asyncio.sleep(0)
        queue.put(jobs[0])
        await asyncio.sleep(0.01)
        taker.cancel()                                                 # a stopping worker puts its job back
        with pytest.raises(asyncio.CancelledError):
            await taker
        assert len(queue) == 1 and queue.fillers == []
    asyncio.run(main())


@pytest.mark.parametrize("method, path, want", [
    ("GET", "/ping", ("ping", [])), ("GET", "/predictions", ("list", [])),
    ("POST", "/predictions/mlp", ("predict", ["mlp"])), ("PUT", "/predictions/mlp/2.0", ("predict", ["mlp", "2.0"])),
    ("POST", "/predictions/mlp/", ("predict", ["mlp"])),
])
def test_inference_routes(method, path, want):
    assert route(method, path) == want


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/", 404), ("GET", "/nope", 404), ("POST", "/predictions/a/b/c", 404), ("POST", "/predictions//b", 404),
    ("GET", "/predictions/mlp", 405), ("POST", "/ping", 405), ("DELETE", "/predictions", 405),
])
def test_inference_routes_refused(method, path, status):
    with pytest.raises(ServeError) as e:
        route(method, path)
    assert e.value.status == status


@pytest.mark.parametrize("fast", [True, False])
def test_json_codec_gives_the_standard_librarys_results(fast, monkeypatch):
    from dtorch.serve import codec
    if not fast:
        monkeypatch.setattr(codec, "orjson", None)
    elif codec.orjson is None:
        pytest.skip("orjson is not installed (the serve extra's fast JSON)")
    assert codec.loads(b'{"data": [1, 2.5, -3e-2]}') == {"data": [1, 2.5, -0.03]}
    assert [str(v) for v in codec.loads(b"[NaN, Infinity]")] == ["nan", "inf"]           # json's extensions
    with pytest.raises(json.JSONDecodeError):
        codec.loads(b"[1, ")
    with pytest.raises(UnicodeDecodeError):
        codec.loads(b'"\xff\xfe\xfa"')
    assert json.loads(codec.dumps({1: "a", "b": [0.1, 2**70]})) == {"1": "a", "b": [0.1, 2**70]}
    assert codec.dumps([0.6369616985321045, "x"]) == b'[0.6369616985321045,"x"]'
    assert codec.dumps({"a": frozenset([2, 1])}, default=sorted) == b'{"a":[1,2]}'
    with pytest.raises(TypeError):
        codec.dumps(object())

"""CUDA streams and events over CuPy: ``Stream``, ``Event``, ``stream(s)``, ``current_stream()``."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .._device import require_cupy


class Stream:
    """A CUDA stream (``dtorch.cuda.Stream(priority=0)``); ``Stream(_wrap=s)`` wraps a cupy stream."""

    def __init__(self, device=None, priority: int = 0, _wrap=None) -> None:
        cp = require_cupy()
        self._s = _wrap if _wrap is not None else cp.cuda.Stream(non_blocking=True, priority=priority)

    @property
    def cuda_stream(self) -> int:
        """The raw ``cudaStream_t`` handle."""
        return self._s.ptr

    def synchronize(self) -> None:
        self._s.synchronize()

    def query(self) -> bool:
        """True when every operation queued on the stream has completed."""
        return self._s.done

    def wait_event(self, event: "Event") -> None:
        self._s.wait_event(event._e)

    def wait_stream(self, stream: "Stream") -> None:
        self.wait_event(stream.record_event())

    def record_event(self, event: "Event | None" = None) -> "Event":
        event = Event() if event is None else event
        event.record(self)
        return event

    def __enter__(self) -> "Stream":
        self._s.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._s.__exit__(*exc)

    def __eq__(self, other) -> bool:
        return isinstance(other, Stream) and self.cuda_stream == other.cuda_stream

    def __hash__(self) -> int:
        return hash(self.cuda_stream)

    def __repr__(self) -> str:
        return f"<dtorch.cuda.Stream cuda_stream={self.cuda_stream:#x}>"


class Event:
    """A CUDA event; ``enable_timing=True`` lets :meth:`elapsed_time` read it."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False) -> None:
        cp = require_cupy()
        self.enable_timing = enable_timing
        self._e = cp.cuda.Event(block=blocking, disable_timing=not enable_timing, interprocess=interprocess)

    def record(self, stream: Stream | None = None) -> None:
        self._e.record((stream or current_stream())._s)

    def wait(self, stream: Stream | None = None) -> None:
        (stream or current_stream()).wait_event(self)

    def query(self) -> bool:
        return self._e.done

    def synchronize(self) -> None:
        self._e.synchronize()

    def elapsed_time(self, end_event: "Event") -> float:
        """Milliseconds from this event to ``end_event`` (both recorded, both with timing)."""
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        return float(require_cupy().cuda.get_elapsed_time(self._e, end_event._e))

    def __repr__(self) -> str:
        return f"<dtorch.cuda.Event enable_timing={self.enable_timing}>"


def current_stream(device=None) -> Stream:
    """The stream dtorch's CUDA ops are queued on (set with ``with dtorch.cuda.stream(s)``)."""
    return Stream(_wrap=require_cupy().cuda.get_current_stream())


def default_stream(device=None) -> Stream:
    """The legacy default (null) stream."""
    return Stream(_wrap=require_cupy().cuda.Stream.null)


@contextmanager
def stream(s: Stream | None) -> Iterator[Stream | None]:
    """Queue the CUDA work inside the block on ``s`` (``None``: no change)."""
    if s is None:
        yield None
        return
    with s:
        yield s

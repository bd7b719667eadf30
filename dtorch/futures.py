"""torch.futures: a small Future: the value of an asynchronous collective, with ``then`` chaining.

``Work.get_future()`` is ``work_future(work)``: its value is ``work.result()``, the list of output
tensors, as torch's.
"""
from __future__ import annotations

from typing import Any, Callable

_UNSET = object()


class Future:
    """Completes by calling ``wait_fn`` once (or by ``set_result``); ``poll`` drives progress without blocking."""

    def __init__(self, wait_fn: Callable[[], Any] | None = None, poll: Callable[[], bool] | None = None) -> None:
        self._wait_fn = wait_fn
        self._poll = poll
        self._value = _UNSET

    def done(self) -> bool:
        if self._value is not _UNSET:
            return True
        return self._poll() if self._poll is not None else False

    def wait(self) -> Any:
        if self._value is _UNSET:
            if self._wait_fn is None:
                raise RuntimeError("Future.wait: the future has no result and nothing to wait for")
            self._value = self._wait_fn()
        return self._value

    def value(self) -> Any:
        return self.wait()

    def set_result(self, result: Any) -> None:
        self._value = result

    def then(self, callback: Callable[["Future"], Any]) -> "Future":
        """A future whose value is ``callback(self)`` once this one completed."""
        def run() -> Any:
            self.wait()
            return callback(self)

        return Future(run, self.done)


def work_future(work) -> Future:
    """The future of an ``async_op=True`` collective: value is ``work.result()`` (the output tensors)."""
    return Future(work.result, work.is_completed)

"""detect_anomaly / set_detect_anomaly: name the forward op whose backward produced NaN."""
from __future__ import annotations

import functools
import traceback

_enabled = [False]


def is_anomaly_enabled() -> bool:
    return _enabled[0]


class set_detect_anomaly:
    """Sets anomaly mode at once (usable as a function) and restores it on exit."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev = _enabled[0]
        _enabled[0] = bool(mode)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        _enabled[0] = self.prev


class detect_anomaly:
    """Record forward stacks and raise when a backward function returns NaN (context or decorator)."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> None:
        self.prev = _enabled[0]
        _enabled[0] = True

    def __exit__(self, *exc) -> None:
        _enabled[0] = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            with detect_anomaly():
                return fn(*a, **k)

        return wrapper


def record(node) -> None:
    node._trace = "".join(traceback.format_stack()[:-3])


def check(node, in_grads) -> None:
    for i, g in enumerate(in_grads):
        if g is None:
            continue
        data = getattr(g, "_data", g)
        xp = __import__("numpy") if type(data).__module__.startswith("numpy") else __import__("cupy")
        if data.dtype.kind in "fV" and bool(xp.isnan(data).any()):
            msg = f"Function '{node.name()}' returned nan values in its {i}th output."
            if node._trace:
                msg += "\nTraceback of forward call that caused the error:\n" + node._trace
            raise RuntimeError(msg)

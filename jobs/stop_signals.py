"""SIGUSR1 / SIGTERM on a rank: remember them, so the training loop checkpoints and stops at a step boundary.

The worker calls ``install()`` right after MPI starts: MPICH installs its own C handler for
SIGUSR1 during MPI_Init, which would swallow the signal if ours came first. The handlers only
record the signal; ``requested()`` reads it. Every rank checks that flag each step and the ranks
agree (an all-reduce) on the step after which all of them save and exit (jobs/training.py).
A second SIGTERM while a stop is pending ends the process at once (exit status 143).
"""
from __future__ import annotations

import os
import signal

STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)
_received: list[int] = []


def _handler(signum: int, frame: object) -> None:
    if _received and signum == signal.SIGTERM:
        os._exit(128 + signum)
    _received.append(signum)


def install() -> None:
    """Record SIGUSR1 and SIGTERM from now on instead of dying."""
    for s in STOP_SIGNALS:
        signal.signal(s, _handler)


def requested() -> str | None:
    """The name of the first stop signal received ('SIGUSR1', 'SIGTERM'), or None."""
    return signal.Signals(_received[0]).name if _received else None


def reset() -> None:
    """Forget received signals (tests)."""
    _received.clear()

"""dtorch.backends.cudnn: torch's cuDNN flags, kept so torch programs that set them run.

dtorch runs no cuDNN kernels (its convolutions are CuPy matmuls, governed by
``backends.cuda.matmul``), so ``is_available()`` is False, ``version()`` None, and the flags
only hold what a program sets.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["allow_tf32", "benchmark", "benchmark_limit", "deterministic", "enabled", "flags", "fp32_precision",
           "is_acceptable", "is_available", "version"]

enabled = True
benchmark = False
benchmark_limit = 10
deterministic = False
allow_tf32 = True
fp32_precision = "none"


def is_available() -> bool:
    return False


def version() -> int | None:
    return None


def is_acceptable(tensor) -> bool:
    return False


@contextlib.contextmanager
def flags(enabled: bool = False, benchmark: bool = False, benchmark_limit: int = 10, deterministic: bool = False,
          allow_tf32: bool = True, fp32_precision: str = "none") -> Iterator[None]:
    """Set the flags inside the block, as torch.backends.cudnn.flags."""
    names = ("enabled", "benchmark", "benchmark_limit", "deterministic", "allow_tf32", "fp32_precision")
    new = dict(zip(names, (enabled, benchmark, benchmark_limit, deterministic, allow_tf32, fp32_precision)))
    g = globals()
    old = {n: g[n] for n in names}
    g.update(new)
    try:
        yield
    finally:
        g.update(old)

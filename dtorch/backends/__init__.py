"""dtorch.backends: torch's backend flags (``cuda.matmul.allow_tf32``, ``cudnn.benchmark``, ``mps.is_available()``).

``cuda`` holds the flags with an effect on CuPy; ``cudnn`` and ``mps`` answer what torch programs ask.
"""
from __future__ import annotations

from . import cuda, cudnn, mps  # noqa: F401

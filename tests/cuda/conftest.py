"""``gpu`` fixture: skip unless CuPy and an NVIDIA GPU are present."""
from __future__ import annotations

import pytest

import dtorch


@pytest.fixture
def cp():
    if not dtorch.cuda.is_available():
        pytest.skip("no CUDA device (cupy + NVIDIA GPU)")
    import cupy

    return cupy

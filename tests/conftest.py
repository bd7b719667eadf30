"""Shared fixtures: the devices to run on (cpu, plus cuda where a GPU is present), seeds and default dtypes."""
from __future__ import annotations

import importlib.util
import sys

import pytest

import dtorch


def _devices() -> list:
    params = [pytest.param("cpu", id="cpu")]
    params.append(pytest.param("cuda", id="cuda", marks=[
        pytest.mark.cuda,
        pytest.mark.skipif(not dtorch.cuda.is_available(), reason="no CUDA device (cupy + NVIDIA GPU)"),
    ]))
    return params


@pytest.fixture(params=_devices())
def device(request) -> str:
    """Parametrize a test over every available device: ``def test_x(device): ...``."""
    return request.param


@pytest.fixture
def torch():
    """PyTorch, the oracle of the parity tests: ``def test_x(torch): ...`` skips where it is not installed."""
    from tests.oracle import torch_or_skip

    return torch_or_skip()


@pytest.fixture(autouse=True)
def _seed_and_restore_defaults():
    dtorch.manual_seed(0)
    yield
    dtorch.set_default_dtype(dtorch.float32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_default_dtype(torch.float32)


@pytest.fixture
def float64_default() -> None:
    """float64 as the default dtype of dtorch and (where installed) torch for one test; both go back after."""
    dtorch.set_default_dtype(dtorch.float64)
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_default_dtype(torch.float64)

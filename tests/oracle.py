"""Helpers for parity tests against real PyTorch (an oracle only; skipped without torch)."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch


def torch_or_skip():
    return pytest.importorskip("torch")


def to_torch(t: dtorch.Tensor, requires_grad: bool | None = None):
    torch = torch_or_skip()
    arr = t.detach().cpu().numpy()
    out = torch.from_numpy(arr.copy())
    rg = t.requires_grad if requires_grad is None else requires_grad
    if rg:
        out.requires_grad_(True)
    return out


def to_numpy(x) -> np.ndarray:
    if isinstance(x, dtorch.Tensor):
        return x.detach().cpu().numpy()
    return x.detach().cpu().numpy()


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-6, check_dtype: bool = True) -> None:
    """Compare a dtorch tensor with a torch tensor (or numpy array): values, shape and dtype."""
    a = to_numpy(actual)
    e = expected if isinstance(expected, np.ndarray) else to_numpy(expected)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    if check_dtype:
        assert a.dtype == e.dtype, f"dtype {a.dtype} != {e.dtype}"
    np.testing.assert_allclose(a.astype(np.float64) if a.dtype != np.bool_ else a,
                               e.astype(np.float64) if e.dtype != np.bool_ else e, rtol=rtol, atol=atol)

"""ReLU's and LeakyReLU's C kernels (_ops/_pointwise_c.py): the values of numpy's passes, NaN and signed zeros
included, for float32 and float64; arrays they do not serve (small, strided, other dtypes) stay with numpy; the
ops agree with torch either way."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch._dispatch import ARRAY_NS
from dtorch._ops import _pointwise_c, activation
from tests.oracle import check_op

N = 2 * _pointwise_c.MIN_SIZE + 3  # odd: the loops' tails


class _Ctx:
    def __init__(self, slope: float) -> None:
        self._args = {"negative_slope": slope}


def _numpy(monkeypatch):
    monkeypatch.setattr(_pointwise_c.KERNELS, "fns", {})


def _inputs(dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(N).astype(dtype)
    a[:6] = [np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-45]
    return a, rng.standard_normal(N).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.2, 0.01, 1.0])
def test_leaky_equals_numpy(dtype, slope, monkeypatch):
    a, g = _inputs(dtype)
    y_c = activation._leaky_fwd(a, slope)
    (d_c,) = activation._leaky_bw(ARRAY_NS, _Ctx(slope), g, a)
    assert _pointwise_c.leaky(a, slope) is not None
    _numpy(monkeypatch)
    assert _pointwise_c.leaky(a, slope) is None
    y_np = activation._leaky_fwd(a, slope)
    (d_np,) = activation._leaky_bw(ARRAY_NS, _Ctx(slope), g, a)
    assert y_c.dtype == d_c.dtype == dtype
    np.testing.assert_array_equal(y_c, y_np)
    np.testing.assert_array_equal(np.signbit(y_c), np.signbit(y_np))
    np.testing.assert_array_equal(d_c, d_np)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_grad_is_thresholded_gradient(dtype, monkeypatch):
    out, g = _inputs(dtype)
    out = np.maximum(out, 0)  # a ReLU result: NaN, zeros, inf
    (d_c,) = activation._relu_bw(ARRAY_NS, None, g, out)
    _numpy(monkeypatch)
    (d_np,) = activation._relu_bw(ARRAY_NS, None, g, out)
    np.testing.assert_array_equal(d_c, d_np)  # as values: numpy's g * 0 may be -0.0 where the kernel writes 0
    assert d_c[0] == g[0] and d_c[1] == 0  # a NaN result passes the gradient, a zero stops it


def test_unserved_arrays_fall_back():
    a = np.ones(N, np.float32)
    assert _pointwise_c.leaky(a[::2], 0.2) is None  # strided
    assert _pointwise_c.leaky(a[:100], 0.2) is None  # small
    assert _pointwise_c.leaky(a.astype(np.float16), 0.2) is None
    assert _pointwise_c.relu_grad(a, np.ones(N, np.float64)) is None  # mixed dtypes


@pytest.mark.parametrize("inplace", [False, True])
def test_leaky_relu_large_matches_torch(inplace, torch):
    x = dtorch.randn(4, 16, 32, 32, dtype=dtorch.float64)
    check_op(lambda t: F.leaky_relu(t * 1, 0.2, inplace), lambda t: torch.nn.functional.leaky_relu(t * 1, 0.2, inplace),
             inputs=[x])
    check_op(lambda t: F.relu(t * 1, inplace), lambda t: torch.nn.functional.relu(t * 1, inplace), inputs=[x])

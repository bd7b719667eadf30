"""Quantized tensors: quantize_per_tensor / quantize_per_channel against torch (rounding, clamping, repr)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import dtorch

TIES = np.array([0.25, 0.75, -0.25, 1.25, -1.25, 2.5, 100.0, -100.0, 0.0, 1e-9], np.float32)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates its quantized tensors
        yield


@pytest.mark.parametrize("dt,scale,zp", [
    (dt, s, z) for dt in ("qint8", "quint8", "qint32")
    for s, z in ((0.5, 0), (0.5, 1), (0.1, 3), (0.037, -5), (2.0, 100)) if not (dt == "quint8" and z < 0)])
def test_per_tensor_matches_torch(torch, dt, scale, zp):
    x = np.concatenate([TIES, np.random.default_rng(0).standard_normal(50).astype(np.float32) * 4])
    q = dtorch.quantize_per_tensor(dtorch.tensor(x), scale, zp, getattr(dtorch, dt))
    qt = torch.quantize_per_tensor(torch.tensor(x), scale, zp, getattr(torch, dt))
    np.testing.assert_array_equal(q.int_repr().numpy(), qt.int_repr().numpy())
    np.testing.assert_array_equal(q.dequantize().numpy(), qt.dequantize().numpy())
    assert q.is_quantized and not dtorch.tensor(x).is_quantized
    assert (q.q_scale(), q.q_zero_point(), repr(q.dtype)) == (qt.q_scale(), qt.q_zero_point(), f"dtorch.{dt}")
    assert q.int_repr().dtype == getattr(dtorch, {"qint8": "int8", "quint8": "uint8", "qint32": "int32"}[dt])


@pytest.mark.parametrize("dt", ["qint8", "quint8"])
@pytest.mark.parametrize("axis", [0, 1])
def test_per_channel_matches_torch(torch, dt, axis):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 6)) * 3).astype(np.float32)
    x[0, :3] = [0.25, 0.75, 1.25]
    n = x.shape[axis]
    scales = rng.uniform(0.01, 0.5, n)
    zps = rng.integers(0, 20, n)
    q = dtorch.quantize_per_channel(dtorch.tensor(x), dtorch.tensor(scales), dtorch.tensor(zps), axis,
                                    getattr(dtorch, dt))
    qt = torch.quantize_per_channel(torch.tensor(x), torch.tensor(scales), torch.tensor(zps), axis,
                                    getattr(torch, dt))
    np.testing.assert_array_equal(q.int_repr().numpy(), qt.int_repr().numpy())
    np.testing.assert_array_equal(q.dequantize().numpy(), qt.dequantize().numpy())
    np.testing.assert_array_equal(q.q_per_channel_scales().numpy(), qt.q_per_channel_scales().numpy())
    np.testing.assert_array_equal(q.q_per_channel_zero_points().numpy(), qt.q_per_channel_zero_points().numpy())
    assert q.q_per_channel_axis() == axis and q.qscheme() is dtorch.per_channel_affine


def test_repr_is_torchs(torch):
    x = [[-1.0, 0.0], [1.0, 2.0]]
    cases = [
        (lambda lib: lib.quantize_per_tensor(lib.tensor(x[0] + x[1]), 0.1, 10, lib.quint8)),
        (lambda lib: lib.quantize_per_tensor(lib.tensor(1.5), 0.1, 0, lib.qint8)),
        (lambda lib: lib.quantize_per_tensor(lib.tensor(np.linspace(-2, 2, 120, dtype=np.float32).reshape(3, 40)),
                                             0.05, 0, lib.qint8)),
        (lambda lib: lib.quantize_per_channel(lib.tensor(x), lib.tensor([0.1, 0.01], dtype=lib.float64),
                                              lib.tensor([10, 0]), 0, lib.quint8)),
    ]
    for make in cases:
        assert repr(make(dtorch)) == repr(make(torch)).replace("torch.", "dtorch.")


def test_errors_and_refused_arithmetic():
    x = dtorch.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="zero_point 300 is above upper bound"):
        dtorch.quantize_per_tensor(x, 0.1, 300, dtorch.quint8)
    with pytest.raises(RuntimeError, match="zero_point -1 is below lower bound"):
        dtorch.quantize_per_tensor(x, 0.1, -1, dtorch.quint8)
    with pytest.raises(RuntimeError, match="ScalarType Float is not supported in new_qtensor"):
        dtorch.quantize_per_tensor(x, 0.1, 0, dtorch.float32)
    with pytest.raises(TypeError, match="quantize_per_tensor"):
        dtorch.quantize_per_tensor(x, 0.1, 1.5, dtorch.qint8)
    with pytest.raises(RuntimeError, match="length of scales must equal to channel, expected 2 got, 3"):
        dtorch.quantize_per_channel(x.view(2, 1), dtorch.tensor([0.1, 0.2, 0.3]), dtorch.tensor([0, 0, 0]), 0,
                                    dtorch.qint8)
    q = dtorch.quantize_per_tensor(x, 0.1, 0, dtorch.qint8)
    with pytest.raises(NotImplementedError, match="QuantizedCPU"):
        q + q
    with pytest.raises(RuntimeError, match="kPerChannelAffine"):
        q.q_per_channel_scales()
    assert q.dequantize().dtype is dtorch.float32 and not q.requires_grad
    assert dtorch.qint8.itemsize == 1 and dtorch.qint32.itemsize == 4 and not dtorch.quint8.is_floating_point


def test_tensor_scale_and_zero_point_like_torch(torch):
    q = dtorch.quantize_per_tensor(dtorch.tensor([1.0, 2.0]), dtorch.tensor(0.1), dtorch.tensor(3), dtorch.quint8)
    qt = torch.quantize_per_tensor(torch.tensor([1.0, 2.0]), torch.tensor(0.1), torch.tensor(3), torch.quint8)
    assert q.q_scale() == qt.q_scale() and q.q_zero_point() == 3

"""nn.init: exact fans and gains vs torch, statistics of every initialiser, in-place and no-grad behaviour."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dtorch
import dtorch.nn as nn
from dtorch.nn import init

SHAPES = [(5, 3), (8, 4, 3), (16, 8, 3, 3), (4, 2, 2, 3, 5), (1, 7)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fan_in_and_fan_out_match_torch(shape, torch):
    assert init._calculate_fan_in_and_fan_out(dtorch.empty(*shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    for mode in ("fan_in", "fan_out", "FAN_IN"):
        assert init._calculate_correct_fan(dtorch.empty(*shape), mode) == \
            torch.nn.init._calculate_correct_fan(torch.empty(*shape), mode)


def test_fan_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(dtorch.empty(3))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(dtorch.empty(3, 3), mode="fan_avg")


@pytest.mark.parametrize("nonlinearity,param", [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None), ("conv_transpose1d", None),
    ("conv_transpose2d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 3), ("leaky_relu", math.sqrt(5)), ("selu", None),
])
def test_calculate_gain_matches_torch(nonlinearity, param, torch):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(nonlinearity, param)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="negative_slope True not a valid number"):
        init.calculate_gain("leaky_relu", True)


def _stats(t: dtorch.Tensor) -> tuple[float, float, float, float]:
    a = t.detach().cpu().numpy().astype(np.float64)
    return a.mean(), a.std(), a.min(), a.max()


def test_uniform_and_normal(device):
    t = dtorch.empty(200, 500, device=device)
    assert init.uniform_(t, -2.0, 3.0) is t
    mean, std, lo, hi = _stats(t)
    assert -2.0 <= lo and hi <= 3.0 and mean == pytest.approx(0.5, abs=0.02)
    assert std == pytest.approx(5 / math.sqrt(12), rel=0.01)
    init.normal_(t, 1.5, 0.5)
    mean, std, _, _ = _stats(t)
    assert mean == pytest.approx(1.5, abs=0.01) and std == pytest.approx(0.5, rel=0.01)


def test_constants_eye_dirac(torch):
    t = dtorch.empty(3, 4)
    assert init.constant_(t, 0.3) is t and np.allclose(t.numpy(), 0.3)
    assert np.all(init.ones_(t).numpy() == 1) and np.all(init.zeros_(t).numpy() == 0)
    np.testing.assert_array_equal(init.eye_(t).numpy(), np.eye(3, 4))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions"):
        init.eye_(dtorch.empty(2, 2, 2))
    w = init.dirac_(dtorch.empty(4, 2, 3, 3), groups=2)
    np.testing.assert_array_equal(w.numpy(), torch.nn.init.dirac_(torch.empty(4, 2, 3, 3), groups=2).numpy())
    x = dtorch.randn(1, 2, 5, 5)
    same = dtorch.nn.functional.conv2d(x, init.dirac_(dtorch.empty(2, 2, 3, 3)), padding=1) \
        if hasattr(dtorch.nn.functional, "conv2d") else x
    np.testing.assert_allclose(same.numpy(), x.numpy(), atol=1e-6)


def test_xavier(device):
    t = dtorch.empty(300, 200, device=device)
    bound = math.sqrt(6.0 / 500) * 2.0
    init.xavier_uniform_(t, gain=2.0)
    mean, std, lo, hi = _stats(t)
    assert -bound <= lo and hi <= bound and abs(mean) < 0.01 * bound
    assert std == pytest.approx(bound / math.sqrt(3), rel=0.02)
    init.xavier_normal_(t)
    assert _stats(t)[1] == pytest.approx(math.sqrt(2.0 / 500), rel=0.02)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity,a", [("relu", 0), ("leaky_relu", math.sqrt(5)), ("tanh", 0)])
def test_kaiming(mode, nonlinearity, a):
    t = dtorch.empty(64, 32, 5, 5)
    fan = 32 * 25 if mode == "fan_in" else 64 * 25
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    init.kaiming_uniform_(t, a=a, mode=mode, nonlinearity=nonlinearity)
    _, s, lo, hi = _stats(t)
    assert -math.sqrt(3) * std <= lo and hi <= math.sqrt(3) * std and s == pytest.approx(std, rel=0.02)
    init.kaiming_normal_(t, a=a, mode=mode, nonlinearity=nonlinearity)
    assert _stats(t)[1] == pytest.approx(std, rel=0.02)


def test_kaiming_zero_element_is_a_noop_with_warning():
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        init.kaiming_uniform_(dtorch.empty(0, 3))


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04), (1.0, 1.0, 1.5, 2.0),
                                          (0.0, 1.0, 0.0, 0.1)])
def test_trunc_normal_bounds_and_moments(mean, std, a, b, device):
    t = init.trunc_normal_(dtorch.empty(100_000, device=device), mean, std, a, b)
    m, s, lo, hi = _stats(t)
    assert a <= lo and hi <= b
    # the moments of the truncated normal (closed form)
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    z = 0.5 * (math.erf(beta / math.sqrt(2)) - math.erf(alpha / math.sqrt(2)))
    exp_mean = mean + std * (pdf(alpha) - pdf(beta)) / z
    exp_var = std ** 2 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - ((pdf(alpha) - pdf(beta)) / z) ** 2)
    assert m == pytest.approx(exp_mean, abs=0.02 * (b - a))
    assert s == pytest.approx(math.sqrt(exp_var), rel=0.03)


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (4, 3, 2, 2)])
def test_orthogonal(shape, device):
    t = init.orthogonal_(dtorch.empty(*shape, device=device), gain=2.0)
    flat = t.cpu().numpy().reshape(shape[0], -1).astype(np.float64) / 2.0
    if flat.shape[0] <= flat.shape[1]:
        np.testing.assert_allclose(flat @ flat.T, np.eye(flat.shape[0]), atol=1e-5)
    else:
        np.testing.assert_allclose(flat.T @ flat, np.eye(flat.shape[1]), atol=1e-5)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(dtorch.empty(3))


def test_sparse():
    t = init.sparse_(dtorch.empty(10, 50), sparsity=0.3, std=0.5)
    zeros_per_col = (t.numpy() == 0).sum(axis=0)
    assert np.all(zeros_per_col >= 3)
    assert np.abs(t.numpy()).max() > 0


def test_generator_makes_draws_reproducible():
    g1 = dtorch.Generator().manual_seed(7)
    g2 = dtorch.Generator().manual_seed(7)
    for fn in (init.uniform_, init.normal_, init.xavier_uniform_, init.kaiming_normal_, init.trunc_normal_,
               init.orthogonal_):
        a = fn(dtorch.empty(8, 5), generator=g1)
        b = fn(dtorch.empty(8, 5), generator=g2)
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_init_on_parameters_keeps_leaf_and_records_nothing():
    p = nn.Parameter(dtorch.empty(4, 4))
    for fn in (init.uniform_, init.normal_, init.zeros_, init.ones_, init.xavier_normal_, init.kaiming_uniform_,
               init.trunc_normal_, init.orthogonal_, init.eye_):
        assert fn(p) is p
        assert p.is_leaf and p.requires_grad and p.grad_fn is None
    (p * 2).sum().backward()
    assert p.grad is not None


def test_deprecated_aliases_warn():
    with pytest.warns(FutureWarning, match="nn.init.normal` is now deprecated"):
        init.normal(dtorch.empty(2))

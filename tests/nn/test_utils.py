"""nn.utils: clip_grad_norm_ / clip_grad_value_ vs torch, parameters_to_vector / vector_to_parameters."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dtorch
import dtorch.nn as nn
from dtorch.nn.utils import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters
from tests.oracle import assert_close, check_op


def _params_with_grads(lib, grads: list[np.ndarray]):
    params = []
    for g in grads:
        p = lib.nn.Parameter(lib.zeros(*g.shape, dtype=lib.float64 if g.dtype == np.float64 else lib.float32))
        p.grad = lib.from_numpy(g.copy())
        params.append(p)
    return params


def _grads(scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(s) * scale).astype(np.float32) for s in [(3, 4), (5,), (2, 2, 2)]]


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, -math.inf, 0.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, torch):
    grads = _grads(2.0)
    d, t = _params_with_grads(dtorch, grads), _params_with_grads(torch, grads)
    total = clip_grad_norm_(d, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(t, max_norm, norm_type)
    assert isinstance(total, dtorch.Tensor) and total.dim() == 0
    assert_close(total, ttotal, rtol=1e-5)
    for p, tp in zip(d, t):
        assert_close(p.grad, tp.grad, rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_single_tensor_generator_and_missing_grads(torch):
    grads = _grads()
    d, t = _params_with_grads(dtorch, grads), _params_with_grads(torch, grads)
    d.append(nn.Parameter(dtorch.zeros(2)))  # no grad: skipped
    grad_before = d[0].grad
    total = clip_grad_norm_((p for p in d), 0.1)
    ttotal = torch.nn.utils.clip_grad_norm_(iter(t), 0.1)
    assert_close(total, ttotal, rtol=1e-5)
    assert d[0].grad is grad_before  # scaled in place
    single = _params_with_grads(dtorch, grads[:1])[0]
    tsingle = _params_with_grads(torch, grads[:1])[0]
    assert_close(clip_grad_norm_(single, 0.2), torch.nn.utils.clip_grad_norm_(tsingle, 0.2), rtol=1e-5)
    assert_close(single.grad, tsingle.grad, rtol=1e-5)
    assert clip_grad_norm_([], 1.0).item() == 0.0


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf * 0 in numpy
def test_clip_grad_norm_nonfinite():
    p = nn.Parameter(dtorch.zeros(2))
    p.grad = dtorch.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from `parameters` is non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert math.isinf(clip_grad_norm_([p], 1.0).item())


def test_clip_grad_norm_float64_and_device(device):
    g = np.array([3.0, 4.0])
    p = nn.Parameter(dtorch.zeros(2, dtype=dtorch.float64, device=device))
    p.grad = dtorch.from_numpy(g.copy()).to(device)
    total = clip_grad_norm_([p], 1.0)
    assert total.dtype == dtorch.float64 and total.device.type == device
    assert total.item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.cpu().numpy(), g / (5.0 + 1e-6))


def test_clip_grad_value_matches_torch(torch):
    grads = _grads(2.0)
    d, t = _params_with_grads(dtorch, grads), _params_with_grads(torch, grads)
    assert clip_grad_value_(d, 0.7) is None
    torch.nn.utils.clip_grad_value_(t, 0.7)
    for p, tp in zip(d, t):
        assert_close(p.grad, tp.grad)


def test_clip_after_backward_on_a_model():
    m = nn.Sequential(nn.PReLU(3), nn.Tanh())
    m(dtorch.randn(5, 3) * 10).sum().backward()
    clip_grad_norm_(m.parameters(), 1e-3)
    assert sum(float((p.grad * p.grad).sum()) for p in m.parameters()) ** 0.5 <= 1e-3 + 1e-9


def test_parameters_to_vector_and_back(torch):
    d = [nn.Parameter(dtorch.randn(2, 3)), nn.Parameter(dtorch.randn(4))]
    vec = check_op(lambda *ps: parameters_to_vector(ps), lambda *ps: torch.nn.utils.parameters_to_vector(ps),
                   inputs=d)
    assert vec.requires_grad
    vec.sum().backward()
    assert all(np.all(p.grad.numpy() == 1) for p in d)
    new = dtorch.arange(10, dtype=dtorch.float32)
    vector_to_parameters(new, d)
    np.testing.assert_array_equal(d[0].detach().numpy(), np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(d[1].detach().numpy(), np.arange(6, 10))
    assert isinstance(d[0], nn.Parameter)
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: list"):
        vector_to_parameters([1.0], d)

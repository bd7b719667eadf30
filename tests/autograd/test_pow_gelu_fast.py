"""The product/root kernels of ``x ** n`` and the few-pass GELU against torch: values at zero, negative bases,
infinities and NaN, float32 tolerance, float64 gradients and second derivatives."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dtorch
from tests.oracle import TOL, check_grads, check_op, to_torch, torch_or_skip

EXPONENTS = [-4, -3, -2, -1, -0.5, 0, 0.5, 1, 2, 3, 4, 2.5, 3.0, -2.0]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 1e-20, -1e-20, 1e20, -1e20, math.inf, -math.inf, math.nan]


def _specials(dtype):
    return dtorch.tensor(SPECIAL, dtype=dtype)


@pytest.mark.parametrize("dtype", [dtorch.float32, dtorch.float64])
@pytest.mark.parametrize("e", EXPONENTS)
def test_pow_scalar_values_match_torch_at_special_points(dtype, e):
    torch = torch_or_skip()
    x = _specials(dtype)
    with np.errstate(all="ignore"):
        ours = (x ** e).numpy()
    theirs = (to_torch(x) ** e).numpy()
    np.testing.assert_allclose(ours, theirs, equal_nan=True, **TOL[str(dtype).split(".")[-1]])
    assert torch.pow(to_torch(x), e).dtype == torch.float32 if dtype is dtorch.float32 else True


@pytest.mark.parametrize("e", EXPONENTS)
def test_pow_scalar_gradients_match_torch_at_special_points(e):
    torch = torch_or_skip()
    x = _specials(dtorch.float64).requires_grad_()
    tx = to_torch(x)
    with np.errstate(all="ignore"):
        (x ** e).backward(dtorch.ones_like(x))
    (tx ** e).backward(torch.ones_like(tx))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), equal_nan=True, rtol=1e-12)


@pytest.mark.parametrize("dtype", [dtorch.float32, dtorch.float64])
@pytest.mark.parametrize("e", EXPONENTS)
def test_pow_scalar_parity(dtype, e):
    tol = TOL[str(dtype).split(".")[-1]]
    low = 0.1 if e != int(e) else -2.0  # negative bases to fractional powers are NaN in both
    check_op(lambda m, a: a ** e, shapes=[(4, 5)], dtype=dtype, low=low, gradgrad=dtype is dtorch.float64, **tol)
    check_op(lambda m, a: m.pow(a, e), shapes=[(3, 7)], dtype=dtype, low=low, **tol)


@pytest.mark.parametrize("e", EXPONENTS)
def test_pow_scalar_gradcheck(e):
    x = dtorch.tensor(np.random.default_rng(0).uniform(0.3, 2.0, (3, 4)), requires_grad=True)
    check_grads(lambda t: t ** e, x)
    if e == int(e):
        check_grads(lambda t: t ** e, -x.detach().requires_grad_())


@pytest.mark.parametrize("e", EXPONENTS)
def test_pow_in_place_matches_out_of_place(e):
    x = dtorch.tensor(np.random.default_rng(1).uniform(0.3, 2.0, (5, 6)), dtype=dtorch.float32)
    y = x.clone()
    y.pow_(e)
    assert np.array_equal(y.numpy(), (x ** e).numpy())
    leaf = x.clone().requires_grad_()
    z = leaf * 1
    z.pow_(e)
    z.sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), (e * x.double() ** (e - 1)).float().numpy(), rtol=2e-5, atol=1e-6)


def test_pow_tensor_exponents_unchanged():
    check_op(lambda m, a, b: a ** b, shapes=[(3, 4), (3, 4)], low=0.2, gradgrad=True)
    check_op(lambda m, a, b: m.pow(a, b), shapes=[(3, 4), (4,)], low=0.2, dtype=dtorch.float32,
             **TOL["float32"])
    x = dtorch.tensor([[2, -3, 0]])
    check_op(lambda m, a: a ** 3, inputs=[x], grad=False)
    check_op(lambda m, a: a ** 0, inputs=[x], grad=False)


def test_pow_zero_dim_and_non_contiguous():
    x = dtorch.tensor(np.random.default_rng(2).standard_normal((6, 4)), dtype=dtorch.float32)
    check_op(lambda m, a: a.t() ** 3, inputs=[x], as_leaves=True, **TOL["float32"])
    check_op(lambda m, a: a[0, 0] ** 3, inputs=[x], as_leaves=True, **TOL["float32"])


# ---- GELU -----------------------------------------------------------------------------------
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_over_a_wide_range_against_torch(approximate):
    torch = torch_or_skip()
    x = np.concatenate([np.linspace(-30, 30, 200001), [-1e4, -100, -10, 10, 100, 1e4, 0.0, -0.0]]).astype(np.float32)
    ours = dtorch.nn.functional.gelu(dtorch.from_numpy(x), approximate=approximate).numpy()
    theirs = torch.nn.functional.gelu(torch.from_numpy(x), approximate=approximate).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=2e-6)


def test_gelu_float32_against_math_erf_in_float64():
    x = np.concatenate([np.linspace(-12, 12, 100001), [-1e4, -40.0, 40.0, 1e4]])
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    ours = dtorch.nn.functional.gelu(dtorch.tensor(x, dtype=dtorch.float32)).double().numpy()
    err = np.abs(ours - exact)
    assert err.max() < 2e-6 and (err / np.maximum(np.abs(exact), 1.0)).max() < 1e-6
    g = dtorch.tensor(x, dtype=dtorch.float32, requires_grad=True)
    dtorch.nn.functional.gelu(g).sum().backward()
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    exact_grad = 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x])) + x * pdf
    assert np.abs(g.grad.double().numpy() - exact_grad).max() < 2e-6


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_gradient_against_float64_as_close_as_torchs(approximate):
    torch = torch_or_skip()
    x = np.linspace(-10, 10, 200001).astype(np.float32)
    ours = dtorch.tensor(x, requires_grad=True)
    dtorch.nn.functional.gelu(ours, approximate=approximate).sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    torch.nn.functional.gelu(theirs, approximate=approximate).sum().backward()
    exact = torch.tensor(x.astype(np.float64), requires_grad=True)
    torch.nn.functional.gelu(exact, approximate=approximate).sum().backward()
    err = np.abs(ours.grad.numpy() - exact.grad.numpy()).max()
    assert err < 2e-6 and err < 1.5 * np.abs(theirs.grad.numpy() - exact.grad.numpy()).max()


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [dtorch.float32, dtorch.float64])
def test_gelu_parity(approximate, dtype):
    tol = TOL[str(dtype).split(".")[-1]]
    # float32 tanh-GELU gradients lose ~20 ulps to the cancellation in 1 - tanh^2 in both libraries, each its own
    # way (the test above bounds ours against float64)
    grad_atol = 5e-6 if dtype is dtorch.float32 and approximate == "tanh" else None
    check_op(lambda m, a: m.nn.functional.gelu(a, approximate=approximate), shapes=[(8, 33)], low=-6, high=6,
             dtype=dtype, gradgrad=dtype is dtorch.float64, grad_atol=grad_atol, **tol)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_gradcheck(approximate):
    x = dtorch.tensor(np.random.default_rng(3).uniform(-4, 4, (4, 5)), requires_grad=True)
    check_grads(lambda t: dtorch.nn.functional.gelu(t, approximate=approximate), x)


def test_erf_float32_against_math_erf_and_torch():
    torch = torch_or_skip()
    x = np.concatenate([np.linspace(-8, 8, 100001), [-1e4, 1e4, 0.0, -0.0, math.inf, -math.inf]]).astype(np.float32)
    exact = np.array([math.erf(v) for v in x.astype(np.float64)])
    ours = dtorch.erf(dtorch.from_numpy(x)).numpy()
    # A&S 7.1.26 as 1 - erfc: ~8 float32 ulps of 1 near 0 (torch's erf is a minimax kernel, ~0.5 ulp)
    assert np.abs(ours - exact).max() < 6e-7
    np.testing.assert_allclose(ours, torch.erf(torch.from_numpy(x)).numpy(), rtol=0, atol=6e-7)
    assert np.array_equal(np.signbit(ours), np.signbit(x)) and np.isnan(dtorch.erf(dtorch.tensor([math.nan])).item())
    half = dtorch.erf(dtorch.from_numpy(x[::7].astype(np.float16))).numpy()
    np.testing.assert_allclose(half.astype(np.float64), exact[::7], atol=1e-3)

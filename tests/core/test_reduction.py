"""Reductions: values, dtypes, gradients (gradcheck + double backward) and parity with torch."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import dtorch
from dtorch.autograd import gradcheck
from tests.oracle import assert_close, to_torch, torch_or_skip


# ---- shared helpers (also used by test_sorting / test_softmax) ------------------------------------
def gradgradcheck(fn, *inputs) -> bool:
    """Second-order check: gradcheck of (inputs, grad_outputs) -> d fn / d inputs, built with create_graph."""
    outs = _tensors(fn(*inputs))
    gos = tuple(dtorch.randn(o.shape, dtype=o.dtype, device=o.device).requires_grad_() for o in outs)
    n = len(inputs)

    def first_grads(*args):
        with dtorch.enable_grad():  # gradcheck's finite differences run under no_grad
            return dtorch.autograd.grad(_tensors(fn(*args[:n])), list(args[:n]), args[n:], create_graph=True)

    return gradcheck(first_grads, inputs + gos)


def _tensors(out) -> tuple:
    out = (out,) if isinstance(out, dtorch.Tensor) else tuple(out)
    return tuple(o for o in out if o.requires_grad)


def leaf(data, device="cpu", dtype=dtorch.float64) -> dtorch.Tensor:
    return dtorch.tensor(data, dtype=dtype, device=device).requires_grad_(dtype.is_floating_point)


def check_parity(fn, x: dtorch.Tensor, *, grad: bool = True, check_indices: bool = True, **tol) -> None:
    """``fn(lib, x)`` on dtorch and on torch: same values and dtypes, and the same input gradient."""
    torch = torch_or_skip()
    grad = grad and x.is_floating_point()
    xd = x.detach().requires_grad_(grad)
    xt = to_torch(xd)
    out_d, out_t = fn(dtorch, xd), fn(torch, xt)
    outs_d = (out_d,) if isinstance(out_d, dtorch.Tensor) else tuple(out_d)
    outs_t = (out_t,) if isinstance(out_t, torch.Tensor) else tuple(out_t)
    assert len(outs_d) == len(outs_t)
    for a, b in zip(outs_d, outs_t):
        if b.dtype == torch.int64 and b.ndim and not check_indices:
            assert a.dtype == dtorch.int64 and a.shape == tuple(b.shape)
            continue
        assert_close(a, b, **tol)
        assert a.requires_grad == b.requires_grad
    if not grad:
        return
    pairs = [(a, b) for a, b in zip(outs_d, outs_t) if b.requires_grad]
    if not pairs:
        return
    rng = np.random.default_rng(0)
    gos = [rng.standard_normal(b.shape) for _, b in pairs]
    dtorch.autograd.backward([a for a, _ in pairs],
                             [dtorch.tensor(g, dtype=a.dtype, device=a.device) for (a, _), g in zip(pairs, gos)])
    torch.autograd.backward([b for _, b in pairs], [torch.tensor(g, dtype=b.dtype) for (_, b), g in zip(pairs, gos)])
    if xt.grad is None:  # e.g. norm(p=0): no gradient at all
        assert xd.grad is None
    else:
        assert_close(xd.grad, xt.grad, **tol)


def distinct(*shape, device="cpu") -> dtorch.Tensor:
    """float64 leaf with distinct, well-separated, nonzero values (no ties, no kinks)."""
    n = math.prod(shape)
    rng = np.random.default_rng(1)
    vals = (rng.permutation(n) + 1.0) * rng.choice([-1.0, 1.0], n) / n + rng.uniform(0.001, 0.01, n)
    return leaf(vals.reshape(shape), device)


# ---- sum / mean --------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.sum(), lambda m, x: x.sum(1), lambda m, x: x.sum((0, 2), keepdim=True),
    lambda m, x: m.sum(x, -1), lambda m, x: x.mean(), lambda m, x: x.mean((-1, 0)),
    lambda m, x: x.mean(1, keepdim=True), lambda m, x: x.sum(dtype=m.float32),
])
def test_sum_mean_parity(fn, device):
    check_parity(fn, dtorch.randn(2, 3, 4, device=device))


def test_sum_integer_dtypes_and_zero_dim(device):
    check_parity(lambda m, x: x.sum(), dtorch.tensor([1, 2, 3], dtype=dtorch.int32, device=device))
    check_parity(lambda m, x: x.sum(0), dtorch.tensor([True, False, True], device=device))
    check_parity(lambda m, x: x.sum(0), dtorch.tensor(2.5, device=device))
    check_parity(lambda m, x: x.mean(0, keepdim=True), dtorch.tensor(2.5, device=device))


def test_sum_mean_gradcheck(device):
    x = distinct(2, 3, device=device)
    for fn in (lambda t: t.sum(1), lambda t: t.mean((0, 1), keepdim=True)):
        assert gradcheck(fn, (x,))
        assert gradgradcheck(fn, x)


# ---- prod --------------------------------------------------------------------------------------
_PROD_INPUTS = {
    "no_zero": [[1.5, -2.0, 0.5], [3.0, 1.25, -0.75]],
    "one_zero": [[1.5, 0.0, 0.5], [3.0, 1.25, -0.75]],
    "two_zeros": [[0.0, 2.0, 0.0], [3.0, 0.0, -0.75]],
}


@pytest.mark.parametrize("case", list(_PROD_INPUTS))
@pytest.mark.parametrize("fn", [lambda m, x: x.prod(), lambda m, x: x.prod(1), lambda m, x: m.prod(x, -2, True)])
def test_prod_parity_with_zeros(case, fn, device):
    check_parity(fn, leaf(_PROD_INPUTS[case], device))


@pytest.mark.parametrize("case", list(_PROD_INPUTS))
def test_prod_gradcheck_with_zeros(case, device):
    x = leaf(_PROD_INPUTS[case], device)
    for fn in (lambda t: t.prod(), lambda t: t.prod(1), lambda t: t.prod(0, keepdim=True)):
        assert gradcheck(fn, (x,))
        assert gradgradcheck(fn, x)


def test_prod_dtypes(device):
    check_parity(lambda m, x: x.prod(), dtorch.tensor([1, 2, 3], dtype=dtorch.int32, device=device))
    check_parity(lambda m, x: x.prod(0), dtorch.tensor([True, False], device=device))
    check_parity(lambda m, x: x.prod(dtype=m.float64), dtorch.tensor([1.5, 2.0], device=device))
    check_parity(lambda m, x: x.prod(0, keepdim=True), dtorch.tensor(3.0, device=device))


# ---- var / std ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.var(), lambda m, x: x.var(1), lambda m, x: x.var((0, 2), keepdim=True),
    lambda m, x: x.var(-1, correction=0), lambda m, x: x.var(1, False), lambda m, x: x.var(False),
    lambda m, x: x.var(dim=0, unbiased=False, keepdim=True), lambda m, x: x.std(), lambda m, x: x.std(1, True, True),
    lambda m, x: m.std(x, (0, 1), correction=2), lambda m, x: m.var_mean(x, 1), lambda m, x: m.std_mean(x, -1, True),
    lambda m, x: m.var_mean(x, correction=0),
])
def test_var_std_parity(fn, device):
    check_parity(fn, dtorch.randn(3, 4, 5, device=device))


def test_var_std_gradcheck(device):
    x = distinct(3, 4, device=device)
    for fn in (lambda t: t.var(), lambda t: t.var(1, keepdim=True), lambda t: t.std(0),
               lambda t: t.std(correction=0), lambda t: dtorch.var_mean(t, 1), lambda t: dtorch.std_mean(t, 0)):
        assert gradcheck(fn, (x,))
        assert gradgradcheck(fn, x)


def test_std_gradient_is_zero_for_constant_slices(device):
    check_parity(lambda m, x: x.std(1), leaf([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]], device))


def test_var_degrees_of_freedom_warning(device):
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        v = dtorch.ones(1, device=device).var()
    assert math.isnan(v.item())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_parity(lambda m, x: x.var(correction=4), dtorch.tensor([1.0, 2.0, 3.0], device=device), grad=False)


def test_var_errors():
    with pytest.raises(RuntimeError, match="floating point"):
        dtorch.arange(3).var()


# ---- max / min / amax / amin ------------------------------------------------------------------------
_TIES = [[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 0.5, 2.0], [-4.0, 5.0, 5.0, 5.0]]


@pytest.mark.parametrize("fn", [
    lambda m, x: x.max(), lambda m, x: x.min(), lambda m, x: m.max(x, 1), lambda m, x: m.min(x, 0, True),
    lambda m, x: x.max(-1, keepdim=True), lambda m, x: x.amax(1), lambda m, x: x.amin((0, 1)),
    lambda m, x: m.amax(x, -2, True), lambda m, x: x.amin(), lambda m, x: m.aminmax(x, dim=1),
    lambda m, x: x.aminmax(),
])
def test_max_min_parity_with_ties(fn, device):
    """Ties: max()/amax split the gradient evenly, max(dim) sends it to the first index, as torch."""
    check_parity(fn, leaf(_TIES, device))


def test_max_min_gradcheck(device):
    x = distinct(3, 4, device=device)
    for fn in (lambda t: t.max(), lambda t: t.min(1).values, lambda t: t.max(0, keepdim=True)[0],
               lambda t: t.amax((0, 1)), lambda t: t.amin(-1), lambda t: dtorch.aminmax(t, dim=0)):
        assert gradcheck(fn, (x,))
        assert gradgradcheck(fn, x)


def test_max_dim_result_and_other_forms(device):
    x = leaf(_TIES, device)
    r = dtorch.max(x, 1)
    values, indices = r
    assert values is r.values and indices is r.indices and r[0] is values
    assert indices.dtype == dtorch.int64 and not indices.requires_grad and values.requires_grad
    y = dtorch.zeros(3, 4, device=device)
    assert_close(dtorch.max(x, y), np.maximum(x.detach().cpu().numpy(), 0.0))
    assert_close(x.min(y), np.minimum(x.detach().cpu().numpy(), 0.0))
    check_parity(lambda m, x: x.max(0), dtorch.tensor(3.0, device=device))
    check_parity(lambda m, x: x.max(1), dtorch.tensor([[1, 5, 2], [7, 7, 0]], device=device))
    check_parity(lambda m, x: x.amax(0), dtorch.tensor([[True, False], [False, False]], device=device))


def test_max_nan_propagates(device):
    x = dtorch.tensor([[1.0, float("nan"), 2.0], [0.0, 1.0, 3.0]], device=device)
    for fn in (lambda m, x: x.max(), lambda m, x: x.max(1), lambda m, x: x.amin(1), lambda m, x: x.argmax(1)):
        check_parity(fn, x, grad=False)


def test_max_min_empty_errors(device):
    e = dtorch.zeros(0, 3, device=device)
    with pytest.raises(RuntimeError, match="Expected reduction dim to be specified"):
        e.max()
    with pytest.raises(IndexError, match="Expected reduction dim 0 to have non-zero size"):
        e.max(0)
    with pytest.raises(IndexError, match="amin\\(\\): Expected reduction dim 0"):
        e.amin(0)
    with pytest.raises(IndexError, match="argmax"):
        e.argmax()
    assert e.max(1).values.shape == (0,)


# ---- argmax / argmin ---------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.argmax(), lambda m, x: x.argmin(), lambda m, x: x.argmax(1), lambda m, x: m.argmin(x, -2, True),
    lambda m, x: x.argmax(keepdim=True), lambda m, x: x.argmax(0),
])
def test_argmax_argmin_parity(fn, device):
    check_parity(fn, leaf(_TIES, device))


# ---- logsumexp ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.logsumexp(1), lambda m, x: m.logsumexp(x, (0, 1)), lambda m, x: x.logsumexp(-1, keepdim=True),
    lambda m, x: x.logsumexp(0),
])
def test_logsumexp_parity(fn, device):
    check_parity(fn, dtorch.randn(3, 4, device=device))


def test_logsumexp_is_stable(device):
    x = dtorch.tensor([[1000.0, 1000.0, -1000.0], [-float("inf")] * 3, [-1e4, 0.0, 1e4]], device=device)
    check_parity(lambda m, x: x.logsumexp(1), x, grad=False)
    check_parity(lambda m, x: x.logsumexp(1), dtorch.tensor([[1000.0, 999.0]], device=device))
    check_parity(lambda m, x: m.logsumexp(x, 0), dtorch.tensor([1, 2, 3], device=device))


def test_logsumexp_gradcheck(device):
    x = distinct(3, 4, device=device)
    for fn in (lambda t: t.logsumexp(1), lambda t: t.logsumexp((0, 1), keepdim=True)):
        assert gradcheck(fn, (x,))
        assert gradgradcheck(fn, x)


# ---- norm ----------------------------------------------------------------------------------------
_NORM_PS = [2, "fro", 1, 3, 1.5, 0.5, -1, 0, float("inf"), -float("inf")]


@pytest.mark.parametrize("p", _NORM_PS, ids=str)
def test_norm_parity(p, device):
    x = distinct(3, 4, device=device)
    check_parity(lambda m, x: x.norm(p), x)
    check_parity(lambda m, x: m.norm(x, p, 1), x)
    check_parity(lambda m, x: x.norm(p, dim=0, keepdim=True), x)


@pytest.mark.parametrize("p", [2, 1, 3, 1.5, 0.5, float("inf"), -float("inf")], ids=str)
def test_norm_gradcheck(p, device):
    x = distinct(3, 4, device=device)
    for fn in (lambda t: t.norm(p), lambda t: t.norm(p, 1)):
        assert gradcheck(fn, (x,))
        assert gradgradcheck(fn, x)


def test_norm_gradient_at_zero_and_options(device):
    z = leaf([[0.0, 0.0, 0.0], [3.0, 0.0, -4.0]], device)
    check_parity(lambda m, x: x.norm(dim=1), z)  # p=2 subgradient: 0 at the zero vector
    check_parity(lambda m, x: x.norm(1.5, dim=1), z)
    check_parity(lambda m, x: x.norm(float("inf"), dim=1), z)
    check_parity(lambda m, x: x.norm(dim=(0, 1)), z)
    check_parity(lambda m, x: x.norm(dtype=m.float64), dtorch.randn(3, device=device))
    with pytest.raises(RuntimeError, match="floating point"):
        dtorch.arange(3).norm()
    with pytest.raises(RuntimeError, match="inf norm on an empty tensor"):
        dtorch.zeros(0).norm(float("inf"))


# ---- cumsum / cumprod -----------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.cumsum(1), lambda m, x: m.cumsum(x, -1), lambda m, x: x.cumsum(0, dtype=m.float64),
    lambda m, x: x.cumprod(1), lambda m, x: m.cumprod(x, 0),
])
def test_cumsum_cumprod_parity(fn, device):
    check_parity(fn, dtorch.randn(3, 4, device=device))


def test_cumprod_with_zeros(device):
    x = leaf([[2.0, 0.0, 3.0, 0.0, 1.5], [0.0, 1.5, 2.0, -1.0, 0.5], [1.0, 2.0, 0.5, 3.0, 0.0]], device)
    for fn in (lambda t: t.cumprod(0), lambda t: t.cumprod(1)):
        check_parity(lambda m, t: fn(t), x)  # noqa: B023 (used at once)
        assert gradcheck(fn, (x,))
        assert gradgradcheck(fn, x)


def test_cumsum_gradcheck_and_dtypes(device):
    x = distinct(3, 4, device=device)
    assert gradcheck(lambda t: t.cumsum(1), (x,))
    assert gradgradcheck(lambda t: t.cumsum(0), x)
    assert gradcheck(lambda t: t.cumprod(-1), (x,))
    check_parity(lambda m, t: t.cumsum(0), dtorch.tensor([1, 2, 3], dtype=dtorch.uint8, device=device))
    check_parity(lambda m, t: t.cumsum(0), dtorch.tensor([True, True], device=device))
    check_parity(lambda m, t: t.cumprod(0, dtype=m.int16), dtorch.tensor([1, 2, 3], dtype=dtorch.int8, device=device))
    check_parity(lambda m, t: t.cumsum(0), dtorch.tensor(2.0, device=device))
    check_parity(lambda m, t: t.cumsum(0), dtorch.zeros(0, 3, device=device))


# ---- all / any / count_nonzero --------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.all(), lambda m, x: x.any(), lambda m, x: x.all(1), lambda m, x: m.any(x, 0, True),
    lambda m, x: x.all((0, 1)), lambda m, x: x.count_nonzero(), lambda m, x: m.count_nonzero(x, 1),
    lambda m, x: x.count_nonzero((0, 1)),
])
@pytest.mark.parametrize("dtype", ["float32", "uint8", "bool", "int64"])
def test_all_any_count_nonzero_parity(fn, dtype, device):
    x = dtorch.tensor([[0, 1, 2], [3, 4, 5]], device=device).to(getattr(dtorch, dtype))
    check_parity(fn, x, grad=False)


def test_nondifferentiable_results_do_not_require_grad(device):
    x = distinct(2, 3, device=device)
    for r in (x.argmax(), x.argmin(1), x.all(), x.any(0), x.count_nonzero(), x.max(1).indices):
        assert not r.requires_grad and r.grad_fn is None


# ---- non-contiguous inputs and grad_fn names ---------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.sum(0), lambda m, x: x.prod(1), lambda m, x: x.var(0), lambda m, x: x.max(1),
    lambda m, x: x.amax(0), lambda m, x: x.logsumexp(1), lambda m, x: x.norm(dim=0), lambda m, x: x.cumsum(1),
    lambda m, x: x.cumprod(0), lambda m, x: x.argmax(0),
])
def test_transposed_inputs(fn, device):
    """The op sees a non-contiguous view; the gradient flows back through the transpose."""
    check_parity(lambda m, x: fn(m, x.t()), dtorch.randn(4, 3, dtype=dtorch.float64, device=device))


def test_grad_fn_names():
    x = distinct(2, 3)
    names = {
        "SumBackward0": x.sum(), "ProdBackward0": x.prod(1), "VarBackward0": x.var(), "StdBackward0": x.std(),
        "MaxBackward1": x.max(), "MaxBackward0": x.max(1).values, "MinBackward0": x.min(0)[0],
        "AmaxBackward0": x.amax(0), "LogsumexpBackward0": x.logsumexp(1), "CumsumBackward0": x.cumsum(0),
        "CumprodBackward0": x.cumprod(0), "LinalgVectorNormBackward0": x.norm(),
    }
    for name, t in names.items():
        assert t.grad_fn.name() == name

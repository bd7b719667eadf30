"""Reductions: values, dtypes, gradients (gradcheck + double backward) and parity with torch."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import dtorch
from dtorch.autograd import gradcheck, gradgradcheck
from tests.oracle import assert_close, check_grads, check_op, distinct, leaf


# ---- sum / mean --------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.sum(), lambda m, x: x.sum(1), lambda m, x: x.sum((0, 2), keepdim=True),
    lambda m, x: m.sum(x, -1), lambda m, x: x.mean(), lambda m, x: x.mean((-1, 0)),
    lambda m, x: x.mean(1, keepdim=True), lambda m, x: x.sum(dtype=m.float32),
])
def test_sum_mean_parity(fn, device):
    check_op(fn, inputs=(dtorch.randn(2, 3, 4, device=device),), as_leaves=True)


def test_sum_integer_dtypes_and_zero_dim(device):
    check_op(lambda m, x: x.sum(), inputs=(dtorch.tensor([1, 2, 3], dtype=dtorch.int32, device=device),),
             as_leaves=True)
    check_op(lambda m, x: x.sum(0), inputs=(dtorch.tensor([True, False, True], device=device),), as_leaves=True)
    check_op(lambda m, x: x.sum(0), inputs=(dtorch.tensor(2.5, device=device),), as_leaves=True)
    check_op(lambda m, x: x.mean(0, keepdim=True), inputs=(dtorch.tensor(2.5, device=device),), as_leaves=True)


def test_sum_mean_gradcheck(device):
    x = distinct(2, 3, device=device)
    for fn in (lambda t: t.sum(1), lambda t: t.mean((0, 1), keepdim=True)):
        check_grads(fn, x)


# ---- prod --------------------------------------------------------------------------------------
_PROD_INPUTS = {
    "no_zero": [[1.5, -2.0, 0.5], [3.0, 1.25, -0.75]],
    "one_zero": [[1.5, 0.0, 0.5], [3.0, 1.25, -0.75]],
    "two_zeros": [[0.0, 2.0, 0.0], [3.0, 0.0, -0.75]],
}


@pytest.mark.parametrize("case", list(_PROD_INPUTS))
@pytest.mark.parametrize("fn", [lambda m, x: x.prod(), lambda m, x: x.prod(1), lambda m, x: m.prod(x, -2, True)])
def test_prod_parity_with_zeros(case, fn, device):
    check_op(fn, inputs=(leaf(_PROD_INPUTS[case], device),), as_leaves=True)


@pytest.mark.parametrize("case", list(_PROD_INPUTS))
def test_prod_gradcheck_with_zeros(case, device):
    x = leaf(_PROD_INPUTS[case], device)
    for fn in (lambda t: t.prod(), lambda t: t.prod(1), lambda t: t.prod(0, keepdim=True)):
        check_grads(fn, x)


def test_prod_dtypes(device):
    check_op(lambda m, x: x.prod(), inputs=(dtorch.tensor([1, 2, 3], dtype=dtorch.int32, device=device),),
             as_leaves=True)
    check_op(lambda m, x: x.prod(0), inputs=(dtorch.tensor([True, False], device=device),), as_leaves=True)
    check_op(lambda m, x: x.prod(dtype=m.float64), inputs=(dtorch.tensor([1.5, 2.0], device=device),), as_leaves=True)
    check_op(lambda m, x: x.prod(0, keepdim=True), inputs=(dtorch.tensor(3.0, device=device),), as_leaves=True)


# ---- var / std ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.var(), lambda m, x: x.var(1), lambda m, x: x.var((0, 2), keepdim=True),
    lambda m, x: x.var(-1, correction=0), lambda m, x: x.var(1, False), lambda m, x: x.var(False),
    lambda m, x: x.var(dim=0, unbiased=False, keepdim=True), lambda m, x: x.std(), lambda m, x: x.std(1, True, True),
    lambda m, x: m.std(x, (0, 1), correction=2), lambda m, x: m.var_mean(x, 1), lambda m, x: m.std_mean(x, -1, True),
    lambda m, x: m.var_mean(x, correction=0),
])
def test_var_std_parity(fn, device):
    check_op(fn, inputs=(dtorch.randn(3, 4, 5, device=device),), as_leaves=True)


def test_var_std_gradcheck(device):
    x = distinct(3, 4, device=device)
    for fn in (lambda t: t.var(), lambda t: t.var(1, keepdim=True), lambda t: t.std(0),
               lambda t: t.std(correction=0), lambda t: dtorch.var_mean(t, 1), lambda t: dtorch.std_mean(t, 0)):
        check_grads(fn, x)


def test_std_gradient_is_zero_for_constant_slices(device):
    check_op(lambda m, x: x.std(1), inputs=(leaf([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]], device),), as_leaves=True)


def test_var_degrees_of_freedom_warning(device):
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        v = dtorch.ones(1, device=device).var()
    assert math.isnan(v.item())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_op(lambda m, x: x.var(correction=4), inputs=(dtorch.tensor([1.0, 2.0, 3.0], device=device),),
                 as_leaves=True, grad=False)


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
    check_op(fn, inputs=(leaf(_TIES, device),), as_leaves=True)


def test_max_min_gradcheck(device):
    x = distinct(3, 4, device=device)
    for fn in (lambda t: t.max(), lambda t: t.min(1).values, lambda t: t.max(0, keepdim=True)[0],
               lambda t: t.amax((0, 1)), lambda t: t.amin(-1), lambda t: dtorch.aminmax(t, dim=0)):
        check_grads(fn, x)


def test_max_dim_result_and_other_forms(device):
    x = leaf(_TIES, device)
    r = dtorch.max(x, 1)
    values, indices = r
    assert values is r.values and indices is r.indices and r[0] is values
    assert indices.dtype == dtorch.int64 and not indices.requires_grad and values.requires_grad
    y = dtorch.zeros(3, 4, device=device)
    assert_close(dtorch.max(x, y), np.maximum(x.detach().cpu().numpy(), 0.0))
    assert_close(x.min(y), np.minimum(x.detach().cpu().numpy(), 0.0))
    check_op(lambda m, x: x.max(0), inputs=(dtorch.tensor(3.0, device=device),), as_leaves=True)
    check_op(lambda m, x: x.max(1), inputs=(dtorch.tensor([[1, 5, 2], [7, 7, 0]], device=device),), as_leaves=True)
    check_op(lambda m, x: x.amax(0), inputs=(dtorch.tensor([[True, False], [False, False]], device=device),),
             as_leaves=True)


def test_max_nan_propagates(device):
    x = dtorch.tensor([[1.0, float("nan"), 2.0], [0.0, 1.0, 3.0]], device=device)
    for fn in (lambda m, x: x.max(), lambda m, x: x.max(1), lambda m, x: x.amin(1), lambda m, x: x.argmax(1)):
        check_op(fn, inputs=(x,), as_leaves=True, grad=False)


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
    check_op(fn, inputs=(leaf(_TIES, device),), as_leaves=True)


# ---- logsumexp ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.logsumexp(1), lambda m, x: m.logsumexp(x, (0, 1)), lambda m, x: x.logsumexp(-1, keepdim=True),
    lambda m, x: x.logsumexp(0),
])
def test_logsumexp_parity(fn, device):
    check_op(fn, inputs=(dtorch.randn(3, 4, device=device),), as_leaves=True)


def test_logsumexp_is_stable(device):
    x = dtorch.tensor([[1000.0, 1000.0, -1000.0], [-float("inf")] * 3, [-1e4, 0.0, 1e4]], device=device)
    check_op(lambda m, x: x.logsumexp(1), inputs=(x,), as_leaves=True, grad=False)
    check_op(lambda m, x: x.logsumexp(1), inputs=(dtorch.tensor([[1000.0, 999.0]], device=device),), as_leaves=True)
    check_op(lambda m, x: m.logsumexp(x, 0), inputs=(dtorch.tensor([1, 2, 3], device=device),), as_leaves=True)


def test_logsumexp_gradcheck(device):
    x = distinct(3, 4, device=device)
    for fn in (lambda t: t.logsumexp(1), lambda t: t.logsumexp((0, 1), keepdim=True)):
        check_grads(fn, x)


# ---- norm ----------------------------------------------------------------------------------------
_NORM_PS = [2, "fro", 1, 3, 1.5, 0.5, -1, 0, float("inf"), -float("inf")]


@pytest.mark.parametrize("p", _NORM_PS, ids=str)
def test_norm_parity(p, device):
    x = distinct(3, 4, device=device)
    check_op(lambda m, x: x.norm(p), inputs=(x,), as_leaves=True)
    check_op(lambda m, x: m.norm(x, p, 1), inputs=(x,), as_leaves=True)
    check_op(lambda m, x: x.norm(p, dim=0, keepdim=True), inputs=(x,), as_leaves=True)


@pytest.mark.parametrize("p", [2, 1, 3, 1.5, 0.5, float("inf"), -float("inf")], ids=str)
def test_norm_gradcheck(p, device):
    x = distinct(3, 4, device=device)
    for fn in (lambda t: t.norm(p), lambda t: t.norm(p, 1)):
        check_grads(fn, x)


def test_norm_gradient_at_zero_and_options(device):
    z = leaf([[0.0, 0.0, 0.0], [3.0, 0.0, -4.0]], device)
    check_op(lambda m, x: x.norm(dim=1), inputs=(z,), as_leaves=True)  # p=2 subgradient: 0 at the zero vector
    check_op(lambda m, x: x.norm(1.5, dim=1), inputs=(z,), as_leaves=True)
    check_op(lambda m, x: x.norm(float("inf"), dim=1), inputs=(z,), as_leaves=True)
    check_op(lambda m, x: x.norm(dim=(0, 1)), inputs=(z,), as_leaves=True)
    check_op(lambda m, x: x.norm(dtype=m.float64), inputs=(dtorch.randn(3, device=device),), as_leaves=True)
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
    check_op(fn, inputs=(dtorch.randn(3, 4, device=device),), as_leaves=True)


def test_cumprod_with_zeros(device):
    x = leaf([[2.0, 0.0, 3.0, 0.0, 1.5], [0.0, 1.5, 2.0, -1.0, 0.5], [1.0, 2.0, 0.5, 3.0, 0.0]], device)
    for fn in (lambda t: t.cumprod(0), lambda t: t.cumprod(1)):
        check_op(lambda m, t: fn(t), inputs=(x,), as_leaves=True)  # noqa: B023 (used at once)
        check_grads(fn, x)


def test_cumsum_gradcheck_and_dtypes(device):
    x = distinct(3, 4, device=device)
    assert gradcheck(lambda t: t.cumsum(1), (x,))
    assert gradgradcheck(lambda t: t.cumsum(0), (x,))
    assert gradcheck(lambda t: t.cumprod(-1), (x,))
    check_op(lambda m, t: t.cumsum(0), inputs=(dtorch.tensor([1, 2, 3], dtype=dtorch.uint8, device=device),),
             as_leaves=True)
    check_op(lambda m, t: t.cumsum(0), inputs=(dtorch.tensor([True, True], device=device),), as_leaves=True)
    check_op(lambda m, t: t.cumprod(0, dtype=m.int16),
             inputs=(dtorch.tensor([1, 2, 3], dtype=dtorch.int8, device=device),), as_leaves=True)
    check_op(lambda m, t: t.cumsum(0), inputs=(dtorch.tensor(2.0, device=device),), as_leaves=True)
    check_op(lambda m, t: t.cumsum(0), inputs=(dtorch.zeros(0, 3, device=device),), as_leaves=True)


# ---- all / any / count_nonzero --------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.all(), lambda m, x: x.any(), lambda m, x: x.all(1), lambda m, x: m.any(x, 0, True),
    lambda m, x: x.all((0, 1)), lambda m, x: x.count_nonzero(), lambda m, x: m.count_nonzero(x, 1),
    lambda m, x: x.count_nonzero((0, 1)),
])
@pytest.mark.parametrize("dtype", ["float32", "uint8", "bool", "int64"])
def test_all_any_count_nonzero_parity(fn, dtype, device):
    x = dtorch.tensor([[0, 1, 2], [3, 4, 5]], device=device).to(getattr(dtorch, dtype))
    check_op(fn, inputs=(x,), as_leaves=True, grad=False)


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
    check_op(lambda m, x: fn(m, x.t()), inputs=(dtorch.randn(4, 3, dtype=dtorch.float64, device=device),),
             as_leaves=True)


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

"""Sorting and selection: sort, argsort, msort, topk, kthvalue, median, nanmedian."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from tests.oracle import assert_close, check_grads, check_op, distinct, leaf

NAN = float("nan")
_TIES = [[3.0, 1.0, 3.0, 2.0, 1.0], [0.5, 0.5, 0.5, -1.0, 2.0], [4.0, -2.0, 1.0, 4.0, 4.0]]


# ---- sort / argsort / msort ------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.sort(), lambda m, x: m.sort(x, 0), lambda m, x: x.sort(-2, descending=True),
    lambda m, x: m.sort(x, 1, True), lambda m, x: x.sort(stable=True), lambda m, x: x.sort(dim=0, stable=True),
    lambda m, x: x.argsort(), lambda m, x: m.argsort(x, 0, descending=True), lambda m, x: m.msort(x),
    lambda m, x: x.argsort(stable=True, descending=True),
])
def test_sort_parity_with_ties(fn, device):
    """A stable sort (ascending or descending) keeps tied elements in their order, as torch's."""
    check_op(fn, inputs=(leaf(_TIES, device),), as_leaves=True)


def test_sort_gradcheck(device):
    x = distinct(3, 4, device=device)
    for fn in (lambda t: t.sort()[0], lambda t: t.sort(0, descending=True).values, lambda t: t.msort()):
        check_grads(fn, x)


def test_sort_nan_and_dtypes(device):
    x = dtorch.tensor([[1.0, NAN, 3.0, -1.0], [NAN, 2.0, NAN, 0.0]], device=device)
    for fn in (lambda m, x: x.sort(1), lambda m, x: x.sort(1, descending=True), lambda m, x: x.argsort(0)):
        check_op(fn, inputs=(x,), as_leaves=True, grad=False)
    check_op(lambda m, x: x.sort(), inputs=(dtorch.tensor([True, False, True], device=device),), as_leaves=True)
    check_op(lambda m, x: x.sort(descending=True), inputs=(dtorch.tensor([3, -1, 7, 3], device=device),),
             as_leaves=True)
    check_op(lambda m, x: x.sort(0), inputs=(dtorch.tensor(2.5, device=device),), as_leaves=True)
    check_op(lambda m, x: x.sort(0), inputs=(dtorch.zeros(0, 3, device=device),), as_leaves=True)


def test_sort_result_type(device):
    x = distinct(2, 3, device=device)
    r = x.sort()
    values, indices = r
    assert values is r.values and indices is r.indices
    assert indices.dtype == dtorch.int64 and not indices.requires_grad
    assert values.grad_fn.name() == "SortBackward0"
    assert not x.argsort().requires_grad


def test_sort_transposed_input(device):
    check_op(lambda m, x: x.t().sort(1, descending=True),
             inputs=(dtorch.randn(4, 3, dtype=dtorch.float64, device=device),), as_leaves=True)


# ---- topk ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.topk(2), lambda m, x: m.topk(x, 1, 0), lambda m, x: x.topk(3, largest=False),
    lambda m, x: x.topk(2, dim=-2, largest=False), lambda m, x: x.topk(0), lambda m, x: x.topk(4, 1),
])
def test_topk_parity(fn, device):
    check_op(fn, inputs=(distinct(3, 4, device=device),), as_leaves=True)


def test_topk_gradcheck_and_errors(device):
    x = distinct(3, 4, device=device)
    for fn in (lambda t: t.topk(2).values, lambda t: t.topk(2, 0, largest=False)[0]):
        check_grads(fn, x)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        x.topk(5)
    check_op(lambda m, x: x.topk(2), inputs=(dtorch.tensor([1.0, NAN, 3.0], device=device),), as_leaves=True,
             grad=False)
    # ties: which equal element comes first is unspecified in torch; the values must match
    check_op(lambda m, x: x.topk(2, 1), inputs=(leaf(_TIES, device),), as_leaves=True, grad=False, check_indices=False)
    assert x.topk(2).values.grad_fn.name() == "TopkBackward0"


# ---- kthvalue / median / nanmedian ----------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda m, x: x.kthvalue(1), lambda m, x: m.kthvalue(x, 3, 0), lambda m, x: x.kthvalue(2, -1, True),
    lambda m, x: x.median(), lambda m, x: x.median(1), lambda m, x: m.median(x, 0, keepdim=True),
    lambda m, x: x.nanmedian(), lambda m, x: x.nanmedian(1),
])
def test_kthvalue_median_parity(fn, device):
    check_op(fn, inputs=(distinct(3, 4, device=device),), as_leaves=True)


def test_median_ties_and_nan(device):
    x = leaf(_TIES, device)
    check_op(lambda m, x: x.median(), inputs=(x,), as_leaves=True)  # all equal medians share the gradient evenly
    for fn in (lambda m, x: x.median(1), lambda m, x: x.kthvalue(2, 1)):
        # which tied element torch reports is unspecified: values must match, indices must point at them
        check_op(fn, inputs=(x,), as_leaves=True, grad=False, check_indices=False)
        got = fn(dtorch, x)
        picked = np.take_along_axis(x.detach().cpu().numpy(), got.indices.cpu().numpy()[:, None], 1)[:, 0]
        assert_close(got.values, picked)
    n = dtorch.tensor([[1.0, NAN, 3.0, NAN], [4.0, 2.0, 3.0, 1.0], [NAN, NAN, NAN, NAN]], device=device)
    for fn in (lambda m, x: x.median(), lambda m, x: x.median(1), lambda m, x: x.nanmedian(),
               lambda m, x: x.nanmedian(1)):
        check_op(fn, inputs=(n,), as_leaves=True, grad=False, check_indices=False)


def test_median_kthvalue_gradcheck_and_errors(device):
    x = distinct(3, 5, device=device)
    for fn in (lambda t: t.median(), lambda t: t.median(0).values, lambda t: t.kthvalue(2, 1)[0],
               lambda t: t.nanmedian(1).values):
        check_grads(fn, x)
    with pytest.raises(RuntimeError, match="selected number k out of range"):
        x.kthvalue(6)
    with pytest.raises(IndexError, match="Expected reduction dim 0 to have non-zero size"):
        dtorch.zeros(0, 2, device=device).median(0)
    assert x.median().grad_fn.name() == "MedianBackward0"
    assert x.median(1).values.grad_fn.name() == "MedianBackward1"
    assert not x.kthvalue(1).indices.requires_grad
    check_op(lambda m, x: x.median(), inputs=(dtorch.zeros(0, device=device),), as_leaves=True, grad=False)

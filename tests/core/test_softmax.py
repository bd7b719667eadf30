"""softmax / log_softmax: one graph node each, stable forward, closed-form first and second derivatives."""
from __future__ import annotations

import warnings

import pytest

import dtorch
from tests.oracle import check_grads, check_op, distinct

_FNS = {
    "softmax": lambda m, x: x.softmax(1),
    "softmax_neg": lambda m, x: m.softmax(x, -1),
    "softmax_dim0": lambda m, x: m.softmax(x, dim=0),
    "log_softmax": lambda m, x: x.log_softmax(1),
    "log_softmax_neg": lambda m, x: m.log_softmax(x, -3),
    "softmax_dtype": lambda m, x: m.softmax(x, 2, dtype=m.float64),
    "log_softmax_dtype": lambda m, x: x.log_softmax(0, dtype=m.float64),
}


@pytest.mark.parametrize("name", list(_FNS))
def test_parity(name, device):
    check_op(_FNS[name], inputs=(dtorch.randn(2, 3, 4, device=device),), as_leaves=True)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_gradcheck_and_double_backward(name, device):
    x = distinct(3, 4, device=device)
    for dim in (0, 1, -1):
        fn = (lambda t, d=dim: getattr(t, name)(d))
        check_grads(fn, x)


def test_single_graph_node(device):
    x = distinct(2, 3, device=device)
    assert x.softmax(1).grad_fn.name() == "SoftmaxBackward0"
    assert x.log_softmax(1).grad_fn.name() == "LogSoftmaxBackward0"
    assert x.softmax(1).grad_fn.next_functions[0][0].name() == "AccumulateGrad"  # straight to the leaf


def test_stable_with_large_and_infinite_inputs(device):
    big = dtorch.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1e4, -999.0]], device=device)
    for fn in (_FNS["softmax"], _FNS["log_softmax"]):
        check_op(fn, inputs=(big,), as_leaves=True)
    masked = dtorch.tensor([[0.5, -float("inf"), 1.0], [-float("inf"), 2.0, -float("inf")]], device=device)
    check_op(_FNS["softmax"], inputs=(masked,), as_leaves=True)
    check_op(_FNS["log_softmax"], inputs=(masked,), as_leaves=True, grad=False)
    check_op(_FNS["softmax"], inputs=(dtorch.tensor([[-float("inf")] * 3], device=device),), as_leaves=True, grad=False)


def test_shapes_and_non_contiguous(device):
    check_op(lambda m, x: x.softmax(0), inputs=(dtorch.tensor(1.5, device=device),), as_leaves=True)
    check_op(lambda m, x: x.log_softmax(-1), inputs=(dtorch.tensor(1.5, device=device),), as_leaves=True)
    check_op(lambda m, x: x.softmax(1), inputs=(dtorch.zeros(0, 3, device=device),), as_leaves=True)
    check_op(lambda m, x: x.t().softmax(1), inputs=(dtorch.randn(4, 3, dtype=dtorch.float64, device=device),),
             as_leaves=True)
    check_op(lambda m, x: x.t().log_softmax(0), inputs=(dtorch.randn(4, 3, dtype=dtorch.float64, device=device),),
             as_leaves=True)
    check_op(lambda m, x: x.softmax(0), inputs=(dtorch.randn(5, dtype=dtorch.float16, device=device),),
             as_leaves=True, rtol=1e-3, atol=1e-3)


def test_errors_and_implicit_dim(device):
    x = dtorch.randn(2, 3, device=device)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.softmax(2)
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        dtorch.arange(3, device=device).softmax(0)
    check_op(lambda m, x: m.softmax(x, 0, dtype=m.float32), inputs=(dtorch.arange(3, device=device),), as_leaves=True)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        implicit = dtorch.softmax(x, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (implicit - x.softmax(1)).abs().max().item() == 0  # legacy rule: dim 1 for 2-d
        three_d = dtorch.randn(2, 3, 4, device=device)
        check_op(lambda m, t: t.softmax(0), inputs=(three_d,), as_leaves=True)
        assert (dtorch.log_softmax(three_d, None) - three_d.log_softmax(0)).abs().max().item() == 0

"""Losses (functional and modules) against torch: every reduction, weights, ignore_index, smoothing."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch.autograd import gradcheck, gradgradcheck
from tests.oracle import check_grads, check_op, leaf, to_torch

REDUCTIONS = ["mean", "sum", "none"]
TOL = {"rtol": 1e-6, "atol": 1e-8}  # float64 inputs


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 2, 2)])
def test_cross_entropy_class_indices(device, reduction, smoothing, weighted, shape, torch):
    rng = np.random.default_rng(0)
    x = leaf(rng.standard_normal(shape), device)
    t = rng.integers(0, 5, (shape[0],) + shape[2:])
    t.reshape(-1)[1] = -100
    w = leaf(rng.random(5), device, requires_grad=False) if weighted else None
    tw = to_torch(w) if weighted else None
    check_op(lambda x: F.cross_entropy(x, dtorch.tensor(t).to(device), w, reduction=reduction,
                                       label_smoothing=smoothing),
             lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(t), tw, reduction=reduction,
                                                         label_smoothing=smoothing),
             inputs=[x], **TOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probabilities(reduction, smoothing, torch):
    rng = np.random.default_rng(1)
    x, p = leaf(rng.standard_normal((4, 3, 2))), leaf(rng.random((4, 3, 2)))
    w = leaf(rng.random(3), requires_grad=False)
    check_op(lambda x, p: F.cross_entropy(x, p, w, reduction=reduction, label_smoothing=smoothing),
             lambda x, p: torch.nn.functional.cross_entropy(x, p, to_torch(w), reduction=reduction,
                                                            label_smoothing=smoothing),
             inputs=[x, p], **TOL)


def test_cross_entropy_other_ignore_index_unbatched_and_float32(torch):
    rng = np.random.default_rng(2)
    x = leaf(rng.standard_normal((5, 4)))
    t = np.array([0, 3, 3, 1, 2])
    check_op(lambda x: F.cross_entropy(x, dtorch.tensor(t), ignore_index=3),
             lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(t), ignore_index=3), inputs=[x], **TOL)
    x1 = leaf(rng.standard_normal(4))
    check_op(lambda x: F.cross_entropy(x, dtorch.tensor(2)),
             lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(2)), inputs=[x1], **TOL)
    xf = dtorch.randn(64, 100, requires_grad=True)
    tf = dtorch.randint(0, 100, (64,))
    check_op(lambda x: F.cross_entropy(x, tf), lambda x: torch.nn.functional.cross_entropy(x, to_torch(tf)),
             inputs=[xf], rtol=1e-5, atol=1e-6)
    assert type(F.cross_entropy(xf, tf).grad_fn).__name__ == "CrossEntropyLossBackward0"


def test_cross_entropy_errors():
    x = dtorch.randn(3, 4)
    with pytest.raises(IndexError, match="Target 4 is out of bounds."):
        F.cross_entropy(x, dtorch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target batch_size \(2\)"):
        F.cross_entropy(x, dtorch.tensor([0, 1]))
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        F.cross_entropy(x, dtorch.tensor([0, 1, 2]), reduction="foo")


def test_cross_entropy_gradcheck_and_double_backward():
    x = dtorch.randn(4, 3, dtype=dtorch.float64, requires_grad=True)
    t = dtorch.tensor([0, 2, -100, 1])
    w = dtorch.rand(3, dtype=dtorch.float64)
    fn = lambda x: F.cross_entropy(x, t, w, label_smoothing=0.1)
    check_grads(fn, x)
    fn_none = lambda x: F.cross_entropy(x, t, reduction="none")
    check_grads(fn_none, x)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(device, reduction, weighted, torch):
    rng = np.random.default_rng(3)
    x = leaf(rng.standard_normal((6, 4)), device)
    t = np.array([0, 3, -100, 1, 2, 3])
    w = leaf(rng.random(4), device, requires_grad=False) if weighted else None
    check_op(lambda x: F.nll_loss(x, dtorch.tensor(t).to(device), w, reduction=reduction),
             lambda x: torch.nn.functional.nll_loss(x, torch.tensor(t), to_torch(w) if weighted else None,
                                                    reduction=reduction),
             inputs=[x], **TOL)
    assert gradcheck(lambda x: F.nll_loss(x, dtorch.tensor(t).to(device), w, reduction=reduction), (x,))


ELEMENTWISE = [("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}), ("smooth_l1_loss", {"beta": 0.0}),
               ("huber_loss", {"delta": 0.7}), ("binary_cross_entropy", {}),
               ("binary_cross_entropy_with_logits", {}), ("kl_div", {}), ("kl_div", {"log_target": True})]


@pytest.mark.parametrize("name,kwargs", ELEMENTWISE)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_losses(device, name, kwargs, reduction, torch):
    rng = np.random.default_rng(4)
    a = rng.uniform(0.05, 0.95, (4, 3)) if name == "binary_cross_entropy" else rng.standard_normal((4, 3))
    x, y = leaf(a, device), leaf(rng.uniform(0.05, 0.95, (4, 3)), device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warning
        check_op(lambda x, y: getattr(F, name)(x, y, reduction=reduction, **kwargs),
                 lambda x, y: getattr(torch.nn.functional, name)(x, y, reduction=reduction, **kwargs),
                 inputs=[x, y], **TOL)
        fn = lambda x, y: getattr(F, name)(x, y, reduction=reduction, **kwargs)
        xc, yc = x.detach().cpu().requires_grad_(), y.detach().cpu().requires_grad_()
        assert gradcheck(fn, (xc, yc))
        if name not in ("l1_loss",) and kwargs.get("beta", 1.0) != 0.0:
            assert gradgradcheck(fn, (xc, yc))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weighted_bce_and_pos_weight(reduction, torch):
    rng = np.random.default_rng(6)
    x, y = leaf(rng.uniform(0.05, 0.95, (4, 3))), leaf(rng.random((4, 3)))
    w, pw = leaf(rng.random((4, 3)), requires_grad=False), leaf(rng.random(3) + 0.5, requires_grad=False)
    check_op(lambda x, y: F.binary_cross_entropy(x, y, w, reduction=reduction),
             lambda x, y: torch.nn.functional.binary_cross_entropy(x, y, to_torch(w), reduction=reduction),
             inputs=[x, y], **TOL)
    xl = leaf(rng.standard_normal((4, 3)) * 30)  # large logits: stable
    y = y.detach().requires_grad_()
    check_op(lambda x, y: F.binary_cross_entropy_with_logits(x, y, w[0], reduction=reduction, pos_weight=pw),
             lambda x, y: torch.nn.functional.binary_cross_entropy_with_logits(
                 x, y, to_torch(w[0]), reduction=reduction, pos_weight=to_torch(pw)),
             inputs=[xl, y], **TOL)


def test_kl_div_batchmean_and_warnings(torch):
    rng = np.random.default_rng(7)
    x, y = leaf(rng.standard_normal((4, 3))), leaf(rng.random((4, 3)))
    check_op(lambda x, y: F.kl_div(x, y, reduction="batchmean"),
             lambda x, y: torch.nn.functional.kl_div(x, y, reduction="batchmean"), inputs=[x, y], **TOL)
    with pytest.warns(UserWarning, match="reduction: 'mean' divides the total loss"):
        F.kl_div(x, y)
    with pytest.warns(UserWarning, match="Using a target size"):
        F.mse_loss(x, y[0])


def test_loss_modules(torch):
    rng = np.random.default_rng(8)
    x = leaf(rng.standard_normal((5, 4)))
    t = dtorch.tensor([0, 1, 2, 3, 1])
    w = dtorch.tensor(rng.random(4))
    pairs = [
        (dtorch.nn.CrossEntropyLoss(w, ignore_index=1, label_smoothing=0.1),
         torch.nn.CrossEntropyLoss(to_torch(w), ignore_index=1, label_smoothing=0.1), t),
        (dtorch.nn.NLLLoss(reduction="sum"), torch.nn.NLLLoss(reduction="sum"), t),
    ]
    for dm, tm, target in pairs:
        x = x.detach().requires_grad_()
        assert repr(dm) == repr(tm)
        assert list(dm.state_dict()) == list(tm.state_dict())
        check_op(lambda x, dm=dm, t=target: dm(x, t), lambda x, tm=tm, t=target: tm(x, to_torch(t)), inputs=[x],
                 rtol=1e-6, atol=1e-8)
    y = leaf(rng.uniform(0.1, 0.9, (5, 4)))
    p = leaf(rng.uniform(0.1, 0.9, (5, 4)))
    for name, kwargs in [("MSELoss", {}), ("L1Loss", {"reduction": "sum"}), ("SmoothL1Loss", {"beta": 0.3}),
                         ("HuberLoss", {"delta": 0.5}), ("BCELoss", {}), ("BCEWithLogitsLoss", {}),
                         ("KLDivLoss", {"reduction": "batchmean", "log_target": True})]:
        dm, tm = getattr(dtorch.nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
        p, y = p.detach().requires_grad_(), y.detach().requires_grad_()
        assert repr(dm) == repr(tm)
        check_op(dm, tm, inputs=[p, y], **TOL)
    assert dtorch.nn.MSELoss(size_average=False).reduction == "sum"
    bce = dtorch.nn.BCEWithLogitsLoss(pos_weight=dtorch.ones(4))
    assert list(bce.state_dict()) == list(torch.nn.BCEWithLogitsLoss(pos_weight=torch.ones(4)).state_dict())

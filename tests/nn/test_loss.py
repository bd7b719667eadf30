"""Losses (functional and modules) against torch: every reduction, weights, ignore_index, smoothing."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch.autograd import gradcheck
from tests.oracle import assert_close, to_torch, torch_or_skip

REDUCTIONS = ["mean", "sum", "none"]


def _t(a, device="cpu", rg=True):
    return dtorch.tensor(a).to(device).requires_grad_(rg)


def _compare(fn, tfn, args, targs, rtol=1e-6, atol=1e-8):
    """Forward values and gradients of every input that requires grad."""
    torch = torch_or_skip()
    out, tout = fn(*args), tfn(*targs)
    assert_close(out, tout, rtol=rtol, atol=atol)
    g = np.random.default_rng(5).standard_normal(tuple(out.shape))
    out.backward(dtorch.tensor(g).to(out.device))
    tout.backward(torch.tensor(g))
    for a, ta in zip(args, targs):
        if isinstance(a, dtorch.Tensor) and a.requires_grad:
            assert_close(a.grad, ta.grad, rtol=rtol, atol=atol)


def _gradgradcheck(fn, inputs) -> bool:
    go = dtorch.randn(*fn(*inputs).shape, dtype=dtorch.float64, requires_grad=True)
    n = len(inputs)

    def first(*args):
        with dtorch.enable_grad():
            diff = [a for a in args[:n] if a.requires_grad]
            return dtorch.autograd.grad(fn(*args[:n]), diff, args[n:], create_graph=True)

    return gradcheck(first, tuple(inputs) + (go,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 2, 2)])
def test_cross_entropy_class_indices(device, reduction, smoothing, weighted, shape):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    x = _t(rng.standard_normal(shape), device)
    t = rng.integers(0, 5, (shape[0],) + shape[2:])
    t.reshape(-1)[1] = -100
    w = _t(rng.random(5), device, False) if weighted else None
    tw = to_torch(w) if weighted else None
    _compare(lambda x: F.cross_entropy(x, dtorch.tensor(t).to(device), w, reduction=reduction,
                                       label_smoothing=smoothing),
             lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(t), tw, reduction=reduction,
                                                         label_smoothing=smoothing),
             [x], [to_torch(x)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probabilities(reduction, smoothing):
    torch = torch_or_skip()
    rng = np.random.default_rng(1)
    x, p = _t(rng.standard_normal((4, 3, 2))), _t(rng.random((4, 3, 2)))
    w = _t(rng.random(3), rg=False)
    _compare(lambda x, p: F.cross_entropy(x, p, w, reduction=reduction, label_smoothing=smoothing),
             lambda x, p: torch.nn.functional.cross_entropy(x, p, to_torch(w), reduction=reduction,
                                                            label_smoothing=smoothing),
             [x, p], [to_torch(x), to_torch(p)])


def test_cross_entropy_other_ignore_index_unbatched_and_float32():
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    x = _t(rng.standard_normal((5, 4)))
    t = np.array([0, 3, 3, 1, 2])
    _compare(lambda x: F.cross_entropy(x, dtorch.tensor(t), ignore_index=3),
             lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(t), ignore_index=3), [x], [to_torch(x)])
    x1 = _t(rng.standard_normal(4))
    _compare(lambda x: F.cross_entropy(x, dtorch.tensor(2)),
             lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(2)), [x1], [to_torch(x1)])
    xf = dtorch.randn(64, 100, requires_grad=True)
    tf = dtorch.randint(0, 100, (64,))
    _compare(lambda x: F.cross_entropy(x, tf), lambda x: torch.nn.functional.cross_entropy(x, to_torch(tf)),
             [xf], [to_torch(xf)], rtol=1e-5, atol=1e-6)
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
    assert gradcheck(fn, (x,))
    assert _gradgradcheck(fn, (x,))
    fn_none = lambda x: F.cross_entropy(x, t, reduction="none")
    assert gradcheck(fn_none, (x,))
    assert _gradgradcheck(fn_none, (x,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(device, reduction, weighted):
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    x = _t(rng.standard_normal((6, 4)), device)
    t = np.array([0, 3, -100, 1, 2, 3])
    w = _t(rng.random(4), device, False) if weighted else None
    _compare(lambda x: F.nll_loss(x, dtorch.tensor(t).to(device), w, reduction=reduction),
             lambda x: torch.nn.functional.nll_loss(x, torch.tensor(t), to_torch(w) if weighted else None,
                                                    reduction=reduction),
             [x], [to_torch(x)])
    assert gradcheck(lambda x: F.nll_loss(x, dtorch.tensor(t).to(device), w, reduction=reduction), (x,))


ELEMENTWISE = [("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}), ("smooth_l1_loss", {"beta": 0.0}),
               ("huber_loss", {"delta": 0.7}), ("binary_cross_entropy", {}),
               ("binary_cross_entropy_with_logits", {}), ("kl_div", {}), ("kl_div", {"log_target": True})]


@pytest.mark.parametrize("name,kwargs", ELEMENTWISE)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_losses(device, name, kwargs, reduction):
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    a = rng.uniform(0.05, 0.95, (4, 3)) if name == "binary_cross_entropy" else rng.standard_normal((4, 3))
    x, y = _t(a, device), _t(rng.uniform(0.05, 0.95, (4, 3)), device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warning
        _compare(lambda x, y: getattr(F, name)(x, y, reduction=reduction, **kwargs),
                 lambda x, y: getattr(torch.nn.functional, name)(x, y, reduction=reduction, **kwargs),
                 [x, y], [to_torch(x), to_torch(y)])
        fn = lambda x, y: getattr(F, name)(x, y, reduction=reduction, **kwargs)
        xc, yc = x.detach().cpu().requires_grad_(), y.detach().cpu().requires_grad_()
        assert gradcheck(fn, (xc, yc))
        if name not in ("l1_loss",) and kwargs.get("beta", 1.0) != 0.0:
            assert _gradgradcheck(fn, (xc, yc))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weighted_bce_and_pos_weight(reduction):
    torch = torch_or_skip()
    rng = np.random.default_rng(6)
    x, y = _t(rng.uniform(0.05, 0.95, (4, 3))), _t(rng.random((4, 3)))
    w, pw = _t(rng.random((4, 3)), rg=False), _t(rng.random(3) + 0.5, rg=False)
    _compare(lambda x, y: F.binary_cross_entropy(x, y, w, reduction=reduction),
             lambda x, y: torch.nn.functional.binary_cross_entropy(x, y, to_torch(w), reduction=reduction),
             [x, y], [to_torch(x), to_torch(y)])
    xl = _t(rng.standard_normal((4, 3)) * 30)  # large logits: stable
    y = y.detach().requires_grad_()
    _compare(lambda x, y: F.binary_cross_entropy_with_logits(x, y, w[0], reduction=reduction, pos_weight=pw),
             lambda x, y: torch.nn.functional.binary_cross_entropy_with_logits(
                 x, y, to_torch(w[0]), reduction=reduction, pos_weight=to_torch(pw)),
             [xl, y], [to_torch(xl), to_torch(y)])


def test_kl_div_batchmean_and_warnings():
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    x, y = _t(rng.standard_normal((4, 3))), _t(rng.random((4, 3)))
    _compare(lambda x, y: F.kl_div(x, y, reduction="batchmean"),
             lambda x, y: torch.nn.functional.kl_div(x, y, reduction="batchmean"), [x, y], [to_torch(x), to_torch(y)])
    with pytest.warns(UserWarning, match="reduction: 'mean' divides the total loss"):
        F.kl_div(x, y)
    with pytest.warns(UserWarning, match="Using a target size"):
        F.mse_loss(x, y[0])


def test_loss_modules():
    torch = torch_or_skip()
    rng = np.random.default_rng(8)
    x = _t(rng.standard_normal((5, 4)))
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
        _compare(lambda x, dm=dm, t=target: dm(x, t), lambda x, tm=tm, t=target: tm(x, to_torch(t)), [x], [to_torch(x)])
    y = _t(rng.uniform(0.1, 0.9, (5, 4)))
    p = _t(rng.uniform(0.1, 0.9, (5, 4)))
    for name, kwargs in [("MSELoss", {}), ("L1Loss", {"reduction": "sum"}), ("SmoothL1Loss", {"beta": 0.3}),
                         ("HuberLoss", {"delta": 0.5}), ("BCELoss", {}), ("BCEWithLogitsLoss", {}),
                         ("KLDivLoss", {"reduction": "batchmean", "log_target": True})]:
        dm, tm = getattr(dtorch.nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
        p, y = p.detach().requires_grad_(), y.detach().requires_grad_()
        assert repr(dm) == repr(tm)
        _compare(dm, tm, [p, y], [to_torch(p), to_torch(y)])
    assert dtorch.nn.MSELoss(size_average=False).reduction == "sum"
    bce = dtorch.nn.BCEWithLogitsLoss(pos_weight=dtorch.ones(4))
    assert list(bce.state_dict()) == list(torch.nn.BCEWithLogitsLoss(pos_weight=torch.ones(4)).state_dict())

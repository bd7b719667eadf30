"""Margin, ranking and embedding losses, Poisson and Gaussian NLL: modules and functions against torch."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from tests.oracle import check_grads, check_op, make_inputs, rand, raises_like_torch


def _sign(rng, shape):
    return np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)


def _labels(rng, shape):
    return rng.integers(0, 4, shape).astype(np.float64)


def _binary(rng, shape):
    return (rng.uniform(size=shape) < 0.5).astype(np.float64)


def _positive(rng, shape):
    return rng.uniform(0.2, 2.0, shape)


def _normal(rng, shape):
    return rng.standard_normal(shape)


# (module name, kwargs, input shapes, input factories)
CASES = [
    ("TripletMarginLoss", {}, [(4, 5)] * 3, None),
    ("TripletMarginLoss", dict(margin=2.0, p=1.0, swap=True, reduction="sum"), [(4, 5)] * 3, None),
    ("TripletMarginLoss", dict(reduction="none"), [(5,)] * 3, None),
    ("TripletMarginWithDistanceLoss", {}, [(4, 5)] * 3, None),
    ("TripletMarginWithDistanceLoss", dict(swap=True, margin=0.5, reduction="none"), [(5,)] * 3, None),
    ("CosineEmbeddingLoss", dict(margin=0.2), [(4, 5), (4, 5), (4,)], [_normal, _normal, _sign]),
    ("CosineEmbeddingLoss", dict(reduction="none"), [(5,), (5,), ()], [_normal, _normal, _sign]),
    ("MarginRankingLoss", dict(margin=0.3), [(6,), (6,), (6,)], [_normal, _normal, _sign]),
    ("HingeEmbeddingLoss", dict(margin=0.5, reduction="sum"), [(3, 4), (3, 4)], [_normal, _sign]),
    ("SoftMarginLoss", {}, [(3, 4), (3, 4)], [_normal, _sign]),
    ("MultiLabelSoftMarginLoss", {}, [(3, 4), (3, 4)], [_normal, _binary]),
    ("MultiLabelSoftMarginLoss", dict(reduction="none"), [(4,), (4,)], [_normal, _binary]),
    ("PoissonNLLLoss", {}, [(3, 4), (3, 4)], [_normal, _labels]),
    ("PoissonNLLLoss", dict(log_input=False, full=True, reduction="none"), [(3, 4), (3, 4)],
     [_positive, _labels]),
    ("GaussianNLLLoss", {}, [(3, 4), (3, 4), (3, 4)], [_normal, _normal, _positive]),
    ("GaussianNLLLoss", dict(full=True, reduction="sum"), [(3, 4), (3, 4), (3,)], [_normal, _normal, _positive]),
    ("GaussianNLLLoss", dict(reduction="none"), [(3, 4), (3, 4), (3, 1)], [_normal, _normal, _positive]),
]


def _id(case) -> str:
    return case[0] + "-" + ",".join(f"{k}={v}" for k, v in case[1].items())


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_loss_matches_torch(case, torch) -> None:
    name, kw, shapes, make = case
    ours, theirs = getattr(dtorch.nn, name)(**kw), getattr(torch.nn, name)(**kw)
    assert repr(ours) == repr(theirs)
    targets = {"CosineEmbeddingLoss": 2, "MarginRankingLoss": 2, "HingeEmbeddingLoss": 1, "SoftMarginLoss": 1,
               "MultiLabelSoftMarginLoss": 1, "PoissonNLLLoss": 1, "GaussianNLLLoss": 1}
    inputs = make_inputs(shapes, make=make or _normal)
    if name in targets:  # the target gets no gradient, as torch's examples use it
        k = targets[name]
        inputs[k] = inputs[k].detach()
    check_op(ours, theirs, inputs=inputs)


def test_multi_margin_loss(torch) -> None:
    target = dtorch.tensor([0, 3, 1])
    for kw in (dict(), dict(p=2, margin=0.5), dict(weight=dtorch.tensor([0.5, 1.0, 2.0, 1.5], dtype=dtorch.float64),
                                                   reduction="none")):
        ours = dtorch.nn.MultiMarginLoss(**kw)
        theirs = torch.nn.MultiMarginLoss(**{k: torch.tensor(v.numpy()) if k == "weight" else v
                                             for k, v in kw.items()})
        check_op(ours, theirs, inputs=[rand(3, 4), target])
    check_op(lambda lib, x, t: lib.nn.functional.multi_margin_loss(x, t), inputs=[rand(4), dtorch.tensor(2)])
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        dtorch.nn.MultiMarginLoss(p=3)


@pytest.mark.parametrize("fn", [
    lambda a, p, n: F.triplet_margin_loss(a, p, n, swap=True),
    lambda a, p, n: F.cosine_embedding_loss(a, p, dtorch.tensor([1.0, -1.0, 1.0]), margin=-0.5),
    lambda a, p, n: F.margin_ranking_loss(a, p, n.sign(), margin=0.1),
    lambda a, p, n: F.gaussian_nll_loss(a, p, n * n + 0.5, full=True),
])
def test_gradcheck(fn) -> None:
    check_grads(fn, rand(3, 4), rand(3, 4), rand(3, 4))


def test_errors_match_torch(torch) -> None:
    tf = torch.nn.functional
    raises_like_torch(F.triplet_margin_loss, tf.triplet_margin_loss, rand(3, 4), rand(4), rand(3, 4))
    raises_like_torch(F.cosine_embedding_loss, tf.cosine_embedding_loss, rand(3, 4), rand(3, 4), rand(3, 1))
    with pytest.raises(RuntimeError, match=r"All input tensors should have same dimension but got sizes: input1: "
                                           r"dtorch.Size\(\[3\]\), input2: dtorch.Size\(\[3, 4\]\)"):
        F.margin_ranking_loss(rand(3), rand(3, 4), rand(3))
    for cls in ("TripletMarginLoss", "TripletMarginWithDistanceLoss"):
        with pytest.raises(ValueError) as ours:
            getattr(dtorch.nn, cls)(margin=0)
        with pytest.raises(ValueError) as theirs:
            getattr(torch.nn, cls)(margin=0)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="var has negative entry"):
        F.gaussian_nll_loss(rand(3), rand(3), -rand(3).abs() - 1)
    with pytest.raises(ValueError, match="var is of incorrect size"):
        F.gaussian_nll_loss(rand(3, 4), rand(3, 4), rand(2))
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        F.soft_margin_loss(rand(3), rand(3), reduction="avg")


def test_triplet_with_custom_distance(torch) -> None:
    def dist(lib):
        return lambda x, y: 1.0 - lib.nn.functional.cosine_similarity(x, y)

    check_op(lambda lib, a, p, n: lib.nn.TripletMarginWithDistanceLoss(distance_function=dist(lib), swap=True)(
        a, p, n), shapes=[(4, 5)] * 3)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_multilabel_margin_loss(reduction, torch) -> None:
    target = dtorch.tensor([[3, 0, -1, 1], [0, 1, 2, 3], [1, -1, 0, 0], [2, 2, -1, 0]])
    check_op(dtorch.nn.MultiLabelMarginLoss(reduction=reduction), torch.nn.MultiLabelMarginLoss(reduction=reduction),
             inputs=[rand(4, 4), target])
    check_op(lambda lib, x, t: lib.nn.functional.multilabel_margin_loss(x, t, reduction=reduction),
             inputs=[rand(4), dtorch.tensor([2, 1, -1, 3])])
    raises_like_torch(lambda x, t: F.multilabel_margin_loss(x, t),
                      lambda x, t: torch.nn.functional.multilabel_margin_loss(x, t), rand(3, 4), target[:2])


def test_gumbel_softmax() -> None:
    logits = dtorch.tensor([[2.0, 0.0, -1.0]]).repeat(20000, 1).requires_grad_()
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.sum(-1).detach().numpy(), 1.0, rtol=1e-6)
    hard = F.gumbel_softmax(logits, hard=True)
    h = hard.detach().numpy()
    assert set(np.unique(h)) == {0.0, 1.0} and (h.sum(-1) == 1).all()
    probs = np.exp([2.0, 0.0, -1.0]) / np.exp([2.0, 0.0, -1.0]).sum()
    np.testing.assert_allclose(h.mean(0), probs, atol=0.015)  # Gumbel-max samples the softmax distribution
    (hard * dtorch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert logits.grad is not None and np.abs(logits.grad.numpy()).sum() > 0  # straight-through gradient

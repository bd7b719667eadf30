"""embedding / one_hot and nn.Embedding, against torch."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from tests.oracle import assert_close, check_grads, check_op, rand, same_values


@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 2}, {"padding_idx": -1}, {"scale_grad_by_freq": True},
                                    {"max_norm": 1.0}])
def test_embedding_matches_torch(device, kwargs, torch):
    rng = np.random.default_rng(0)
    w = dtorch.tensor(rng.standard_normal((10, 4))).to(device).requires_grad_()
    idx = rng.integers(0, 10, (3, 5))
    idx[0, :3] = 2  # repeated indices accumulate
    seen = []  # torch's weight, to compare after max_norm renormalized both in place
    check_op(lambda i, w: F.embedding(i, w, **kwargs),
             lambda i, w: seen.append(w) or torch.nn.functional.embedding(i, w, **kwargs),
             inputs=[dtorch.tensor(idx).to(device), w])
    assert_close(w, seen[0])


def test_embedding_gradcheck_and_double_backward():
    idx = dtorch.tensor([[1, 2], [1, 4]])
    check_grads(lambda w: F.embedding(idx, w), rand(5, 3))


def test_embedding_errors():
    w = dtorch.randn(5, 3)
    with pytest.raises(IndexError, match="index out of range in self"):
        F.embedding(dtorch.tensor([5]), w)
    with pytest.raises(RuntimeError, match="Expected tensor for argument #1 'indices'"):
        F.embedding(dtorch.tensor([1.0]), w)


def test_one_hot():
    check_op(lambda m, t: m.nn.functional.one_hot(t, 4), inputs=[dtorch.tensor([0, 2, 1])])


def test_embedding_module(torch):
    m = dtorch.nn.Embedding(10, 3, padding_idx=1)
    assert repr(m) == repr(torch.nn.Embedding(10, 3, padding_idx=1))
    assert same_values(m.weight[1], dtorch.zeros(3))
    assert list(m.state_dict()) == ["weight"]
    out = m(dtorch.tensor([[1, 2], [3, 1]]))
    out.sum().backward()
    assert same_values(m.weight.grad[1], dtorch.zeros(3))
    assert same_values(m.weight.grad[2], dtorch.ones(3))


def test_embedding_from_pretrained():
    w = dtorch.randn(4, 2)
    m = dtorch.nn.Embedding.from_pretrained(w)
    assert not m.weight.requires_grad
    assert same_values(m(dtorch.tensor([3])), w[3:4])
    m2 = dtorch.nn.Embedding.from_pretrained(w, freeze=False, padding_idx=0)
    assert m2.weight.requires_grad and m2.padding_idx == 0

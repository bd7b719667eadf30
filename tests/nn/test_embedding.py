"""embedding / one_hot and nn.Embedding, against torch."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch.autograd import gradcheck
from tests.oracle import to_numpy, assert_close, to_torch, torch_or_skip


@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 2}, {"padding_idx": -1}, {"scale_grad_by_freq": True},
                                    {"max_norm": 1.0}])
def test_embedding_matches_torch(device, kwargs):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    w = dtorch.tensor(rng.standard_normal((10, 4))).to(device).requires_grad_()
    idx = rng.integers(0, 10, (3, 5))
    idx[0, :3] = 2  # repeated indices accumulate
    tw = to_torch(w)
    out = F.embedding(dtorch.tensor(idx).to(device), w, **kwargs)
    tout = torch.nn.functional.embedding(torch.tensor(idx), tw, **kwargs)
    assert_close(out, tout)
    g = rng.standard_normal(tuple(out.shape))
    out.backward(dtorch.tensor(g).to(device))
    tout.backward(torch.tensor(g))
    assert_close(w.grad, tw.grad)
    assert_close(w, tw)  # max_norm renormalizes in place


def _equal(a, b) -> bool:
    return bool(np.array_equal(to_numpy(a), to_numpy(b)))


def test_embedding_gradcheck_and_double_backward():
    w = dtorch.randn(5, 3, dtype=dtorch.float64, requires_grad=True)
    idx = dtorch.tensor([[1, 2], [1, 4]])
    assert gradcheck(lambda w: F.embedding(idx, w), (w,))
    go = dtorch.randn(2, 2, 3, dtype=dtorch.float64, requires_grad=True)

    def first(w, go):
        with dtorch.enable_grad():
            return dtorch.autograd.grad(F.embedding(idx, w), (w,), (go,), create_graph=True)

    assert gradcheck(first, (w, go))


def test_embedding_errors():
    w = dtorch.randn(5, 3)
    with pytest.raises(IndexError, match="index out of range in self"):
        F.embedding(dtorch.tensor([5]), w)
    with pytest.raises(RuntimeError, match="Expected tensor for argument #1 'indices'"):
        F.embedding(dtorch.tensor([1.0]), w)


def test_one_hot():
    torch = torch_or_skip()
    t = dtorch.tensor([0, 2, 1])
    assert_close(F.one_hot(t, 4), torch.nn.functional.one_hot(torch.tensor([0, 2, 1]), 4))


def test_embedding_module():
    torch = torch_or_skip()
    m = dtorch.nn.Embedding(10, 3, padding_idx=1)
    assert repr(m) == repr(torch.nn.Embedding(10, 3, padding_idx=1))
    assert _equal(m.weight[1], dtorch.zeros(3))
    assert list(m.state_dict()) == ["weight"]
    out = m(dtorch.tensor([[1, 2], [3, 1]]))
    out.sum().backward()
    assert _equal(m.weight.grad[1], dtorch.zeros(3))
    assert _equal(m.weight.grad[2], dtorch.ones(3))


def test_embedding_from_pretrained():
    w = dtorch.randn(4, 2)
    m = dtorch.nn.Embedding.from_pretrained(w)
    assert not m.weight.requires_grad
    assert _equal(m(dtorch.tensor([3])), w[3:4])
    m2 = dtorch.nn.Embedding.from_pretrained(w, freeze=False, padding_idx=0)
    assert m2.weight.requires_grad and m2.padding_idx == 0

"""BatchNorm's C training kernels (nn/_functional/_batch_norm_c.py) for float32: forward, running statistics and
every gradient agree with numpy's path and with torch; float64 and non-contiguous inputs keep numpy's code."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch.nn._functional import _batch_norm_c

SHAPES = [(16, 8, 12, 12), (8, 5), (3, 7, 1), (4, 3, 5, 6), (2, 4, 3, 2, 2)]


def _bn(x, w, b, g, module: bool = False):
    xt = dtorch.from_numpy(x.copy()).requires_grad_()
    wt = None if w is None else dtorch.from_numpy(w.copy()).requires_grad_()
    bt = None if b is None else dtorch.from_numpy(b.copy()).requires_grad_()
    rm, rv = dtorch.zeros(x.shape[1]), dtorch.ones(x.shape[1])
    y = F.batch_norm(xt, rm, rv, wt, bt, training=True, momentum=0.3)
    y.backward(dtorch.from_numpy(g))
    grads = [t.grad.numpy() for t in (xt, wt, bt) if t is not None]
    return [y.detach().numpy(), rm.numpy(), rv.numpy(), *grads]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_c_kernels_agree_with_numpy(shape, affine, monkeypatch):
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(shape[1]).astype(np.float32) if affine else None
    b = rng.standard_normal(shape[1]).astype(np.float32) if affine else None
    assert _batch_norm_c.forward(x, w, b, 1e-5) is not None
    with_c = _bn(x, w, b, g)
    monkeypatch.setattr(_batch_norm_c.KERNELS, "fns", {})
    assert _batch_norm_c.forward(x, w, b, 1e-5) is None
    numpy_path = _bn(x, w, b, g)
    for a, r in zip(with_c, numpy_path):
        np.testing.assert_allclose(a, r, rtol=2e-5, atol=2e-5)


def test_dcgan_shape_matches_torch(torch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16, 32, 32)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    w, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    ours = _bn(x, w, b, g)
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    rm, rv = torch.zeros(16), torch.ones(16)
    ty = torch.nn.functional.batch_norm(tx, rm, rv, tw, tb, training=True, momentum=0.3)
    ty.backward(torch.from_numpy(g))
    for a, t in zip(ours, [ty.detach(), rm, rv, tx.grad, tw.grad, tb.grad]):
        np.testing.assert_allclose(a, t.numpy(), rtol=1e-4, atol=1e-4)


def test_unserved_inputs():
    x = np.ones((4, 3, 5), np.float32)
    assert _batch_norm_c.forward(x.astype(np.float64), None, None, 1e-5) is None
    assert _batch_norm_c.forward(x.transpose(1, 0, 2), None, None, 1e-5) is None
    assert _batch_norm_c.backward(x, x[:, :, :4], np.ones(3, np.float32), None, True) is None

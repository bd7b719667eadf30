"""The fast paths of the CNN programs' elementwise kernels against torch, edge values included: leaky_relu
(max(x, slope * x) forward, g * fmax(sign(x), slope) backward) for every slope regime, functional and in place,
and its float64 gradcheck and double backward (the recorded formula)."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from tests.oracle import check_grads, rand

EDGES = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-30, -1e-30, 3.5, -2.25], np.float32)


# torch refuses the in-place backward with a negative slope
@pytest.mark.parametrize("slope,inplace", [(s, i) for s in (0.2, 0.01, 1.0, 0.0, 1.5, -0.3) for i in (False, True)
                                           if not (i and s < 0)])
def test_leaky_relu_edges_match_torch(slope, inplace, torch):
    x = np.concatenate([EDGES, np.random.default_rng(0).standard_normal(23).astype(np.float32)])
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    outs, grads = [], []
    for lib in (dtorch, torch):
        leaf = lib.from_numpy(x.copy()).requires_grad_()
        y = lib.nn.functional.leaky_relu(leaf * 1, slope, inplace=inplace)
        y.backward(lib.from_numpy(g))
        outs.append(y.detach().numpy())
        grads.append(leaf.grad.numpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(grads[0], grads[1])
    assert outs[0].dtype == np.float32 and grads[0].dtype == np.float32


def test_leaky_relu_gradcheck_and_double_backward():
    x = rand(4, 5)
    check_grads(lambda x: F.leaky_relu(x, 0.2), x)

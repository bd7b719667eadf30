"""The fast paths of the CNN programs' kernels against torch, edge values included: relu and leaky_relu
(max(x, slope * x) forward, g * max(x > 0, slope) backward, a maximum with a scalar taken as rows of a constant
row from 8192 floats on) for every slope regime, functional and in place, and their float64 gradcheck and double
backward (the recorded formula; in place from the saved result); batch_norm's training kernels on arrays
(per-channel sums over short and long planes, per-channel factors as rows of a sample, a three-pass backward)
in float32 for every affine combination, with and without the input's gradient, the running statistics, and
float64 gradcheck."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from tests.oracle import F32_TOL, assert_close, check_grads, check_op, rand, to_torch

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
    check_grads(lambda x: F.leaky_relu(x * 1, 0.2, inplace=True), x)


@pytest.mark.parametrize("op,inplace", [("relu", False), ("relu", True), ("leaky_relu", False),
                                        ("leaky_relu", True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_family_long_inputs_match_torch(op, inplace, dtype, torch):
    """Past 8192 floats (the constant-row maximum) with a tail, edge values spread through."""
    x = np.random.default_rng(2).standard_normal(3 * 8192 + 5).astype(dtype)
    x[::997] = np.resize(EDGES, x[::997].shape)
    g = np.random.default_rng(3).standard_normal(x.shape).astype(dtype)
    outs, grads, names = [], [], []
    for lib in (dtorch, torch):
        leaf = lib.from_numpy(x.copy()).requires_grad_()
        args = (0.2,) if op == "leaky_relu" else ()
        y = getattr(lib.nn.functional, op)(leaf * 1, *args, inplace=inplace)
        names.append(type(y.grad_fn).__name__ if lib is torch else y.grad_fn.name())
        y.backward(lib.from_numpy(g))
        outs.append(y.detach().numpy())
        grads.append(leaf.grad.numpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(grads[0], grads[1])
    assert names[0] == names[1]


@pytest.mark.parametrize("affine", ["both", "none", "weight", "bias"])
@pytest.mark.parametrize("x_grad", [True, False])
@pytest.mark.parametrize("shape", [(6, 4, 5, 3), (3, 4, 9, 8)], ids=["short-planes", "long-planes"])
def test_batch_norm_training_float32_matches_torch(affine, x_grad, shape, torch):
    x = rand(*shape, dtype=dtorch.float32, requires_grad=x_grad)
    w = rand(4, dtype=dtorch.float32) if affine in ("both", "weight") else None
    b = rand(4, dtype=dtorch.float32) if affine in ("both", "bias") else None
    check_op(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
             lambda x, w, b: torch.nn.functional.batch_norm(x, None, None, w, b, training=True),
             inputs=[x, w, b], **F32_TOL)


def test_batch_norm_float32_running_stats_and_gradcheck(torch):
    x = rand(3, 5, 7, dtype=dtorch.float32)
    rm, rv = dtorch.zeros(5), dtorch.ones(5)
    trm, trv = to_torch(rm), to_torch(rv)
    F.batch_norm(x, rm, rv, training=True, momentum=0.3)
    torch.nn.functional.batch_norm(to_torch(x), trm, trv, training=True, momentum=0.3)
    assert_close(rm, trm, **F32_TOL)
    assert_close(rv, trv, **F32_TOL)
    check_grads(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), rand(4, 3, 2, 2), rand(3), None)

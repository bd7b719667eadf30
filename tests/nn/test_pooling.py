"""Pooling: max/avg (1d, 2d, 3d), adaptive avg/max and the modules: parity with torch, gradcheck, errors."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from tests.oracle import F32_TOL, check_grads, check_op, rand

MAX_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1)),
    dict(kernel_size=2, stride=1),
    dict(kernel_size=3, stride=3, ceil_mode=True),
]

F32 = dtorch.float32


@pytest.mark.parametrize("kw", MAX_CASES, ids=str)
def test_max_pool2d_parity(device, kw, torch):
    x = rand(2, 3, 9, 10, device=device, dtype=F32)
    check_op(lambda x: F.max_pool2d(x, **kw), lambda x: torch.nn.functional.max_pool2d(x, **kw), inputs=[x], **F32_TOL)


def test_max_pool2d_indices_and_ties_as_torch(torch):
    x = dtorch.tensor(np.random.default_rng(0).integers(0, 3, (2, 2, 7, 7)).astype(np.float32), requires_grad=True)
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, return_indices=True)
    out, idx = F.max_pool2d(x, **kw)
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    tout, tidx = torch.nn.functional.max_pool2d(tx, **kw)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert idx.dtype == dtorch.int64
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    out.backward(dtorch.tensor(g))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n,kw", [(2, dict(kernel_size=2)), (2, dict(kernel_size=2, padding=1)),
                                  (2, dict(kernel_size=(2, 3), stride=(3, 4), ceil_mode=True)),
                                  (1, dict(kernel_size=3, stride=4, padding=1)),
                                  (3, dict(kernel_size=2, ceil_mode=True))], ids=str)
def test_max_pool_disjoint_windows_backward_with_ties_as_torch(n, kw, torch):
    """Windows that share no input (the flat-index scatter): ties (ReLU's zeros) go to the first maximum."""
    shape = (3, 4) + (9, 11, 7)[:n]
    x = np.maximum(np.random.default_rng(2).integers(-2, 3, shape), 0).astype(np.float32)
    g = None
    grads = []
    for lib in (dtorch, torch):
        t = lib.tensor(x, requires_grad=True)
        out = getattr(lib.nn.functional, f"max_pool{n}d")(t, **kw)
        if g is None:
            g = np.random.default_rng(3).standard_normal(tuple(out.shape)).astype(np.float32)
        out.backward(lib.tensor(g))
        grads.append(t.grad.numpy())
    np.testing.assert_array_equal(grads[0], grads[1])


def test_max_pool2d_nan_propagates():
    x = dtorch.tensor([[[[1.0, float("nan")], [3.0, 2.0]]]])
    assert np.isnan(F.max_pool2d(x, 2).item())


def test_max_pool1d_and_3d_parity(torch):
    x = rand(2, 3, 11, dtype=F32)
    check_op(lambda x: F.max_pool1d(x, 3, 2, 1), lambda x: torch.nn.functional.max_pool1d(x, 3, 2, 1), inputs=[x],
             **F32_TOL)
    x3 = rand(1, 2, 4, 5, 6, dtype=F32)
    check_op(lambda x: F.max_pool3d(x, 2, ceil_mode=True),
             lambda x: torch.nn.functional.max_pool3d(x, 2, ceil_mode=True), inputs=[x3], **F32_TOL)


AVG_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), divisor_override=5),
]


@pytest.mark.parametrize("kw", AVG_CASES, ids=str)
def test_avg_pool2d_parity(device, kw, torch):
    x = rand(2, 3, 9, 10, device=device, dtype=F32)
    check_op(lambda x: F.avg_pool2d(x, **kw), lambda x: torch.nn.functional.avg_pool2d(x, **kw), inputs=[x], **F32_TOL)


def test_avg_pool1d_parity(torch):
    x = rand(2, 3, 11, dtype=F32)
    check_op(lambda x: F.avg_pool1d(x, 3, 2, 1, count_include_pad=False),
             lambda x: torch.nn.functional.avg_pool1d(x, 3, 2, 1, count_include_pad=False), inputs=[x], **F32_TOL)


@pytest.mark.parametrize("size", [1, 3, (4, 3), (None, 2), (9, 10)], ids=str)
def test_adaptive_pools_parity(device, size, torch):
    x = rand(2, 3, 9, 10, device=device, dtype=F32)
    check_op(lambda x: F.adaptive_avg_pool2d(x, size), lambda x: torch.nn.functional.adaptive_avg_pool2d(x, size),
             inputs=[x], **F32_TOL)
    x = rand(2, 3, 9, 10, device=device, dtype=F32)
    check_op(lambda x: F.adaptive_max_pool2d(x, size), lambda x: torch.nn.functional.adaptive_max_pool2d(x, size),
             inputs=[x], **F32_TOL)


def test_adaptive_max_indices_and_1d(torch):
    x = rand(2, 3, 9, 10, dtype=F32)
    _, idx = F.adaptive_max_pool2d(x, (4, 3), return_indices=True)
    _, tidx = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x.detach().numpy()), (4, 3), return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    x1 = rand(2, 3, 10, dtype=F32)
    check_op(lambda x: F.adaptive_avg_pool1d(x, 4), lambda x: torch.nn.functional.adaptive_avg_pool1d(x, 4),
             inputs=[x1], **F32_TOL)


@pytest.mark.parametrize("fn", [
    lambda a: F.max_pool2d(a, 3, 2, 1, ceil_mode=True),
    lambda a: F.max_pool2d(a, 2, 1),
    lambda a: F.avg_pool2d(a, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda a: F.adaptive_avg_pool2d(a, (3, 4)),
    lambda a: F.adaptive_max_pool2d(a, (3, 2)),
], ids=["max", "max-overlap", "avg", "adaptive-avg", "adaptive-max"])
def test_pool_gradcheck_and_double_backward(fn):
    x = rand(1, 2, 6, 5, dtype=dtorch.float64)
    check_grads(fn, x)


@pytest.mark.parametrize("call, msg", [
    (lambda: F.max_pool2d(rand(2, 3, 8, 8, dtype=F32), 3, padding=2),
     "pad should be at most half of effective kernel size, but got pad=2, kernel_size=3 and dilation=1"),
    (lambda: F.max_pool2d(rand(2, 3, 2, 2, dtype=F32), 3), "Output size is too small"),
    (lambda: F.max_pool2d(rand(2, 3, 2, 2, dtype=F32), 2, stride=0), "stride should not be zero"),
    (lambda: F.max_pool2d(rand(3, 8, dtype=F32), 2),
     "non-empty 3D or 4D (batch mode) tensor expected for input"),
])
def test_pool_errors(call, msg):
    with pytest.raises(RuntimeError) as e:
        call()
    assert msg in str(e.value)


def test_pool_module_reprs_match_torch(torch):
    pairs = [("MaxPool2d", (2,), {}), ("MaxPool2d", (3, 2, 1), dict(ceil_mode=True)), ("AvgPool2d", (3, 2, 1), {}),
             ("AdaptiveAvgPool2d", ((2, 3),), {}), ("AdaptiveMaxPool2d", (4,), {}), ("AvgPool1d", (3,), {}),
             ("MaxPool1d", (3,), {}), ("AdaptiveAvgPool1d", (5,), {})]
    for name, args, kw in pairs:
        assert repr(getattr(dtorch.nn, name)(*args, **kw)) == repr(getattr(torch.nn, name)(*args, **kw))


def test_pool_modules_forward():
    x = rand(2, 3, 8, 8, requires_grad=False, dtype=F32)
    assert tuple(dtorch.nn.MaxPool2d(2)(x).shape) == (2, 3, 4, 4)
    out, idx = dtorch.nn.MaxPool2d(2, return_indices=True)(x)
    assert tuple(idx.shape) == (2, 3, 4, 4)
    assert tuple(dtorch.nn.AvgPool2d(3, 2, 1)(x).shape) == (2, 3, 4, 4)
    assert tuple(dtorch.nn.AdaptiveAvgPool2d(1)(x).shape) == (2, 3, 1, 1)
    assert tuple(dtorch.nn.AdaptiveMaxPool2d((2, 1))(x).shape) == (2, 3, 2, 1)

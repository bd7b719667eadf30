"""Each fused CUDA kernel against the numpy reference path (needs a GPU)."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F

pytestmark = pytest.mark.cuda
TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


def _both(x: np.ndarray):
    """The same leaf on cpu and cuda, both requiring grad."""
    return (dtorch.tensor(x, requires_grad=True), dtorch.tensor(x, requires_grad=True, device="cuda"))


def _check(fn, x: np.ndarray, dtype: str):
    """fn(tensor, device_index) on cpu (0) and cuda (1): outputs and input gradients agree."""
    rng = np.random.default_rng(1)
    cpu, gpu = _both(x.astype(dtype))
    outs = [fn(t, i) for i, t in enumerate((cpu, gpu))]
    g = rng.standard_normal(outs[0].shape).astype(dtype)
    outs[0].backward(dtorch.tensor(g))
    outs[1].backward(dtorch.tensor(g, device="cuda"))
    np.testing.assert_allclose(outs[1].detach().cpu().numpy(), outs[0].detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(gpu.grad.cpu().numpy(), cpu.grad.numpy(), **TOL[dtype])
    return cpu, gpu


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 10, 257, 5000])
@pytest.mark.parametrize("fn", [dtorch.softmax, dtorch.log_softmax])
def test_softmax(cp, fn, n, dtype):
    x = np.random.default_rng(0).standard_normal((7, n)) * 4
    _check(lambda t, i: fn(t, -1), x, dtype)


def test_softmax_other_dim_falls_back(cp):
    x = np.random.default_rng(0).standard_normal((5, 6, 7))
    _check(lambda t, i: dtorch.softmax(t, 1), x, "float32")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(cp, affine, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 300)) * 3 + 1
    w = rng.standard_normal(300).astype(dtype)
    b = rng.standard_normal(300).astype(dtype)
    if not affine:
        _check(lambda t, i: F.layer_norm(t, (300,)), x, dtype)
        return
    ws = [dtorch.tensor(w, requires_grad=True), dtorch.tensor(w, requires_grad=True, device="cuda")]
    bs = [dtorch.tensor(b, requires_grad=True), dtorch.tensor(b, requires_grad=True, device="cuda")]
    _check(lambda t, i: F.layer_norm(t, (300,), ws[i], bs[i]), x, dtype)
    for a, c in (ws, bs):
        np.testing.assert_allclose(c.grad.cpu().numpy(), a.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(cp, approximate, dtype):
    x = np.random.default_rng(0).standard_normal((33, 65)) * 3
    _check(lambda t, i: F.gelu(t, approximate=approximate), x, dtype)


def test_gelu_float16(cp):
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float16)
    y = F.gelu(dtorch.tensor(x, device="cuda")).cpu().numpy()
    ref = F.gelu(dtorch.tensor(x.astype(np.float32))).numpy()
    np.testing.assert_allclose(y.astype(np.float32), ref, rtol=2e-3, atol=2e-3)


def _train(opt_cls, device: str, steps: int = 4, **kw):
    dtorch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = dtorch.nn.Sequential(dtorch.nn.Linear(20, 30), dtorch.nn.Tanh(), dtorch.nn.Linear(30, 5))
    model.to(device)
    opt = opt_cls(model.parameters(), **kw)
    for _ in range(steps):
        x = dtorch.tensor(rng.standard_normal((8, 20)).astype(np.float32), device=device)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    return [p.detach().cpu().numpy() for p in model.parameters()]


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9, nesterov=True),
                                dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, maximize=True)])
def test_sgd(cp, kw):
    for a, b in zip(_train(dtorch.optim.SGD, "cpu", **kw), _train(dtorch.optim.SGD, "cuda", **kw)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


ADAM_CASES = [(dtorch.optim.Adam, dict(lr=1e-2)), (dtorch.optim.Adam, dict(lr=1e-2, weight_decay=0.1)),
              (dtorch.optim.AdamW, dict(lr=1e-2)), (dtorch.optim.AdamW, dict(lr=1e-2, amsgrad=True)),
              (dtorch.optim.Adam, dict(lr=1e-2, maximize=True))]


@pytest.mark.parametrize("cls,kw", ADAM_CASES)
def test_adam(cp, cls, kw):
    for a, b in zip(_train(cls, "cpu", **kw), _train(cls, "cuda", **kw)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [None, np.inf, np.nan])
def test_grad_scaler_unscale(cp, bad):
    p = dtorch.nn.Parameter(dtorch.zeros(100, device="cuda"))
    q = dtorch.nn.Parameter(dtorch.zeros(3, 4, device="cuda"))
    g = np.arange(100, dtype=np.float32)
    if bad is not None:
        g[7] = bad
    p.grad = dtorch.tensor(g * 1024, device="cuda")
    q.grad = dtorch.ones(3, 4, device="cuda") * 1024
    opt = dtorch.optim.SGD([p, q], lr=1.0)
    scaler = dtorch.amp.GradScaler("cuda", init_scale=1024.0)
    scaler.unscale_(opt)
    assert scaler._per_optimizer[id(opt)]["found_inf"] == (bad is not None)
    np.testing.assert_array_equal(q.grad.cpu().numpy(), np.ones((3, 4), np.float32))
    if bad is None:
        np.testing.assert_array_equal(p.grad.cpu().numpy(), g)

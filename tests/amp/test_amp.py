"""autocast's dtype flow and GradScaler's rules, against torch's CPU autocast and GradScaler."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from tests.oracle import check_op


def _flow(lib, a):
    mm = a @ a
    return [mm, lib.softmax(mm, 0), mm.sum(), lib.cat([a, mm]), lib.exp(mm), mm + a,
            lib.nn.functional.layer_norm(mm, (3,)), lib.nn.functional.linear(a, a),
            lib.nn.functional.cross_entropy(mm, lib.tensor([0, 1, 2]))]


def test_cpu_autocast_dtypes_match_torch():
    def run(lib, a):
        with lib.autocast("cpu", dtype=lib.float16):
            return _flow(lib, a)

    x = np.random.default_rng(0).standard_normal((3, 3)).astype(np.float32)
    check_op(run, inputs=[dtorch.tensor(x, requires_grad=True)], rtol=2e-3, atol=2e-3)  # dtypes, float16 values, grads


def test_autocast_scopes_and_decorator():
    a = dtorch.randn(2, 2)
    assert (a @ a).dtype == dtorch.float32
    with dtorch.autocast("cpu", dtype=dtorch.float16):
        assert (a @ a).dtype == dtorch.float16
        with dtorch.autocast("cpu", enabled=False):
            assert (a @ a).dtype == dtorch.float32
        assert dtorch.amp.is_autocast_enabled("cpu")
    assert (a @ a).dtype == dtorch.float32 and not dtorch.amp.is_autocast_enabled("cpu")
    with dtorch.autocast("cuda"):  # another device type's region leaves CPU ops alone
        assert (a @ a).dtype == dtorch.float32

    @dtorch.autocast("cpu", dtype=dtorch.float16)
    def f(t):
        return t @ t

    assert f(a).dtype == dtorch.float16 and (a @ a).dtype == dtorch.float32


def test_float64_is_never_cast_and_grads_keep_param_dtype():
    d = dtorch.randn(2, 2, dtype=dtorch.float64)
    w = dtorch.randn(3, 2, requires_grad=True)
    with dtorch.autocast("cpu", dtype=dtorch.float16):
        assert (d @ d).dtype == dtorch.float64
        out = dtorch.nn.functional.linear(dtorch.randn(4, 2), w)
    assert out.dtype == dtorch.float16
    out.float().sum().backward()
    assert w.grad.dtype == dtorch.float32 and w.grad.shape == (3, 2)


def test_bad_autocast_arguments():
    with pytest.raises(RuntimeError, match="unsupported autocast device_type"):
        dtorch.autocast("tpu")
    with pytest.raises(RuntimeError, match="target dtype is not supported"):
        dtorch.autocast("cpu", dtype=dtorch.float64)


def _scaler_run(lib, make_scaler, grads):
    p = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([p], lr=0.1)
    scaler = make_scaler()
    trace = []
    for g in grads:
        opt.zero_grad()
        scaler.scale((p * lib.tensor(g)).sum()).backward()
        scaler.step(opt)
        scaler.update()
        trace.append((scaler.get_scale(), [round(v, 6) for v in p.detach().tolist()], scaler.state_dict()))
    return trace


def test_grad_scaler_matches_torch_with_overflows(torch):
    grads = [[1.0, 2.0], [float("inf"), 1.0], [1.0, 1.0], [1.0, 1.0], [float("nan"), 0.0], [1.0, 1.0], [2.0, 1.0]]
    ours = _scaler_run(dtorch, lambda: dtorch.amp.GradScaler("cpu", init_scale=4.0, growth_interval=2), grads)
    theirs = _scaler_run(torch, lambda: torch.amp.GradScaler("cpu", init_scale=4.0, growth_interval=2), grads)
    assert ours == theirs


def test_grad_scaler_state_and_errors():
    p = dtorch.nn.Parameter(dtorch.ones(2))
    opt = dtorch.optim.SGD([p], lr=0.1)
    s = dtorch.amp.GradScaler("cpu", init_scale=8.0)
    s.scale(p.sum()).backward()
    assert p.grad.tolist() == [8.0, 8.0]
    s.unscale_(opt)
    assert p.grad.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="already been called"):
        s.unscale_(opt)
    s.step(opt)
    s.update()
    other = dtorch.amp.GradScaler("cpu")
    other.load_state_dict(s.state_dict())
    assert other.get_scale() == s.get_scale() == 8.0
    off = dtorch.amp.GradScaler("cpu", enabled=False)
    loss = p.sum()
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}

"""LBFGS against torch: the trajectory over several steps (with and without the strong-Wolfe line search),
state keys, state-dict round trip, a closure through nn modules, and errors."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import dtorch
from tests.oracle import assert_close


def _problem(lib, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((20, 4)).astype(dtype)
    y = (x @ rng.standard_normal((4, 2)) + 0.1 * rng.standard_normal((20, 2))).astype(dtype)
    w = lib.tensor(rng.standard_normal((4, 2)).astype(dtype) * 0.1, requires_grad=True)
    b = lib.tensor(np.zeros(2, dtype), requires_grad=True)
    return lib.tensor(x), lib.tensor(y), [w, b]


def _closure(lib, opt, x, y, params):
    w, b = params

    def closure():
        opt.zero_grad()
        loss = ((lib.tanh(x @ w + b) - y) ** 2).mean() + (w ** 4).sum() * 0.01
        loss.backward()
        return loss
    return closure


def _run(lib, dtype, steps: int, **kw):
    x, y, params = _problem(lib, dtype)
    opt = lib.optim.LBFGS(params, **kw)
    closure = _closure(lib, opt, x, y, params)
    losses = [float(opt.step(closure).detach()) for _ in range(steps)]
    return params, opt, losses


def _compare_state(opt, topt, tol) -> None:
    s, ts = opt.state_dict()["state"][0], topt.state_dict()["state"][0]
    assert list(s) == list(ts)
    for key, tv in ts.items():
        v = s[key]
        if isinstance(tv, list):
            assert len(v) == len(tv), key
            pairs = [(a, b) for a, b in zip(v, tv) if b is not None]
        else:
            pairs = [(v, tv)]
        for a, b in pairs:
            if hasattr(b, "numpy"):
                assert_close(a, b, **tol)
            else:
                assert type(a) is type(b) and a == pytest.approx(b, rel=1e-12), key


CONFIGS = [dict(lr=0.8), dict(lr=0.8, history_size=3, max_iter=7), dict(lr=1, line_search_fn="strong_wolfe"),
           dict(lr=0.5, line_search_fn="strong_wolfe", history_size=2, max_iter=6, max_eval=9)]


@pytest.mark.parametrize("kw", CONFIGS, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c in CONFIGS])
def test_trajectory_matches_torch(kw, torch) -> None:
    params, opt, losses = _run(dtorch, np.float64, 3, **kw)
    tparams, topt, tlosses = _run(torch, np.float64, 3, **kw)
    np.testing.assert_allclose(losses, tlosses, rtol=1e-12)
    for p, tp in zip(params, tparams):
        assert_close(p, tp, rtol=1e-10, atol=1e-12)
    _compare_state(opt, topt, dict(rtol=1e-10, atol=1e-12))
    assert opt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]


@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_float32_losses_track_torch(ls, torch) -> None:
    _, _, losses = _run(dtorch, np.float32, 3, line_search_fn=ls)
    _, _, tlosses = _run(torch, np.float32, 3, line_search_fn=ls)
    np.testing.assert_allclose(losses, tlosses, rtol=1e-5)


def test_state_dict_round_trip(torch) -> None:
    kw = dict(lr=0.5, history_size=4, max_iter=5, line_search_fn="strong_wolfe")
    x, y, params = _problem(dtorch, np.float64)
    opt = dtorch.optim.LBFGS(params, **kw)
    opt.step(_closure(dtorch, opt, x, y, params))
    params2 = [p.detach().clone().requires_grad_() for p in params]
    opt2 = dtorch.optim.LBFGS(params2, **kw)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    for o, ps in ((opt, params), (opt2, params2)):
        for _ in range(2):
            o.step(_closure(dtorch, o, x, y, ps))
    tparams, topt, _ = _run(torch, np.float64, 3, **kw)
    for p, p2, tp in zip(params, params2, tparams):
        assert_close(p, tp, rtol=1e-10, atol=1e-12)
        assert_close(p2, tp, rtol=1e-10, atol=1e-12)


def test_modules_closure_hooks_and_errors() -> None:
    dtorch.manual_seed(0)
    model = dtorch.nn.Sequential(dtorch.nn.Linear(3, 8), dtorch.nn.Tanh(), dtorch.nn.Linear(8, 1))
    x = dtorch.randn(32, 3)
    y = (x[:, :1] * 2 - x[:, 1:2]).sin()
    opt = dtorch.optim.LBFGS(model.parameters(), lr=0.5, line_search_fn="strong_wolfe")
    calls = []
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = dtorch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss
    first = float(closure())
    for _ in range(3):
        opt.step(closure)
    assert float(closure()) < 0.2 * first and calls == ["post"] * 3
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        dtorch.optim.LBFGS([{"params": [x.requires_grad_()]}, {"params": [y.requires_grad_()]}])
    with pytest.raises(ValueError, match="Invalid learning rate"):
        dtorch.optim.LBFGS(model.parameters(), lr=-1)
    bad = dtorch.optim.LBFGS(model.parameters(), line_search_fn="armijo")
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        bad.step(closure)

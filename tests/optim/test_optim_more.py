"""Adadelta, Adamax, NAdam, RAdam, ASGD, Rprop against torch: trajectories, state keys and dtypes, param groups,
state-dict round trips, flags and constructor errors. Each case runs the fast (flat buffer) path and the
per-parameter path (foreach=False)."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import dtorch
from tests.oracle import assert_close

SHAPES = [(5, 3), (3,), (2, 2, 2), (1,)]
STEPS = 7
CASES = {
    "Adadelta": [dict(), dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)],
    "Adamax": [dict(lr=0.01), dict(lr=0.02, betas=(0.3, 0.8), weight_decay=0.1, maximize=True)],
    "NAdam": [dict(lr=0.01), dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01),
              dict(lr=0.02, weight_decay=0.2, decoupled_weight_decay=True, maximize=True)],
    "RAdam": [dict(lr=0.01), dict(lr=0.01, betas=(0.5, 0.6), weight_decay=0.1),
              dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)],
    "ASGD": [dict(lr=0.01), dict(lr=0.05, lambd=0.01, alpha=0.5, t0=3, weight_decay=0.1, maximize=True)],
    "Rprop": [dict(lr=0.01), dict(lr=0.02, etas=(0.3, 1.5), step_sizes=(1e-3, 0.03), maximize=True)],
}
ALL = [(name, kw) for name, kws in CASES.items() for kw in kws]
TOL = {np.float32: dict(rtol=2e-6, atol=2e-7), np.float64: dict(rtol=1e-12, atol=1e-14)}


def _ids(case) -> str:
    return case[0] + "-" + ",".join(f"{k}={v}" for k, v in case[1].items())


def _data(dtype, seed: int):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    return init, [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]


def _run(lib, name, kw, init, grads, foreach=False, skip_first=0):
    """``lib.optim.<name>`` stepped once per entry of ``grads``; parameter 0 gets no gradient for ``skip_first``
    steps (its state starts later than the others')."""
    ps = [lib.tensor(a.copy(), requires_grad=True) for a in init]
    opt = getattr(lib.optim, name)(ps, foreach=foreach, **kw)
    _steps(lib, opt, ps, grads, skip_first)
    return ps, opt


def _steps(lib, opt, ps, grads, skip_first=0):
    for k, gs in enumerate(grads):
        for i, (p, g) in enumerate(zip(ps, gs)):
            p.grad = None if (i == 0 and k < skip_first) else lib.tensor(g.copy())
        opt.step()


def _compare(ps, opt, tps, topt, tol) -> None:
    for p, tp in zip(ps, tps):
        assert_close(p, tp, **tol)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["state"].keys() == tsd["state"].keys()
    for i, ts in tsd["state"].items():
        assert list(sd["state"][i]) == list(ts)
        for key, tv in ts.items():
            assert str(sd["state"][i][key].dtype).split(".")[-1] == str(tv.dtype).split(".")[-1], key
            assert_close(sd["state"][i][key], tv, check_dtype=False, **tol)
    groups, tgroups = sd["param_groups"], tsd["param_groups"]
    assert [sorted(g) for g in groups] == [sorted(g) for g in tgroups]
    assert groups == [dict(g, foreach=groups[0]["foreach"]) for g in tgroups]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("foreach", [None, False], ids=["fast", "ref"])
@pytest.mark.parametrize("case", ALL, ids=[_ids(c) for c in ALL])
def test_matches_torch(case, foreach, dtype, torch) -> None:
    name, kw = case
    init, grads = _data(dtype, 0)
    ps, opt = _run(dtorch, name, kw, init, grads, foreach)
    tps, topt = _run(torch, name, kw, init, grads)
    _compare(ps, opt, tps, topt, TOL[dtype])


@pytest.mark.parametrize("name", ["NAdam", "ASGD", "Rprop"])
def test_state_started_at_different_steps(name, torch) -> None:
    """A parameter whose state starts later: per-parameter ``step``/scalar state differs within a bucket."""
    kw = CASES[name][-1]
    init, grads = _data(np.float64, 1)
    ps, opt = _run(dtorch, name, kw, init, grads, None, skip_first=2)
    tps, topt = _run(torch, name, kw, init, grads, skip_first=2)
    _compare(ps, opt, tps, topt, TOL[np.float64])


def _from_torch_sd(tsd: dict) -> dict:
    import torch

    conv = lambda v: dtorch.tensor(v.numpy().copy()) if isinstance(v, torch.Tensor) else v
    return {"state": {i: {k: conv(v) for k, v in s.items()} for i, s in tsd["state"].items()},
            "param_groups": [dict(g) for g in tsd["param_groups"]]}


@pytest.mark.parametrize("foreach", [None, False], ids=["fast", "ref"])
@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_round_trip_and_torch_state_dict(name, foreach, torch) -> None:
    kw = CASES[name][-1]
    init, grads = _data(np.float32, 2)
    tps, topt = _run(torch, name, kw, init, grads[:3])
    ps = [dtorch.tensor(p.detach().numpy().copy(), requires_grad=True) for p in tps]
    opt = getattr(dtorch.optim, name)(ps, foreach=foreach, **kw)
    opt.load_state_dict(_from_torch_sd(topt.state_dict()))
    ps2 = [dtorch.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ps]
    opt2 = getattr(dtorch.optim, name)(ps2, foreach=foreach, **kw)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    _steps(dtorch, opt, ps, grads[3:])
    _steps(dtorch, opt2, ps2, grads[3:])
    _steps(torch, topt, tps, grads[3:])
    _compare(ps, opt, tps, topt, TOL[np.float32])
    _compare(ps2, opt2, tps, topt, TOL[np.float32])


BAD = [
    ("Adadelta", dict(lr=-1.0)), ("Adadelta", dict(rho=1.5)), ("Adadelta", dict(eps=-1.0)),
    ("Adadelta", dict(weight_decay=-1.0)), ("Adamax", dict(betas=(1.0, 0.9))), ("Adamax", dict(betas=(0.9, -0.1))),
    ("Adamax", dict(eps=-1.0)), ("NAdam", dict(momentum_decay=-1.0)), ("NAdam", dict(weight_decay=-0.1)),
    ("RAdam", dict(betas=(0.9, 1.0))), ("ASGD", dict(weight_decay=-1.0)), ("ASGD", dict(lr=-0.1)),
    ("Rprop", dict(etas=(1.1, 1.2))), ("Rprop", dict(etas=(0.5, 0.9))),
]


@pytest.mark.parametrize("name,kw", BAD, ids=[_ids(c) for c in BAD])
def test_constructor_errors_match_torch(name, kw, torch) -> None:
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kw)
    with pytest.raises(ValueError) as ours:
        getattr(dtorch.optim, name)([dtorch.zeros(2, requires_grad=True)], **kw)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", list(CASES))
def test_flags_tensor_lr_and_repr(name, torch) -> None:
    p = dtorch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        getattr(dtorch.optim, name)([p], lr=dtorch.tensor([0.1, 0.2]))
    opt = getattr(dtorch.optim, name)([p], capturable=True)
    p.grad = dtorch.ones(3)
    with pytest.raises(AssertionError, match="If capturable=True, params.* must be on supported devices"):
        opt.step()  # torch refuses capturable on the CPU at the first step too
    init, grads = _data(np.float64, 3)
    ours, opt = _run(dtorch, name, dict(CASES[name][0], differentiable=True), init, grads[:2], None)
    theirs, _ = _run(dtorch, name, CASES[name][0], init, grads[:2], False)
    for a, b in zip(ours, theirs):
        assert_close(a, b, rtol=0, atol=0)
    lr = dtorch.tensor(0.01, dtype=dtorch.float64)
    tensor_lr, _ = _run(dtorch, name, dict(CASES[name][0], lr=lr), init, grads[:2], False)
    float_lr, _ = _run(dtorch, name, dict(CASES[name][0], lr=0.01), init, grads[:2], False)
    for a, b in zip(tensor_lr, float_lr):
        assert_close(a, b, rtol=1e-12, atol=0)
    tp = torch.zeros(3, requires_grad=True)
    assert repr(getattr(dtorch.optim, name)([p])).replace("dtorch", "torch") == \
        repr(getattr(torch.optim, name)([tp]))


@pytest.mark.parametrize("name,key", [("NAdam", "mu_product"), ("ASGD", "eta")])
def test_uneven_scalar_state_takes_the_per_parameter_path(name, key) -> None:
    init, grads = _data(np.float64, 4)
    runs = []
    for foreach in (None, False):
        ps, opt = _run(dtorch, name, CASES[name][0], init, grads[:2], foreach)
        opt.state[ps[1]][key].mul_(0.5)  # e.g. loaded from a checkpoint: no longer one value per bucket
        _steps(dtorch, opt, ps, grads[2:])
        runs.append((ps, opt))
    (fast, fopt), (ref, ropt) = runs
    for a, b in zip(fast, ref):
        assert_close(a, b, rtol=1e-14, atol=0)
    assert float(fopt.state[fast[1]][key]) == float(ropt.state[ref[1]][key])
    if key == "mu_product":  # a running product keeps the difference (ASGD recomputes eta from the step)
        assert float(fopt.state[fast[1]][key]) != float(fopt.state[fast[0]][key])

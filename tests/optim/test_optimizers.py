"""Optimizers against torch: identical parameters and gradients, several steps, params and state equal.

Every case runs the fast (flat buffer) path and the per-parameter reference path (foreach=False).
"""
from __future__ import annotations

import copy
import numpy as np
import pytest

import dtorch
from tests.oracle import assert_close, to_numpy

SHAPES = [(5, 3), (3,), (2, 2, 2), (1,)]
STEPS = 6

CASES = {
    "SGD": [
        dict(lr=0.1),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
        dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
        dict(lr=0.05, momentum=0.9, maximize=True),
        dict(lr=0.05, weight_decay=0.2, maximize=True),
    ],
    "Adam": [
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, amsgrad=True, maximize=True, weight_decay=0.05),
        dict(lr=0.02, decoupled_weight_decay=True, weight_decay=0.1),
        dict(lr=0.02, betas=(0.3, 0.6)),  # lerp weight >= 0.5 takes torch's other branch
    ],
    "AdamW": [
        dict(lr=0.01),
        dict(lr=0.01, weight_decay=0.3, amsgrad=True),
        dict(lr=0.01, maximize=True, betas=(0.5, 0.9)),
    ],
    "RMSprop": [
        dict(lr=0.01),
        dict(lr=0.01, momentum=0.9),
        dict(lr=0.01, centered=True),
        dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1, alpha=0.9),
        dict(lr=0.01, maximize=True, eps=1e-3),
    ],
    "Adagrad": [
        dict(lr=0.1),
        dict(lr=0.1, lr_decay=0.05, weight_decay=0.1),
        dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6, maximize=True),
    ],
}
ALL = [(name, kw) for name, kws in CASES.items() for kw in kws]
TOL = {np.float32: dict(rtol=2e-6, atol=2e-7), np.float64: dict(rtol=1e-12, atol=1e-14)}


def _ids(case) -> str:
    name, kw = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in kw.items() if k != "lr")


def _params(dtype, rng) -> list[np.ndarray]:
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _grads(dtype, rng) -> list[list[np.ndarray]]:
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]


def _run(lib, name, kw, init, grads, foreach=False):
    """``lib.optim.<name>`` stepped once per entry of ``grads`` from parameters ``init``."""
    ps = [lib.tensor(a.copy(), requires_grad=True) for a in init]
    opt = getattr(lib.optim, name)(ps, foreach=foreach, **kw)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = lib.tensor(g.copy())
        opt.step()
    return ps, opt


def _compare_state(opt, topt, tol) -> None:
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["state"].keys() == tsd["state"].keys()
    for i, ts in tsd["state"].items():
        s = sd["state"][i]
        assert list(s.keys()) == list(ts.keys())
        for key, tv in ts.items():
            if key == "step":
                assert s[key].dtype == dtorch.float32 and s[key].shape == ()
                assert float(s[key]) == float(tv)
            else:
                assert_close(s[key], tv, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("foreach", [None, False], ids=["fast", "ref"])
@pytest.mark.parametrize("case", ALL, ids=[_ids(c) for c in ALL])
def test_matches_torch(case, foreach, dtype, torch) -> None:
    name, kw = case
    rng = np.random.default_rng(0)
    init, grads = _params(dtype, rng), _grads(dtype, rng)
    ps, opt = _run(dtorch, name, kw, init, grads, foreach)
    tps, topt = _run(torch, name, kw, init, grads)
    for p, tp in zip(ps, tps):
        assert_close(p, tp, **TOL[dtype])
    _compare_state(opt, topt, TOL[dtype])
    groups, tgroups = opt.state_dict()["param_groups"], topt.state_dict()["param_groups"]
    assert [sorted(g) for g in groups] == [sorted(g) for g in tgroups]


@pytest.mark.parametrize("case", ALL, ids=[_ids(c) for c in ALL])
def test_fast_path_matches_reference(case) -> None:
    name, kw = case
    rng = np.random.default_rng(1)
    init, grads = _params(np.float64, rng), _grads(np.float64, rng)
    fast, fopt = _run(dtorch, name, kw, init, grads, None)
    ref, ropt = _run(dtorch, name, kw, init, grads)
    for a, b in zip(fast, ref):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-13, atol=1e-15)
    fs, rs = fopt.state_dict()["state"], ropt.state_dict()["state"]
    for i in rs:
        for key in rs[i]:
            np.testing.assert_allclose(to_numpy(fs[i][key]), to_numpy(rs[i][key]), rtol=1e-13, atol=1e-15)


def test_fast_path_keeps_parameter_objects_and_bumps_versions() -> None:
    ps = [dtorch.randn(4, 3, requires_grad=True), dtorch.randn(3, requires_grad=True)]
    ids = [id(p) for p in ps]
    opt = dtorch.optim.SGD(ps, lr=0.1, momentum=0.9)
    (ps[0].sum() + ps[1].sum()).backward()
    v0 = [p._version for p in ps]
    opt.step()
    assert [id(p) for p in ps] == ids
    assert all(p._version > v for p, v in zip(ps, v0))
    # parameters now live in one buffer: updates through the parameter are seen by the optimizer
    assert ps[0]._data.base is ps[1]._data.base
    assert not ps[0].requires_grad or ps[0].grad_fn is None


def test_fast_path_follows_reassigned_data_and_missing_grads(torch) -> None:
    rng = np.random.default_rng(2)
    init = _params(np.float64, rng)
    grads = _grads(np.float64, rng)
    ps = [dtorch.tensor(a.copy(), requires_grad=True) for a in init]
    tps = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt = dtorch.optim.Adam(ps, lr=0.01)
    topt = torch.optim.Adam(tps, lr=0.01)
    for k, gs in enumerate(grads):
        for i, (p, tp, g) in enumerate(zip(ps, tps, gs)):
            skip = k == 2 and i == 1  # one parameter without a gradient: steps go out of line
            p.grad = None if skip else dtorch.tensor(g.copy())
            tp.grad = None if skip else torch.tensor(g.copy())
        if k == 3:  # replacing a parameter's data must be picked up
            new = rng.standard_normal(SHAPES[0])
            ps[0].data = dtorch.tensor(new.copy())
            with torch.no_grad():
                tps[0].copy_(torch.tensor(new))
        opt.step()
        topt.step()
    for p, tp in zip(ps, tps):
        assert_close(p, tp, rtol=1e-12, atol=1e-14)
    _compare_state(opt, topt, dict(rtol=1e-12, atol=1e-14))


def test_grads_already_in_one_flat_buffer_are_read_in_place() -> None:
    rng = np.random.default_rng(3)
    init = _params(np.float32, rng)
    grads = _grads(np.float32, rng)
    ps = [dtorch.tensor(a.copy(), requires_grad=True) for a in init]
    ref = [dtorch.tensor(a.copy(), requires_grad=True) for a in init]
    opt = dtorch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01)
    ropt = dtorch.optim.SGD(ref, lr=0.1, momentum=0.9, weight_decay=0.01, foreach=False)
    sizes = [int(np.prod(s)) for s in SHAPES]
    offs = np.cumsum([0] + sizes)
    flat = np.zeros(offs[-1], np.float32)
    gviews = [dtorch.from_numpy(flat[offs[i]:offs[i + 1]].reshape(s)) for i, s in enumerate(SHAPES)]
    for gs in grads:
        for p, r, v, g in zip(ps, ref, gviews, gs):
            v._data[...] = g
            p.grad = v
            r.grad = dtorch.tensor(g.copy())
        opt.step()
        ropt.step()
    for p, r in zip(ps, ref):
        np.testing.assert_allclose(to_numpy(p), to_numpy(r), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(flat[offs[-2]:], grads[-1][-1].ravel())  # grads untouched


def test_mixed_dtypes_and_views_fall_back() -> None:
    base = dtorch.randn(6, 4, dtype=dtorch.float64)
    view_param = base[:, :2]  # a view: not flattenable, updated per parameter
    view_param.requires_grad_(True)
    ps = [dtorch.randn(3, requires_grad=True), dtorch.randn(2, dtype=dtorch.float64, requires_grad=True),
          view_param]
    before = [to_numpy(p).copy() for p in ps]
    opt = dtorch.optim.SGD(ps, lr=0.5)
    for p in ps:
        p.grad = dtorch.ones_like(p)
    opt.step()
    for p, b in zip(ps, before):
        np.testing.assert_allclose(to_numpy(p), b - 0.5)
    np.testing.assert_allclose(to_numpy(base)[:, :2], before[2] - 0.5)


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01, amsgrad=True)),
                                     ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
                                     ("Adagrad", dict(lr=0.1))])
@pytest.mark.parametrize("foreach", [None, False], ids=["fast", "ref"])
def test_state_dict_round_trip_and_torch_state_dict(name, kw, foreach, torch) -> None:
    rng = np.random.default_rng(4)
    init, grads = _params(np.float32, rng), _grads(np.float32, rng)
    # torch runs 3 steps; its state dict is loaded into a fresh dtorch optimizer that continues
    tps, topt = _run(torch, name, kw, init, grads[:3])
    tsd = topt.state_dict()
    ps = [dtorch.tensor(p.detach().numpy().copy(), requires_grad=True) for p in tps]
    opt = getattr(dtorch.optim, name)(ps, foreach=foreach, **kw)
    opt.load_state_dict(_from_torch_sd(tsd))
    # and a dtorch round trip through state_dict into a third optimizer
    ps2 = [dtorch.tensor(to_numpy(p).copy(), requires_grad=True) for p in ps]
    opt2 = getattr(dtorch.optim, name)(ps2, foreach=foreach, **kw)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))  # as torch, loading does not copy tensors
    for gs in grads[3:]:
        for p, p2, tp, g in zip(ps, ps2, tps, gs):
            p.grad = dtorch.tensor(g.copy())
            p2.grad = dtorch.tensor(g.copy())
            tp.grad = torch.tensor(g.copy())
        opt.step()
        opt2.step()
        topt.step()
    for p, p2, tp in zip(ps, ps2, tps):
        assert_close(p, tp, **TOL[np.float32])
        assert_close(p2, tp, **TOL[np.float32])
    _compare_state(opt, topt, TOL[np.float32])
    _compare_state(opt2, topt, TOL[np.float32])


def _from_torch_sd(tsd: dict) -> dict:
    import torch

    conv = lambda v: dtorch.tensor(v.numpy().copy()) if isinstance(v, torch.Tensor) else v
    return {"state": {i: {k: conv(v) for k, v in s.items()} for i, s in tsd["state"].items()},
            "param_groups": [dict(g) for g in tsd["param_groups"]]}


def test_load_state_dict_casts_to_param_dtype_but_not_step() -> None:
    p = dtorch.randn(3, dtype=dtorch.float64, requires_grad=True)
    opt = dtorch.optim.Adam([p])
    sd = {"state": {0: {"step": dtorch.tensor(2.0), "exp_avg": dtorch.ones(3), "exp_avg_sq": dtorch.ones(3)}},
          "param_groups": [dict(opt.state_dict()["param_groups"][0], lr=0.5)]}
    opt.load_state_dict(sd)
    s = opt.state[p]
    assert s["exp_avg"].dtype == dtorch.float64 and s["step"].dtype == dtorch.float32
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["params"][0] is p


def test_load_state_dict_validation() -> None:
    a, b = dtorch.randn(2, requires_grad=True), dtorch.randn(2, requires_grad=True)
    opt = dtorch.optim.SGD([a, b], lr=0.1)
    sd = opt.state_dict()
    other = dtorch.optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        other.load_state_dict(sd)
    small = dtorch.optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        small.load_state_dict(sd)


def test_param_groups_defaults_and_errors(torch) -> None:
    a, b = dtorch.randn(2, requires_grad=True), dtorch.randn(2, requires_grad=True)
    opt = dtorch.optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    tp = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9)
    assert sorted(opt.param_groups[0]) == sorted(topt.param_groups[0])
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        dtorch.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="params argument given to the optimizer should be an iterable"):
        dtorch.optim.SGD(a, lr=0.1)
    with pytest.raises(TypeError, match="organized in ordered collections"):
        opt.add_param_group({"params": {dtorch.zeros(1, requires_grad=True)}})
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        dtorch.optim.SGD([a * 2], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
        dtorch.optim.SGD([a], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        dtorch.optim.Adam([a], betas=(0.9, 1.0))
    with pytest.warns(UserWarning, match="duplicate parameters"):
        dtorch.optim.SGD([a, a], lr=0.1)


def test_zero_grad_step_closure_and_hooks() -> None:
    w = dtorch.tensor([1.0, 2.0], requires_grad=True)
    opt = dtorch.optim.SGD([w], lr=0.1)
    calls = []
    h = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == 5.0 and calls == ["pre", "post"]
    np.testing.assert_allclose(to_numpy(w), [0.8, 1.6], rtol=1e-6)
    h.remove()
    opt.step(closure)
    assert calls == ["pre", "post", "post"]
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and float(w.grad.abs().sum()) == 0.0
    opt.zero_grad()
    assert w.grad is None


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
@pytest.mark.parametrize("foreach", [None, False], ids=["fast", "ref"])
def test_tensor_lr(name, foreach, torch) -> None:
    rng = np.random.default_rng(5)
    init, grads = _params(np.float64, rng), _grads(np.float64, rng)
    ps = [dtorch.tensor(a.copy(), requires_grad=True) for a in init]
    tps = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    kw = dict(lr_decay=0.1) if name == "Adagrad" else {}
    opt = getattr(dtorch.optim, name)(ps, lr=dtorch.tensor(0.01), foreach=foreach, **kw)
    topt = getattr(torch.optim, name)(tps, lr=torch.tensor(0.01), foreach=False, **kw)
    for gs in grads:
        for p, tp, g in zip(ps, tps, gs):
            p.grad, tp.grad = dtorch.tensor(g.copy()), torch.tensor(g.copy())
        opt.step()
        topt.step()
    for p, tp in zip(ps, tps):
        assert_close(p, tp, rtol=1e-12, atol=1e-14)


def test_tensor_lr_with_foreach_true_is_refused() -> None:
    p = dtorch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="lr as a Tensor is not supported"):
        dtorch.optim.Adam([p], lr=dtorch.tensor(0.01), foreach=True)


def test_training_through_autograd_matches_torch(torch) -> None:
    """End to end: grads from backward (fresh arrays each step) into the fast path."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    w0 = rng.standard_normal((5, 3)).astype(np.float32)
    w, tw = dtorch.tensor(w0.copy(), requires_grad=True), torch.tensor(w0.copy(), requires_grad=True)
    opt, topt = dtorch.optim.AdamW([w], lr=0.05), torch.optim.AdamW([tw], lr=0.05)
    for _ in range(5):
        for o, ww, xx in ((opt, w, dtorch.tensor(x)), (topt, tw, torch.tensor(x))):
            o.zero_grad()
            ((xx @ ww) ** 2).mean().backward()
            o.step()
    assert_close(w, tw, rtol=1e-5, atol=1e-6)


def test_subclass_step_runs_hooks_once() -> None:
    class Scaled(dtorch.optim.SGD):
        def step(self, closure=None):
            return super().step(closure)

    w = dtorch.ones(2, requires_grad=True)
    opt = Scaled([w], lr=0.1)
    calls = []
    opt.register_step_post_hook(lambda o, a, k: calls.append(1))
    w.grad = dtorch.ones(2)
    opt.step()
    assert calls == [1]


def test_parameter_moved_to_another_dtype_is_followed() -> None:
    a, b = dtorch.ones(3, requires_grad=True), dtorch.ones(2, requires_grad=True)
    opt = dtorch.optim.SGD([a, b], lr=0.5, momentum=0.5)
    for p in (a, b):
        p.grad = dtorch.ones_like(p)
    opt.step()
    b.data = dtorch.ones(2, dtype=dtorch.float64)  # now the group mixes dtypes
    opt.state[b]["momentum_buffer"] = opt.state[b]["momentum_buffer"].double()
    for _ in range(2):
        for p in (a, b):
            p.grad = dtorch.ones_like(p)
        opt.step()
    np.testing.assert_allclose(to_numpy(a), 1 - 0.5 * (1 + 1.5 + 1.75))
    np.testing.assert_allclose(to_numpy(b), 1 - 0.5 * (1.5 + 1.75))
    assert b.dtype == dtorch.float64


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                     ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
                                     ("AdamW", dict(lr=0.01)),
                                     ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
                                     ("Adagrad", dict(lr=0.1, lr_decay=0.01))])
def test_fast_path_on_device_matches_cpu_reference(device, name, kw) -> None:
    rng = np.random.default_rng(7)
    init, grads = _params(np.float32, rng), _grads(np.float32, rng)
    ref, _ = _run(dtorch, name, kw, init, grads)
    ps = [dtorch.tensor(a.copy(), device=device, requires_grad=True) for a in init]
    opt = getattr(dtorch.optim, name)(ps, **kw)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = dtorch.tensor(g.copy(), device=device)
        opt.step()
    for p, r in zip(ps, ref):
        assert p.device.type == device
        np.testing.assert_allclose(to_numpy(p), to_numpy(r), rtol=1e-5, atol=1e-6)
    sd = opt.state_dict()["state"][0]
    assert "step" not in sd or sd["step"].device.type == "cpu"

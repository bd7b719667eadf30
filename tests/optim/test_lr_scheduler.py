"""LR schedulers against torch: the whole learning-rate (and momentum) sequence, step by step."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import dtorch
from tests.oracle import torch_or_skip

STEPS = 40


def _optimizers(torch, opt_name: str = "SGD", lrs=(0.1, 0.05), **kw):
    """The same two-group optimizer in dtorch and torch."""
    out = []
    for lib in (dtorch, torch):
        a, b = lib.zeros(2, requires_grad=True), lib.zeros(3, requires_grad=True)
        groups = [{"params": [a], "lr": lrs[0]}, {"params": [b], "lr": lrs[1]}]
        out.append(getattr(lib.optim, opt_name)(groups, **kw))
    return out


def _record(opt, sched, steps: int, metrics=None, epochs=None) -> list:
    """lr, momentum/beta1 of every group and get_last_lr() after construction and each step."""
    def snap():
        row = [float(g["lr"]) for g in opt.param_groups]
        row += [float(g["momentum"]) if "momentum" in g else float(g["betas"][0]) for g in opt.param_groups]
        return row + [float(x) for x in sched.get_last_lr()]

    rows = [snap()]
    for i in range(steps):
        opt.step()
        if metrics is not None:
            sched.step(metrics[i])
        elif epochs is not None:
            sched.step(epochs[i])
        else:
            sched.step()
        rows.append(snap())
    return rows


def _compare(make, opt_name="SGD", steps=STEPS, opt_kw=None, **rec) -> None:
    torch = torch_or_skip()
    opt, topt = _optimizers(torch, opt_name, **(opt_kw or {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = _record(opt, make(dtorch, opt), steps, **rec)
        theirs = _record(topt, make(torch, topt), steps, **rec)
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-14, atol=0)



def _sched(name):
    return lambda lib: getattr(lib.optim.lr_scheduler, name)


CASES = {
    "lambda": lambda lib, o: _sched("LambdaLR")(lib)(o, lambda e: 0.95 ** e),
    "lambda_list": lambda lib, o: _sched("LambdaLR")(lib)(o, [lambda e: 1 / (e + 1), lambda e: 0.9 ** e]),
    "multiplicative": lambda lib, o: _sched("MultiplicativeLR")(lib)(o, lambda e: 0.9),
    "step": lambda lib, o: _sched("StepLR")(lib)(o, step_size=7, gamma=0.5),
    "multistep": lambda lib, o: _sched("MultiStepLR")(lib)(o, [5, 12, 12, 20], gamma=0.3),
    "constant": lambda lib, o: _sched("ConstantLR")(lib)(o, factor=0.25, total_iters=6),
    "linear": lambda lib, o: _sched("LinearLR")(lib)(o, start_factor=0.2, end_factor=0.9, total_iters=10),
    "exponential": lambda lib, o: _sched("ExponentialLR")(lib)(o, gamma=0.93),
    "polynomial": lambda lib, o: _sched("PolynomialLR")(lib)(o, total_iters=20, power=2.0),
    "cosine": lambda lib, o: _sched("CosineAnnealingLR")(lib)(o, T_max=10, eta_min=0.001),
    "cosine_long": lambda lib, o: _sched("CosineAnnealingLR")(lib)(o, T_max=50),
    "warm_restarts": lambda lib, o: _sched("CosineAnnealingWarmRestarts")(lib)(o, T_0=5, T_mult=2, eta_min=1e-4),
    "warm_restarts_1": lambda lib, o: _sched("CosineAnnealingWarmRestarts")(lib)(o, T_0=7),
    "onecycle": lambda lib, o: _sched("OneCycleLR")(lib)(o, max_lr=[0.1, 0.2], total_steps=STEPS),
    "onecycle_3phase_linear": lambda lib, o: _sched("OneCycleLR")(lib)(
        o, max_lr=0.3, epochs=4, steps_per_epoch=10, pct_start=0.25, anneal_strategy="linear", three_phase=True),
    "cyclic_triangular2": lambda lib, o: _sched("CyclicLR")(lib)(
        o, base_lr=0.01, max_lr=[0.1, 0.2], step_size_up=4, step_size_down=6, mode="triangular2"),
    "cyclic_exp_range": lambda lib, o: _sched("CyclicLR")(lib)(
        o, base_lr=0.01, max_lr=0.1, step_size_up=5, mode="exp_range", gamma=0.97),
    "sequential": lambda lib, o: _sched("SequentialLR")(lib)(o, schedulers=[
        _sched("LinearLR")(lib)(o, start_factor=0.1, total_iters=5),
        _sched("ExponentialLR")(lib)(o, gamma=0.9)], milestones=[5]),
    "sequential_cosine": lambda lib, o: _sched("SequentialLR")(lib)(o, schedulers=[
        _sched("ConstantLR")(lib)(o, factor=0.5, total_iters=3),
        _sched("CosineAnnealingLR")(lib)(o, T_max=12, eta_min=0.01),
        _sched("StepLR")(lib)(o, step_size=4, gamma=0.5)], milestones=[6, 20]),
    "chained": lambda lib, o: _sched("ChainedScheduler")(lib)([
        _sched("ConstantLR")(lib)(o, factor=0.3, total_iters=4),
        _sched("ExponentialLR")(lib)(o, gamma=0.95)]),
    "chained_cosine": lambda lib, o: _sched("ChainedScheduler")(lib)([
        _sched("LinearLR")(lib)(o, start_factor=0.5, total_iters=8),
        _sched("CosineAnnealingLR")(lib)(o, T_max=15)], optimizer=o),
}


@pytest.mark.parametrize("name", list(CASES))
def test_sequence_matches_torch(name) -> None:
    _compare(CASES[name], opt_kw=dict(momentum=0.9))


@pytest.mark.parametrize("three_phase", [False, True])
def test_onecycle_cycles_adam_beta1(three_phase) -> None:
    make = lambda lib, o: _sched("OneCycleLR")(lib)(o, max_lr=0.01, total_steps=STEPS, three_phase=three_phase,
                                                    base_momentum=0.8, max_momentum=0.92)
    _compare(make, opt_name="Adam")


def test_onecycle_refuses_too_many_steps() -> None:
    p = dtorch.zeros(1, requires_grad=True)
    opt = dtorch.optim.SGD([p], lr=0.1, momentum=0.9)
    sched = dtorch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        opt.step()
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        sched.step()


def test_warm_restarts_fractional_epochs() -> None:
    iters = 7
    epochs = [e + i / iters for e in range(6) for i in range(iters)]
    make = lambda lib, o: _sched("CosineAnnealingWarmRestarts")(lib)(o, T_0=2, T_mult=2, eta_min=0.001)
    _compare(make, steps=len(epochs), epochs=epochs)


@pytest.mark.parametrize("kw", [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.01, threshold_mode="abs", cooldown=2),
    dict(factor=0.3, patience=1, cooldown=1, min_lr=[0.004, 0.001]),
    dict(factor=0.5, patience=0, min_lr=0.02, eps=1e-3),
])
def test_reduce_on_plateau(kw) -> None:
    rng = np.random.default_rng(0)
    metrics = list(np.concatenate([np.linspace(1.0, 0.5, 8), 0.5 + 0.01 * rng.standard_normal(32)]))
    make = lambda lib, o: _sched("ReduceLROnPlateau")(lib)(o, **kw)
    _compare(make, metrics=metrics)


def test_closed_form_with_epoch_argument() -> None:
    epochs = [3, 7, 8, 15, 14, 21, 30, 2]
    for name, kw in (("StepLR", dict(step_size=5, gamma=0.5)), ("MultiStepLR", dict(milestones=[4, 9], gamma=0.1)),
                     ("ExponentialLR", dict(gamma=0.9)), ("CosineAnnealingLR", dict(T_max=10)),
                     ("LinearLR", dict(total_iters=10)), ("PolynomialLR", dict(total_iters=10, power=3.0))):
        make = lambda lib, o, name=name, kw=kw: _sched(name)(lib)(o, **kw)
        _compare(make, steps=len(epochs), epochs=epochs)


def test_tensor_lr_is_filled_in_place(torch) -> None:
    ours = dtorch.optim.Adam([dtorch.zeros(2, requires_grad=True)], lr=dtorch.tensor(0.1))
    theirs = torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=torch.tensor(0.1))
    lr_t = ours.param_groups[0]["lr"]
    s1 = dtorch.optim.lr_scheduler.ExponentialLR(ours, gamma=0.5)
    s2 = torch.optim.lr_scheduler.ExponentialLR(theirs, gamma=0.5)
    for _ in range(5):
        ours.step()
        theirs.step()
        s1.step()
        s2.step()
    assert ours.param_groups[0]["lr"] is lr_t
    assert float(lr_t) == float(theirs.param_groups[0]["lr"])
    assert isinstance(s1.get_last_lr()[0], dtorch.Tensor)


@pytest.mark.parametrize("name", ["cosine", "warm_restarts", "onecycle", "sequential", "chained", "multistep",
                                  "cyclic_triangular2"])
def test_state_dict_resume(name, torch) -> None:
    """Ten steps, save, a fresh optimizer + scheduler loads both, and the rest matches torch's sequence."""
    opt, topt = _optimizers(torch, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched, tsched = CASES[name](dtorch, opt), CASES[name](torch, topt)
        first = _record(opt, sched, 10)
        sd, osd = sched.state_dict(), opt.state_dict()
        opt2, _ = _optimizers(torch, momentum=0.9)
        sched2 = CASES[name](dtorch, opt2)
        opt2.load_state_dict(osd)
        sched2.load_state_dict(sd)
        rest = _record(opt2, sched2, 20)
        expected = _record(topt, tsched, 30)
    np.testing.assert_allclose(np.array(first + rest[1:]), np.array(expected), rtol=1e-14, atol=0)


def test_lambda_state_dict_keeps_callable_objects_state() -> None:
    class Decay:
        def __init__(self, rate: float) -> None:
            self.rate = rate

        def __call__(self, epoch: int) -> float:
            return self.rate ** epoch

    opt = dtorch.optim.SGD([dtorch.zeros(1, requires_grad=True)], lr=1.0)
    sched = dtorch.optim.lr_scheduler.LambdaLR(opt, Decay(0.5))
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [{"rate": 0.5}] and "optimizer" not in sd
    other = dtorch.optim.lr_scheduler.LambdaLR(opt, Decay(0.9))
    other.load_state_dict(sd)
    assert other.lr_lambdas[0].rate == 0.5


def test_initial_lr_and_errors() -> None:
    opt = dtorch.optim.SGD([dtorch.zeros(1, requires_grad=True)], lr=0.3)
    dtorch.optim.lr_scheduler.StepLR(opt, step_size=2)
    assert opt.param_groups[0]["initial_lr"] == 0.3
    fresh = dtorch.optim.SGD([dtorch.zeros(1, requires_grad=True)], lr=0.3)
    with pytest.raises(KeyError, match="initial_lr"):
        dtorch.optim.lr_scheduler.StepLR(fresh, step_size=2, last_epoch=3)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        dtorch.optim.lr_scheduler.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
        dtorch.optim.lr_scheduler.ChainedScheduler([dtorch.optim.lr_scheduler.ReduceLROnPlateau(opt)])
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        dtorch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        dtorch.optim.lr_scheduler.ExponentialLR(fresh, gamma=0.5).step()
    assert math.isclose(fresh.param_groups[0]["lr"], 0.15)

"""AsyncCheckpointer: staging in the background, the guards that keep it exact, and its failure report."""
from __future__ import annotations

import threading

import pytest

import dtorch
import dtorch.distributed.checkpoint as dcp
from dtorch import nn
from dtorch.distributed.checkpoint import _async
from dtorch.optim.optimizer import register_optimizer_step_pre_hook


@pytest.fixture
def held_staging(monkeypatch):
    """Staging (the writer's copy of big arrays) waits until the test releases it."""
    release = threading.Event()
    real = _async.snapshot

    def slow_snapshot(flat, pool):
        if threading.current_thread() is not threading.main_thread():
            assert release.wait(30)
        real(flat, pool)

    monkeypatch.setattr(_async, "snapshot", slow_snapshot)
    yield release
    release.set()


def _training(bn: bool = False):
    dtorch.manual_seed(0)
    layers = [nn.Linear(128, 256)] + ([nn.BatchNorm1d(256)] if bn else []) + [nn.Linear(256, 4)]
    model = nn.Sequential(*layers)
    opt = dtorch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, opt


def _step(model, opt):
    opt.zero_grad()
    model(dtorch.randn(16, 128)).square().mean().backward()
    opt.step()


def _weights(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_step_waits_for_staging_and_checkpoint_holds_the_saved_state(tmp_path, held_staging):
    model, opt = _training()
    _step(model, opt)
    before = _weights(model)
    ck = dcp.AsyncCheckpointer()
    ck.save({"model": model, "optimizer": opt}, tmp_path / "a")
    stepped = threading.Event()
    worker = threading.Thread(target=lambda: (_step(model, opt), stepped.set()))
    worker.start()
    assert not stepped.wait(0.3)               # the optimizer step is held until staging is done
    held_staging.set()
    worker.join(30)
    assert stepped.is_set() and not dtorch.equal(model[0].weight, before["0.weight"])
    ck.wait()
    loaded, _ = _training()
    dcp.load({"model": loaded}, tmp_path / "a")
    for k, v in loaded.state_dict().items():
        assert dtorch.equal(v, before[k]), k
    assert ck.blocked_s > 0


def test_forward_of_a_module_with_buffers_waits(tmp_path, held_staging):
    model, opt = _training(bn=True)
    _step(model, opt)
    running = model[1].running_mean.clone()
    ck = dcp.AsyncCheckpointer()
    ck.save({"model": model}, tmp_path / "a")
    done = threading.Event()
    worker = threading.Thread(target=lambda: (model(dtorch.randn(16, 128)), done.set()))
    worker.start()
    assert not done.wait(0.3)
    held_staging.set()
    worker.join(30)
    ck.wait()
    loaded, _ = _training(bn=True)
    dcp.load({"model": loaded}, tmp_path / "a")
    assert dtorch.equal(loaded[1].running_mean, running)
    assert not dtorch.equal(model[1].running_mean, running)


def test_in_place_write_outside_the_guards_fails_the_save(tmp_path, held_staging):
    model, opt = _training()
    ck = dcp.AsyncCheckpointer()
    ck.save({"model": model}, tmp_path / "a")
    with dtorch.no_grad():
        model[0].weight.mul_(2.0)              # not through optimizer.step: staging is not waited for
    held_staging.set()
    with pytest.raises(dcp.CheckpointError, match=r"0\.weight.*modified in place while being staged"):
        ck.wait()
    assert dcp.latest(tmp_path) is None


def test_wait_staged_makes_writes_safe(tmp_path, held_staging):
    model, _ = _training()
    before = _weights(model)
    ck = dcp.AsyncCheckpointer()
    ck.save({"model": model}, tmp_path / "a")
    threading.Timer(0.1, held_staging.set).start()
    ck.wait_staged()
    with dtorch.no_grad():
        model[0].weight.mul_(2.0)
    ck.wait()
    loaded, _ = _training()
    dcp.load({"model": loaded}, tmp_path / "a")
    assert dtorch.equal(loaded[0].weight, before["0.weight"])


def test_plain_tensors_and_small_arrays_are_copied_inside_save(tmp_path, held_staging):
    model, _ = _training()
    big = dtorch.ones(100_000)
    ck = dcp.AsyncCheckpointer()
    ck.save({"model": model, "ema": big}, tmp_path / "a")
    big.fill_(5.0)                             # not a module or optimizer: copied before save() returned
    with dtorch.no_grad():
        model[0].bias.fill_(3.0)               # 1 KB: copied at once as well
    held_staging.set()
    ck.wait()
    out = {"model": _training()[0], "ema": dtorch.zeros(100_000)}
    dcp.load(out, tmp_path / "a")
    assert float(out["ema"].sum()) == 100_000 and not bool((out["model"][0].bias == 3.0).any())


def test_guards_are_removed_after_the_save(tmp_path):
    model, opt = _training()
    ck = dcp.AsyncCheckpointer()
    ck.save({"model": model, "optimizer": opt}, tmp_path / "a")
    ck.wait()
    from dtorch.optim import optimizer as optimizer_module

    assert not optimizer_module._GLOBAL_STEP_PRE_HOOKS and not ck._guards


def test_stage_in_background_false_copies_everything_in_save(tmp_path, held_staging):
    model, opt = _training()
    before = _weights(model)
    ck = dcp.AsyncCheckpointer(stage_in_background=False)
    ck.save({"model": model, "optimizer": opt}, tmp_path / "a")
    held_staging.set()      # nothing left for the writer to stage
    _step(model, opt)
    ck.wait()
    loaded, _ = _training()
    dcp.load({"model": loaded}, tmp_path / "a")
    assert all(dtorch.equal(v, before[k]) for k, v in loaded.state_dict().items())


def test_global_optimizer_step_hooks_run_first_and_can_be_removed():
    model, opt = _training()
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("own"))
    handle = register_optimizer_step_pre_hook(lambda o, a, k: calls.append(("global", o is opt)))
    _step(model, opt)
    handle.remove()
    _step(model, opt)
    assert calls == [("global", True), "own", "own"]


def test_sync_and_async_saves_round_trip_on_every_device(tmp_path, device):
    dtorch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 300), nn.BatchNorm1d(300), nn.Linear(300, 4)).to(device)
    opt = dtorch.optim.Adam(model.parameters(), lr=1e-2)

    def step():
        opt.zero_grad()
        model(dtorch.randn(8, 64, device=device)).square().mean().backward()
        opt.step()

    step()
    saved = {k: v.cpu().clone() for k, v in model.state_dict().items()}
    dcp.save({"model": model, "optimizer": opt}, tmp_path / "sync")
    ck = dcp.AsyncCheckpointer()
    ck.save({"model": model, "optimizer": opt}, tmp_path / "async")
    step()
    ck.wait()
    for name in ("sync", "async"):
        dtorch.manual_seed(1)
        fresh = nn.Sequential(nn.Linear(64, 300), nn.BatchNorm1d(300), nn.Linear(300, 4)).to(device)
        fresh_opt = dtorch.optim.Adam(fresh.parameters(), lr=1e-2)
        dcp.load({"model": fresh, "optimizer": fresh_opt}, tmp_path / name)
        for k, v in fresh.state_dict().items():
            assert v.device.type == device and dtorch.equal(v.cpu(), saved[k]), (name, k)

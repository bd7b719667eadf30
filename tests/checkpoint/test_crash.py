"""SIGKILL a saving process at many moments; after each kill the last good checkpoint must load.

Two sweeps, both in forked children (no interpreter start-up per kill):
* timed: at least 50 kills at delays spread over a measured save (~8 MB, several files, keep_last=2);
* instrumented: the child kills itself just before its k-th rename/fsync/unlink/rmtree, for every k
  a save reaches — every file-system step boundary, including the narrow ones (between the
  directory rename and the pointer update, during retention).
"""
from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

import dtorch
import dtorch.distributed.checkpoint as dcp

if not hasattr(os, "fork"):
    pytest.skip("needs fork", allow_module_level=True)


def _state(step: int) -> dict:
    arrays = {f"layer{i}.weight": dtorch.full((256, 1024), float(step)) for i in range(6)}
    return {"model": arrays, "optimizer": {"momentum": dtorch.full((256, 1024), float(step))},
            "rng": dcp.RNGState(), "step": step}


def _save_in_child(run_dir, step: int, arm=None) -> int:
    pid = os.fork()
    if pid == 0:  # child: save, never return into pytest
        code = 0
        try:
            if arm is not None:
                arm()
            dcp.save(_state(step), run_dir / f"step_{step:04d}", keep_last=2)
        except BaseException:
            code = 3
        os._exit(code)
    return pid


def _check(run_dir, allowed: tuple[int, ...]) -> int:
    ckpt = dcp.latest(run_dir)
    assert ckpt is not None, "no complete checkpoint left"
    st = _state(-1)
    dcp.load(st, ckpt)
    step = st["step"]
    assert step in allowed, (step, allowed)
    for t in list(st["model"].values()) + [st["optimizer"]["momentum"]]:
        assert bool((t == float(step)).all())
    return step


def test_sigkill_at_spread_out_moments(tmp_path):
    dcp.save(_state(0), tmp_path / "step_0000")
    durations = []
    for _ in range(3):   # a save as the children do it: forked, from a cold start
        t0 = time.perf_counter()
        os.waitpid(_save_in_child(tmp_path / "probe", 0), 0)
        durations.append(time.perf_counter() - t0)
        shutil.rmtree(tmp_path / "probe")
    duration = min(durations)
    good, kills, attempts = 0, 0, 0
    # delays spread quasi-uniformly over 90% of a save (golden-ratio steps); on a loaded machine a
    # save may still finish before its kill: keep going until 50 saves were killed mid-way
    while kills < 50 and attempts < 200:
        attempts += 1
        pid = _save_in_child(tmp_path, attempts)
        time.sleep(duration * 0.9 * ((attempts * 0.6180339887) % 1.0))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        kills += os.WIFSIGNALED(status)
        good = _check(tmp_path, (good, attempts))
    assert kills >= 50, f"only {kills} of {attempts} saves were killed mid-way (save takes {duration:.3f} s)"
    assert good > 0 or kills == attempts


def _arm_kill_at(k: int):
    def arm() -> None:
        count = [0]

        def wrap(fn):
            def inner(*a, **kw):
                count[0] += 1
                if count[0] == k:
                    os.kill(os.getpid(), signal.SIGKILL)
                return fn(*a, **kw)
            return inner

        os.rename, os.replace, os.fsync, os.unlink = (wrap(f) for f in (os.rename, os.replace, os.fsync, os.unlink))
        shutil.rmtree = wrap(shutil.rmtree)
    return arm


def test_sigkill_at_every_filesystem_step(tmp_path):
    dcp.save(_state(0), tmp_path / "step_0000")
    dcp.save(_state(1), tmp_path / "step_0001")
    good, step, k = 1, 1, 1
    while k < 200:
        step += 1
        pid = _save_in_child(tmp_path, step, _arm_kill_at(k))
        _, status = os.waitpid(pid, 0)
        good = _check(tmp_path, (good, step))
        if not os.WIFSIGNALED(status):
            assert os.WEXITSTATUS(status) == 0
            break
        k += 1
    assert k > 10, "the save should pass through many file-system steps"
    assert good == step
    # the same sweep when the save replaces an existing checkpoint of the same name
    k = 1
    while k < 200:
        pid = _save_in_child(tmp_path, step, _arm_kill_at(k))
        _, status = os.waitpid(pid, 0)
        ckpt = dcp.latest(tmp_path)
        assert ckpt is not None and _check(tmp_path, (step,)) == step
        if not os.WIFSIGNALED(status):
            break
        k += 1
    assert k > 10
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["latest", f"step_{step - 1:04d}", f"step_{step:04d}"], names

"""A ``dtorch.save`` killed mid-way leaves ``.NAME.tmp-PID-...`` beside its target; the next save of the
same target removes it when its writer is dead, and never touches a live writer's file."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import dtorch

if not hasattr(os, "fork"):
    pytest.skip("needs fork", allow_module_level=True)


def _temps(directory, name: str) -> list[str]:
    return sorted(e for e in os.listdir(directory) if e.startswith(f".{name}.tmp-"))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_killed_save_leaves_a_temp_file_the_next_save_removes(tmp_path):
    target = tmp_path / "model.pt"
    dtorch.save({"step": 0, "w": dtorch.zeros(4)}, target)
    big = {"step": 1, "w": dtorch.ones(64 << 20 // 4)}  # 64 MB: the child is killed while it writes
    pid = os.fork()
    if pid == 0:
        try:
            while True:
                dtorch.save(big, target)
        finally:
            os._exit(3)
    try:
        deadline = time.time() + 20
        while not _temps(tmp_path, "model.pt") and time.time() < deadline:
            time.sleep(0.001)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    left = _temps(tmp_path, "model.pt")
    assert left and left[0].startswith(f".model.pt.tmp-{pid}-"), left
    dtorch.save({"step": 2, "w": dtorch.full((4,), 2.0)}, target)
    assert _temps(tmp_path, "model.pt") == []
    assert dtorch.load(target)["step"] == 2


def test_only_dead_writers_temp_files_of_the_same_target_go(tmp_path):
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "dead": f".model.pt.tmp-{dead}-0123456789ab",
            "live": f".model.pt.tmp-{live.pid}-0123456789ab",
            "mine": f".model.pt.tmp-{os.getpid()}-0123456789ab",  # another thread of this process
            "other target": f".other.pt.tmp-{dead}-0123456789ab",
            "not a pid": ".model.pt.tmp-x1-0123456789ab",
            "no suffix": f".model.pt.tmp-{dead}",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"partial")
        dtorch.save({"a": dtorch.ones(2)}, tmp_path / "model.pt")
        kept = set(os.listdir(tmp_path))
        assert names["dead"] not in kept
        assert {names[k] for k in names if k != "dead"} <= kept
        assert bool((dtorch.load(tmp_path / "model.pt")["a"] == 1).all())
    finally:
        live.kill()
        live.wait()

"""Exact resume on CPU: N steps straight == k steps, SIGKILL, resume to N (bitwise parameters, same losses)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))


def _run(*args: str) -> int:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, os.path.join(HERE, "_train.py"), *args], env=env, timeout=120).returncode


@pytest.mark.parametrize("stop", [3, 9])      # mid-epoch in epoch 0 and in epoch 1 (6 batches per epoch)
def test_killed_and_resumed_run_is_bitwise_identical(tmp_path, stop):
    n = 14
    full, part = str(tmp_path / "full.json"), str(tmp_path / "part.json")
    assert _run(full, str(n)) == 0
    assert _run(part, str(n), "--stop", str(stop), "--run", str(tmp_path / "run")) == -9
    assert _run(part, str(n), "--resume", "--run", str(tmp_path / "run")) == 0
    a, b = json.load(open(full)), json.load(open(part))
    assert len(a["losses"]) == n and a["losses"] == b["losses"]
    assert a["params_sha"] == b["params_sha"]

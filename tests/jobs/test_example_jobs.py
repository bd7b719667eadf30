"""The example jobs reach their targets on a small budget, and run as plain scripts."""
from __future__ import annotations

import math
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def sklearn():
    return pytest.importorskip("sklearn")


def test_digits_mlp_reaches_95_percent(sklearn):
    from dtorch.jobs import digits_mlp

    result = digits_mlp.main({"train": {"log_every": 0}})
    assert result["test_accuracy"] >= 0.95, result


def test_digits_cnn_reaches_95_percent(sklearn):
    from dtorch.jobs import digits_cnn

    result = digits_cnn.main({"train": {"epochs": 12, "log_every": 0}})
    assert result["test_accuracy"] >= 0.95, result


def test_gpt_char_learns_far_below_the_uniform_baseline():
    from dtorch.jobs import gpt_char

    result = gpt_char.main({"train": {"max_steps": 200, "log_every": 0}, "data": {"sample_chars": 20}})
    assert result["baseline_loss"] == pytest.approx(math.log(result["vocab"]))
    assert result["val_loss"] < result["baseline_loss"] - 1.5, result
    assert result["final_loss"] < result["baseline_loss"] - 1.5, result


def test_unknown_config_keys_are_refused():
    from dtorch.jobs import gpt_char

    with pytest.raises(KeyError, match="layrs"):
        gpt_char.main({"model": {"layrs": 10}})


def test_char_windows_are_next_character_windows():
    from dtorch.jobs.data import CharWindows, char_corpus

    text = char_corpus(("textwrap",))
    assert text and all(ch == "\n" or " " <= ch <= "~" for ch in text)
    windows = CharWindows(text, context=16, vocab=sorted(set(text)), stride=4)
    assert len(windows) == (len(text) - 17) // 4 + 1
    x, y = windows[3]
    assert tuple(x.shape) == tuple(y.shape) == (16,)
    assert (x[1:] == y[:-1]).all().item()
    assert windows.decode(x.tolist()) == text[12:28]


def test_job_runs_as_a_plain_script(sklearn):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(ROOT / "jobs" / "digits_mlp.py")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "summary: step 660/660" in proc.stdout and "test_accuracy" in proc.stdout


def test_gpu_readings_are_logged_only_when_a_reader_exists():
    import io

    from dtorch.jobs.progress import Progress

    lines: list[str] = []
    fake = lambda: {"gpu_mem_gb": 1.5, "gpu_mem_total_gb": 80.0, "gpu_util": 42}  # noqa: E731
    p = Progress(10, 0, 4, 5, bar=False, out=io.StringIO(), log=lines.append, gpu=fake)
    record = p.update(1, 2.0, 0.1)
    assert record["gpu_util"] == 42 and "gpu 1.50/80.0 GB 42%" in lines[-1]
    plain = Progress(10, 0, 4, 5, bar=False, out=io.StringIO(), log=lines.append)
    assert "gpu_util" not in plain.update(1, 2.0, 0.1) and "gpu" not in lines[-1]

"""The loss curve (matplotlib) and rank 0's progress bar (tqdm) or log lines."""
from __future__ import annotations

import io
import math

import pytest

from dtorch.jobs import plot
from dtorch.jobs.progress import Progress


@pytest.mark.parametrize("losses,log", [
    ([2.3, 1.0, 0.3, 0.1], True),             # 23x: spans decades
    ([2.3, 1.5, 0.9, 0.5], False),            # 4.6x
    ([2.3, math.nan, 0.2, math.inf], True),   # non-finite values are left out
    ([1.0, -0.5, 0.01], False),               # not all positive: no log axis
    ([], False),
])
def test_log_scale_follows_the_data(losses, log):
    assert plot.spans_decades(losses) is log


def test_smoothing_is_centred_and_does_not_lag():
    line = [10.0 - i for i in range(9)]
    assert plot.smooth(line, 2) == pytest.approx(line)  # a straight line stays where it is, ends included
    assert plot.smooth([1.0, 4.0, 1.0, 4.0, 1.0], 1) == pytest.approx([1.0, 2.0, 3.0, 2.0, 1.0])
    decades = [10.0 ** -i for i in range(5)]
    assert plot.smooth(decades, 1, log=True) == pytest.approx(decades)  # a straight line on the log axis
    assert [plot.smoothing_half_width(n) for n in (4, 5, 60, 660)] == [0, 1, 3, 33]


@pytest.fixture
def matplotlib():
    return pytest.importorskip("matplotlib", reason="pip install 'dtorch[plot]'")


def test_figure_axes_labels_title_and_curves(matplotlib):
    steps = list(range(1, 201, 10))
    decades = plot.figure(steps, [3.0 * math.exp(-s / 30) for s in steps], "digits-mlp")
    (ax,) = decades.axes
    assert (ax.get_yscale(), ax.get_xlabel(), ax.get_ylabel()) == ("log", "optimizer step", "loss (log scale)")
    assert ax.get_title().startswith("digits-mlp: final ") and "at step 191" in ax.get_title()
    raw, smoothed = ax.get_lines()
    assert list(raw.get_xdata()) == steps and smoothed.get_label().startswith("smoothed")
    (flat,) = plot.figure(steps, [1.0 - s / 1000 for s in steps], "t").axes
    assert (flat.get_yscale(), flat.get_ylabel()) == ("linear", "loss")


def test_loss_curve_writes_a_png(matplotlib, tmp_path):
    assert plot.loss_curve([1, 10, 20], [2.0, 1.0, 0.5], tmp_path / "loss.png", "t")
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_without_matplotlib_nothing_is_drawn(monkeypatch, tmp_path):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(__import__("sys").modules, name, None)
    assert plot.loss_curve([1, 2], [2.0, 1.0], tmp_path / "loss.png") is False
    assert not (tmp_path / "loss.png").exists()
    assert plot.NO_MATPLOTLIB.endswith("(pip install 'dtorch[plot]')")


def test_bar_redraws_one_line_and_logs_records_silently():
    out, lines = io.StringIO(), []
    p = Progress(20, 0, 8, 5, bar=True, out=out, log=lines.append)
    records = [p.update(step, 1.0 / step, 0.1) for step in range(1, 21)]
    p.write("first step done")
    p.close()
    assert [r["step"] for r in records if r] == [1, 5, 10, 15, 20] and lines == []
    text = out.getvalue()
    assert "\r" in text and "20/20" in text and "samples/s" in text and "first step done\n" in text


def test_log_lines_without_a_bar():
    out, lines = io.StringIO(), []
    p = Progress(20, 10, 8, 5, bar=False, out=out, log=lines.append)
    for step in range(11, 21):
        p.update(step, 2.0, 0.1)
    p.write("note")
    p.close()
    assert out.getvalue() == ""
    assert [line.split("  ")[0] for line in lines] == ["step 11/20", "step 15/20", "step 20/20", "note"]
    assert "loss 2.0000" in lines[0] and "elapsed 00:00" in lines[0] and "ETA 00:00" in lines[0]

"""RUN_DIR/loss.png: the loss against the step, drawn with matplotlib (the optional `plot` extra).

Without matplotlib nothing is drawn and the run says how to get the plot (``NO_MATPLOTLIB``); the numbers
are in metrics.jsonl either way.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NO_MATPLOTLIB = "loss curve: not drawn, matplotlib is not installed (pip install 'dtorch[plot]')"


def spans_decades(losses: Sequence[float]) -> bool:
    """True when the finite losses are positive and the largest is over 10x the smallest (a log-scale y axis)."""
    ys = [v for v in losses if math.isfinite(v)]
    return bool(ys) and min(ys) > 0 and max(ys) / min(ys) > 10


def smoothing_half_width(n: int) -> int:
    """Points on each side of the centred moving average for ``n`` points: about a tenth of them in the window."""
    return max(1, n // 20) if n >= 5 else 0


def smooth(values: Sequence[float], half: int, log: bool = False) -> list[float]:
    """A centred moving average over ``2 * half + 1`` points, narrowed near the ends so it stays centred (the end
    points are kept): unlike a running average it does not lag behind a falling loss. ``log``: the average of
    the logarithms (what a log-scale axis shows)."""
    ys = [math.log(v) for v in values] if log else list(values)
    out = []
    for i in range(len(ys)):
        h = min(half, i, len(ys) - 1 - i)
        out.append(sum(ys[i - h:i + h + 1]) / (2 * h + 1))
    return [math.exp(v) for v in out] if log else out


def figure(steps: Sequence[int], losses: Sequence[float], title: str) -> Any:
    """The matplotlib Figure (Agg canvas, no pyplot state): raw and smoothed loss against the step.

    Raises ImportError without matplotlib.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    log = spans_decades(losses)
    finite = [(s, v) for s, v in zip(steps, losses) if math.isfinite(v)]
    half = smoothing_half_width(len(finite))
    ax.plot(steps, losses, color="tab:blue", alpha=0.45 if half else 1.0, linewidth=1,
            label="loss (mean over each logging interval)")
    if half:
        ax.plot([s for s, _ in finite], smooth([v for _, v in finite], half, log), color="tab:blue", linewidth=2,
                label=f"smoothed (centred moving average of {2 * half + 1} points)")
    ax.set_yscale("log" if log else "linear")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (log scale)" if log else "loss")
    last = f": final {finite[-1][1]:.4g} at step {finite[-1][0]}" if finite else ""
    ax.set_title(f"{title}{last}")
    ax.grid(True, which="major", alpha=0.4)
    if log:
        ax.grid(True, which="minor", alpha=0.15)
    ax.legend(loc="upper right")
    return fig


def loss_curve(steps: Sequence[int], losses: Sequence[float], path: str | Path, title: str = "training loss",
               ) -> bool:
    """Write the loss curve to ``path`` (PNG); False, writing nothing, where matplotlib is not installed."""
    try:
        fig = figure(steps, losses, title)
    except ImportError:
        return False
    fig.savefig(path)
    return True

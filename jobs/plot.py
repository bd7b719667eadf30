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


def smoothing_weight(n: int) -> float:
    """The moving average's weight for ``n`` points: it spans about a tenth of them (0.5 to 0.95; 0 below 3)."""
    return min(0.95, max(0.5, 1.0 - 10.0 / n)) if n >= 3 else 0.0


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so that the start is not pulled to 0."""
    out, avg, norm = [], 0.0, 0.0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        avg, norm = avg * weight + (1 - weight) * v, norm * weight + (1 - weight)
        out.append(avg / norm)
    return out


def figure(steps: Sequence[int], losses: Sequence[float], title: str) -> Any:
    """The matplotlib Figure (Agg canvas, no pyplot state): raw and smoothed loss against the step.

    Raises ImportError without matplotlib.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    weight = smoothing_weight(len(losses))
    ax.plot(steps, losses, color="tab:blue", alpha=0.35 if weight else 1.0, linewidth=1,
            label="loss (mean over each logging interval)")
    if weight:
        ax.plot(steps, smooth(losses, weight), color="tab:blue", linewidth=2,
                label=f"smoothed (moving average, weight {weight:.2f})")
    log = spans_decades(losses)
    ax.set_yscale("log" if log else "linear")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (log scale)" if log else "loss")
    finite = [(s, v) for s, v in zip(steps, losses) if math.isfinite(v)]
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

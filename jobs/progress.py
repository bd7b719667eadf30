"""Rank 0's view of training: a progress bar on a terminal, plain periodic log lines elsewhere (Slurm logs)."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def clock(seconds: float) -> str:
    """``4.25`` -> ``'4.2s'``; ``75.2`` -> ``'1:15'``; ``3725`` -> ``'1:02:05'``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """``update()`` after every optimizer step; it returns the metrics record on the steps it logs.

    ``bar=True`` redraws one line in place (at most 10 times a second) and logs records every
    ``log_every`` steps without printing them; ``bar=False`` prints one line per logged step.
    The loss logged is the mean over the steps since the previous record; samples/s likewise.
    """

    def __init__(self, total: int, first_step: int, samples_per_step: int, log_every: int, bar: bool,
                 out: TextIO | None = None, log: Callable[[str], None] = print,
                 gpu: Callable[[], dict] | None = None) -> None:
        self.gpu = gpu  # pynvml readings (jobs/gpu_stats.py) added to records and log lines, when on a GPU
        self.total, self.first_step, self.samples_per_step = total, first_step, samples_per_step
        self.log_every, self.bar, self.out, self.log = log_every, bar, out or sys.stdout, log
        self.start = self.mark = time.perf_counter()
        self.losses: list[float] = []
        self.mark_step = first_step
        self.drawn = 0.0

    def eta(self, step: int) -> float:
        done = step - self.first_step
        return (time.perf_counter() - self.start) / done * (self.total - step) if done else 0.0

    def update(self, step: int, loss: float, lr: float) -> dict | None:
        self.losses.append(loss)
        now = time.perf_counter()
        rate = (step - self.mark_step) * self.samples_per_step / max(now - self.mark, 1e-9)
        if self.bar and (now - self.drawn > 0.1 or step == self.total):
            self.drawn = now
            self._draw(step, loss, rate)
        if not (self.log_every and (step % self.log_every == 0 or step == self.total or step == self.first_step + 1)):
            return None
        record = {"step": step, "loss": sum(self.losses) / len(self.losses), "lr": lr,
                  "samples_per_s": round(rate, 1), "time": round(time.time(), 3)}
        gpu = ""
        if self.gpu is not None:
            stats = self.gpu()
            record.update(stats)
            gpu = f"  gpu {stats['gpu_mem_gb']:.2f}/{stats['gpu_mem_total_gb']:.1f} GB {stats['gpu_util']}%"
        if not self.bar:
            self.log(f"step {step}/{self.total}  loss {record['loss']:.4f}  lr {lr:.2e}  {rate:,.0f} samples/s  "
                     f"elapsed {clock(now - self.start)}  ETA {clock(self.eta(step))}{gpu}")
        self.losses, self.mark, self.mark_step = [], now, step
        return record

    def _draw(self, step: int, loss: float, rate: float) -> None:
        width = 24
        filled = int(width * step / max(1, self.total))
        self.out.write(f"\rstep {step}/{self.total} [{'#' * filled}{'-' * (width - filled)}]  loss {loss:.4f}  "
                       f"{rate:,.0f} samples/s  ETA {clock(self.eta(step))} ")
        self.out.flush()

    def close(self) -> None:
        """End the bar's line (log lines need nothing)."""
        if self.bar:
            self.out.write("\n")
            self.out.flush()

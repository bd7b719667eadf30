"""Rank 0's view of training: a tqdm progress bar on a terminal, plain periodic log lines elsewhere (Slurm logs).

Under dtorch-run the ranks' stdout is a pipe to mpiexec or srun: dtorch-run says whether its own stdout is a
terminal (DTORCH_PROGRESS_BAR) and how wide (COLUMNS), and the launcher prefixes every line, also each redraw
of the bar after a carriage return, with ``[rank R] ``.
"""
from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

PREFIX_ROOM = 10  # the launcher's "[rank R] " before each redraw of the bar
BAR_FORMAT = "step {n_fmt}/{total_fmt} |{bar}| {desc}  ETA {remaining}"  # desc: loss and samples/s


class Progress:
    """``update()`` after every optimizer step; it returns the metrics record on the steps it logs.

    ``bar=True`` redraws a tqdm bar (at most 10 times a second) and logs records every ``log_every`` steps
    without printing them; ``bar=False`` prints one line per logged step. The loss logged is the mean over the
    steps since the previous record; samples/s likewise. ``write()`` prints a line without breaking the bar.
    """

    def __init__(self, total: int, first_step: int, samples_per_step: int, log_every: int, bar: bool,
                 out: TextIO | None = None, log: Callable[[str], None] = print,
                 gpu: Callable[[], dict] | None = None) -> None:
        self.gpu = gpu  # pynvml readings (jobs/gpu_stats.py) added to records and log lines, when on a GPU
        self.total, self.first_step, self.samples_per_step = total, first_step, samples_per_step
        self.log_every, self.out, self.log = log_every, out or sys.stdout, log
        self.bar = tqdm(total=total, initial=first_step, file=self.out, mininterval=0.1, bar_format=BAR_FORMAT,
                        ncols=max(40, shutil.get_terminal_size().columns - PREFIX_ROOM)) if bar else None
        self.start = self.mark = time.perf_counter()
        self.losses: list[float] = []
        self.mark_step = first_step

    def eta(self, step: int) -> float:
        done = step - self.first_step
        return (time.perf_counter() - self.start) / done * (self.total - step) if done else 0.0

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.out)
        else:
            self.log(line)

    def update(self, step: int, loss: float, lr: float) -> dict | None:
        self.losses.append(loss)
        now = time.perf_counter()
        rate = (step - self.mark_step) * self.samples_per_step / max(now - self.mark, 1e-9)
        if self.bar is not None:
            self.bar.set_description_str(f"loss {loss:.4f}  {rate:,.0f} samples/s", refresh=False)
            self.bar.update(step - self.bar.n)
        if not (self.log_every and (step % self.log_every == 0 or step == self.total or step == self.first_step + 1)):
            return None
        record = {"step": step, "loss": sum(self.losses) / len(self.losses), "lr": lr,
                  "samples_per_s": round(rate, 1), "time": round(time.time(), 3)}
        gpu = ""
        if self.gpu is not None:
            stats = self.gpu()
            record.update(stats)
            gpu = f"  gpu {stats['gpu_mem_gb']:.2f}/{stats['gpu_mem_total_gb']:.1f} GB {stats['gpu_util']}%"
        if self.bar is None:
            self.log(f"step {step}/{self.total}  loss {record['loss']:.4f}  lr {lr:.2e}  {rate:,.0f} samples/s  "
                     f"elapsed {tqdm.format_interval(now - self.start)}  "
                     f"ETA {tqdm.format_interval(self.eta(step))}{gpu}")
        self.losses, self.mark, self.mark_step = [], now, step
        return record

    def close(self) -> None:
        """End the bar's line (log lines need nothing)."""
        if self.bar is not None:
            self.bar.close()

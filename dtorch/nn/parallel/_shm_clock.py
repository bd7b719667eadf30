"""Where DDP's shared-window averaging spends its time: perf_counter sums over steps (bench/ddp_step.py).

The work (copy-in, averaging, copy-out) runs in gradient hooks and, after the last one, in
``finish``. Work done in a hook counts as *overlapped* when backward still computed afterwards —
seen as a pause of more than ``GAP_S`` before some later hook (a backward node ran in between) —
and as *tail* work otherwise (the hooks after backward's last node, and ``finish``). With one core per rank,
overlapped work is interleaved with backward, not hidden: the same core does it.
"""
from __future__ import annotations

GAP_S = 100e-6

KEYS = ("steps", "copy_in_s", "average_s", "copy_out_s", "overlapped_s", "tail_work_s", "final_s",
        "final_work_s")


class AveragingClock:
    def __init__(self) -> None:
        self.stats = dict.fromkeys(KEYS, 0.0)
        self.stats["steps"] = 0
        self.hook_work = 0.0        # work of the hooks since the latest pause, classified at the next pause or finish
        self.hook_end: float | None = None
        self.in_finish = False

    def begin_step(self) -> None:
        self.stats["steps"] += 1
        self.hook_work, self.hook_end, self.in_finish = 0.0, None, False

    def hook_start(self, now: float) -> None:
        if self.hook_end is not None and now - self.hook_end > GAP_S:
            self.stats["overlapped_s"] += self.hook_work
            self.hook_work = 0.0

    def work(self, kind: str, seconds: float, now: float) -> None:
        """``seconds`` of work of ``kind`` ("copy_in_s", "average_s", "copy_out_s") ending at ``now``."""
        self.stats[kind] += seconds
        if self.in_finish:
            self.stats["tail_work_s"] += seconds
            self.stats["final_work_s"] += seconds
        else:
            self.hook_work += seconds
            self.hook_end = now

    def finish_start(self) -> None:
        self.in_finish = True
        self.stats["tail_work_s"] += self.hook_work
        self.hook_work = 0.0

    def finish_end(self, seconds: float) -> None:
        self.stats["final_s"] += seconds

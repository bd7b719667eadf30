"""RUN_DIR/metrics.jsonl: one JSON object per logged step, kept consistent across resumes; the same values go to
TensorBoard event files in RUN_DIR/tb/ where the tensorboard package is installed."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def tensorboard_writer(log_dir: Path, purge_step: int | None) -> Any:
    """A dtorch.utils.tensorboard.SummaryWriter on ``log_dir``, or None without the tensorboard package."""
    try:
        from dtorch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir, purge_step=purge_step)


class MetricsLog:
    """Appends ``{"step", "loss", "lr", "samples_per_s", "time"}`` lines (``time``: wall-clock seconds since
    the epoch), and each number but step and time as the TensorBoard scalar ``train/NAME``. ``resume_at(step)``
    drops lines (and hides events) past the checkpoint a run resumes from, so steps that are trained again after
    a crash are not listed twice."""

    def __init__(self, path: str | Path, tensorboard_dir: str | Path | None = None) -> None:
        self.path = Path(path)
        self.tensorboard_dir = Path(tensorboard_dir) if tensorboard_dir is not None else None
        self.tensorboard = None

    def resume_at(self, step: int) -> None:
        kept = [r for r in self.read() if r["step"] <= step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        if self.tensorboard_dir is not None:
            self.tensorboard = tensorboard_writer(self.tensorboard_dir, step + 1 if step else None)

    def write(self, **record: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for name, value in record.items():
                if name not in ("step", "time"):
                    self.tensorboard.add_scalar(f"train/{name}", value, record["step"], walltime=record.get("time"))

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()

"""RUN_DIR/metrics.jsonl: one JSON object per logged step, kept consistent across resumes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends ``{"step", "loss", "lr", "samples_per_s", "time"}`` lines (``time``: wall-clock seconds since
    the epoch). ``resume_at(step)`` drops lines past the checkpoint a run resumes from, so steps that are
    trained again after a crash are not listed twice."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def resume_at(self, step: int) -> None:
        kept = [r for r in self.read() if r["step"] <= step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")

    def write(self, **record: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

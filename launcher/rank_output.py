"""Every line a rank prints, on stdout and stderr, starts with ``[rank R] `` (mpiexec and srun mix the ranks'
output in one stream). Lines are written whole and flushed, so ranks interleave by line, not mid-line."""
from __future__ import annotations

import io
import sys
from typing import TextIO


class RankPrefixed(io.TextIOBase):
    """A text stream that writes to ``target`` with ``prefix`` at the start of every line.

    A carriage return starts a line too, so a progress bar redrawn with ``\\r`` keeps its prefix; a line
    that already carries the prefix (dtorch.distributed's own messages) is left as it is.
    """

    def __init__(self, target: TextIO, prefix: str) -> None:
        super().__init__()
        self.target, self.prefix = target, prefix
        self.at_line_start = True
        self.pending = ""

    def write(self, text: str) -> int:
        out = []
        for piece in text.splitlines(keepends=True):
            if self.at_line_start and piece not in ("\n", "\r") and not piece.startswith(self.prefix):
                out.append(self.prefix)
            out.append(piece)
            self.at_line_start = piece.endswith(("\n", "\r"))
        self.pending += "".join(out)
        cut = max(self.pending.rfind("\n"), self.pending.rfind("\r"))
        if cut >= 0:  # whole lines in one write: print's text and its newline arrive separately
            self.target.write(self.pending[:cut + 1])
            self.pending = self.pending[cut + 1:]
            self.target.flush()
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.target.write(self.pending)
            self.pending = ""
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")


def install(rank: int) -> None:
    """Prefix this process's ``sys.stdout`` and ``sys.stderr`` lines with ``[rank R] ``."""
    sys.stdout = RankPrefixed(sys.stdout, f"[rank {rank}] ")
    sys.stderr = RankPrefixed(sys.stderr, f"[rank {rank}] ")

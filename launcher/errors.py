"""The one exception type for bad configs and bad usage (exit status 2, no traceback)."""
from __future__ import annotations


class ConfigError(Exception):
    """One or more problems with a config or the command line, each a self-contained line."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

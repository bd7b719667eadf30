"""The one error type for refused checkpoints."""
from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong with it."""

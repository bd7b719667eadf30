"""Parameters without a gradient keep their values and state through a sharded step.

The plain optimizers skip a parameter whose ``.grad`` is None; ZeRO updates its shard as
one flat tensor, so it saves those parameters' pieces (values and per-element state)
before the step and puts them back after. Only a group-wide 0-d entry such as Adam's
``step`` still counts the step.
"""
from __future__ import annotations

import numpy as np

from ...tensor import Tensor
from ._layout import ShardLayout


def _flat_arrays(values: np.ndarray, state: dict) -> list:
    return [values] + [t._data for t in state.values() if isinstance(t, Tensor) and t.dim() == 1]


class Keep:
    """Pieces of group ``g``'s shard that must come out of the step unchanged."""

    def __init__(self, layout: ShardLayout, g: int, values: np.ndarray, state: dict) -> None:
        lo, hi = layout.mine(g)
        self.spans = [(to, n) for i, _, to, n in layout.pieces(g, lo, hi) if layout.params[i]._grad is None]
        self.saved = [[a[to:to + n].copy() for to, n in self.spans] for a in _flat_arrays(values, state)]

    def restore(self, values: np.ndarray, state: dict) -> None:
        for a, saved in zip(_flat_arrays(values, state), self.saved):
            for (to, n), s in zip(self.spans, saved):
                a[to:to + n] = s

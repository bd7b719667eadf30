"""ZeRO's sharded optimizer state <-> the plain optimizer's full state dict.

The local optimizer keeps, per group, one flat shard parameter; its state tensors
(``momentum_buffer``, ``exp_avg``...) are 1-d slices of the group's flat state, and
0-d entries (``step``) are shared by the group. The full state dict is exactly what the
plain optimizer would save (one entry per parameter, shaped like it), so it loads at any
world size, into ZeRO or into the plain optimizer.
"""
from __future__ import annotations

import numpy as np

from ...tensor import Tensor, _make
from ._layout import ShardLayout


def assemble(layout: ShardLayout, shard_states: list[dict]) -> dict:
    """Per-parameter state (global parameter index -> {key: tensor}) from every rank's ``{group: state}``."""
    state: dict[int, dict] = {}
    for g, idx in enumerate(layout.group_params):
        parts = [s.get(g) or s.get(str(g)) or {} for s in shard_states]
        if not any(parts):
            continue
        shards = layout.shards(g)
        keys = next(p for p in parts if p).keys()
        full: dict[str, object] = {}
        for key in keys:
            ref = next(p[key] for p in parts if p and key in p)
            if isinstance(ref, Tensor) and ref._data.ndim == 1:
                pieces = []
                for r in sorted(range(len(parts)), key=lambda r: shards[r]):  # by position in the group
                    p = parts[r]
                    n = shards[r][1] - shards[r][0]
                    if n and (not p or key not in p):
                        raise RuntimeError(f"ZeroRedundancyOptimizer: rank {r} has no state {key!r} for group {g}")
                    pieces.append(p[key]._data if n else np.empty(0, ref._data.dtype))
                full[key] = np.concatenate(pieces)
            else:
                full[key] = ref
        start = layout.group_range[g][0]
        for i in idx:
            o, e = layout.offsets[i] - start, layout.offsets[i + 1] - start
            shape = layout.params[i]._data.shape
            state[i] = {k: (_make(v[o:e].reshape(shape).copy()) if isinstance(v, np.ndarray) else _copy(v))
                        for k, v in full.items()}
    return state


def _copy(v):
    return _make(v._data.copy()) if isinstance(v, Tensor) else v


def shard_of(layout: ShardLayout, g: int, state: dict) -> dict:
    """This rank's flat shard state of group ``g`` from per-parameter ``state`` (index -> {key: value})."""
    idx = layout.group_params[g]
    have = [state.get(i) for i in idx]
    if not any(have):
        return {}
    if not all(have):
        raise ValueError(f"ZeroRedundancyOptimizer: parameter group {g} has state for some parameters only; "
                         "a sharded optimizer needs all or none")
    lo, hi = layout.mine(g)
    out: dict[str, object] = {}
    first = have[0]
    for key, ref in first.items():
        shaped = isinstance(ref, Tensor) and ref._data.shape == layout.params[idx[0]]._data.shape \
            and ref._data.ndim > 0
        if not shaped:  # a 0-d entry (``step``); one that went through dtorch.save comes back 1-d
            out[key] = _copy(ref.reshape(()) if isinstance(ref, Tensor) and ref.numel() == 1 else ref)
            continue
        flat = np.empty(hi - lo, ref._data.dtype)
        for i, at, to, n in layout.pieces(g, lo, hi):
            flat[to:to + n] = state[i][key]._data.reshape(-1)[at:at + n]
        out[key] = _make(flat)
    return out

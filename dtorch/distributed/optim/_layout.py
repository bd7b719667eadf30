"""Where each parameter lives in ZeRO's flat buffer, and which slice of it each rank owns.

All parameters (every group, in group order) are laid out end to end in one flat 1-d
buffer. Each group's range is split into ``world`` contiguous chunks, as even as the size
allows (the first ``numel % world`` ranks get one element more): rank r owns chunk r of
every group. Unlike torch's greedy per-parameter partition, a chunk may cut a parameter in
two; the update rules are elementwise, so that changes nothing but balance (perfect here).

Across nodes (``nest``) the split has two levels: a group's range in ``local`` chunks, one per
rank index within a node, each cut in ``nodes`` sub-chunks; rank (node k, local i) owns
sub-chunk k of chunk i — so the ranks that share a local index reduce-scatter one chunk.
"""
from __future__ import annotations

import numpy as np

from ...tensor import Tensor


def chunk(start: int, end: int, rank: int, world: int) -> tuple[int, int]:
    """Rank ``rank``'s share of ``[start, end)`` split in ``world`` near-equal contiguous pieces."""
    base, extra = divmod(end - start, world)
    lo = start + rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


class ShardLayout:
    """Offsets of every parameter in the flat buffer; per group, every rank's ``(lo, hi)``."""

    def __init__(self, groups: list[list[Tensor]], rank: int, world: int) -> None:
        self.params = [p for ps in groups for p in ps]
        if not self.params:
            raise ValueError("ZeroRedundancyOptimizer got no parameters")
        ref = self.params[0]._data
        for p in self.params:
            if type(p._data) is not np.ndarray or p._data.dtype != ref.dtype or p._data.dtype.kind not in "fV":
                raise NotImplementedError("ZeroRedundancyOptimizer: dtorch shards CPU (numpy) floating-point "
                                          f"parameters of one dtype; got {type(p._data).__name__} {p._data.dtype} "
                                          f"next to {ref.dtype}")
        self.dtype = ref.dtype
        self.rank, self.world = rank, world
        self.places = [(r, 0) for r in range(world)]  # rank -> (local index, node index)
        self.local, self.nodes = world, 1
        sizes = [p._data.size for p in self.params]
        self.offsets = np.cumsum([0] + sizes).tolist()
        self.numel = self.offsets[-1]
        self.group_params: list[list[int]] = []     # parameter indices (into self.params) per group
        self.group_range: list[tuple[int, int]] = []
        i = 0
        for ps in groups:
            self.group_params.append(list(range(i, i + len(ps))))
            self.group_range.append((self.offsets[i], self.offsets[i + len(ps)]))
            i += len(ps)

    def nest(self, places: list[tuple[int, int]], local: int, nodes: int) -> None:
        """Two-level split: ``places[r]`` = (local index, node index) of rank r."""
        self.places, self.local, self.nodes = places, local, nodes

    def local_chunk(self, g: int, i: int) -> tuple[int, int]:
        return chunk(*self.group_range[g], i, self.local)

    def shards(self, g: int) -> list[tuple[int, int]]:
        """Every rank's ``(lo, hi)`` in group ``g``."""
        return [chunk(*self.local_chunk(g, i), k, self.nodes) for i, k in self.places]

    def mine(self, g: int) -> tuple[int, int]:
        i, k = self.places[self.rank]
        return chunk(*self.local_chunk(g, i), k, self.nodes)

    def counts(self, g: int) -> list[int]:
        return [hi - lo for lo, hi in self.shards(g)]

    def pieces(self, g: int, lo: int, hi: int):
        """``(param index, start in the param, start in [lo, hi), length)`` for each parameter of group ``g``
        overlapping the flat range ``[lo, hi)``."""
        for i in self.group_params[g]:
            a, b = max(lo, self.offsets[i]), min(hi, self.offsets[i + 1])
            if a < b:
                yield i, a - self.offsets[i], a - lo, b - a

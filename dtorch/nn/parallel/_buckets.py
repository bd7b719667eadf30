"""Gradient buckets: parameters grouped (reverse order, by dtype and device) into flat buffers.

Assignment follows torch's ``compute_bucket_assignment_by_size``: walk the parameters in
the given order, add each to the open bucket of its dtype/device, and close that bucket
once its size reaches the current limit; with the default cap the first limit is small (1 MiB,
so the first allreduce starts early in backward), the following ones are ``bucket_cap_mb``.
"""
from __future__ import annotations

import numpy as np

from ...tensor import Tensor, _make

FIRST_BUCKET_BYTES = 1024 * 1024


def _key(p: Tensor) -> tuple:
    d = p._data
    return type(d), d.dtype, getattr(getattr(d, "device", None), "id", -1)


def assign_buckets(params: list[Tensor], order: list[int], limits: list[int]) -> list[list[int]]:
    """Split parameter indices (taken in ``order``) into buckets by byte size; ``limits`` = [first, cap]."""
    buckets: list[list[int]] = []
    open_: dict[tuple, tuple[list[int], int, int]] = {}  # key -> (indices, bytes, limit index)
    for i in order:
        p = params[i]
        key = _key(p)
        idx, size, li = open_.get(key, ([], 0, 0))
        idx.append(i)
        size += p._data.nbytes
        if size >= limits[min(li, len(limits) - 1)]:
            buckets.append(idx)
            open_[key] = ([], 0, li + 1)
        else:
            open_[key] = (idx, size, li)
    buckets.extend(idx for idx, _, _ in open_.values() if idx)
    return buckets


class Bucket:
    """One flat gradient buffer and the views of it that stand for each parameter's gradient."""

    def __init__(self, index: int, params: list[Tensor], indices: list[int]) -> None:
        self.index = index
        self.params = params
        self.indices = indices
        ref = params[0]._data
        xp = np if type(ref) is np.ndarray else __import__("cupy")
        sizes = [p._data.size for p in params]
        self.offsets = np.cumsum([0] + sizes).tolist()
        flat = xp.zeros(self.offsets[-1], ref.dtype)
        self.buffer = _make(flat)
        self.views = [flat[o:o + n].reshape(p._data.shape) for o, n, p in zip(self.offsets, sizes, params)]
        self.pending = len(params)  # parameters whose gradient is not ready yet this iteration
        self.future = None

    def fill_slot(self, k: int, as_view: bool) -> None:
        """Put parameter k's gradient into the buffer (zeros without one); rebind .grad to the view."""
        p, v = self.params[k], self.views[k]
        g = p._grad
        if g is None:
            v.fill(0)
        elif g._data is not v:
            v[...] = g._data
            if as_view:
                p._grad = _make(v)

    def write_back(self, k: int, as_view: bool, globally_used: bool, scale: float) -> None:
        """After the reduction: .grad = scale * the reduced slot (stays None if no rank used the parameter)."""
        p, v = self.params[k], self.views[k]
        g = p._grad
        if as_view or g is None or g._data is v:
            if scale != 1.0:
                v *= scale
            if g is None and globally_used:
                p._grad = _make(v if as_view else v.copy())
            return
        xp = np if type(v) is np.ndarray else __import__("cupy")
        xp.multiply(v, scale, out=g._data)  # the copy back and the averaging in one pass
        g._vc[0] += 1

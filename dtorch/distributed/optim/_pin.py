"""Keep the local optimizer updating ZeRO's parameter slice in place.

dtorch's built-in optimizers move each parameter group into a flat buffer of their own
(``optim/_flat.py``: ``p._data`` is re-pointed). For ZeRO's one-parameter groups that
buffer would be a copy of the slice; after a step we point the optimizer's bucket at the
slice itself (shared memory, or the buffer the all-gather fills), so later steps write
there directly. Whenever that cannot be done the values are copied back instead.
"""
from __future__ import annotations

import numpy as np

from ...optim._flat import FlatBucket
from ...tensor import Tensor


def settle(optimizer, group: dict, shard: Tensor, home: np.ndarray) -> None:
    """After a local step: make sure the updated shard values are in ``home`` (and stay there)."""
    if shard._data is home:
        return
    np.copyto(home, shard._data.reshape(-1))
    layout = optimizer.__dict__.get("_layouts", {}).get(id(group))
    buckets = getattr(layout, "buckets", None) or []
    b = buckets[0] if len(buckets) == 1 else None
    if isinstance(b, FlatBucket) and len(b.params) == 1 and b.params[0] is shard and b.views[0] is shard._data:
        b.flat = home
        b.views[0] = home
        shard._data = home

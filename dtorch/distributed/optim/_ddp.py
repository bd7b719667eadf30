"""ZeRO-2 with DDP: gradients go to ZeRO's flat gradient row and are reduce-scattered, not allreduced.

``attach(zero, ddp)`` registers a DDP communication hook. DDP still fills its buckets
during backward, but each bucket's gradient views are re-pointed (once per bucket
layout: DDP rebuilds its buckets after the first iteration) to ZeRO's gradient row —
the shared-memory window's row of this rank on the intra-node path — and gradients
become those views (``gradient_as_bucket_view``), so filling a bucket *is* handing the
gradient over. The hooks communicate nothing; the one for the last bucket (DDP starts
buckets in index order) runs ZeRO's reduce-scatter of the whole row, one per
parameter group. On a 2-core node that equals DDP's "end" mode (see _reducer.py);
starting per-bucket reduce-scatters earlier would only pay off with idle cores.

After backward ``p.grad`` holds this rank's *local* gradients; the averaged ones are
ZeRO's shard gradients. Rows are read by other ranks until ``zero.step()``'s final
barrier: do not modify ``p.grad`` in between (clip with ``zero.clip_grad_norm_``).
"""
from __future__ import annotations

import numpy as np

from ...tensor import _make
from ...futures import Future


def attach(zero, ddp) -> None:
    reducer = ddp.reducer
    if reducer.pg.size() != zero.process_group.size() or reducer.pg.ranks != zero.process_group.ranks:
        raise ValueError("ZeroRedundancyOptimizer.attach: DDP and ZeRO must use the same process group")
    ids = {id(p) for p in zero._layout.params}
    missing = [n for n, p in zip(reducer.names, reducer.params) if id(p) not in ids]
    if missing:
        raise ValueError(f"ZeroRedundancyOptimizer.attach: DDP parameters not in the optimizer: {missing}")
    reducer.as_view = True

    def repoint(bucket) -> None:
        lay, row = zero._layout, zero._exchange.grad_row  # looked up now: add_param_group rebuilds them
        where = {id(p): i for i, p in enumerate(lay.params)}
        for k, p in enumerate(bucket.params):
            i = where[id(p)]
            v = row[lay.offsets[i]:lay.offsets[i + 1]].reshape(p._data.shape)
            old = bucket.views[k]
            np.copyto(v, old)
            bucket.views[k] = v
            if p._grad is not None and p._grad._data is old:
                p._grad = _make(v)
        bucket.buffer = _make(np.empty(0, row.dtype))  # the views no longer live there: free it
        bucket.zero_row = row

    def hook(state, grad_bucket) -> Future:
        b = grad_bucket._bucket
        if getattr(b, "zero_row", None) is not zero._exchange.grad_row:
            repoint(b)
        if grad_bucket.is_last():
            zero._reduce_scatter()
        fut = Future()
        fut.set_result(b.buffer)
        return fut

    ddp.register_comm_hook(None, hook)

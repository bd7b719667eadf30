"""DistributedDataParallel: torch's data-parallel wrapper over dtorch.distributed (MPI or NCCL).

At construction every rank checks it holds the same parameters (names, shapes, dtypes)
and takes rank 0's parameter and buffer values. Each forward broadcasts rank 0's
buffers (``broadcast_buffers``); each backward averages the gradients over the group
through the Reducer (``_reducer.py``). ``no_sync()`` skips that; ``Join`` handles ranks
with fewer batches than others.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from ... import distributed as dist
from ..._creation import tensor
from ...autograd.grad_mode import is_grad_enabled
from ...distributed.algorithms.join import Join, Joinable, JoinHook
from ...tensor import Tensor, _make
from ..modules.module import Module
from ._buckets import FIRST_BUCKET_BYTES
from ._reducer import Reducer

__all__ = ["DistributedDataParallel"]

DEFAULT_BUCKET_CAP_MB = 25


class DistributedDataParallel(Module, Joinable):
    """Wraps ``module``: its gradients are averaged over ``process_group`` (the world by default) in backward."""

    def __init__(self, module: Module, device_ids: list | None = None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, init_sync: bool = True, process_group=None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False, static_graph: bool = False,
                 **unsupported: Any) -> None:
        Module.__init__(self)
        Joinable.__init__(self)
        for name, value in unsupported.items():
            if value is not None and value is not False:
                raise NotImplementedError(f"DistributedDataParallel: {name} is not supported by dtorch")
        self.module = module
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self.process_group = process_group if process_group is not None else dist.group.WORLD
        if self.process_group is None:
            raise ValueError("Default process group has not been initialized, please make sure to call "
                             "init_process_group.")
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter "
                               "that requires a gradient.")
        self._param_names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._verify_same_parameters(module)
        if init_sync:
            self._broadcast_state(src=self.process_group.ranks[0])
        cap_mb = DEFAULT_BUCKET_CAP_MB if bucket_cap_mb is None else bucket_cap_mb
        self.bucket_bytes_cap = int(cap_mb * 1024 * 1024)
        # as torch: a small first bucket (its allreduce starts early) only with the default cap
        first = FIRST_BUCKET_BYTES if bucket_cap_mb is None else self.bucket_bytes_cap
        self.reducer = Reducer(self._params, self._param_names, self.process_group, [first, self.bucket_bytes_cap],
                               gradient_as_bucket_view, find_unused_parameters, static_graph)
        self._comm_hook_registered = False

    # ---- construction checks and state sync -------------------------------------------------------
    def _verify_same_parameters(self, module: Module) -> None:
        """Every rank must have the same parameters: compare (name, shape, dtype) lists gathered from all."""
        mine = [[n, list(p.shape), str(p.dtype)] for n, p in module.named_parameters()]
        pg = self.process_group
        every = [None] * pg.size()
        dist.all_gather_object(every, mine, group=pg)
        ref = every[0]
        for r, theirs in enumerate(every[1:], start=1):
            for i, (a, b) in enumerate(zip(ref, theirs)):
                if a != b:
                    raise RuntimeError(
                        f"DDP expects same model across all ranks, but parameter {i} differs: rank {pg.ranks[r]} "
                        f"has {b[0]!r} with shape {b[1]} and {b[2]}, rank {pg.ranks[0]} has {a[0]!r} with shape "
                        f"{a[1]} and {a[2]}")
            if len(theirs) != len(ref):
                raise RuntimeError(f"DDP expects same model across all ranks, but rank {pg.ranks[r]} has "
                                   f"{len(theirs)} params, while rank {pg.ranks[0]} has inconsistent {len(ref)} "
                                   "params.")

    def _module_buffers(self) -> list[Tensor]:
        return [b for b in self.module.buffers() if b is not None]

    def _broadcast_state(self, src: int, params: bool = True, buffers: bool = True) -> None:
        tensors = (list(self.module.parameters()) if params else []) + (self._module_buffers() if buffers else [])
        _broadcast_coalesced(tensors, src, self.process_group)

    def _buffer_src(self, active: bool) -> int:
        """Rank 0, or under Join the highest rank still training (its buffers are current)."""
        if not self._join_config.enable:
            return self.process_group.ranks[0]
        return _find_common_rank(self.process_group, active)

    def _sync_buffers(self, active: bool = True) -> None:
        if self.broadcast_buffers and self.process_group.size() > 1 and self._module_buffers():
            self._broadcast_state(self._buffer_src(active), params=False)

    # ---- forward ---------------------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        sync = is_grad_enabled() and self.require_backward_grad_sync
        if sync:
            self.reducer.ensure_prior_reduction_finished()
        Join.notify_join_context(self)
        self._sync_buffers()
        out = self.module(*inputs, **kwargs)
        if sync:
            self.reducer.prepare_for_backward(out)
        else:
            self.reducer.expect_sync = False
        return out

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Gradients accumulate locally inside; the first backward after it synchronises them all."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    # ---- communication hooks ------------------------------------------------------------------------
    def register_comm_hook(self, state: object, hook: Callable) -> None:
        """``hook(state, bucket) -> Future`` replaces the bucket allreduce (its value: the averaged buffer)."""
        if self._comm_hook_registered:
            raise RuntimeError("register_comm_hook or register_builtin_comm_hook can only be called once.")
        if not callable(hook):
            raise TypeError("Communication hook must be callable.")
        self._comm_hook_registered = True
        self.reducer.comm_hook = hook
        self.reducer.hook_state = state

    def _set_static_graph(self) -> None:
        self.static_graph = True
        self.reducer.static_graph = self.reducer.track_unused = True

    # ---- Join ---------------------------------------------------------------------------------------
    def join(self, divide_by_initial_world_size: bool = True, enable: bool = True,
             throw_on_early_termination: bool = False) -> Join:
        return Join([self], enable, throw_on_early_termination,
                    divide_by_initial_world_size=divide_by_initial_world_size)

    def join_hook(self, **kwargs) -> JoinHook:
        if not kwargs.get("divide_by_initial_world_size", True):
            raise NotImplementedError("dtorch's DDP join always divides by the initial world size")
        return _DDPJoinHook(self)

    @property
    def join_device(self):
        return self._params[0].device

    @property
    def join_process_group(self):
        return self.process_group


class _DDPJoinHook(JoinHook):
    def __init__(self, ddp: DistributedDataParallel) -> None:
        self.ddp = ddp

    def main_hook(self) -> None:
        """Shadow one iteration of the ranks still training: their buffer broadcast and bucket allreduces."""
        self.ddp._sync_buffers(active=False)
        self.ddp.reducer.shadow_iteration()

    def post_hook(self, is_last_joiner: bool) -> None:
        """Everyone takes the model of the (highest) rank that joined last."""
        src = _find_common_rank(self.ddp.process_group, is_last_joiner)
        self.ddp._broadcast_state(src)


def _find_common_rank(pg, candidate: bool) -> int:
    """The highest global rank among those with ``candidate`` true (all_reduce MAX)."""
    t = tensor([pg.ranks[pg.rank()] if candidate else -1])
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=pg)
    rank = int(t.item())
    if rank < 0:
        raise RuntimeError("No rank has been chosen to broadcast the DDP state from")
    return rank


def _broadcast_coalesced(tensors: list[Tensor], src: int, pg) -> None:
    """Broadcast ``tensors`` from ``src`` with one collective per dtype; values land in place."""
    groups: dict = {}
    for t in tensors:
        groups.setdefault((type(t._data), t._data.dtype), []).append(t)
    for (kind, _), ts in groups.items():
        xp = np if kind is np.ndarray else __import__("cupy")
        flat = xp.concatenate([t._data.reshape(-1) for t in ts])
        dist.broadcast(_make(flat), src=src, group=pg)
        if dist.get_rank() == src:
            continue   # the source's tensors are unchanged: not written (nor is their version bumped)
        off = 0
        for t in ts:
            n = t._data.size
            t._data[...] = flat[off:off + n].reshape(t._data.shape)
            t._vc[0] += 1
            off += n

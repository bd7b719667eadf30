"""ZeroRedundancyOptimizer: each rank keeps optimizer state for its slice of the parameters only.

torch's API (``torch.distributed.optim.ZeroRedundancyOptimizer``): wrap any optimizer class;
``step()`` updates this rank's shard with a local optimizer, then all-gathers the parameters;
``consolidate_state_dict(to)`` + ``state_dict()`` give the plain optimizer's full state dict
(loadable at any world size); ``add_param_group`` re-partitions.

Partition: a flat contiguous split of each group (``_layout.py``), not torch's greedy
per-parameter one. The model's parameters become views of one flat buffer. ``comm``:
"shm" (chosen by "auto" when every rank is on one node): that buffer is an MPI
shared-memory window shared by all ranks, so the all-gather is a barrier; "hier" (auto
across nodes with equal rank counts): one window per node, MPI between nodes
(``_hier.py``); "mpi": private buffers, ``Reduce_scatter``/``Allgatherv`` between all ranks.
With "shm"/"hier" every rank of a node sees the same parameters: writing them on one rank
writes them on all.

Gradients: by default the shard's gradients are read from ``p.grad`` (DDP has averaged
them: ZeRO-1). ``zero.attach(ddp)`` makes DDP hand its gradients to ZeRO instead of
allreducing them: they are reduce-scattered (ZeRO-2; see ``_ddp.py``), so each rank
only ever receives its shard's average; ``p.grad`` then holds this rank's local
gradients, and clipping must go through ``zero.clip_grad_norm_``.

Results equal DDP + the plain optimizer bitwise at 2 ranks (both average as (a + b) * 1/2 and
the update is elementwise); at 3+ ranks MPI may add the gradients in another order than
the shared-memory sum (float tolerance). Parameters without a gradient keep their values and
state (``_frozen.py``), as the plain optimizers skip them; a group's shared ``step`` counter
still advances, and the consolidated state dict has entries for them.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from ...autograd.grad_mode import enable_grad, no_grad
from ...optim.optimizer import Optimizer
from ...tensor import Tensor, _make
from ..collectives import all_reduce
from .._node import node_places, split_nodes
from ..objects import all_gather_object, gather_object
from ..process_group import resolve
from ..reduce_op import ReduceOp
from ._ddp import attach as attach_to_ddp
from ._exchange import MPIExchange, SharedExchange
from ._frozen import Keep
from ._hier import HierExchange
from ._layout import ShardLayout
from ._pin import settle
from ._state import assemble, shard_of

__all__ = ["ZeroRedundancyOptimizer"]

_SCALAR = "0d:"


class ZeroRedundancyOptimizer(Optimizer):
    """Shards ``optimizer_class``'s state over ``process_group``; see the module docstring."""

    def __init__(self, params: Iterable, optimizer_class: type, process_group=None,
                 parameters_as_bucket_view: bool = False, overlap_with_ddp: bool = False, comm: str = "auto",
                 **defaults: Any) -> None:
        if overlap_with_ddp:
            raise NotImplementedError("overlap_with_ddp: use zero.attach(ddp) (reduce-scatter in DDP's backward)")
        self.optimizer_class = optimizer_class
        self.process_group = resolve(process_group)
        self.comm = comm
        self._built = False
        self._consolidated: dict | None = None
        super().__init__(params, defaults)
        self._build()

    # ---- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        pg = self.process_group
        old = self.__dict__.get("_exchange")
        lay = self._layout = ShardLayout([g["params"] for g in self.param_groups], pg.rank(), pg.size())
        values = [p._data.copy() for p in lay.params] if old is not None else [p._data for p in lay.params]
        ex = self._exchange = _make_exchange(pg, lay, self.comm)
        ex.init_params(values)
        for i, p in enumerate(lay.params):
            p._data = ex.params[lay.offsets[i]:lay.offsets[i + 1]].reshape(p._data.shape)
            p._vc[0] += 1
        if old is not None:
            old.free()
        self._homes = [ex.params[lo:hi] for lo, hi in (lay.mine(g) for g in range(len(self.param_groups)))]
        self._shards = [_make(h, rg=True) for h in self._homes]
        self._shard_grads = [np.zeros(h.size, lay.dtype) for h in self._homes]
        local = [{**self._hyper(g), "params": [s]} for g, s in zip(self.param_groups, self._shards)]
        self.optim = self.optimizer_class(local, **self.defaults)
        for g, lg in zip(self.param_groups, self.optim.param_groups):
            for k, v in lg.items():
                if k != "params":
                    g.setdefault(k, v)
        self._grads_ready = False   # shard gradients already reduced (ZeRO-2) or collected
        self._reduced = False       # ... by a reduce-scatter (whose barrier also fences the update)
        self._built = True

    @staticmethod
    def _hyper(group: dict) -> dict:
        return {k: v for k, v in group.items() if k not in ("params", "param_names")}

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; after construction this re-partitions every group (collective: call on all ranks)."""
        if not self.__dict__.get("_built"):
            return super().add_param_group(param_group)
        full = self._state_everywhere()
        super().add_param_group(param_group)
        self._build()
        self._load_full_state(full)

    # ---- gradients --------------------------------------------------------------------------------
    def _reduce_scatter(self) -> None:
        """ZeRO-2 (called from DDP's backward): average every rank's gradient row into the shard gradients."""
        self._exchange.reduce_scatter(self._shard_grads)
        for s, sg in zip(self._shards, self._shard_grads):
            s._grad = _make(sg)
        self._grads_ready = self._reduced = True

    def _collect_grads(self) -> None:
        """ZeRO-1: the shard gradients are slices of ``p.grad`` (already averaged by DDP)."""
        lay = self._layout
        for g, (s, sg) in enumerate(zip(self._shards, self._shard_grads)):
            lo, hi = lay.mine(g)
            params = [lay.params[i] for i in lay.group_params[g]]
            if all(p._grad is None for p in params):
                s._grad = None
                continue
            for i, at, to, n in lay.pieces(g, lo, hi):
                grad = lay.params[i]._grad
                if grad is None:
                    sg[to:to + n] = 0  # a parameter without gradient in a group that has some: zeros
                else:
                    sg[to:to + n] = grad._data.reshape(-1)[at:at + n]
            s._grad = _make(sg)
        self._grads_ready = True

    def _ensure_grads(self) -> None:
        if not self._grads_ready:
            self._collect_grads()

    @no_grad()
    def _unscale_grads_(self, inv_scale: float) -> list:
        """GradScaler.unscale_: scale this rank's shard gradients (what step() reads); return them."""
        self._ensure_grads()
        grads = [s._grad._data for s in self._shards if s._grad is not None]
        for g in grads:
            np.multiply(g, np.asarray(inv_scale, g.dtype), out=g)
        return grads

    def zero_grad(self, set_to_none: bool = True) -> None:
        """As Optimizer.zero_grad, and forget shard gradients a skipped step (GradScaler) left behind."""
        super().zero_grad(set_to_none)
        for s in self._shards:
            s._grad = None
        self._grads_ready = self._reduced = False

    @no_grad()
    def clip_grad_norm_(self, max_norm: float, norm_type: float = 2.0) -> Tensor:
        """Clip the shard gradients to a total norm computed across all shards; returns that norm."""
        self._ensure_grads()
        grads = [s._grad._data for s in self._shards if s._grad is not None]
        norm_type = float(norm_type)
        if norm_type == float("inf"):
            local = max((float(np.abs(g).max()) for g in grads if g.size), default=0.0)
            op = ReduceOp.MAX
        else:
            local = sum(float(np.sum(np.abs(g.astype(np.float64)) ** norm_type)) for g in grads)
            op = ReduceOp.SUM
        t = _make(np.array([local], np.float64))
        all_reduce(t, op=op, group=self.process_group)
        total = float(t._data[0]) if norm_type == float("inf") else float(t._data[0]) ** (1.0 / norm_type)
        coef = float(max_norm) / (total + 1e-6)
        if coef < 1.0:
            for g in grads:
                np.multiply(g, np.asarray(coef, g.dtype), out=g)
        return _make(np.asarray(total, self._layout.dtype))

    # ---- step ---------------------------------------------------------------------------------------
    def step(self, closure: Callable | None = None):
        """Update this rank's shard with the local optimizer, then all-gather the parameters."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self._ensure_grads()
        self._exchange.before_update(self._reduced)
        for g, lg in zip(self.param_groups, self.optim.param_groups):
            lg.update(self._hyper(g))
        keep = None
        if any(p._grad is None for p in self._layout.params):
            keep = [Keep(self._layout, g, s._data.reshape(-1), self.optim.state.get(s, {}))
                    for g, s in enumerate(self._shards)]
        self.optim.step()
        for g, (lg, s, home) in enumerate(zip(self.optim.param_groups, self._shards, self._homes)):
            if keep is not None:
                keep[g].restore(s._data.reshape(-1), self.optim.state.get(s, {}))
            settle(self.optim, lg, s, home)
        self._exchange.all_gather()
        for p in self._layout.params:
            p._vc[0] += 1
        for s in self._shards:
            s._grad = None
        self._grads_ready = self._reduced = False
        return loss

    def attach(self, ddp) -> None:
        """Make ``ddp`` reduce-scatter its gradients into this optimizer instead of allreducing (ZeRO-2)."""
        attach_to_ddp(self, ddp)

    # ---- state dicts --------------------------------------------------------------------------------
    def _local_state(self) -> dict:
        # dtorch.save turns 0-d tensors into 1-d ones: mark them so that they come back 0-d
        return {str(g): {(_SCALAR + k if isinstance(v, Tensor) and v.dim() == 0 else k): v
                         for k, v in self.optim.state.get(s, {}).items()} for g, s in enumerate(self._shards)}

    @staticmethod
    def _unpack(every: list[dict]) -> list[dict]:
        return [{g: {(k[len(_SCALAR):] if k.startswith(_SCALAR) else k):
                     (v.reshape(()) if k.startswith(_SCALAR) else v) for k, v in st.items()}
                 for g, st in part.items()} for part in every]

    def consolidate_state_dict(self, to: int = 0) -> None:
        """Gather every rank's shard state on global rank ``to`` (collective: call on all ranks)."""
        pg = self.process_group
        me = pg.ranks[pg.rank()]
        every = [None] * pg.size() if me == to else None
        gather_object(self._local_state(), every, dst=to, group=pg)
        self._consolidated = {"state": assemble(self._layout, self._unpack(every))} if me == to else None

    def _state_everywhere(self) -> dict:
        every = [None] * self.process_group.size()
        all_gather_object(every, self._local_state(), group=self.process_group)
        return assemble(self._layout, self._unpack(every))

    def state_dict(self) -> dict[str, Any]:
        """The plain optimizer's full state dict; needs ``consolidate_state_dict`` to this rank first."""
        if self._consolidated is None:
            raise RuntimeError("Optimizer state has not been consolidated on this rank. Please call "
                               "`consolidate_state_dict(to)` on all ranks beforehand and then call "
                               "`state_dict()` on rank `to`")
        groups, start = [], 0
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = list(range(start, start + len(g["params"])))
            start += len(g["params"])
            groups.append(packed)
        return {"state": dict(self._consolidated["state"]), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a full state dict (ZeRO's consolidated one, or the plain optimizer's) at any world size."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups) or any(
                len(s["params"]) != len(g["params"]) for s, g in zip(saved, self.param_groups)):
            raise ValueError("loaded state dict does not match the optimizer's parameter groups")
        for g, s in zip(self.param_groups, saved):
            g.update({k: v for k, v in s.items() if k not in ("params", "param_names")})
        ids = [i for s in saved for i in s["params"]]
        by_param = {pos: state_dict["state"][k] for pos, k in enumerate(ids) if k in state_dict["state"]}
        self._load_full_state(by_param)

    def _load_full_state(self, by_param: dict) -> None:
        local = {"state": {}, "param_groups": []}
        for g, group in enumerate(self.param_groups):
            st = shard_of(self._layout, g, by_param)
            if st:
                local["state"][g] = st
            local["param_groups"].append({**self._hyper(group), "params": [g]})
        self.optim.load_state_dict(local)


def _make_exchange(pg, layout: ShardLayout, comm: str):
    """``comm``: "auto" (shared memory when every rank is on this node, else "hier" when every node
    has as many ranks, else "mpi"), "shm", "hier" or "mpi". A collective call: every rank decides alike."""
    if comm not in ("auto", "shm", "hier", "mpi"):
        raise ValueError(f"ZeroRedundancyOptimizer: comm must be 'auto', 'shm', 'hier' or 'mpi', got {comm!r}")
    if comm == "mpi":
        return MPIExchange(pg, layout)
    node = split_nodes(pg)
    if node.Get_size() == pg.size() and comm != "hier":
        return SharedExchange(pg, layout, node)
    if comm == "shm":
        node.Free()
        raise RuntimeError("ZeroRedundancyOptimizer(comm='shm') needs every rank of the group on one node")
    places = node_places(pg, node)
    if places is not None:
        return HierExchange(pg, layout, node, places)
    node.Free()
    if comm == "hier":
        raise RuntimeError("ZeroRedundancyOptimizer(comm='hier') needs the same number of ranks on every node")
    return MPIExchange(pg, layout)

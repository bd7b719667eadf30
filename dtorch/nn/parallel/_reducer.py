"""The Reducer: averages gradients across ranks during backward, bucket by bucket (torch's Reducer).

A post-accumulate-grad hook on every parameter marks it ready and copies its gradient
into its bucket's flat buffer (with ``gradient_as_bucket_view`` the gradient already is
a view of it). When a bucket's last gradient is ready, its allreduce starts
asynchronously — buckets start in index order so every rank issues the same sequence.
The hook that makes the last bucket ready waits for all of them and writes the averages
back, so gradients are final when ``loss.backward()`` returns. After the first
iteration the buckets are rebuilt in the order gradients became ready (rank 0's order).

When buckets start (``overlap``, env ``DTORCH_DDP_OVERLAP``): ``"test"`` starts each bucket when
ready and polls the started requests from every later hook (MPICH progresses only inside MPI calls);
``"end"`` starts all buckets once backward is done. Default: ``"end"`` for CPU parameters (both
cores compute, so overlap moves work rather than hiding it), ``"test"`` for CUDA ones (NCCL runs on
its own stream). Measurements: docs/distributed.md, "DDP overlap".

How gradients are averaged (``comm``, env ``DTORCH_DDP_COMM``): ``"shm"`` (default) through a
node-shared window, per parameter (``_shm_allreduce.py``; buckets only lay out the window);
``"mpi"`` allreduces buckets as above. ``"shm"`` falls back to ``"mpi"`` for CUDA or mixed-dtype
parameters, groups spanning nodes, and steps with a communication hook.
"""
from __future__ import annotations

import os

import numpy as np

from ..._creation import tensor
from ...autograd.graph import AccumulateGrad
from ...distributed import all_reduce, barrier, broadcast
from ...futures import work_future
from ...tensor import Tensor, _make
from ._buckets import Bucket, assign_buckets
from ._shm_allreduce import COMM_MODES, make_shm_allreduce

OVERLAP_MODES = ("test", "end")


class GradBucket:
    """What a communication hook receives (torch.distributed.GradBucket)."""

    def __init__(self, bucket: Bucket, is_last: bool) -> None:
        self._bucket = bucket
        self._is_last = is_last

    def index(self) -> int:
        return self._bucket.index

    def buffer(self) -> Tensor:
        return self._bucket.buffer

    def gradients(self) -> list[Tensor]:
        return [_make(v) for v in self._bucket.views]

    def parameters(self) -> list[Tensor]:
        return list(self._bucket.params)

    def is_last(self) -> bool:
        return self._is_last

    def set_buffer(self, tensor: Tensor) -> None:
        self._bucket.buffer._data[...] = tensor._data


def used_parameters(outputs) -> set[int]:
    """ids of the leaves the autograd graph of ``outputs`` reaches (what backward can give a gradient)."""
    roots, seen, used = [], set(), set()
    _collect_tensors(outputs, roots)
    stack = []
    for t in roots:
        if t.grad_fn is not None:
            stack.append(t.grad_fn)
        elif t._rg:
            used.add(id(t))
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if type(node) is AccumulateGrad:
            var = node.variable
            if var is not None:
                used.add(id(var))
            continue
        stack.extend(n for n, _ in node.next_functions if n is not None)
    return used


def _collect_tensors(obj, out: list) -> None:
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _collect_tensors(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _collect_tensors(o, out)


class Reducer:
    def __init__(self, params: list[Tensor], names: list[str], process_group, limits: list[int],
                 as_view: bool, track_unused: bool, static_graph: bool, overlap: str | None = None,
                 comm: str | None = None) -> None:
        self.params = params
        self.names = names
        self.pg = process_group
        self.world = process_group.size()
        self.limits = limits          # bytes: [first bucket, the others]
        self.as_view = as_view
        self.track_unused = track_unused or static_graph
        self.static_graph = static_graph
        on_cpu = type(params[0]._data) is np.ndarray
        self.overlap = overlap or os.environ.get("DTORCH_DDP_OVERLAP") or ("end" if on_cpu else "test")
        if self.overlap not in OVERLAP_MODES:
            raise ValueError(f"DDP overlap mode must be one of {OVERLAP_MODES}, got {self.overlap!r}")
        comm = comm or os.environ.get("DTORCH_DDP_COMM") or "shm"
        if comm not in COMM_MODES:
            raise ValueError(f"DDP comm mode must be one of {COMM_MODES}, got {comm!r}")
        self.shm = make_shm_allreduce(process_group, params, names, as_view) if comm == "shm" else None
        self.comm_hook = None
        self.hook_state = None
        self.index_of = {id(p): i for i, p in enumerate(params)}
        self._build(list(reversed(range(len(params)))))
        self.rebuilt = False
        self.ready_order: list[int] = []
        self.expect_sync = False      # the last forward asked for a gradient sync in backward
        self.in_backward = False      # a hook of this iteration ran
        self.ready = [False] * len(params)
        self.unused: list[int] = []   # parameters this rank's graph does not reach
        self._static_unused: list[int] | None = None
        for p in params:
            p.register_post_accumulate_grad_hook(self._on_grad_ready)

    def _build(self, order: list[int]) -> None:
        groups = assign_buckets(self.params, order, self.limits)
        self.buckets = [Bucket(i, [self.params[j] for j in idx], idx) for i, idx in enumerate(groups)]
        if self.shm is not None:
            self.shm.place(self.buckets)
        self.where = {j: (b, k) for b in self.buckets for k, j in enumerate(b.indices)}
        self.next_bucket = 0
        self.buckets_left = len(self.buckets)

    # ---- per iteration --------------------------------------------------------------------------
    def prepare_for_backward(self, outputs) -> None:
        """Called after a forward that wants its backward synchronised."""
        self.expect_sync = True
        self.in_backward = False
        self.ready = [False] * len(self.params)
        for b in self.buckets:
            b.pending = len(b.params)
            b.future = None
        self.next_bucket = 0
        self.buckets_left = len(self.buckets)
        if self.track_unused:
            if self._static_unused is not None:
                self.unused = self._static_unused
            else:
                used = used_parameters(outputs)
                self.unused = [j for j, p in enumerate(self.params) if id(p) not in used]
                if self.static_graph:
                    self._static_unused = self.unused

    def ensure_prior_reduction_finished(self) -> None:
        """Before a new forward: the previous backward must have reduced every bucket."""
        if not (self.expect_sync and self.in_backward):
            return
        missing = [self.names[j] for j, r in enumerate(self.ready) if not r]
        for b in self.buckets:  # finish what was started, so every rank's communicator stays in step
            if b.future is not None:
                b.future.wait()
        self.expect_sync = self.in_backward = False
        raise RuntimeError(
            "Expected to have finished reduction in the prior iteration before starting a new one. This error "
            "indicates that your module has parameters that were not used in producing loss. You can enable unused "
            "parameter detection by passing the keyword argument `find_unused_parameters=True` to "
            "`dtorch.nn.parallel.DistributedDataParallel`, and by making sure all `forward` function outputs "
            f"participate in calculating loss. Parameters which did not receive grad for rank {self.pg.rank()}: "
            + ", ".join(missing))

    def _on_grad_ready(self, p: Tensor) -> None:
        if not self.expect_sync:
            return  # no_sync(), or a backward without a DDP forward: gradients stay local
        if not self.in_backward:
            self.in_backward = True
            if self.comm == "shm":
                self.shm.begin()
                self.shm_left = len(self.params)
            for j in self.unused:
                self._mark_ready(j)
        j = self.index_of[id(p)]
        if self.ready[j]:
            raise RuntimeError(f"Expected to mark a variable ready only once: parameter {self.names[j]} got a "
                               "second gradient in this iteration (reentrant backward or a shared parameter "
                               "used across backward calls is not supported)")
        if not self.rebuilt:
            self.ready_order.append(j)
        self._mark_ready(j)
        if self.overlap == "test" and self.expect_sync:
            for b in self.buckets[:self.next_bucket]:
                b.future.done()  # MPI_Test: lets MPICH move the started allreduces along

    def _mark_ready(self, j: int) -> None:
        self.ready[j] = True
        if self.comm == "shm":
            self._shm_ready(j)
            return
        b, k = self.where[j]
        b.fill_slot(k, self.as_view)
        b.pending -= 1
        if b.pending:
            return
        self.buckets_left -= 1
        if self.comm == "mpi" and (self.overlap == "test" or self.buckets_left == 0):
            while self.next_bucket < len(self.buckets) and self.buckets[self.next_bucket].pending == 0:
                self._launch(self.buckets[self.next_bucket])
                self.next_bucket += 1
        if self.buckets_left == 0:
            self._finalize()

    def _shm_ready(self, j: int) -> None:
        """Hand parameter j's gradient to the shared window (it averages what it can right away)."""
        p = self.params[j]
        g = p._grad
        if self.as_view:
            b, k = self.where[j]
            v = b.views[k]
            self.shm.contribute(j, None if g is None else g._data, view=v)
            if g is not None and g._data is not v:
                p._grad = _make(v)  # .grad := the view of this rank's row (the average lands there)
        else:
            self.shm.contribute(j, None if g is None else g._data)
        self.shm_left -= 1
        if self.shm_left == 0:
            self._finalize()
        else:
            self.shm.progress()

    @property
    def comm(self) -> str:
        """How buckets are averaged this step: "shm" (shared window) or "mpi" (allreduce or the hook)."""
        return "shm" if self.shm is not None and self.comm_hook is None else "mpi"

    def _launch(self, b: Bucket) -> None:
        if self.comm_hook is not None:
            b.future = self.comm_hook(self.hook_state, GradBucket(b, b.index == len(self.buckets) - 1))
        else:
            b.future = work_future(all_reduce(b.buffer, group=self.pg, async_op=True))

    def _wait_all(self) -> None:
        for b in self.buckets:
            out = b.future.wait()
            if isinstance(out, list):
                out = out[0]
            if out is not b.buffer:
                b.buffer._data[...] = out._data

    def _finalize(self) -> None:
        if self.comm == "shm":
            self._finalize_shm()
            return
        self._wait_all()
        used = self._globally_used()
        scale = 1.0 if self.comm_hook is not None else 1.0 / self.world
        for b in self.buckets:
            for k, j in enumerate(b.indices):
                b.write_back(k, self.as_view, used[j], scale)
        self.expect_sync = self.in_backward = False
        if not self.rebuilt:
            self._rebuild()

    def _finalize_shm(self) -> None:
        self.shm.finish()
        used = self._globally_used()
        for j, p in enumerate(self.params):
            g = p._grad
            if g is None:
                if used[j]:  # unused here, used elsewhere: the average lives in the contributed zeros (or view)
                    p._grad = _make(self.shm.result(j, p._data.shape))
            elif not self.as_view:
                g._vc[0] += 1
        self.expect_sync = self.in_backward = False
        if not self.rebuilt:
            self._rebuild()

    def _globally_used(self) -> list[bool]:
        if not self.track_unused:
            return [True] * len(self.params)
        unused = set(self.unused)
        local = [0 if j in unused else 1 for j in range(len(self.params))]
        t = tensor(local)
        all_reduce(t, group=self.pg)
        return [v > 0 for v in t.tolist()]

    def _rebuild(self) -> None:
        """Buckets in the order gradients became ready (rank 0's order, so all ranks agree)."""
        seen = set(self.ready_order)
        order = self.ready_order + [j for j in reversed(range(len(self.params))) if j not in seen]
        t = tensor(order)
        broadcast(t, src=self.pg.ranks[0], group=self.pg)
        if self.shm is not None:
            barrier(group=self.pg)  # the window's layout changes: every rank is done reading the old one
        self._build([int(j) for j in t.tolist()])
        self.rebuilt = True
        self.ready_order = []
        if self.as_view:
            for b in self.buckets:
                for k in range(len(b.params)):
                    if b.params[k]._grad is not None:
                        b.fill_slot(k, True)

    # ---- a joined rank shadows an iteration ---------------------------------------------------
    def shadow_iteration(self) -> None:
        """All bucket allreduces with zero gradients (Join: a rank out of data matches the others)."""
        if self.comm == "shm":
            self.shm.begin()
            for j in range(len(self.params)):
                self.shm.contribute(j, None, copy_out=False)  # zeros; this rank's .grad stays as it is
                self.shm.progress()
            self.shm.finish()
        else:
            for b in self.buckets:
                b.buffer._data.fill(0)
                self._launch(b)
            self._wait_all()
        if self.track_unused:
            self.unused = list(range(len(self.params)))
            self._globally_used()
        if not self.rebuilt:
            self._rebuild()

"""DistributedDataParallel equals single-process training on the whole batch (pytest-mpi).

Every test runs on both averaging paths: MPI allreduce and the node-shared window (the CPU default).
"""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from dtorch import nn
from dtorch.distributed.algorithms import Future, Join
from dtorch.distributed.algorithms.ddp_comm_hooks import default_hooks
from dtorch.nn.parallel import DistributedDataParallel as DDP
from ddp_data import PER_RANK, close, data, mine, train_beside_reference

pytestmark = pytest.mark.mpi(min_size=2)


@pytest.fixture(autouse=True, params=["mpi", "shm"], ids=["allreduce", "shared"])
def comm(request, monkeypatch) -> str:
    monkeypatch.setenv("DTORCH_DDP_COMM", request.param)
    return request.param


def _mlp(seed: int, hidden: int = 8) -> nn.Module:
    dtorch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 3))


@pytest.mark.parametrize("as_view", [False, True])
@pytest.mark.parametrize("cap", [0.0001, None, 1000.0])
def test_equals_single_process_training(world, cap, as_view):
    r = world.get_rank()
    ddp = DDP(_mlp(100 + r), bucket_cap_mb=cap, gradient_as_bucket_view=as_view)  # rank 0's init wins
    ref = _mlp(100)
    train_beside_reference(world, ddp, ref)
    buckets = ddp.reducer.buckets
    assert len(buckets) == (3 if cap == 0.0001 else 1)
    if as_view:
        for b in buckets:
            for p in b.params:
                assert np.shares_memory(p.grad._data, b.buffer._data)


def test_zero_grad_keeping_tensors_accumulates_into_bucket_views(world):
    r = world.get_rank()
    ddp = DDP(_mlp(1 + r), gradient_as_bucket_view=True)
    ref = _mlp(1)
    opt = dtorch.optim.SGD(ddp.parameters(), lr=0.05)
    ref_opt = dtorch.optim.SGD(ref.parameters(), lr=0.05)
    xs, ys = data(world, steps=3, seed=4)
    for x, y in zip(xs, ys):
        opt.zero_grad(set_to_none=False)
        ref_opt.zero_grad(set_to_none=False)
        nn.functional.cross_entropy(ddp(mine(world, x)), mine(world, y)).backward()
        nn.functional.cross_entropy(ref(x), y).backward()
        opt.step()
        ref_opt.step()
    for p, q in zip(ddp.parameters(), ref.parameters()):
        close(p, q)


@pytest.mark.parametrize("as_view", [False, True])
def test_no_sync_accumulates_locally_then_syncs(world, as_view):
    n = world.get_world_size()
    ddp = DDP(_mlp(7), gradient_as_bucket_view=as_view, bucket_cap_mb=0.0005)
    ref = _mlp(7)
    xs, ys = data(world, steps=3, seed=1)
    with ddp.no_sync():
        for x, y in zip(xs[:2], ys[:2]):
            nn.functional.cross_entropy(ddp(mine(world, x)), mine(world, y)).backward()
    local = [p.grad.clone() for p in ddp.parameters()]
    mine_only = sum(nn.functional.cross_entropy(ref(mine(world, x)), mine(world, y)) for x, y in zip(xs[:2], ys[:2]))
    mine_only.backward()
    for g, q in zip(local, ref.parameters()):
        close(g, q.grad)  # not synchronised: this rank's gradient only
    nn.functional.cross_entropy(ddp(mine(world, xs[2])), mine(world, ys[2])).backward()
    ref.zero_grad()
    total = 0
    for k in range(3):
        for rank in range(n):
            sl = slice(PER_RANK * rank, PER_RANK * (rank + 1))
            total = total + nn.functional.cross_entropy(ref(xs[k][sl]), ys[k][sl])
    (total / n).backward()
    for p, q in zip(ddp.parameters(), ref.parameters()):
        close(p.grad, q.grad)


class _Branchy(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        dtorch.manual_seed(seed)
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(4, 3)
        self.never = nn.Linear(4, 3)

    def forward(self, x, use_b: bool):
        return self.a(x) + self.b(x) if use_b else self.a(x)


@pytest.mark.parametrize("as_view", [False, True])
@pytest.mark.parametrize("static_graph", [False, True])
def test_find_unused_parameters(world, comm, static_graph, as_view):
    r, n = world.get_rank(), world.get_world_size()
    kw = {"static_graph": True} if static_graph else {"find_unused_parameters": True}
    ddp = DDP(_Branchy(3), gradient_as_bucket_view=as_view, bucket_cap_mb=0.00005, **kw)
    assert ddp.reducer.comm == comm
    ref = _Branchy(3)
    xs, ys = data(world, steps=3, seed=2)
    for x, y in zip(xs, ys):
        ddp.zero_grad()
        ref.zero_grad()
        # static graph: the same branch every step; otherwise only rank 0 uses b
        use_b = static_graph or r == 0
        nn.functional.cross_entropy(ddp(mine(world, x), use_b), mine(world, y)).backward()
        total = 0
        for rank in range(n):
            sl = slice(PER_RANK * rank, PER_RANK * (rank + 1))
            total = total + nn.functional.cross_entropy(ref(x[sl], static_graph or rank == 0), y[sl])
        (total / n).backward()
        for name in ("a", "b"):
            for p, q in zip(getattr(ddp.module, name).parameters(), getattr(ref, name).parameters()):
                close(p.grad, q.grad)
        assert ddp.module.never.weight.grad is None  # unused on every rank: left alone, as torch


def test_unused_parameters_without_detection_name_them(world):
    ddp = DDP(_Branchy(5))
    x, y = dtorch.randn(PER_RANK, 4), dtorch.randint(0, 3, (PER_RANK,))
    nn.functional.cross_entropy(ddp(x, True), y).backward()
    with pytest.raises(RuntimeError, match=r"find_unused_parameters=True.*never\.weight, never\.bias"):
        ddp(x, True)


def test_join_with_uneven_inputs(world):
    r, n = world.get_rank(), world.get_world_size()
    counts = [2 + k for k in range(n)]          # rank k has 2 + k batches
    ddp = DDP(_mlp(11))
    ref = _mlp(11)
    opt = dtorch.optim.SGD(ddp.parameters(), lr=0.1)
    ref_opt = dtorch.optim.SGD(ref.parameters(), lr=0.1)
    xs, ys = data(world, steps=max(counts), seed=3)
    with Join([ddp]):
        for x, y in zip(xs[:counts[r]], ys[:counts[r]]):
            opt.zero_grad()
            nn.functional.cross_entropy(ddp(mine(world, x)), mine(world, y)).backward()
            opt.step()
    for i, (x, y) in enumerate(zip(xs, ys)):
        ref_opt.zero_grad()
        total = 0
        for rank in range(n):
            if i < counts[rank]:
                sl = slice(PER_RANK * rank, PER_RANK * (rank + 1))
                total = total + nn.functional.cross_entropy(ref(x[sl]), y[sl])
        (total / n).backward()  # joined ranks contribute zeros; divided by the initial world size
        ref_opt.step()
    for p, q in zip(ddp.parameters(), ref.parameters()):
        close(p, q)
    # after Join the job goes on normally
    nn.functional.cross_entropy(ddp(mine(world, xs[0])), mine(world, ys[0])).backward()


def test_join_throw_on_early_termination(world):
    r = world.get_rank()
    ddp = DDP(_mlp(12))
    x, y = dtorch.randn(PER_RANK, 4), dtorch.randint(0, 3, (PER_RANK,))
    with pytest.raises(RuntimeError, match="exhausted"):
        with Join([ddp], throw_on_early_termination=True):
            for _ in range(1 + r):
                nn.functional.cross_entropy(ddp(x), y).backward()


@pytest.mark.parametrize("hook", ["allreduce", "fp16", "local"])
def test_comm_hooks(world, hook):
    ddp = DDP(_mlp(13), bucket_cap_mb=0.0001)
    ref = _mlp(13)
    seen = []
    if hook == "allreduce":
        ddp.register_comm_hook(None, default_hooks.allreduce_hook)
    elif hook == "fp16":
        ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
    else:
        def local(state, bucket):  # no communication: each rank keeps its own gradient
            seen.append((bucket.index(), bucket.is_last(), len(bucket.parameters()), len(bucket.gradients())))
            fut = Future()
            fut.set_result(bucket.buffer())
            return fut

        ddp.register_comm_hook(None, local)
    with pytest.raises(RuntimeError, match="only be called once"):
        ddp.register_comm_hook(None, default_hooks.allreduce_hook)
    xs, ys = data(world, steps=1, seed=5)
    nn.functional.cross_entropy(ddp(mine(world, xs[0])), mine(world, ys[0])).backward()
    if hook == "local":
        nn.functional.cross_entropy(ref(mine(world, xs[0])), mine(world, ys[0])).backward()
        assert [s[0] for s in seen] == list(range(len(seen))) and seen[-1][1] and not seen[0][1]
    else:
        nn.functional.cross_entropy(ref(xs[0]), ys[0]).backward()
    for p, q in zip(ddp.parameters(), ref.parameters()):
        close(p.grad, q.grad, atol=2e-3 if hook == "fp16" else 1e-6)


def test_parameter_shape_mismatch_is_named(world):
    r = world.get_rank()
    first = r"parameter 0 differs: rank 1 has '0.weight' with shape \[9, 4\].*rank 0 has '0.weight' with shape \[8, 4\]"
    with pytest.raises(RuntimeError, match=first):
        DDP(_mlp(0, hidden=9 if r == 1 else 8))
    extra = nn.Sequential(nn.Linear(2, 2), *([nn.Linear(2, 2)] if r == 1 else []))
    with pytest.raises(RuntimeError, match="rank 1 has 4 params, while rank 0 has inconsistent 2 params"):
        DDP(extra)


class _WithBuffer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.register_buffer("count", dtorch.zeros(3))

    def forward(self, x):
        return self.lin(x) + self.count.sum()


@pytest.mark.parametrize("broadcast_buffers", [True, False])
def test_buffers_are_broadcast(world, broadcast_buffers):
    r = world.get_rank()
    m = _WithBuffer()
    m.count.fill_(float(r + 1))
    ddp = DDP(m, broadcast_buffers=broadcast_buffers)
    assert m.count.tolist() == [1.0] * 3  # construction takes rank 0's values
    m.count.fill_(float(r + 5))
    ddp(dtorch.ones(1, 2)).sum().backward()
    assert m.count.tolist() == [5.0 if broadcast_buffers else float(r + 5)] * 3


def test_state_dict_and_module(world):
    m = _mlp(0)
    ddp = DDP(m)
    assert ddp.module is m
    assert list(ddp.state_dict()) == ["module." + k for k in m.state_dict()]
    ddp.load_state_dict(ddp.state_dict())


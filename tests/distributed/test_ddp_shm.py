"""DDP averaging through a shared-memory window (DTORCH_DDP_COMM=shm) equals single-process training (pytest-mpi)."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from dtorch import nn
from dtorch.distributed.algorithms import Join
from dtorch.distributed.algorithms.ddp_comm_hooks import default_hooks
from dtorch.nn.parallel import DistributedDataParallel as DDP

pytestmark = pytest.mark.mpi(min_size=2)

PER_RANK = 5


@pytest.fixture(autouse=True)
def shm(monkeypatch):
    monkeypatch.setenv("DTORCH_DDP_COMM", "shm")


def _mlp(seed: int) -> nn.Module:
    dtorch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def _data(world, steps: int, seed: int):
    rng = np.random.default_rng(seed)
    n = PER_RANK * world.get_world_size()
    xs = [dtorch.tensor(rng.standard_normal((n, 4)).astype(np.float32)) for _ in range(steps)]
    ys = [dtorch.tensor(rng.integers(0, 3, n)) for _ in range(steps)]
    return xs, ys


def _mine(world, t):
    r = world.get_rank()
    return t[PER_RANK * r: PER_RANK * (r + 1)]


def _close(a, b, atol=1e-6):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=atol)


def _row(ddp) -> np.ndarray:
    return ddp.reducer.shm.row


@pytest.mark.parametrize("set_to_none", [True, False])
@pytest.mark.parametrize("as_view", [False, True])
@pytest.mark.parametrize("cap", [0.00005, 0.0005, None, 1000.0])
def test_equals_single_process_training(world, cap, as_view, set_to_none):
    r = world.get_rank()
    ddp = DDP(_mlp(100 + r), bucket_cap_mb=cap, gradient_as_bucket_view=as_view)  # rank 0's init wins
    assert ddp.reducer.comm == "shm"
    ref = _mlp(100)
    opt = dtorch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    ref_opt = dtorch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    xs, ys = _data(world, steps=4, seed=0)
    for x, y in zip(xs, ys):
        opt.zero_grad(set_to_none=set_to_none)
        ref_opt.zero_grad(set_to_none=set_to_none)
        nn.functional.cross_entropy(ddp(_mine(world, x)), _mine(world, y)).backward()
        nn.functional.cross_entropy(ref(x), y).backward()
        for p, q in zip(ddp.parameters(), ref.parameters()):
            _close(p.grad, q.grad)  # final when backward returns
        opt.step()
        ref_opt.step()
    for p, q in zip(ddp.parameters(), ref.parameters()):
        _close(p, q)
    buckets = ddp.reducer.buckets
    if cap == 0.00005:
        assert len(buckets) >= 4  # weights alone, small biases share
    elif cap != 0.0005:
        assert len(buckets) == 1
    row = _row(ddp)
    for b in buckets:
        assert np.shares_memory(b.buffer._data, row)
        for p in b.params:
            assert np.shares_memory(p.grad._data, row) == as_view
    # every rank holds bitwise the same averaged gradients
    every = [None] * world.get_world_size()
    world.all_gather_object(every, [p.grad.tolist() for p in ddp.parameters()])
    assert all(e == every[0] for e in every)


@pytest.mark.parametrize("as_view", [False, True])
def test_no_sync_accumulates_locally_then_syncs(world, as_view):
    n = world.get_world_size()
    ddp = DDP(_mlp(7), gradient_as_bucket_view=as_view, bucket_cap_mb=0.0005)
    ref = _mlp(7)
    xs, ys = _data(world, steps=3, seed=1)
    with ddp.no_sync():
        for x, y in zip(xs[:2], ys[:2]):
            nn.functional.cross_entropy(ddp(_mine(world, x)), _mine(world, y)).backward()
    local = [p.grad.clone() for p in ddp.parameters()]
    mine_only = sum(nn.functional.cross_entropy(ref(_mine(world, x)), _mine(world, y)) for x, y in zip(xs[:2], ys[:2]))
    mine_only.backward()
    for g, q in zip(local, ref.parameters()):
        _close(g, q.grad)  # not synchronised: this rank's gradient only
    nn.functional.cross_entropy(ddp(_mine(world, xs[2])), _mine(world, ys[2])).backward()
    ref.zero_grad()
    total = 0
    for k in range(3):
        for rank in range(n):
            sl = slice(PER_RANK * rank, PER_RANK * (rank + 1))
            total = total + nn.functional.cross_entropy(ref(xs[k][sl]), ys[k][sl])
    (total / n).backward()
    for p, q in zip(ddp.parameters(), ref.parameters()):
        _close(p.grad, q.grad)


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
def test_unused_parameters(world, static_graph, as_view):
    r, n = world.get_rank(), world.get_world_size()
    kw = {"static_graph": True} if static_graph else {"find_unused_parameters": True}
    ddp = DDP(_Branchy(3), gradient_as_bucket_view=as_view, bucket_cap_mb=0.00005, **kw)
    assert ddp.reducer.comm == "shm"
    ref = _Branchy(3)
    xs, ys = _data(world, steps=3, seed=2)
    for x, y in zip(xs, ys):
        ddp.zero_grad()
        ref.zero_grad()
        use_b = static_graph or r == 0  # static graph: the same branch every step; otherwise only rank 0 uses b
        nn.functional.cross_entropy(ddp(_mine(world, x), use_b), _mine(world, y)).backward()
        total = 0
        for rank in range(n):
            sl = slice(PER_RANK * rank, PER_RANK * (rank + 1))
            total = total + nn.functional.cross_entropy(ref(x[sl], static_graph or rank == 0), y[sl])
        (total / n).backward()
        for name in ("a", "b"):
            for p, q in zip(getattr(ddp.module, name).parameters(), getattr(ref, name).parameters()):
                _close(p.grad, q.grad)
        assert ddp.module.never.weight.grad is None  # unused on every rank: left alone, as torch


def test_join_with_uneven_inputs(world):
    r, n = world.get_rank(), world.get_world_size()
    counts = [2 + k for k in range(n)]
    ddp = DDP(_mlp(11))
    ref = _mlp(11)
    opt = dtorch.optim.SGD(ddp.parameters(), lr=0.1)
    ref_opt = dtorch.optim.SGD(ref.parameters(), lr=0.1)
    xs, ys = _data(world, steps=max(counts), seed=3)
    with Join([ddp]):
        for x, y in zip(xs[:counts[r]], ys[:counts[r]]):
            opt.zero_grad()
            nn.functional.cross_entropy(ddp(_mine(world, x)), _mine(world, y)).backward()
            opt.step()
    for i, (x, y) in enumerate(zip(xs, ys)):
        ref_opt.zero_grad()
        total = 0
        for rank in range(n):
            if i < counts[rank]:
                sl = slice(PER_RANK * rank, PER_RANK * (rank + 1))
                total = total + nn.functional.cross_entropy(ref(x[sl]), y[sl])
        (total / n).backward()
        ref_opt.step()
    for p, q in zip(ddp.parameters(), ref.parameters()):
        _close(p, q)


def test_comm_hook_turns_shm_off(world):
    ddp = DDP(_mlp(13), bucket_cap_mb=0.0005)
    ref = _mlp(13)
    assert ddp.reducer.comm == "shm"
    ddp.register_comm_hook(None, default_hooks.allreduce_hook)
    assert ddp.reducer.comm == "mpi"
    xs, ys = _data(world, steps=1, seed=5)
    nn.functional.cross_entropy(ddp(_mine(world, xs[0])), _mine(world, ys[0])).backward()
    nn.functional.cross_entropy(ref(xs[0]), ys[0]).backward()
    for p, q in zip(ddp.parameters(), ref.parameters()):
        _close(p.grad, q.grad)


def test_mixed_dtypes_fall_back_to_mpi(world):
    m = _mlp(0)
    m[0].double()
    assert DDP(m).reducer.comm == "mpi"


def test_unknown_mode_is_refused(world, monkeypatch):
    monkeypatch.setenv("DTORCH_DDP_COMM", "carrier-pigeon")
    with pytest.raises(ValueError, match="comm mode"):
        DDP(_mlp(0))

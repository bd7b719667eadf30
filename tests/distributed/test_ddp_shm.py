"""DDP averaging through a shared-memory window (DTORCH_DDP_COMM=shm): what only that path has (pytest-mpi).

no_sync, unused parameters and Join run on both paths in test_ddp.py.
"""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from dtorch import nn
from dtorch.distributed.algorithms.ddp_comm_hooks import default_hooks
from dtorch.nn.parallel import DistributedDataParallel as DDP
from ddp_data import close, data, mine, train_beside_reference

pytestmark = pytest.mark.mpi(min_size=2)


@pytest.fixture(autouse=True)
def shm(monkeypatch):
    monkeypatch.setenv("DTORCH_DDP_COMM", "shm")


def _mlp(seed: int) -> nn.Module:
    dtorch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


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
    train_beside_reference(world, ddp, ref, set_to_none=set_to_none)
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


def test_comm_hook_turns_shm_off(world):
    ddp = DDP(_mlp(13), bucket_cap_mb=0.0005)
    ref = _mlp(13)
    assert ddp.reducer.comm == "shm"
    ddp.register_comm_hook(None, default_hooks.allreduce_hook)
    assert ddp.reducer.comm == "mpi"
    xs, ys = data(world, steps=1, seed=5)
    nn.functional.cross_entropy(ddp(mine(world, xs[0])), mine(world, ys[0])).backward()
    nn.functional.cross_entropy(ref(xs[0]), ys[0]).backward()
    for p, q in zip(ddp.parameters(), ref.parameters()):
        close(p.grad, q.grad)


def test_mixed_dtypes_fall_back_to_mpi(world):
    m = _mlp(0)
    m[0].double()
    assert DDP(m).reducer.comm == "mpi"


def test_unknown_mode_is_refused(world, monkeypatch):
    monkeypatch.setenv("DTORCH_DDP_COMM", "carrier-pigeon")
    with pytest.raises(ValueError, match="comm mode"):
        DDP(_mlp(0))


def _sizes_mlp(seed: int) -> nn.Module:
    """Parameters of many sizes: 5 elements (< world * 16: some ranks own none of it), odd ones, and one of
    36300 (several averaging blocks)."""
    dtorch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 33), nn.ReLU(), nn.Linear(33, 1100), nn.ReLU(), nn.Linear(1100, 5))


@pytest.mark.parametrize("as_view", [False, True])
def test_bitwise_equal_to_the_mpi_path(world, monkeypatch, as_view):
    """Each element is averaged by one rank, rows summed in rank order: bitwise the MPI allreduce's result."""
    ddps = {}
    for comm in ("mpi", "shm"):
        monkeypatch.setenv("DTORCH_DDP_COMM", comm)
        ddps[comm] = DDP(_sizes_mlp(3), gradient_as_bucket_view=as_view)
        assert ddps[comm].reducer.comm == comm
    opts = {c: dtorch.optim.SGD(d.parameters(), lr=0.1, momentum=0.9) for c, d in ddps.items()}
    xs, ys = data(world, steps=3, seed=8)
    for x, y in zip(xs, ys):
        grads = {}
        for comm, ddp in ddps.items():
            opts[comm].zero_grad()
            nn.functional.cross_entropy(ddp(mine(world, x)), mine(world, y) % 5).backward()
            grads[comm] = [p.grad.numpy().copy() for p in ddp.parameters()]
            opts[comm].step()
        for a, b in zip(grads["mpi"], grads["shm"]):
            np.testing.assert_array_equal(a, b)
    for p, q in zip(ddps["mpi"].parameters(), ddps["shm"].parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_private_gradients_never_alias_the_window(world):
    ddp = DDP(_sizes_mlp(4))
    window = ddp.reducer.shm.table
    x, y = data(world, steps=1, seed=9)
    for _ in range(2):
        nn.functional.cross_entropy(ddp(mine(world, x[0])), mine(world, y[0]) % 5).backward()
        for p in ddp.parameters():
            assert not np.shares_memory(p.grad._data, window)

"""Save at 2 ranks, load at 1 and at 3: replicated state once, per-rank state resharded (pytest-mpi)."""
from __future__ import annotations

import tempfile

import pytest

import dtorch
import dtorch.distributed.checkpoint as dcp
from dtorch import nn
from dtorch.utils.data import Sampler, StatefulDataLoader

pytestmark = pytest.mark.mpi(min_size=2)
N, BATCH, TAKEN = 30, 2, 3


class _Deal(Sampler):
    """A fixed permutation dealt as DistributedSampler does: position p to rank p % world."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world
        self.order = dtorch.randperm(N, generator=dtorch.Generator().manual_seed(5)).tolist()

    def __iter__(self):
        return iter(self.order[self.rank::self.world])

    def __len__(self) -> int:
        return len(self.order[self.rank::self.world])


def _state(rank: int, world: int) -> dict:
    dtorch.manual_seed(0)
    loader = StatefulDataLoader(list(range(N)), batch_size=BATCH, sampler=_Deal(rank, world))
    return {"model": nn.Linear(3, 2), "loader": loader, "rng": dcp.RNGState(), "step": 0}


def _save_at_two(world):
    rank = world.get_rank()
    box = [tempfile.mkdtemp(prefix="dcp-mpi-") if rank == 0 else None]
    world.broadcast_object_list(box, src=0)
    two = world.new_group([0, 1])
    consumed = []
    if rank < 2:
        st = _state(rank, 2)
        it = iter(st["loader"])
        for _ in range(TAKEN):
            consumed += next(it).tolist()
        st["step"] = 7
        dcp.save(st, f"{box[0]}/step_7", process_group=two, keep_last=1)
    everyone = [None] * world.get_world_size()
    world.all_gather_object(everyone, consumed)
    return f"{box[0]}/step_7", sorted(sum(everyone, [])), st["model"] if rank < 2 else None


def _rest(loader) -> list[int]:
    return [i for b in loader for i in b.tolist()]


def test_save_at_2_load_at_1(world):
    path, consumed, model = _save_at_two(world)
    rank = world.get_rank()
    one = world.new_group([0])
    if rank == 0:
        st = _state(0, 1)
        out = dcp.load(st, path, process_group=one)
        assert out["__manifest__"]["world_size"] == 2 and st["step"] == 7
        assert dtorch.equal(st["model"].weight, model.weight)
        rest = _rest(st["loader"])
        assert sorted(rest + consumed) == list(range(N))      # nothing skipped, nothing twice
    world.barrier()


@pytest.mark.mpi(min_size=3)
def test_save_at_2_load_at_3(world):
    path, consumed, _ = _save_at_two(world)
    rank, size = world.get_rank(), world.get_world_size()
    st = _state(rank, size)
    if rank < 2:
        dcp.load(st, path)
    else:
        with pytest.warns(UserWarning, match="'rng' was saved by 2 ranks"):
            dcp.load(st, path)
    rest = _rest(st["loader"])
    parts = [None] * size
    world.all_gather_object(parts, rest)
    assert len({len(p) for p in parts}) == 1                   # padded: every rank runs the same steps
    handed = sum(parts, [])
    remaining = sorted(set(range(N)) - set(consumed))
    assert sorted(set(handed)) == remaining and not set(handed) & set(consumed)
    assert len(handed) - len(remaining) < size                # at most size-1 padding repeats
    world.barrier()


def test_async_save_of_a_ddp_model_with_buffers_while_training_goes_on(world):
    """Forward (BatchNorm statistics, DDP's buffer broadcast) and step right after save(): the checkpoint
    holds the state at the save() call, on every world size."""
    from dtorch.nn.parallel import DistributedDataParallel as DDP

    box = [tempfile.mkdtemp(prefix="dcp-async-") if world.get_rank() == 0 else None]
    world.broadcast_object_list(box, src=0)
    dtorch.manual_seed(0)
    model = DDP(nn.Sequential(nn.Linear(64, 512), nn.BatchNorm1d(512), nn.Linear(512, 4)))
    opt = dtorch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step():
        opt.zero_grad()
        model(dtorch.randn(8, 64)).square().mean().backward()
        opt.step()

    step()
    saved = {k: v.clone() for k, v in model.module.state_dict().items()}
    ck = dcp.AsyncCheckpointer()
    ck.save({"model": model.module, "optimizer": opt}, f"{box[0]}/a")
    for _ in range(3):
        step()
    ck.wait()
    world.barrier()
    dtorch.manual_seed(1)
    fresh = nn.Sequential(nn.Linear(64, 512), nn.BatchNorm1d(512), nn.Linear(512, 4))
    dcp.load({"model": fresh}, f"{box[0]}/a")
    for k, v in fresh.state_dict().items():
        assert dtorch.equal(v, saved[k]), k

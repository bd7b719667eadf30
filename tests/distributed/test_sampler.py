"""DistributedSampler: torch parity of the index lists, partitions, mid-epoch resume (pytest-mpi)."""
from __future__ import annotations

import pytest

from dtorch.utils.data import DataLoader, DistributedSampler, TensorDataset

pytestmark = pytest.mark.mpi(min_size=2)

SIZES = [1, 2, 7, 10, 33, 100]


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_torch_parity(drop_last, shuffle):
    tud = pytest.importorskip("torch.utils.data")
    for n in SIZES:
        for replicas in (1, 2, 3, 4, 5):
            for epoch in (0, 1, 5):
                for rank in range(replicas):
                    mine = DistributedSampler(range(n), replicas, rank, shuffle, seed=11, drop_last=drop_last)
                    ref = tud.DistributedSampler(range(n), replicas, rank, shuffle, seed=11, drop_last=drop_last)
                    mine.set_epoch(epoch)
                    ref.set_epoch(epoch)
                    assert list(mine) == list(ref), (n, replicas, rank, epoch)
                    assert len(mine) == len(ref) == mine.num_samples


def test_defaults_come_from_the_process_group(world):
    s = DistributedSampler(range(10))
    assert (s.num_replicas, s.rank) == (world.get_world_size(), world.get_rank())
    with pytest.raises(ValueError, match="Invalid rank 3"):
        DistributedSampler(range(10), num_replicas=3, rank=3)


@pytest.mark.parametrize("n", [9, 10, 11])
def test_partitions_cover_the_dataset(world, n):
    size = world.get_world_size()
    for drop_last in (False, True):
        parts = [list(DistributedSampler(range(n), size, r, seed=3, drop_last=drop_last)) for r in range(size)]
        flat = [i for p in parts for i in p]
        assert len({len(p) for p in parts}) == 1
        if drop_last:
            assert len(set(flat)) == len(flat) == n - n % size
        else:
            assert set(flat) == set(range(n)) and len(flat) == -(-n // size) * size
        # this rank's own list (defaults from the group) is its slice of the shared order
        mine = DistributedSampler(range(n), seed=3, drop_last=drop_last)
        assert list(mine) == parts[world.get_rank()]


def test_epochs_reshuffle_and_seed_matters():
    a = DistributedSampler(range(50), 2, 0, seed=1)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and sorted(list(a)) != first
    assert list(DistributedSampler(range(50), 2, 0, seed=2)) != first


@pytest.mark.parametrize("consumed", [0, 1, 6, 11, -1])
def test_resume_mid_epoch_continues_with_the_remaining_indices(world, consumed):
    size, rank = world.get_world_size(), world.get_rank()
    full = DistributedSampler(range(35), size, rank, seed=5)
    full.set_epoch(2)
    expected = list(full)
    consumed = len(expected) if consumed < 0 else consumed
    first = DistributedSampler(range(35), size, rank, seed=5)
    first.set_epoch(2)
    it = iter(first)
    taken = [next(it) for _ in range(consumed)]
    state = first.state_dict()
    assert state == {"epoch": 2, "seed": 5, "consumed": consumed}

    resumed = DistributedSampler(range(35), size, rank, seed=0)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # the usual loop calls set_epoch(epoch) again: the position survives
    assert len(resumed) == len(expected) - consumed
    rest = list(resumed)
    assert taken + rest == expected
    assert resumed.state_dict()["consumed"] == len(expected)
    assert len(resumed) == len(expected) and list(resumed) == expected  # the next pass is whole
    resumed.set_epoch(3)
    assert len(list(resumed)) == len(expected)


def test_resume_through_a_dataloader(world):
    import dtorch

    size, rank = world.get_world_size(), world.get_rank()
    ds = TensorDataset(dtorch.arange(40))
    sampler = DistributedSampler(ds, size, rank, seed=9)
    sampler.set_epoch(1)
    loader = DataLoader(ds, batch_size=3, sampler=sampler)
    every = [b[0].tolist() for b in loader]
    seen = []
    for i, (b,) in enumerate(loader):
        seen.append(b.tolist())
        if i == 1:
            state = sampler.state_dict()
            break
    assert state["consumed"] == 6
    again = DistributedSampler(ds, size, rank, seed=9)
    again.load_state_dict(state)
    loader2 = DataLoader(ds, batch_size=3, sampler=again)
    rest = [i for (b,) in loader2 for i in b.tolist()]
    assert [i for b in seen for i in b] + rest == [i for b in every for i in b]


def test_load_state_dict_checks_the_position():
    s = DistributedSampler(range(10), 2, 0)
    with pytest.raises(ValueError, match="consumed=6 is outside"):
        s.load_state_dict({"epoch": 0, "seed": 0, "consumed": 6})

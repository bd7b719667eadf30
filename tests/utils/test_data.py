"""dtorch.utils.data: datasets, samplers, collation, DataLoader with and without workers."""
from __future__ import annotations

import collections

import numpy as np
import pytest

import dtorch
from dtorch.utils.data import (
    BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler, Subset,
    TensorDataset, WeightedRandomSampler, default_collate, get_worker_info, random_split,
)


def _dataset(n: int = 10) -> TensorDataset:
    return TensorDataset(dtorch.arange(n).float().unsqueeze(1), dtorch.arange(n))


def test_default_collate_structures():
    batch = [{"x": dtorch.ones(2), "n": 1, "f": 0.5, "s": "a", "arr": np.zeros(3, np.float32), "t": (1, 2)},
             {"x": dtorch.zeros(2), "n": 2, "f": 1.5, "s": "b", "arr": np.ones(3, np.float32), "t": (3, 4)}]
    out = default_collate(batch)
    assert out["x"].shape == (2, 2) and out["n"].tolist() == [1, 2] and out["n"].dtype == dtorch.int64
    assert out["f"].dtype == dtorch.float64 and out["s"] == ["a", "b"]
    assert out["arr"].shape == (2, 3) and out["arr"].dtype == dtorch.float32
    assert [t.tolist() for t in out["t"]] == [[1, 3], [2, 4]]
    Point = collections.namedtuple("Point", "x y")
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(p, Point) and p.x.tolist() == [1, 3]


def test_default_collate_matches_torch(torch):
    from torch.utils.data import default_collate as torch_collate

    batch = [(np.float32(1.0), 2, [3.0, 4.0]), (np.float32(5.0), 6, [7.0, 8.0])]
    ours, theirs = default_collate(batch), torch_collate(batch)
    assert str(ours[0].dtype).split(".")[-1] == str(theirs[0].dtype).split(".")[-1]
    assert ours[1].tolist() == theirs[1].tolist()
    assert [t.tolist() for t in ours[2]] == [t.tolist() for t in theirs[2]]
    del torch


def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    g1, g2 = dtorch.Generator().manual_seed(3), dtorch.Generator().manual_seed(3)
    a, b = list(RandomSampler(range(20), generator=g1)), list(RandomSampler(range(20), generator=g2))
    assert a == b and sorted(a) == list(range(20)) and a != list(range(20))
    assert len(list(RandomSampler(range(5), replacement=True, num_samples=12))) == 12
    assert list(BatchSampler(range(7), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, drop_last=True)) == [[0, 1, 2], [3, 4, 5]]
    draws = list(WeightedRandomSampler([0.0, 1.0, 0.0], 50))
    assert draws == [1] * 50
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        WeightedRandomSampler([1.0], 0)


def test_shuffle_is_reproducible_with_manual_seed():
    ds = _dataset(12)
    dtorch.manual_seed(5)
    first = [y.tolist() for _, y in DataLoader(ds, batch_size=5, shuffle=True)]
    dtorch.manual_seed(5)
    second = [y.tolist() for _, y in DataLoader(ds, batch_size=5, shuffle=True)]
    assert first == second and sorted(sum(first, [])) == list(range(12))
    assert [len(b) for b in first] == [5, 5, 2]


def test_drop_last_and_len():
    loader = DataLoader(_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [y.tolist() for _, y in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(_dataset(10), batch_size=4)) == 3


def test_option_errors_as_torch():
    ds = _dataset()
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_sampler=BatchSampler(range(10), 2, False), batch_size=3)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(ds, num_workers=-1)


def test_workers_give_the_same_batches_in_order():
    ds = _dataset(23)
    single = [(x.tolist(), y.tolist()) for x, y in DataLoader(ds, batch_size=4)]
    multi = [(x.tolist(), y.tolist()) for x, y in DataLoader(ds, batch_size=4, num_workers=2)]
    assert single == multi


class _Seeds(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i):
        info = get_worker_info()
        return dtorch.tensor([info.id, dtorch.randint(0, 10 ** 6, ()).item()])


def test_workers_are_seeded_differently_and_see_worker_info():
    rows = dtorch.cat(list(DataLoader(_Seeds(), batch_size=1, num_workers=2))).tolist()
    assert {r[0] for r in rows} == {0, 1}
    assert len({r[1] for r in rows}) == 4


class _Broken(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise KeyError("sample 2 is missing")
        return dtorch.tensor(i)


def test_worker_exception_reaches_the_main_process():
    with pytest.raises(RuntimeError, match="(?s)DataLoader worker process.*sample 2 is missing"):
        list(DataLoader(_Broken(), batch_size=1, num_workers=2))


class _Stream(IterableDataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self) -> int:
        return self.n


def test_iterable_dataset_single_and_sharded_workers():
    assert [b.tolist() for b in DataLoader(_Stream(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    got = sorted(sum((b.tolist() for b in DataLoader(_Stream(10), batch_size=2, num_workers=2)), []))
    assert got == list(range(10))


def test_persistent_workers_serve_several_epochs():
    loader = DataLoader(_dataset(6), batch_size=2, num_workers=2, persistent_workers=True)
    for _ in range(3):
        assert [y.tolist() for _, y in loader] == [[0, 1], [2, 3], [4, 5]]


def test_random_split_and_subsets():
    parts = random_split(range(10), [0.7, 0.3], generator=dtorch.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [3, 3])
    cat = ConcatDataset([Subset(range(10), [1, 2]), Subset(range(10), [5])])
    assert [cat[i] for i in range(len(cat))] == [1, 2, 5] and cat[-1] == 5


def test_dropped_loader_stops_its_workers_at_once():
    loader = DataLoader(_dataset(6), batch_size=2, num_workers=2, persistent_workers=True)
    list(loader)
    procs = list(loader._workers.procs)
    assert all(p.is_alive() for p in procs)
    del loader  # no reference cycle keeps it (and its workers) until interpreter exit
    assert not any(p.is_alive() for p in procs)
    it = iter(DataLoader(_dataset(6), batch_size=1, num_workers=2))
    assert next(it)[1].tolist() == [0]  # the running epoch keeps its loader alive
    assert [y.tolist() for _, y in it] == [[1], [2], [3], [4], [5]]

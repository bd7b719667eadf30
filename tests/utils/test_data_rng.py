"""dtorch.utils.data and the random generators: lazy RandomSampler draws, and DataLoader draws that do not
depend on num_workers (torch's order: a base seed per new iterator, then the sampler's draws)."""
from __future__ import annotations

import itertools
import time
import tracemalloc

import pytest

import dtorch
from dtorch.utils.data import DataLoader, RandomSampler, TensorDataset
from dtorch.utils.data.sampler import _draw_seed
from dtorch.utils.data.stateful import StatefulDataLoader


def _dataset(n: int = 12) -> TensorDataset:
    return TensorDataset(dtorch.arange(n))


def _order(loader) -> list[int]:
    return [i for (b,) in loader for i in b.tolist()]


# ---- RandomSampler ---------------------------------------------------------------------------
def test_huge_replacement_sampler_draws_lazily():
    sampler = RandomSampler(range(1000), replacement=True, num_samples=10 ** 10)
    assert len(sampler) == 10 ** 10
    tracemalloc.start()
    t0 = time.perf_counter()
    first = list(itertools.islice(iter(sampler), 1000))
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(first) == 1000 and all(0 <= i < 1000 for i in first)
    assert elapsed < 5.0
    assert peak < 8 * 2 ** 20  # all 10**10 indices would be 74.5 GiB


def test_replacement_draws_32_at_a_time_from_the_generator():
    n, seed = 7, 1234
    got = list(RandomSampler(range(n), replacement=True, num_samples=70,
                             generator=dtorch.Generator().manual_seed(seed)))
    g = dtorch.Generator().manual_seed(seed)
    want = [i for size in (32, 32, 6) for i in dtorch.randint(0, n, (size,), generator=g).tolist()]
    assert got == want


def test_replacement_is_deterministic_under_a_seed_and_uniform():
    def draw(seed: int) -> list[int]:
        dtorch.manual_seed(seed)
        return list(itertools.islice(RandomSampler(range(10), replacement=True, num_samples=10 ** 10), 5000))

    a, b, c = draw(0), draw(0), draw(1)
    assert a == b and a != c
    counts = [a.count(k) for k in range(10)]
    assert min(counts) > 400 and max(counts) < 600  # 500 expected each; 4.5 sigma either side


def test_without_generator_the_sampler_takes_one_seed_from_the_global_rng():
    dtorch.manual_seed(5)
    list(RandomSampler(range(9)))
    after_sampler = dtorch.rand(3)
    dtorch.manual_seed(5)
    seed = _draw_seed(None)
    assert dtorch.rand(3).tolist() == after_sampler.tolist()
    dtorch.manual_seed(5)
    assert list(RandomSampler(range(9))) == dtorch.randperm(9, generator=dtorch.Generator().manual_seed(seed)).tolist()


def test_without_replacement_more_samples_than_items_repeats_whole_permutations():
    got = list(RandomSampler(range(10), num_samples=25, generator=dtorch.Generator().manual_seed(3)))
    assert len(got) == 25
    assert sorted(got[:10]) == list(range(10)) and sorted(got[10:20]) == list(range(10))
    assert len(set(got[20:])) == 5


def test_replacement_must_be_a_bool():
    with pytest.raises(TypeError, match="replacement should be a boolean value, but got replacement=1"):
        RandomSampler(range(3), replacement=1)


# ---- DataLoader draws whatever num_workers is --------------------------------------------------
@pytest.mark.parametrize("loader_cls", [DataLoader, StatefulDataLoader])
def test_seeded_shuffle_is_the_same_with_and_without_workers(loader_cls):
    def epoch(num_workers: int):
        dtorch.manual_seed(42)
        order = _order(loader_cls(_dataset(), batch_size=4, shuffle=True, num_workers=num_workers))
        return order, dtorch.rand(1).item()

    order0, after0 = epoch(0)
    order2, after2 = epoch(2)
    assert sorted(order0) == list(range(12))
    assert order0 == order2
    assert after0 == after2


@pytest.mark.parametrize("loader_cls", [DataLoader, StatefulDataLoader])
def test_loader_generator_gives_the_order_and_leaves_the_global_rng_alone(loader_cls):
    def epoch(num_workers: int):
        dtorch.manual_seed(7)
        g = dtorch.Generator().manual_seed(99)
        order = _order(loader_cls(_dataset(), batch_size=5, shuffle=True, num_workers=num_workers, generator=g))
        return order, dtorch.rand(1).item(), g.get_state().tolist()

    dtorch.manual_seed(7)
    untouched = dtorch.rand(1).item()
    order0, after0, state0 = epoch(0)
    order2, after2, state2 = epoch(2)
    assert order0 == order2 and state0 == state2
    assert after0 == after2 == untouched
    assert order0 == _shuffled_epochs(99, [True])[0]  # the base seed comes first, then the sampler's permutation


def _shuffled_epochs(seed: int, base_seeds: list[bool]) -> list[list[int]]:
    """What a shuffling loader with ``generator`` yields per epoch: a base seed where ``base_seeds`` says,
    then the sampler's permutation, then the empty tail's permutation torch's RandomSampler draws too."""
    ref = dtorch.Generator().manual_seed(seed)
    epochs = []
    for draw in base_seeds:
        if draw:
            _draw_seed(ref)
        epochs.append(dtorch.randperm(12, generator=ref).tolist())
        dtorch.randperm(12, generator=ref)
    return epochs


@pytest.mark.parametrize("persistent", [False, True])
def test_base_seed_per_new_iterator_as_torch(persistent):
    g = dtorch.Generator().manual_seed(11)
    loader = DataLoader(_dataset(), batch_size=12, shuffle=True, num_workers=2, persistent_workers=persistent,
                        generator=g)
    epochs = [_order(loader), _order(loader)]
    # persistent workers keep their iterator (torch's _reset), so only the first epoch draws a base seed
    assert epochs == _shuffled_epochs(11, [True, not persistent])
    assert _order(DataLoader(_dataset(), batch_size=12, shuffle=True, generator=dtorch.Generator().manual_seed(11))) \
        == epochs[0]


def test_tuple_samples_collate_to_lists_and_pin_memory_warns_without_gpu(torch):
    ds = dtorch.utils.data.TensorDataset(dtorch.arange(4.0), dtorch.arange(4))
    tds = torch.utils.data.TensorDataset(torch.arange(4.0), torch.arange(4))
    ours = next(iter(dtorch.utils.data.DataLoader(ds, batch_size=2)))
    theirs = next(iter(torch.utils.data.DataLoader(tds, batch_size=2)))
    assert type(ours) is type(theirs) is list and [t.tolist() for t in ours] == [t.tolist() for t in theirs]
    if not dtorch.cuda.is_available():
        with pytest.warns(UserWarning, match="'pin_memory' argument is set as true but no accelerator is found"):
            batches = list(dtorch.utils.data.DataLoader(ds, batch_size=2, pin_memory=True))
        assert [b[0].tolist() for b in batches] == [[0.0, 1.0], [2.0, 3.0]]


def test_workers_exit_when_the_loader_process_is_killed(tmp_path):
    """A SIGKILLed training process leaves no DataLoader workers behind (they watch their parent, as torch's)."""
    import os
    import signal
    import subprocess
    import sys

    code = ("import os, signal, dtorch\n"
            "ds = dtorch.utils.data.TensorDataset(dtorch.arange(64.0))\n"
            "dl = dtorch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)\n"
            "it = iter(dl); next(it)\n"
            "print(' '.join(str(p.pid) for p in dl._workers.procs), flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr
    pids = [int(x) for x in p.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 30
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.5)
        alive = [pid for pid in pids if os.path.exists(f"/proc/{pid}") and
                 "zombie" not in open(f"/proc/{pid}/status").read().lower()]
    assert alive == [], f"workers {alive} outlived their killed parent"

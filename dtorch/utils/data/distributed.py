"""DistributedSampler: each rank visits its own share of the dataset, as torch's, plus a resumable position.

Index lists equal torch's bit for bit: the permutation is torch's CPU ``randperm``
(MT19937 seeded with ``seed + epoch``, Fisher-Yates with ``random() % (n - i)``), so a
job may switch between torch and dtorch mid-training and keep its data order.

Resuming mid-epoch: the sampler counts the indices it has yielded this epoch
(``consumed``). With ``num_workers=0`` a DataLoader takes exactly one batch of indices
per batch it returns, so after the training loop processed a batch, ``state_dict()``
describes exactly what was used. A DataLoader with workers prefetches; there the loop
should set ``sampler.consumed = batches_done * batch_size`` before saving. After
``load_state_dict``, the next iteration yields only the remaining indices of that
epoch (and ``len()`` says how many); the epoch after that is whole again.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from ...distributed import process_group as dist
from .sampler import Sampler

__all__ = ["DistributedSampler"]


def torch_randperm(n: int, seed: int) -> list[int]:
    """torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist() (CPU, n < 2**32 / 20)."""
    if n >= (2 ** 32 - 1) // 20:
        raise ValueError(f"DistributedSampler: datasets of {n} items are beyond torch's 32-bit randperm path")
    mt = np.random.RandomState(seed & 0xFFFFFFFF)  # torch seeds MT19937 with the low 32 bits
    raw = mt._bit_generator.random_raw(max(n - 1, 0)).tolist()
    r = list(range(n))
    for i in range(n - 1):
        j = i + raw[i] % (n - i)
        r[i], r[j] = r[j], r[i]
    return r


class DistributedSampler(Sampler):
    """Restricts data loading to one rank's subset; call ``set_epoch(e)`` before each epoch to reshuffle."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            if not dist.is_available() or not dist.is_initialized():
                raise RuntimeError("Requires distributed package to be available")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed
        self.consumed = 0      # indices yielded so far this epoch (see the module docstring)
        self._skip = 0         # indices to skip at the next __iter__ (set by load_state_dict)

    def _indices(self) -> list[int]:
        n = len(self.dataset)
        indices = torch_randperm(n, self.seed + self.epoch) if self.shuffle else list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[: self.total_size]
        return indices[self.rank: self.total_size: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        start, self._skip = self._skip, 0
        return self._generate(self._indices(), start)

    def _generate(self, indices: list[int], start: int) -> Iterator[int]:
        self.consumed = start
        for i in indices[start:]:
            self.consumed += 1
            yield i

    def __len__(self) -> int:
        return self.num_samples - self._skip

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle with ``seed + epoch``; a resume position for another epoch is dropped."""
        if epoch != self.epoch:
            self._skip = 0
            self.consumed = 0
        self.epoch = epoch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "seed": self.seed, "consumed": self.consumed}

    def load_state_dict(self, state: dict) -> None:
        """Continue epoch ``state['epoch']`` after its first ``state['consumed']`` indices."""
        consumed = int(state["consumed"])
        if not 0 <= consumed <= self.num_samples:
            raise ValueError(f"DistributedSampler.load_state_dict: consumed={consumed} is outside "
                             f"[0, {self.num_samples}] for this rank")
        self.epoch = int(state["epoch"])
        self.seed = int(state["seed"])
        self.consumed = consumed
        self._skip = consumed

"""Random number generation: ``Generator``, ``manual_seed``, rng state for exact resume.

dtorch's CPU generator is numpy's PCG64. Its state is a small JSON document, stored in
a uint8 tensor by ``get_state()`` so that checkpoints can carry it without pickling.
"""
from __future__ import annotations

import contextlib
import json

import numpy as np

from ._device import as_device, require_cupy
from .tensor import Tensor, _make

_DEFAULT_SEED = 67280421310721


class Generator:
    """A random-number generator: ``dtorch.Generator().manual_seed(0)``."""

    def __init__(self, device="cpu") -> None:
        self.device = as_device(device)
        self._seed = _DEFAULT_SEED
        self._np = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> "Generator":
        seed = int(seed)
        if seed < 0:
            seed &= (1 << 64) - 1
        self._seed = seed
        self._np = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy) & ((1 << 63) - 1)
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Tensor:
        doc = {"seed": self._seed, "bit_generator": _jsonable(self._np.bit_generator.state)}
        raw = json.dumps(doc, sort_keys=True).encode()
        return _make(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, new_state: Tensor) -> "Generator":
        if not isinstance(new_state, Tensor) or new_state.dtype.name != "uint8":
            raise TypeError("expected a torch.ByteTensor (uint8) produced by get_state()")
        try:
            doc = json.loads(bytes(new_state.cpu()._data.tobytes()).decode())
            self._seed = int(doc["seed"])
            bg = np.random.PCG64()
            bg.state = doc["bit_generator"]
        except (ValueError, KeyError, TypeError) as e:
            raise RuntimeError(f"Generator.set_state: not a dtorch generator state ({e})") from None
        self._np = np.random.Generator(bg)
        return self

    def _cupy_random_state(self):
        """A CuPy RandomState for one CUDA draw, seeded from this generator's PCG64 stream, so
        that get_state/set_state (which hold only the PCG64 state) also replay CUDA draws."""
        return require_cupy().random.RandomState(int(self._np.integers(0, 2 ** 63 - 1)))


def _jsonable(state):
    if isinstance(state, dict):
        return {k: _jsonable(v) for k, v in state.items()}
    if isinstance(state, (np.integer,)):
        return int(state)
    return state


default_generator = Generator()
_cuda_generators: dict[int, Generator] = {}


def manual_seed(seed: int) -> Generator:
    """Seed the CPU generator and every CUDA generator."""
    default_generator.manual_seed(seed)
    for g in _cuda_generators.values():
        g.manual_seed(seed)
    return default_generator


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(new_state: Tensor) -> None:
    default_generator.set_state(new_state)


def cuda_generator(index: int) -> Generator:
    g = _cuda_generators.get(index)
    if g is None:
        g = _cuda_generators[index] = Generator(f"cuda:{index}")
        g.manual_seed(default_generator.initial_seed())
    return g


def generator_for(device, generator: Generator | None) -> Generator:
    if generator is not None:
        return generator
    dev = as_device(device)
    if dev.type == "cuda":
        return cuda_generator(dev.index or 0)
    return default_generator


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, _caller: str = "fork_rng", _devices_kw: str = "devices",
             device_type: str = "cuda"):
    """Run a block with the CPU random stream forked: its draws do not move the stream outside.

    (CUDA streams are not forked: CuPy's generator state cannot be saved.)
    """
    if not enabled:
        yield
        return
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)

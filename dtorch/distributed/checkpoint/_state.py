"""From a user's nested ``state`` dict to entries of (scope, structure, arrays), and back.

An entry is one top-level key. Objects with ``state_dict()``/``load_state_dict()`` (modules,
optimizers, schedulers, loaders, :class:`RNGState`) are saved through ``state_dict()`` and
restored in place; tensors are copied into in place; anything else is replaced in ``state``.

Scope: data-pipeline state and random generators belong to one rank (``per_rank``); all the
rest is taken to be replicated (DDP parameters and optimizer state) and is written once.
Wrap a value in :class:`PerRank` to make it per-rank explicitly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...serialization import _decode, _Flattener
from ...tensor import Tensor, _make
from ...utils.data import DataLoader, Sampler
from ._rng import RNGState

PER_RANK = "per_rank"
REPLICATED = "replicated"


class PerRank:
    """Marks a value as owned by this rank: every rank writes its own copy."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"PerRank({self.value!r})"


def scope_of(value: Any) -> str:
    if isinstance(value, (PerRank, RNGState, DataLoader, Sampler)):
        return PER_RANK
    return getattr(value, "checkpoint_scope", REPLICATED)


def unwrap(value: Any) -> Any:
    return value.value if isinstance(value, PerRank) else value


def is_stateful(value: Any) -> bool:
    return callable(getattr(value, "state_dict", None)) and callable(getattr(value, "load_state_dict", None))


def plain(value: Any) -> Any:
    value = unwrap(value)
    return value.state_dict() if is_stateful(value) else value


@dataclass
class Flat:
    """One entry (or one rank's per-rank entries) flattened: JSON structure + named host arrays."""
    structure: Any
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    from_device: set = field(default_factory=set)   # names already copied to the host (from a GPU)
    versions: dict = field(default_factory=dict)     # name -> (the tensor's version counter, value at flatten)


def flatten(value: Any, prefix: str) -> Flat:
    fl = _Flattener()
    structure = fl.encode(value, prefix)
    return Flat(structure, fl.arrays, set(fl.devices), fl.versions)


def snapshot(flat: Flat, pool: dict | None) -> None:
    """Replace live arrays by private host copies (reusing ``pool``'s buffers when shapes match).

    Large copies release the GIL (numpy's copy loops), so on a background thread this runs
    beside the training thread."""
    for name, arr in flat.arrays.items():
        if name in flat.from_device:
            continue
        key = (name, arr.shape, arr.dtype.str)
        buf = pool.get(key) if pool is not None else None
        if buf is None:
            buf = np.empty(arr.shape, arr.dtype)
            if pool is not None:
                pool[key] = buf
        np.copyto(buf, arr)
        flat.arrays[name] = buf


def modified_since_flatten(flat: Flat) -> list[str]:
    """Names of the tensors whose version counter moved since ``flatten`` (written in place since)."""
    return [name for name, (vc, v) in flat.versions.items() if vc[0] != v]


def unflatten(structure: Any, arrays: dict[str, np.ndarray], source: str) -> Any:
    return _decode(structure, {k: _make(v) for k, v in arrays.items()}, source)


def restore(state: dict, key: str, loaded: Any) -> None:
    """Put a loaded value back: load_state_dict / copy into tensors in place / replace."""
    target = state[key]
    inner = unwrap(target)
    if is_stateful(inner):
        inner.load_state_dict(loaded)
    elif isinstance(inner, Tensor) and isinstance(loaded, Tensor):
        if tuple(inner.shape) != tuple(loaded.shape):
            raise ValueError(f"checkpoint entry {key!r}: shape {tuple(loaded.shape)} does not match the "
                             f"tensor's {tuple(inner.shape)}")
        from ...autograd import no_grad

        with no_grad():
            inner.copy_(loaded)
    elif isinstance(target, PerRank):
        target.value = loaded
    else:
        state[key] = loaded

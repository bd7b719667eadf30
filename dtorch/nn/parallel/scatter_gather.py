"""torch.nn.parallel.scatter_gather: split inputs into per-device chunks, and join per-device outputs.

Unlike torch's (CUDA only), these take any devices: ``scatter(x, ["cpu", "cpu"])`` splits on the CPU, ints
name CUDA devices as in torch, and ``-1`` (or ``"cpu"``) as a gather target means the CPU. Tensors are split
with ``Tensor.chunk`` (so a small batch gives fewer chunks than devices) and moved with ``Tensor.to``; both
are recorded by autograd, so gradients flow back through a scatter and a gather as through torch's.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from ..._device import CPU, as_device, device
from ..._ops.joining import cat
from ...tensor import Tensor

__all__ = ["scatter", "scatter_kwargs", "gather"]


def _as_device(d) -> device:
    """A device from torch's spellings: an int is a CUDA index (-1: the CPU), or a str / dtorch.device."""
    if isinstance(d, int) and not isinstance(d, bool):
        return CPU if d == -1 else device("cuda", d)
    return as_device(d)


def _is_namedtuple(obj: Any) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_asdict") and hasattr(obj, "_fields")


def _scatter_obj(obj: Any, devices: list, dim: int) -> list:
    """One piece of ``obj`` per device; containers are split element-wise and cut to their shortest member."""
    if isinstance(obj, Tensor):
        return [c.to(d) for c, d in zip(obj.chunk(len(devices), dim), devices)]
    if isinstance(obj, (tuple, list, dict)) and len(obj) > 0:
        items = obj.items() if isinstance(obj, dict) else obj
        per_device = zip(*(_scatter_obj(x, devices, dim) for x in items))
        if _is_namedtuple(obj):
            return [type(obj)(*parts) for parts in per_device]
        if isinstance(obj, tuple):
            return list(per_device)
        if isinstance(obj, list):
            return [list(parts) for parts in per_device]
        return [type(obj)(parts) for parts in per_device]
    return [obj] * len(devices)  # not split: every device gets the same object


def scatter(inputs: Any, target_gpus: Sequence, dim: int = 0) -> Any:
    """Split the tensors in ``inputs`` into chunks along ``dim``, one per device of ``target_gpus``.

    Tuples, lists, dicts and namedtuples are walked; other objects are passed by reference to every device.
    A tensor gives a tuple of chunks; anything else a list with one element per device."""
    devices = [_as_device(d) for d in target_gpus]
    if isinstance(inputs, Tensor):
        return tuple(_scatter_obj(inputs, devices, dim))
    return _scatter_obj(inputs, devices, dim)


def scatter_kwargs(inputs: tuple, kwargs: dict | None, target_gpus: Sequence,
                   dim: int = 0) -> tuple[tuple, tuple]:
    """``scatter`` for positional and keyword arguments; the shorter side is padded with ``()`` / ``{}``."""
    scattered_inputs = scatter(inputs, target_gpus, dim) if inputs else []
    scattered_kwargs = scatter(kwargs, target_gpus, dim) if kwargs else []
    scattered_inputs += [()] * (len(scattered_kwargs) - len(scattered_inputs))
    scattered_kwargs += [{}] * (len(scattered_inputs) - len(scattered_kwargs))
    return tuple(scattered_inputs), tuple(scattered_kwargs)


def _gather_tensors(tensors: Sequence[Tensor], target: device, dim: int) -> Tensor:
    if dim == 0 and all(t.dim() == 0 for t in tensors):
        warnings.warn("Was asked to gather along dimension 0, but all input tensors were scalars; will instead "
                      "unsqueeze and return a vector.", stacklevel=3)
        tensors = [t.view(1) for t in tensors]
    return cat([t.to(target) for t in tensors], dim)


def _gather_obj(outputs: Sequence, target: device, dim: int) -> Any:
    first = outputs[0]
    if isinstance(first, Tensor):
        return _gather_tensors(outputs, target, dim)
    if first is None:
        return None
    if isinstance(first, dict):
        if any(len(d) != len(first) for d in outputs):
            raise ValueError("All dicts must have the same number of keys")
        return type(first)((k, _gather_obj([d[k] for d in outputs], target, dim)) for k in first)
    parts = (_gather_obj(column, target, dim) for column in zip(*outputs, strict=True))
    return type(first)._make(parts) if _is_namedtuple(first) else type(first)(parts)


def gather(outputs: Any, target_device, dim: int = 0) -> Any:
    """Join per-device ``outputs`` (tensors, or dicts/tuples/lists/namedtuples of them) on ``target_device``
    by concatenating along ``dim``; scalars gathered along dim 0 become a vector (with torch's warning)."""
    return _gather_obj(outputs, _as_device(target_device), dim)

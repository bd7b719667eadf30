"""torch.nn.parallel.replicate: one copy of a module per device, for DataParallel's forward.

A replica is a shallow copy of each submodule with its own ``_parameters``/``_buffers``/``_modules``
dicts (so nothing registered on it reaches the original). Its parameters are not Parameters but
differentiable copies of the original's (``Tensor.to`` for another device, ``clone`` for a second replica on
the same one), set as plain attributes: gradients of a loss through any replica accumulate into the
original parameters' ``.grad``, as through torch's Broadcast. As in torch, the replica on ``devices[0]``
shares storage with the original when the original lives there (its parameters are views, its buffers the
original tensors, so BatchNorm's running statistics update the original); the others get copies.
Unlike torch's (CUDA only), any devices are accepted, e.g. ``["cpu", "cpu"]``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from ...tensor import Tensor
from ..modules.module import Module
from .scatter_gather import _as_device

__all__ = ["replicate"]

T = TypeVar("T", bound=Module)


def _copy_to(t: Tensor, dev, share: bool, differentiable: bool) -> Tensor:
    """``t`` for one replica: recorded by autograd when ``differentiable``, else detached."""
    if share:
        return t.view_as(t) if differentiable else t
    src = t if differentiable else t.detach()
    moved = src.to(dev)
    return src.clone() if moved is src else moved


def _copies(tensors: list, devices: list, differentiable: bool) -> list[dict[int, Tensor]]:
    """Per device, ``id(original) -> copy``."""
    return [{id(t): _copy_to(t, dev, j == 0 and t.device == dev, differentiable) for t in tensors}
            for j, dev in enumerate(devices)]


def _shallow_replica(module: Module) -> Module:
    custom = getattr(type(module), "_replicate_for_data_parallel", None)
    if custom is not None:
        return custom(module)
    replica = type(module).__new__(type(module))
    d = module.__dict__.copy()
    d.update(_parameters={}, _buffers=dict(d["_buffers"]), _modules=dict(d["_modules"]),
             _non_persistent_buffers_set=set(d["_non_persistent_buffers_set"]), _is_replica=True)
    object.__setattr__(replica, "__dict__", d)
    return replica


def replicate(network: T, devices: Sequence, detach: bool = False) -> list[T]:
    """One replica of ``network`` per entry of ``devices`` (CUDA indices, ``"cpu"``, ``dtorch.device``).

    ``detach=True`` gives replicas whose parameters are cut from the original's autograd graph."""
    if not devices:
        return []
    devices = [_as_device(d) for d in devices]
    params = list(network.parameters())
    param_copies = _copies(params, devices, not detach)
    buffers = list(network.buffers())
    grad_buffers = [b for b in buffers if b.requires_grad and not detach]
    buffer_copies = _copies(grad_buffers, devices, True)
    plain = _copies([b for b in buffers if not (b.requires_grad and not detach)], devices, False)
    for per_device, extra in zip(buffer_copies, plain):
        per_device.update(extra)

    modules = list(network.modules())
    replicas = [{id(m): _shallow_replica(m) for m in modules} for _ in devices]
    for j in range(len(devices)):
        for m in modules:
            r = replicas[j][id(m)]
            for key, child in m._modules.items():
                r._modules[key] = None if child is None else replicas[j][id(child)]
            for key, p in m._parameters.items():
                if p is None:
                    r._parameters[key] = None
                else:
                    r.__dict__[key] = param_copies[j][id(p)]  # not a Parameter: the replica has none
            for key, b in m._buffers.items():
                r._buffers[key] = None if b is None else buffer_copies[j][id(b)]
    return [replicas[j][id(network)] for j in range(len(devices))]

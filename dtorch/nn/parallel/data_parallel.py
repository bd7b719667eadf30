"""torch.nn.DataParallel and data_parallel: one process, the batch split over several devices.

On a machine without a GPU it calls the module (torch's behaviour). With ``device_ids`` it scatters the
inputs along ``dim``, replicates the module on the devices that got a chunk (only when more than one is
used), runs the replicas in threads and gathers the outputs on ``output_device`` (``-1``: the CPU); with
one device it moves the module there and calls it. Beyond torch, ``device_ids`` naming CPU devices
(``["cpu", "cpu"]``) are honoured on any machine, which runs the whole multi-device path on the CPU.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

from ..._device import device
from ...autograd.grad_mode import is_grad_enabled
from ...cuda import device_count, is_available
from ..modules.module import Module
from .parallel_apply import parallel_apply
from .replicate import replicate
from .scatter_gather import _as_device, gather, scatter_kwargs

__all__ = ["DataParallel", "data_parallel"]


def _device_id(d) -> int | device:
    """torch's int for a CUDA device (its index; -1 is the CPU), the device itself for the CPU."""
    if isinstance(d, int):
        return d
    dev = _as_device(d)
    if dev.type == "cuda":
        return dev.index or 0
    return dev


def _resolve_ids(device_ids) -> list:
    """The devices to run on: [] (call the module) when CUDA is missing and the ids do not all name the CPU."""
    cpu_only = bool(device_ids) and all(_as_device(d).type == "cpu" for d in device_ids)
    if not is_available() and not cpu_only:
        return []
    ids = list(range(device_count())) if device_ids is None else [_device_id(d) for d in device_ids]
    if not ids:
        raise RuntimeError("no available devices were found")
    return ids


def _check_on(module: Module, src: device) -> None:
    for t in chain(module.parameters(), module.buffers()):
        if t.device != src:
            raise RuntimeError(f"module must have its parameters and buffers on device {src} (device_ids[0]) but "
                               f"found one of them on device: {t.device}")


class DataParallel(Module):
    """Implements data parallelism at the module level (torch.nn.DataParallel); ``.module`` is the wrapped
    module, so state dict keys carry the ``module.`` prefix. Gradients of every replica accumulate into the
    module's parameters."""

    def __init__(self, module: Module, device_ids: Sequence | None = None, output_device=None,
                 dim: int = 0) -> None:
        super().__init__()
        self.module = module
        self.dim = dim
        self.device_ids = _resolve_ids(device_ids)
        if not self.device_ids:
            return
        self.output_device = _device_id(self.device_ids[0] if output_device is None else output_device)
        self.src_device_obj = _as_device(self.device_ids[0])
        if len(self.device_ids) == 1:
            self.module.to(self.src_device_obj)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if not self.device_ids:
            return self.module(*inputs, **kwargs)
        _check_on(self.module, self.src_device_obj)
        inputs, module_kwargs = self.scatter(inputs, kwargs, self.device_ids)
        if not inputs and not module_kwargs:  # no arguments: run once, on the first device
            inputs, module_kwargs = ((),), ({},)
        if len(self.device_ids) == 1:
            return self.module(*inputs[0], **module_kwargs[0])
        replicas = self.replicate(self.module, self.device_ids[:len(inputs)])
        outputs = self.parallel_apply(replicas, inputs, module_kwargs)
        return self.gather(outputs, self.output_device)

    def replicate(self, module: Module, device_ids: Sequence) -> list[Module]:
        return replicate(module, device_ids, not is_grad_enabled())

    def scatter(self, inputs: tuple, kwargs: dict | None, device_ids: Sequence) -> tuple[tuple, tuple]:
        return scatter_kwargs(inputs, kwargs, device_ids, dim=self.dim)

    def parallel_apply(self, replicas: Sequence[Module], inputs: Sequence, kwargs: Sequence) -> list:
        return parallel_apply(replicas, inputs, kwargs, self.device_ids[:len(replicas)])

    def gather(self, outputs: Sequence, output_device) -> Any:
        return gather(outputs, output_device, dim=self.dim)


def data_parallel(module: Module, inputs: Any, device_ids: Sequence | None = None, output_device=None,
                  dim: int = 0, module_kwargs: dict | None = None) -> Any:
    """``module(*inputs, **module_kwargs)`` evaluated in parallel over ``device_ids`` (the functional
    DataParallel; the module must already be on ``device_ids[0]``). Without a GPU it calls the module."""
    if not isinstance(inputs, tuple):
        inputs = (inputs,) if inputs is not None else ()
    ids = _resolve_ids(device_ids)
    if not ids:
        return module(*inputs, **(module_kwargs or {}))
    output_device = _device_id(ids[0] if output_device is None else output_device)
    _check_on(module, _as_device(ids[0]))
    inputs, module_kwargs = scatter_kwargs(inputs, module_kwargs, ids, dim)
    if not inputs and not module_kwargs:
        inputs, module_kwargs = ((),), ({},)
    if len(ids) == 1:
        return module(*inputs[0], **module_kwargs[0])
    used = ids[:len(inputs)]
    return gather(parallel_apply(replicate(module, used), inputs, module_kwargs, used), output_device, dim)

"""torch.nn.DataParallel: the single-process wrapper. On a machine without a GPU it calls the module (torch's
behaviour); with one device in ``device_ids`` it moves the module there and the inputs with it. Several
devices in one process are not supported: DistributedDataParallel (one process per GPU) is the way."""
from __future__ import annotations

from typing import Any

from ...cuda import device_count, is_available
from ...tensor import Tensor
from ..modules.module import Module

__all__ = ["DataParallel", "data_parallel"]


def _index(d) -> int:
    return d if isinstance(d, int) else (getattr(d, "index", None) or 0)


def _to(obj, device: str):
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


class DataParallel(Module):
    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0) -> None:
        super().__init__()
        self.module = module
        self.dim = dim
        if not is_available():
            self.device_ids = []
            return
        ids = list(range(device_count())) if device_ids is None else [_index(d) for d in device_ids]
        if not ids:
            raise RuntimeError("no available devices were found")
        if len(ids) > 1:
            raise NotImplementedError("dtorch's DataParallel runs on one device per process; for several GPUs use "
                                      "DistributedDataParallel with one process per GPU (dtorch-run --nproc N)")
        self.device_ids = ids
        self.output_device = _index(output_device) if output_device is not None else ids[0]
        self.src_device = f"cuda:{ids[0]}"
        self.module.to(self.src_device)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if not self.device_ids:
            return self.module(*inputs, **kwargs)
        for t in list(self.module.parameters()) + list(self.module.buffers()):
            if str(t.device) != self.src_device:
                raise RuntimeError(f"module must have its parameters and buffers on device {self.src_device} "
                                   f"(device_ids[0]) but found one of them on device: {t.device}")
        return self.module(*_to(inputs, self.src_device), **_to(kwargs, self.src_device))


def data_parallel(module: Module, inputs, device_ids=None, output_device=None, dim: int = 0, module_kwargs=None):
    """The functional form: ``module(*inputs)`` through a DataParallel."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    return DataParallel(module, device_ids, output_device, dim)(*inputs, **(module_kwargs or {}))

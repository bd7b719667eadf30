"""torch.nn.parallel.parallel_apply: run each replica on its input in its own thread.

Each worker runs with the caller's grad mode (grad mode is per thread, as in torch) and, for a CUDA device,
with that device current. An exception in a replica is raised again in the caller as torch does:
``Caught ValueError in replica 1 on device 1.`` followed by the replica's traceback. Unlike torch's (CUDA
only), the devices may be any, e.g. ``["cpu", "cpu"]``.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any

from ..._device import require_cupy
from ...autograd.grad_mode import is_grad_enabled, set_grad_enabled
from ...tensor import Tensor
from ..modules.module import Module
from .scatter_gather import _as_device

__all__ = ["get_a_var", "parallel_apply"]


def get_a_var(obj: Any) -> Tensor | None:
    """The first tensor found in ``obj`` (walking lists, tuples and dict items), or None."""
    if isinstance(obj, Tensor):
        return obj
    if isinstance(obj, dict):
        obj = list(obj.items())
    if isinstance(obj, (list, tuple)):
        for item in obj:
            found = get_a_var(item)
            if found is not None:
                return found
    return None


class _KeyErrorMessage(str):
    """KeyError reprs its argument; this keeps the multi-line message readable (torch does the same)."""

    def __repr__(self) -> str:
        return self


class _Failure:
    """An exception caught in a worker thread, kept as text (holding the traceback would keep its frames)."""

    def __init__(self, where: str, exc_info=None) -> None:
        exc_type, exc, tb = exc_info or sys.exc_info()
        self.exc_type = exc_type
        self.where = where
        self.text = "".join(traceback.format_exception(exc_type, exc, tb)) if exc_type else ""

    def reraise(self) -> None:
        if self.exc_type is None:
            raise RuntimeError(f"Caught an error {self.where}.")
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.text}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)
        try:
            exc = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exc


def _device_label(dev) -> Any:
    return dev.index if dev.type == "cuda" and dev.index is not None else str(dev)


def _on_device(dev):
    if dev.type == "cuda" and dev.index is not None:
        return require_cupy().cuda.Device(dev.index)  # current for this thread only
    return contextlib.nullcontext()


def _run_replica(i: int, module: Module, inp: Any, kwargs: dict, dev, grad_enabled: bool, results: dict) -> None:
    set_grad_enabled(grad_enabled)
    if dev is None:
        t = get_a_var(inp)
        if t is None:
            results[i] = _Failure(f"in replica {i}, no device was provided and no tensor input was found; "
                                  "device cannot be resolved", (None, None, None))
            return
        dev = t.device
    try:
        with _on_device(dev):
            args = inp if isinstance(inp, (list, tuple)) else (inp,)
            results[i] = module(*args, **kwargs)
    except Exception:
        results[i] = _Failure(f"in replica {i} on device {_device_label(dev)}")


def parallel_apply(modules: Sequence[Module], inputs: Sequence[Any], kwargs_tup: Sequence[dict] | None = None,
                   devices: Sequence | None = None) -> list[Any]:
    """``modules[i](*inputs[i], **kwargs_tup[i])`` for every i, each in its own thread; the outputs in order.

    An input that is not a list or tuple is the module's only argument. ``devices[i]`` (a CUDA index, a
    device or None: the device of the first tensor in ``inputs[i]``) is made current in worker i."""
    n = len(modules)
    if n != len(inputs):
        raise AssertionError(f"The number of modules {n} is not equal to the number of inputs {len(inputs)}")
    if kwargs_tup is None:
        kwargs_tup = ({},) * n
    elif n != len(kwargs_tup):
        raise AssertionError(f"The number of modules {n} is not equal to the number of kwargs_tup {len(kwargs_tup)}")
    if devices is None:
        devices = [None] * n
    elif n != len(devices):
        raise AssertionError(f"The number of modules {n} is not equal to the number of devices {len(devices)}")
    devices = [None if d is None else _as_device(d) for d in devices]
    results: dict[int, Any] = {}
    jobs = [(i, m, inp, kw, d, is_grad_enabled(), results)
            for i, (m, inp, kw, d) in enumerate(zip(modules, inputs, kwargs_tup, devices))]
    if n == 1:
        _run_replica(*jobs[0])
    else:
        threads = [threading.Thread(target=_run_replica, args=job, name=f"dtorch-replica-{job[0]}") for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    outputs = []
    for i in range(n):
        if isinstance(results[i], _Failure):
            results[i].reraise()
        outputs.append(results[i])
    return outputs

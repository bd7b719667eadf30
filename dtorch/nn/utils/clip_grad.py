"""Gradient clipping by total norm or by value, with torch's formulas."""
from __future__ import annotations

import math
import warnings
from typing import Iterable, Union

from ..._creation import tensor as _tensor
from ..._device import device_of, move_array, xp_of
from ...autograd.grad_mode import no_grad
from ...tensor import Tensor, _make

_TensorOrTensors = Union[Tensor, Iterable[Tensor]]


def _as_list(tensors: _TensorOrTensors) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _vector_norm(arr, p: float):
    """The p-norm of all entries of a raw array, as a 0-d array of its dtype."""
    xp = xp_of(arr)
    if p == 2 and arr.dtype.kind in "fV" and arr.dtype.itemsize >= 4 and arr.flags.c_contiguous and arr.size:
        flat = arr.reshape(-1)
        return xp.asarray(xp.sqrt(xp.dot(flat, flat)), dtype=arr.dtype)  # one BLAS pass, no temporaries
    a = xp.abs(arr)
    if a.size == 0:
        return xp.zeros((), dtype=arr.dtype)
    if p == math.inf:
        out = a.max()
    elif p == -math.inf:
        out = a.min()
    elif p == 0:
        out = (a != 0).sum()
    elif p == 1:
        out = a.sum()
    elif p == 2:
        out = xp.sqrt((a * a).sum())
    else:
        out = (a ** p).sum() ** (1.0 / p)
    return xp.asarray(out, dtype=arr.dtype)


def get_total_norm(tensors: _TensorOrTensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """The norm of the norms of ``tensors``: the norm of all their entries viewed as one vector."""
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return _tensor(0.0)
    first = tensors[0]._data
    norms = [move_array(_vector_norm(t._data, norm_type), device_of(first)) for t in tensors]
    xp = xp_of(first)
    dt = norms[0].dtype
    total = _vector_norm(xp.stack([n.astype(dt, copy=False) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    return _make(total)


def clip_grads_with_norm_(parameters: _TensorOrTensors, max_norm: float, total_norm: Tensor,
                          foreach: bool | None = None) -> None:
    """Scale the gradients by ``min(1, max_norm / (total_norm + 1e-6))`` in place."""
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    with no_grad():
        coef = (max_norm / (total_norm + 1e-6)).clamp(max=1.0)
        if bool((coef == 1.0).all()):
            return  # x * 1.0 == x exactly: skip a pass over every gradient
        for g in grads:
            g.mul_(coef.to(g.device))


def clip_grad_norm_(parameters: _TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Clip the gradients' total norm to ``max_norm`` in place; returns the total norm before clipping."""
    parameters = _as_list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters: _TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of `torch.nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters: _TensorOrTensors, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    with no_grad():
        for p in _as_list(parameters):
            if p.grad is not None:
                p.grad.clamp_(min=-clip_value, max=clip_value)

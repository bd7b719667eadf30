"""parameters_to_vector / vector_to_parameters."""
from __future__ import annotations

from typing import Iterable

from ..._ops.joining import cat
from ...tensor import Tensor, typename


def _check_same_device(params: list[Tensor]) -> None:
    devices = {p.device for p in params}
    if len(devices) > 1:
        raise TypeError("Found two parameters on different devices, this is currently not supported.")


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one (differentiable) vector."""
    params = list(parameters)
    _check_same_device(params)
    return cat([p.view(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Make each parameter's data a slice of ``vec`` (they share its memory afterwards, as torch)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {typename(vec)}")
    params = list(parameters)
    _check_same_device(params)
    pointer = 0
    for param in params:
        n = param.numel()
        param.data = vec[pointer:pointer + n].view_as(param).data
        pointer += n

"""gumbel_softmax: a differentiable sample from a categorical distribution (straight-through when ``hard``)."""
from __future__ import annotations

from ..._creation import empty_like, zeros_like
from ...tensor import Tensor
from .activation import softmax

__all__ = ["gumbel_softmax"]


def gumbel_softmax(logits: Tensor, tau: float = 1, hard: bool = False, eps: float = 1e-10, dim: int = -1) -> Tensor:
    """softmax((logits + Gumbel noise) / tau); with ``hard``, the one-hot argmax carrying the soft gradient."""
    gumbels = -empty_like(logits).exponential_().log()
    y_soft = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.max(dim, keepdim=True)[1]
    y_hard = zeros_like(logits).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft

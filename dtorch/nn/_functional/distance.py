"""cosine_similarity, pairwise_distance, pdist: compositions of recorded ops (torch's formulas)."""
from __future__ import annotations

from ..._creation import tensor
from ..._ops.joining import broadcast_tensors
from ...tensor import Tensor

__all__ = ["cosine_similarity", "pairwise_distance", "pdist"]


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between x1 and x2 along ``dim`` (each divided by its norm, clamped at eps, first)."""
    x1, x2 = broadcast_tensors(x1, x2)
    n1 = x1.norm(2, dim, keepdim=True).clamp_min(eps)
    n2 = x2.norm(2, dim, keepdim=True).clamp_min(eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """p-norm of ``x1 - x2 + eps`` over the last dim."""
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


def pdist(input: Tensor, p: float = 2) -> Tensor:
    """p-norm distances between the rows of a 2-D input, upper triangle in row-major order."""
    if input.dim() != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.dim()}D")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    n = input.shape[0]
    if n < 2:
        return input.new_zeros(0)
    rows = [(i, j) for i in range(n) for j in range(i + 1, n)]
    ii = tensor([i for i, _ in rows], device=input.device)
    jj = tensor([j for _, j in rows], device=input.device)
    diff = input.index_select(0, ii) - input.index_select(0, jj)
    return diff.norm(p, 1)

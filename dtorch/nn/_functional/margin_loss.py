"""Margin, ranking and embedding losses (torch's formulas as compositions of recorded ops).

triplet_margin_loss, triplet_margin_with_distance_loss, cosine_embedding_loss, margin_ranking_loss,
hinge_embedding_loss, soft_margin_loss, multilabel_soft_margin_loss, multi_margin_loss,
multilabel_margin_loss, poisson_nll_loss, gaussian_nll_loss. Each is a handful of elementwise ops, so autograd's
generic nodes give the gradients and double backward.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..._creation import tensor
from ..._ops.scatter import one_hot, where
from ...tensor import Tensor
from .activation import logsigmoid
from .distance import pairwise_distance
from .loss import _check_reduction, _legacy_reduction

__all__ = ["triplet_margin_loss", "triplet_margin_with_distance_loss", "cosine_embedding_loss",
           "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
           "multi_margin_loss", "multilabel_margin_loss", "poisson_nll_loss", "gaussian_nll_loss"]


def _apply_reduction(loss: Tensor, reduction: str) -> Tensor:
    if _check_reduction(reduction) == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def _check_triplet_dims(anchor: Tensor, positive: Tensor, negative: Tensor) -> None:
    dims = (anchor.dim(), positive.dim(), negative.dim())
    if not dims[0] == dims[1] == dims[2]:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {dims[0]}D, positive {dims[1]}D, and negative {dims[2]}D "
                           f"inputs")


def _triplet(dist_pos: Tensor, dist_neg: Tensor, dist_swap: Tensor | None, margin: float) -> Tensor:
    if dist_swap is not None:
        dist_neg = dist_neg.minimum(dist_swap)
    return (margin + dist_pos - dist_neg).clamp_min(0)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """max(d(a, p) - d(a, n) + margin, 0) with the pairwise p-norm distance."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_triplet_dims(anchor, positive, negative)
    swap_d = pairwise_distance(positive, negative, p, eps) if swap else None
    loss = _triplet(pairwise_distance(anchor, positive, p, eps), pairwise_distance(anchor, negative, p, eps),
                    swap_d, margin)
    return _apply_reduction(loss, reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function: Callable | None = None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    """The triplet loss with any ``distance_function(x, y) -> Tensor`` (default: pairwise_distance)."""
    if margin <= 0:
        raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} instead")
    _check_reduction(reduction)
    _check_triplet_dims(anchor, positive, negative)
    batched = anchor.dim() != 1
    if not batched:
        anchor, positive, negative = anchor.unsqueeze(0), positive.unsqueeze(0), negative.unsqueeze(0)
    dist = distance_function if distance_function is not None else pairwise_distance
    loss = _triplet(dist(anchor, positive), dist(anchor, negative), dist(positive, negative) if swap else None,
                    margin)
    if not batched and reduction == "none":
        loss = loss.squeeze(0)
    return _apply_reduction(loss, reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where it is -1."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if target.dim() > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if target.dim() == 1 and (input1.dim() != 2 or input2.dim() != 2):
        raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with sizes "
                           f"{list(input1.shape)} and {list(input2.shape)}.")
    if target.dim() == 0 and (input1.dim() != 1 or input2.dim() != 1):
        raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with sizes "
                           f"{list(input1.shape)} and {list(input2.shape)}.")
    dim = 1 if input1.dim() == 2 else 0
    prod = (input1 * input2).sum(dim)
    mag1 = (input1 * input1).sum(dim) + 1e-12
    mag2 = (input2 * input2).sum(dim) + 1e-12
    cos = prod / (mag1 * mag2).sqrt()
    zeros = cos.new_zeros(())
    out = where(target == 1, 1 - cos, zeros) + where(target == -1, (cos - margin).clamp_min(0), zeros)
    return _apply_reduction(out, reduction)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, -target * (x1 - x2) + margin)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not input1.dim() == input2.dim() == target.dim():
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                           f"input1: {input1.size()}, input2: {input2.size()}, target: {target.size()} ")
    return _apply_reduction((-target * (input1 - input2) + margin).clamp_min(0), reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """x where target is 1, max(0, margin - x) where it is -1."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    zeros = input.new_zeros(())
    out = where(target != 1, (margin - input).clamp_min(0), zeros) + where(target != -1, input, zeros)
    return _apply_reduction(out, reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """log(1 + exp(-target * input))."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _apply_reduction((-input * target).exp().log1p(), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                                reduce=None, reduction: str = "mean") -> Tensor:
    """Per-class logistic loss, averaged over the classes (the last dim)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    class_dim = input.dim() - 1
    loss = loss.sum(class_dim) / input.shape[class_dim]
    return _apply_reduction(loss, reduction)


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0, weight: Tensor | None = None,
                      size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Multi-class hinge: sum over j != y of max(0, margin - x[y] + x[j])^p (times weight[y]), over C."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.dim() != 1:
        raise ValueError("weight must be one-dimensional")
    x = input.unsqueeze(0) if input.dim() <= 1 else input
    if x.dim() != 2:
        raise RuntimeError(f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
                           f"{list(input.shape)}")
    t = target.reshape(-1)
    c = x.shape[1]
    z = (margin - x.gather(1, t.unsqueeze(1)) + x).clamp_min(0)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * weight.index_select(0, t).unsqueeze(1)
    z = (z * (1 - one_hot(t, c).to(x.dtype))).sum(1) / c
    if input.dim() <= 1:
        z = z.reshape(target.shape)
    return _apply_reduction(z, reduction)


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """Sum over target classes j (listed until the first -1) and non-targets i of max(0, 1 - (x[j] - x[i])), / C."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: "
                           f"{list(input.shape)}")
    x = input.reshape(1, -1) if input.dim() <= 1 else input
    n, c = x.shape
    labels = np.asarray(target.detach().cpu().numpy(), dtype=np.int64).reshape(n, c)
    counts = np.zeros((n, c))
    for row, ts in enumerate(labels):
        for j in ts:
            if j < 0:
                break
            counts[row, j] += 1
    weights = counts[:, :, None] * (counts == 0)[:, None, :]  # [n, target j, other i]
    margins = (1 - x.unsqueeze(2) + x.unsqueeze(1)).clamp_min(0)
    loss = (margins * tensor(weights, dtype=x.dtype, device=x.device)).sum((1, 2)) / c
    return _apply_reduction(loss.reshape(()) if input.dim() <= 1 else loss, reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False, size_average=None,
                     eps: float = 1e-8, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log likelihood of a Poisson target (rate ``exp(input)`` with ``log_input``, else ``input``)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    loss = input.exp() - target * input if log_input else input - target * (input + eps).log()
    if full:
        t = target.clamp_min(1)  # the term is dropped where target <= 1: no log(0) there
        stirling = t * t.log() - t + 0.5 * (2 * math.pi * t).log()
        loss = loss + where(target <= 1, stirling.new_zeros(()), stirling)
    return _apply_reduction(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Tensor | float, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """0.5 * (log(var) + (input - target)^2 / var), var clamped at eps (the clamp passes the gradient)."""
    if not isinstance(var, Tensor):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = input.new_full((), float(var))
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1) and var.dim() != 0:
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    if bool((var < 0).any()):
        raise ValueError("var has negative entry/entries")
    v = var.detach()
    var = var + (v.clamp_min(eps) - v)
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _apply_reduction(loss, reduction)

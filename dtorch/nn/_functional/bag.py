"""embedding_bag: sums, means or maxima of bags of embedding rows, without the per-row intermediate bags.

The bags' layout (which bag each index falls in, the padding entries dropped) is computed on
the host; the rows are gathered by ``embedding`` (whose backward is the sorted-segment sum) and
reduced by ``index_add`` (sum/mean) or by ``amax`` over a (bags, longest bag) gather (max).
"""
from __future__ import annotations

import numpy as np

from ..._creation import tensor
from ..._ops.joining import cat
from ..._ops.scatter import where
from ...tensor import Tensor
from .sparse import embedding

__all__ = ["embedding_bag"]


def _bags(input: Tensor, offsets: Tensor | None, per_sample_weights, include_last_offset: bool):
    """Flat indices, flat per-sample weights and the bag start offsets (numpy), torch's argument checks."""
    if per_sample_weights is not None and tuple(input.shape) != tuple(per_sample_weights.shape):
        raise ValueError(f"embedding_bag: If per_sample_weights ({per_sample_weights.shape}) is not None, "
                         f"then it must have the same shape as the input ({input.shape})")
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             f"fixed length sequences. However, found offsets of type {type(offsets)}")
        starts = np.arange(0, input.numel(), input.shape[1]) if input.shape[1] else np.zeros(input.shape[0], int)
        flat_w = None if per_sample_weights is None else per_sample_weights.reshape(-1)
        return input.reshape(-1), flat_w, starts.astype(np.int64)
    if input.dim() != 1:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.dim()}")
    if offsets is None:
        raise ValueError("offsets has to be a 1D Tensor but got None")
    if offsets.dim() != 1:
        raise ValueError("offsets has to be a 1D Tensor")
    starts = np.asarray(offsets.detach().cpu().numpy(), dtype=np.int64)
    if include_last_offset:
        starts = starts[:-1]
    if starts.size and (starts[0] != 0 or (np.diff(starts) < 0).any() or starts[-1] > input.numel()):
        raise RuntimeError(f"offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from "
                           f"position 0. However, got {int(starts[0])}" if starts[0] != 0 else
                           "offsets has to be a non-decreasing sequence of positions within the input")
    return input, per_sample_weights, starts


def _check_mode(mode: str, scale_grad_by_freq: bool, sparse: bool, per_sample_weights) -> None:
    if mode not in ("sum", "mean", "max"):
        raise ValueError("mode has to be one of sum, mean or max")
    if mode == "max" and scale_grad_by_freq:
        raise ValueError("max mode does not support scaling the gradient by the frequency")
    if mode == "max" and sparse:
        raise ValueError("max mode does not support sparse weights")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError("embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}'). Please open a feature request on "
                                  "GitHub.")


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None, max_norm: float | None = None,
                  norm_type: float = 2, scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """One row per bag: the sum, mean or max of the embedding rows of its indices (padding_idx left out)."""
    if weight.dim() != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.dim()}")
    idx, psw, starts = _bags(input, offsets, per_sample_weights, include_last_offset)
    _check_mode(mode, scale_grad_by_freq, sparse, per_sample_weights)
    n_bags, n, dim = len(starts), idx.numel(), weight.shape[1]
    host = np.asarray(idx.detach().cpu().numpy(), dtype=np.int64)
    bag_of = np.repeat(np.arange(n_bags), np.diff(np.append(starts, n)))
    keep = np.ones(n, bool) if padding_idx is None else host != padding_idx % weight.shape[0]
    dev = weight.device
    sel = tensor(np.flatnonzero(keep), device=dev)
    rows = embedding(idx.index_select(0, sel), weight, None, max_norm, norm_type, scale_grad_by_freq, sparse)
    if psw is not None:
        rows = rows * psw.index_select(0, sel).unsqueeze(1)
    bag_of = bag_of[keep]
    counts = np.bincount(bag_of, minlength=n_bags)
    if mode != "max":
        out = rows.new_zeros((n_bags, dim)).index_add(0, tensor(bag_of, device=dev), rows)
        if mode == "mean":
            out = out / tensor(np.maximum(counts, 1), dtype=out.dtype, device=dev).unsqueeze(1)
        return out
    longest = int(counts.max()) if n_bags and bag_of.size else 0
    pos = np.full((n_bags, max(longest, 1)), bag_of.size, np.int64)  # index of an appended -inf row
    rank = np.arange(bag_of.size) - np.searchsorted(bag_of, bag_of)
    pos[bag_of, rank] = np.arange(bag_of.size)
    padded = cat([rows, rows.new_full((1, dim), float("-inf"))])
    out = padded.index_select(0, tensor(pos.reshape(-1), device=dev)).reshape(n_bags, -1, dim).amax(1)
    return where(tensor(counts > 0, device=dev).unsqueeze(1), out, out.new_zeros(()))

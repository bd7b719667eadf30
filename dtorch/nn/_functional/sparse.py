"""embedding, one_hot.

embedding is a gather of weight rows; its backward is ``embedding_dense_backward``, an op
of its own (rows summed per index, sorted-segment sums rather than the slow ``add.at``),
whose backward is again an embedding, so double backward works.
"""
from __future__ import annotations

import numpy as np

from ..._dispatch import apply, defop
from ..._device import xp_of
from ..._ops.scatter import one_hot
from ...autograd.grad_mode import no_grad
from ...tensor import Tensor

__all__ = ["embedding", "one_hot"]


def _segment_sum(g2, idx, num_weights: int):
    """out[k] = sum of rows g2[i] with idx[i] == k, as a dense (num_weights, D) array."""
    xp = xp_of(g2)
    out = xp.zeros((num_weights, g2.shape[1]), g2.dtype)
    if idx.size == 0:
        return out
    if xp is not np:
        import cupyx

        cupyx.scatter_add(out, idx, g2)
        return out
    order = np.argsort(idx, kind="stable")
    sidx = idx[order]
    starts = np.flatnonzero(np.concatenate(([True], sidx[1:] != sidx[:-1])))
    out[sidx[starts]] = np.add.reduceat(g2[order], starts, axis=0)
    return out


@defop("embedding_dense_backward")
def _embedding_dense_backward(g, indices, num_weights, padding_idx, scale_grad_by_freq):
    idx = indices.reshape(-1)
    g2 = g.reshape(idx.size, -1)
    if scale_grad_by_freq:
        counts = xp_of(g).bincount(idx, minlength=num_weights)
        g2 = g2 / counts[idx][:, None].astype(g.dtype)
    out = _segment_sum(g2, idx, num_weights)
    if padding_idx is not None:
        out[padding_idx] = 0
    return out.reshape((num_weights,) + g.shape[indices.ndim:])


@_embedding_dense_backward.backward
def _embedding_dense_backward_bw(ns, ctx, gg):
    a = ctx._args
    if a["scale_grad_by_freq"] or a["padding_idx"] is not None:
        raise RuntimeError("double backward of embedding with padding_idx or scale_grad_by_freq is not "
                           "supported by dtorch")
    return (ns.embedding(gg, indices=a["indices"]),)


@defop("embedding")
def _embedding(w, indices, padding_idx=None, scale_grad_by_freq=False):
    return w[indices]


@_embedding.backward
def _embedding_bw(ns, ctx, g):
    a = ctx._args
    gw = ns.embedding_dense_backward(g, indices=a["indices"], num_weights=ctx._in_meta[0][0][0],
                                     padding_idx=a.get("padding_idx"),
                                     scale_grad_by_freq=a.get("scale_grad_by_freq", False))
    return (gw,)


def _renorm_rows_(weight: Tensor, idx, max_norm: float, norm_type: float) -> None:
    """Rescale, in place, the referenced rows whose norm exceeds max_norm (torch's embedding_renorm_)."""
    w = weight._data
    xp = xp_of(w)
    rows = xp.unique(idx.reshape(-1))
    sel = w[rows]
    norms = (xp.abs(sel) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    big = norms > max_norm
    if bool(big.any()):
        scale = (max_norm / (norms[big] + 1e-7)).astype(w.dtype)
        w[rows[big]] = sel[big] * scale[:, None]
        weight._vc[0] += 1


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` at the indices ``input``; ``padding_idx``'s row gets no gradient."""
    if sparse:
        raise NotImplementedError("sparse gradients are not supported by dtorch; use sparse=False")
    idx = input._data
    if idx.dtype.kind not in "iu":
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {input.dtype} instead (while checking arguments for embedding)")
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx = padding_idx % n
    if idx.size and type(idx) is np.ndarray and (idx.min() < 0 or idx.max() >= n):
        raise IndexError("index out of range in self")
    if max_norm is not None:
        with no_grad():
            _renorm_rows_(weight, idx, max_norm, norm_type)
    params = {"indices": idx, "padding_idx": padding_idx, "scale_grad_by_freq": bool(scale_grad_by_freq)}
    return apply(_embedding, (weight,), params)

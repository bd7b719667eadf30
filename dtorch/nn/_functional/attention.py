"""scaled_dot_product_attention, multi_head_attention_forward.

scaled_dot_product_attention is one graph node. Its kernel computes
``P = softmax(q @ k^T * scale + bias)`` in place in the score buffer and keeps ``P``
(and the dropout keep-mask) as by-products, so the backward is four matmuls and two
elementwise passes:

    dV = P'^T g,  dP' = g V^T,  dS = P * (dP - rowsum(dP * P)) * scale,  dQ = dS K,  dK = dS^T Q

Masks become one additive ``bias`` input (0 / -inf for bool and causal masks), which
receives ``dS`` when it is a float mask that requires grad. Fully masked rows give zeros
(torch's safe softmax). For ``create_graph=True`` the backward recomputes ``P`` from the
saved inputs with recorded ops.
"""
from __future__ import annotations

import math

import numpy as np

from ..._dispatch import ARRAY_NS, apply, defop
from ..._device import xp_of
from ..._ops.softmax import row_dots, softmax_last
from ...tensor import Tensor, _make
from .dropout import _uniform, dropout
from .linear import linear

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


# ---- scaled_dot_product_attention ------------------------------------------------------------------
def _safe_softmax_(s):
    """Softmax over the last axis, in place; rows that are all -inf become zeros."""
    xp = xp_of(s)
    m = s.max(axis=-1, keepdims=True)
    masked_rows = xp.isneginf(m)
    if masked_rows.any():
        m[masked_rows] = 0
    s -= m
    xp.exp(s, out=s)
    total = s.sum(axis=-1, keepdims=True)
    if masked_rows.any():
        total[masked_rows] = 1
    s /= total
    return s


def _mT(ns, a):
    return ns.transpose(a, dim0=-2, dim1=-1)


def _bmm(a, b):
    """``a @ b`` over leading batch dims. numpy's stacked matmul calls BLAS per matrix when each
    matrix is C- or F-ordered (see docs/performance.md); a matrix it cannot hand to BLAS (a
    broadcast gradient, stride 0) is copied first."""
    xp = xp_of(a)
    if xp is np and a.ndim > 2:
        a = _blas_ready(a)
    if xp is np and b.ndim > 2:
        b = _blas_ready(b)
    return xp.matmul(a, b)


def _blas_ready(x3):
    """A stack numpy's matmul hands to BLAS: broadcast views (a zero stride) are copied; other
    strided matrices (head splits) numpy passes to BLAS with a leading dimension as they are."""
    return np.ascontiguousarray(x3) if 0 in x3.strides[-2:] and x3.size else x3


def _matmul(ns):
    return _bmm if ns is ARRAY_NS else ns.matmul


@defop("scaled_dot_product_attention", save=(0, 1, 2, 3), extra=True)
def _sdpa(q, k, v, bias, scale, keep, keep_scale):
    s = _bmm(q, k.swapaxes(-1, -2))
    s *= scale
    if bias is not None:
        if np.broadcast_shapes(s.shape, bias.shape) == s.shape:
            s += bias
        else:
            s = s + bias
    p = softmax_last(s, safe=True, scratch=True) if _numpy_float(s) else _safe_softmax_(s)
    pd = p if keep is None else p * keep * keep_scale
    return _bmm_like_query(pd, v, q), (p, pd)


def _bmm_like_query(pd, v, q):
    """``pd @ v``; for heads split from a (B, L, H, E) projection (torch's usual layout), the output is laid
    out the same way, as torch's is, so ``out.transpose(1, 2).contiguous()`` copies nothing."""
    if not (type(q) is np.ndarray and q.ndim == 4 and 0 < q.strides[1] < q.strides[2] and pd.shape[0] > 0):
        return _bmm(pd, v)
    b, h, l, _ = pd.shape
    out = np.empty((b, l, h, v.shape[-1]), np.result_type(pd, v)).transpose(0, 2, 1, 3)
    return np.matmul(_blas_ready(pd), _blas_ready(v), out=out)


def _numpy_float(x) -> bool:
    return type(x) is np.ndarray and x.dtype in (np.float32, np.float64)


@_sdpa.backward
def _sdpa_bw(ns, ctx, g, q, k, v, bias):
    a = ctx._args
    scale, keep = a["scale"], a["keep"]
    if ns is ARRAY_NS and _numpy_float(g) and g.dtype == q.dtype:
        return _sdpa_bw_numpy(g, q, k, v, *ctx._extra, scale, keep, a["keep_scale"], ctx.needs_input_grad)
    if ns is ARRAY_NS:
        p, pd = ctx._extra
    else:
        s = ns.matmul(q, _mT(ns, k)) * scale
        p = ns.softmax(s + bias if bias is not None else s, dim=-1)
        pd = p if keep is None else p * _make((keep * a["keep_scale"]).astype(p._data.dtype))
    need = ctx.needs_input_grad
    mm = _matmul(ns)
    gv = mm(_mT(ns, pd), g) if need[2] else None
    if not (need[0] or need[1] or need[3]):
        return None, None, gv, None
    dp = mm(g, _mT(ns, v))
    if keep is not None:
        dp = dp * (_const(ns, keep * a["keep_scale"], dp))
    ds = (dp - ns.sum(dp * p, dim=(-1,), keepdim=True)) * p
    gbias = ds if need[3] else None
    ds = ds * scale
    gq = mm(ds, k) if need[0] else None
    gk = mm(_mT(ns, ds), q) if need[1] else None
    return gq, gk, gv, gbias


def _sdpa_bw_numpy(g, q, k, v, p, pd, scale, keep, keep_scale, need):
    """The backward on numpy arrays in few passes: the scale (and the dropout's) rides on ``g`` (half the size
    of the scores) into dP, the row dot products are one einsum, dS is formed in dP's buffer."""
    gv = _bmm(pd.swapaxes(-1, -2), g) if need[2] else None
    if not (need[0] or need[1] or need[3]):
        return None, None, gv, None
    factor = (1.0 if need[3] else scale) * (keep_scale if keep is not None else 1.0)
    ds = _bmm(g * g.dtype.type(factor) if factor != 1.0 else g, v.swapaxes(-1, -2))    # dP, scaled
    if keep is not None:
        np.multiply(ds, keep, out=ds)
    np.subtract(ds, row_dots(ds, p), out=ds)
    np.multiply(ds, p, out=ds)                     # dS (times scale unless the bias needs the plain dS)
    gbias = ds if need[3] else None
    if need[3] and (need[0] or need[1]):
        ds = ds * ds.dtype.type(scale)
    gq = _bmm(ds, k) if need[0] else None
    gk = _bmm(ds.swapaxes(-1, -2), q) if need[1] else None
    return gq, gk, gv, gbias


def _const(ns, arr, like):
    if ns is ARRAY_NS:
        return arr.astype(like.dtype, copy=False)
    return _make(arr.astype(like._data.dtype))


_CAUSAL_CACHE: dict = {}


def _causal_bias(l: int, s: int, like) -> np.ndarray:
    """0 on and below the diagonal, -inf above (top-left aligned as torch); cached on the CPU."""
    key = (l, s, like.dtype.str)
    xp = xp_of(like)
    if xp is np and key in _CAUSAL_CACHE:
        return _CAUSAL_CACHE[key]
    bias = xp.triu(xp.full((l, s), -xp.inf, dtype=like.dtype), 1)
    if xp is np:
        if len(_CAUSAL_CACHE) > 16:
            _CAUSAL_CACHE.clear()
        bias.flags.writeable = False
        _CAUSAL_CACHE[key] = bias
    return bias


def _mask_bias(attn_mask: Tensor | None, is_causal: bool, q: Tensor, l: int, s: int):
    """The additive bias for the scores: None, a constant Tensor, or the float mask itself."""
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when "
                               "is_causal=True")
        return _make(_causal_bias(l, s, q._data))
    if attn_mask is None:
        return None
    m = attn_mask._data
    if m.dtype == np.bool_:
        xp = xp_of(m)
        return _make(xp.where(m, xp.asarray(0, q._data.dtype), xp.asarray(-xp.inf, q._data.dtype)))
    if m.dtype != q._data.dtype:
        raise RuntimeError(f"Expected attn_mask dtype to be bool or float or to match query dtype, but got "
                           f"attn_mask.dtype: {attn_mask.dtype} and  query.dtype: {q.dtype} instead.")
    return attn_mask


def _repeat_heads(t: Tensor, n_q: int) -> Tensor:
    n = t.shape[-3]
    if n_q % n:
        raise RuntimeError(f"number of heads in key/value ({n}) must divide the number of query heads ({n_q})")
    return t.repeat_interleave(n_q // n, dim=-3) if n != n_q else t


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(q k^T * scale + mask) v, one graph node; bool masks mark the positions that take part."""
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError("scaled_dot_product_attention: expected query, key and value with at least 2 dims")
    if enable_gqa and query.ndim >= 3:
        key, value = _repeat_heads(key, query.shape[-3]), _repeat_heads(value, query.shape[-3])
    l, e = query.shape[-2], query.shape[-1]
    s = key.shape[-2]
    scale = 1.0 / math.sqrt(e) if scale is None else float(scale)
    bias = _mask_bias(attn_mask, is_causal, query, l, s)
    keep, keep_scale = None, 1.0
    if dropout_p > 0.0:
        batch = np.broadcast_shapes(tuple(query.shape[:-2]), tuple(key.shape[:-2]))
        keep = _uniform(query._data, tuple(batch) + (l, s)) >= dropout_p
        keep_scale = 1.0 / (1.0 - dropout_p) if dropout_p < 1.0 else 0.0
    out, _ = apply(_sdpa, (query, key, value, bias), {"scale": scale, "keep": keep, "keep_scale": keep_scale})
    return out


# ---- multi_head_attention_forward -------------------------------------------------------------------
def _in_projection(query, key, value, w, b, separate, q_w, k_w, v_w):
    """q, k, v projections as torch's _in_projection_packed / _in_projection."""
    e = query.shape[-1]
    if not separate:
        if key is value and query is key:
            return linear(query, w, b).chunk(3, dim=-1)
        bq, bkv = (None, None) if b is None else (b[:e], b[e:])
        q = linear(query, w[:e], bq)
        if key is value:
            k, v = linear(key, w[e:], bkv).chunk(2, dim=-1)
            return q, k, v
        bk, bv = (None, None) if b is None else (bkv[:e], bkv[e:])
        return q, linear(key, w[e:2 * e], bk), linear(value, w[2 * e:], bv)
    bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
    return linear(query, q_w, bq), linear(key, k_w, bk), linear(value, v_w, bv)


def _float_mask(mask: Tensor | None, dtype, name: str) -> Tensor | None:
    """torch's _canonical_mask: bool masks (True = masked out) become 0 / -inf float masks."""
    if mask is None:
        return None
    m = mask._data
    if m.dtype == np.bool_:
        xp = xp_of(m)
        return _make(xp.where(m, xp.asarray(-xp.inf, dtype), xp.asarray(0, dtype)))
    if m.dtype.kind not in "fV":
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask


def multi_head_attention_forward(
    query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
    in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None, bias_v: Tensor | None,
    add_zero_attn: bool, dropout_p: float, out_proj_weight: Tensor, out_proj_bias: Tensor | None,
    training: bool = True, key_padding_mask: Tensor | None = None, need_weights: bool = True,
    attn_mask: Tensor | None = None, use_separate_proj_weight: bool = False, q_proj_weight: Tensor | None = None,
    k_proj_weight: Tensor | None = None, v_proj_weight: Tensor | None = None, static_k: Tensor | None = None,
    static_v: Tensor | None = None, average_attn_weights: bool = True, is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """torch's multi-head attention on sequence-first inputs (L, N, E) or unbatched (L, E)."""
    if bias_k is not None or bias_v is not None or add_zero_attn or static_k is not None or static_v is not None:
        raise NotImplementedError("bias_k/bias_v, add_zero_attn and static_k/v are not supported by dtorch")
    batched = query.ndim == 3
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    l, n, e = query.shape
    s = key.shape[0]
    if e != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {e}")
    hd = e // num_heads
    if hd * num_heads != e:
        raise AssertionError(f"embed_dim {e} not divisible by num_heads {num_heads}")
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                           "method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the sdpa kernel builds the causal mask itself
    else:
        attn_mask = _float_mask(attn_mask, query._data.dtype, "attn_mask")
        is_causal = False
    key_padding_mask = _float_mask(key_padding_mask, query._data.dtype, "key_padding_mask")

    q, k, v = _in_projection(query, key, value, in_proj_weight, in_proj_bias, use_separate_proj_weight,
                             q_proj_weight, k_proj_weight, v_proj_weight)
    # (L, N, E) -> (N, H, L, hd)
    q = q.reshape(l, n, num_heads, hd).permute(1, 2, 0, 3)
    k = k.reshape(s, n, num_heads, hd).permute(1, 2, 0, 3)
    v = v.reshape(s, n, num_heads, hd).permute(1, 2, 0, 3)

    mask = _merge_masks(attn_mask, key_padding_mask, n, num_heads, l, s)
    if not training:
        dropout_p = 0.0
    if need_weights:
        w = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1)
        if mask is not None:
            w = w + mask
        w = w.softmax(dim=-1)
        if dropout_p > 0.0:
            w = dropout(w, p=dropout_p)
        out = w @ v
    else:
        out = scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal)
        w = None
    out = out.permute(2, 0, 1, 3).reshape(l * n, e)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(l, n, e)
    if w is not None and average_attn_weights:
        w = w.mean(dim=1)
    if not batched:
        out = out.squeeze(1)
        if w is not None:
            w = w.squeeze(0)
    return out, w


def _merge_masks(attn_mask, key_padding_mask, n: int, h: int, l: int, s: int):
    """One float mask broadcastable to (N, H, L, S), or None."""
    mask = None
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (l, s):
                raise RuntimeError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                   f"{(l, s)}.")
            mask = attn_mask
        else:
            if tuple(attn_mask.shape) != (n * h, l, s):
                raise RuntimeError(f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                   f"{(n * h, l, s)}.")
            mask = attn_mask.reshape(n, h, l, s)
    if key_padding_mask is not None:
        kp = key_padding_mask.reshape(n, 1, 1, s)
        mask = kp if mask is None else mask + kp
    return mask

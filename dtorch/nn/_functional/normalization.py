"""batch_norm, layer_norm, group_norm, normalize.

layer_norm, group_norm and batch_norm (training) are single graph nodes. Their kernels
keep the standardized input ``xhat`` (batch_norm: the centred input ``x - mean``, one pass
fewer in the forward) and ``rstd = 1/sqrt(var + eps)`` as by-products (``ctx._extra``) so
the backward is a few passes over the data:

    dx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)),   gxhat = g * weight

For ``create_graph=True`` the backward recomputes ``xhat`` and ``rstd`` from the saved
input with recorded ops, so the same formula is differentiable again.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..._dispatch import ARRAY_NS, apply, defop
from ..._device import xp_of
from ...tensor import Tensor
from . import _batch_norm_c

__all__ = ["layer_norm", "group_norm", "batch_norm", "instance_norm", "normalize"]


# ---- shared pieces ---------------------------------------------------------------------------------
def _row_dot(ns, a, b):
    """sum(a * b) over the last axis of 2-d rows, keepdim (one pass with einsum on arrays)."""
    if ns is ARRAY_NS:
        return xp_of(a).einsum("ij,ij->i", a, b)[:, None]
    return ns.sum(a * b, dim=(1,), keepdim=True)


def _standardize_rows(ns, x2, eps: float):
    """(xhat, rstd) of 2-d rows ``x2`` normalized over their last axis."""
    mean = ns.mean(x2, dim=(1,), keepdim=True)
    xc = x2 - mean
    var = _row_dot(ns, xc, xc) * (1.0 / x2.shape[1])
    rstd = ns.rsqrt(var + eps)
    if ns is ARRAY_NS:
        xc *= rstd  # xc is a fresh temporary: normalize it in place
        return xc, rstd
    return xc * rstd, rstd


def _rows_dx(ns, gxhat, xhat, rstd):
    """Input gradient of row standardization given the gradient of xhat."""
    inv_n = 1.0 / xhat.shape[1]
    a = ns.mean(gxhat, dim=(1,), keepdim=True)
    b = _row_dot(ns, gxhat, xhat) * inv_n
    return (gxhat - xhat * b - a) * rstd


def _affine(xhat, w, b):
    if w is None and b is None:
        return xhat.copy()
    out = xhat * w if w is not None else xhat + b
    if w is not None and b is not None:
        out += b
    return out


def _sum_except(ns, a, keep: int):
    """Sum over every axis but ``keep``."""
    dims = tuple(d for d in range(a.ndim) if d != keep)
    return ns.sum(a, dim=dims) if dims else a


# ---- layer_norm --------------------------------------------------------------------------------------
@defop("native_layer_norm", save=(0, 1), extra=True)
def _layer_norm(x, w, b, n_axes, eps):
    n = math.prod(x.shape[x.ndim - n_axes:])
    xhat, rstd = _standardize_rows(ARRAY_NS, x.reshape(-1, n), eps)
    xhat = xhat.reshape(x.shape)
    return _affine(xhat, w, b), (xhat, rstd)


@_layer_norm.backward
def _layer_norm_bw(ns, ctx, g, x, w):
    n_axes, eps = ctx._args["n_axes"], ctx._args["eps"]
    n = math.prod(x.shape[x.ndim - n_axes:])
    rows = (-1, n)
    if ns is ARRAY_NS:
        xhat, rstd = ctx._extra
        xhat = xhat.reshape(rows)
    else:
        xhat, rstd = _standardize_rows(ns, ns.reshape(x, shape=(math.prod(x.shape) // n, n)), eps)
    g2 = ns.reshape(g, shape=rows)
    gx = gw = gb = None
    need = ctx.needs_input_grad
    if need[0]:
        gxhat = g2 * ns.reshape(w, shape=(1, n)) if w is not None else g2
        gx = ns.reshape(_rows_dx(ns, gxhat, xhat, rstd), shape=tuple(x.shape))
    if w is not None and need[1]:
        gw = ns.reshape(ns.sum(g2 * xhat, dim=(0,)), shape=tuple(w.shape))
    if len(need) > 2 and need[2]:
        gb = ns.reshape(ns.sum(g2, dim=(0,)), shape=ctx._in_meta[2][0])
    return gx, gw, gb


def trailing_shape(input: Tensor, normalized_shape: Sequence[int] | int, star: str = "*, ") -> tuple:
    """``normalized_shape`` as a tuple, checked against the input's trailing dims (torch's message; rms_norm's
    writes ``[*3]`` where layer_norm's writes ``[*, 3]``)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(int(s) for s in normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape [{star}"
                           f"{', '.join(map(str, shape))}], but got input of size{list(input.shape)}")
    return shape


def layer_norm(input: Tensor, normalized_shape: Sequence[int] | int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` dims, then scale and shift (one graph node)."""
    shape = trailing_shape(input, normalized_shape)
    k = len(shape)
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != shape:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but got {name} of "
                               f"shape {list(p.shape)} and normalized_shape = {list(shape)}")
    out, _ = apply(_layer_norm, (input, weight, bias), {"n_axes": k, "eps": float(eps)})
    return out


# ---- group_norm --------------------------------------------------------------------------------------
def _channel_shape(x, c: int) -> tuple:
    return (1, c) + (1,) * (x.ndim - 2)


@defop("native_group_norm", save=(0, 1), extra=True)
def _group_norm(x, w, b, groups, eps):
    xhat, rstd = _standardize_rows(ARRAY_NS, x.reshape(x.shape[0] * groups, -1), eps)
    xhat = xhat.reshape(x.shape)
    cs = _channel_shape(x, x.shape[1])
    return _affine(xhat, None if w is None else w.reshape(cs), None if b is None else b.reshape(cs)), (xhat, rstd)


@_group_norm.backward
def _group_norm_bw(ns, ctx, g, x, w):
    groups, eps = ctx._args["groups"], ctx._args["eps"]
    shape = tuple(x.shape)
    rows = (shape[0] * groups, math.prod(shape) // (shape[0] * groups))
    if ns is ARRAY_NS:
        xhat, rstd = ctx._extra
    else:
        xhat, rstd = _standardize_rows(ns, ns.reshape(x, shape=rows), eps)
        xhat = ns.reshape(xhat, shape=shape)
    need = ctx.needs_input_grad
    gx = gw = gb = None
    if need[0]:
        gxhat = g * ns.reshape(w, shape=_channel_shape(x, shape[1])) if w is not None else g
        dx = _rows_dx(ns, ns.reshape(gxhat, shape=rows), ns.reshape(xhat, shape=rows), rstd)
        gx = ns.reshape(dx, shape=shape)
    if w is not None and need[1]:
        gw = _sum_except(ns, g * xhat, 1)
    if len(need) > 2 and need[2]:
        gb = _sum_except(ns, g, 1)
    return gx, gw, gb


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize each group of channels of each sample, then scale and shift per channel (one node)."""
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    c = input.shape[1]
    if c % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input "
                           f"of shape {list(input.shape)} and num_groups={num_groups}")
    out, _ = apply(_group_norm, (input, weight, bias), {"groups": int(num_groups), "eps": float(eps)})
    return out


# ---- batch_norm --------------------------------------------------------------------------------------
def _bn_axes(ndim: int) -> tuple:
    return (0,) + tuple(range(2, ndim))


def _bn_stats(ns, x, eps: float):
    axes = _bn_axes(x.ndim)
    if ns is ARRAY_NS and _channel_dots(x):
        mean = (_channel_sum(x) * (x.shape[1] / x.size)).astype(x.dtype, copy=False)
        xc = _by_channel(np.subtract, x, mean)
        var = _channel_dot(xc, xc) * (x.shape[1] / x.size)
        cs = _channel_shape(x, x.shape[1])
        return xc, mean.reshape(cs), var.reshape(cs), ns.rsqrt(var + eps).reshape(cs)
    mean = ns.mean(x, dim=axes, keepdim=True)
    xc = x - mean
    var = ns.mean(xc * xc, dim=axes, keepdim=True)
    return xc, mean, var, ns.rsqrt(var + eps)


def _by_channel(ufunc, x, v, out=None):
    """``ufunc(x, v)`` for per-channel values ``v`` (C,) on an (N, C, ...) numpy array, written as rows of a
    whole sample against ``v`` repeated over each plane (broadcast over (1, C, 1, 1) numpy's inner loop would
    run one plane at a time: 25-40% slower on DCGAN's planes of 16 to 1024)."""
    rows = x.reshape(x.shape[0], -1)
    row = np.repeat(v.astype(x.dtype, copy=False), rows.shape[1] // x.shape[1])
    res = ufunc(rows, row, out=None if out is None else out.reshape(rows.shape))
    return res.reshape(x.shape)


def _channel_dots(x) -> bool:
    """Whether :func:`_channel_dot` serves ``x``: a float32/float64 numpy array of rank >= 2."""
    return x.ndim >= 2 and getattr(x.dtype, "type", None) in (np.float32, np.float64) and isinstance(x, np.ndarray)


def _channel_dot(a, b):
    """Per-channel ``sum(a * b)`` over every axis but 1: one pass, no temporary."""
    a3 = a.reshape(a.shape[0], a.shape[1], -1)
    return np.einsum("ncl,ncl->c", a3, b.reshape(a3.shape))


def _channel_sum(a):
    """Per-channel sum over every axis but 1 (numpy's multi-axis sum strides through the array: 3-10x slower)."""
    a3 = a.reshape(a.shape[0], a.shape[1], -1)
    return np.einsum("ncl->c", a3) if a3.shape[2] >= 64 else a3.sum(0).sum(-1)


@defop("native_batch_norm", save=(0, 1), extra=True)
def _batch_norm_train(x, w, b, eps):
    """``extra``: the centred input ``x - mean`` and ``rstd`` for the backward, the batch mean and variance."""
    cs = _channel_shape(x, x.shape[1])
    fast = _batch_norm_c.forward(x, w, b, eps)
    if fast is not None:
        out, xc, mean, var, rstd = fast
        return out, (xc, rstd.reshape(cs), mean, var)
    xc, mean, var, rstd = _bn_stats(ARRAY_NS, x, eps)
    if _channel_dots(x):
        out = _by_channel(np.multiply, xc, rstd.reshape(-1) if w is None else rstd.reshape(-1) * w)
        if b is not None:
            _by_channel(np.add, out, b, out=out)
    else:
        out = xc * (rstd if w is None else rstd * w.reshape(cs))
        if b is not None:
            out += b.reshape(cs)
    return out, (xc, rstd, mean.reshape(-1), var.reshape(-1))


@_batch_norm_train.backward
def _batch_norm_bw(ns, ctx, g, x, w):
    axes = _bn_axes(x.ndim)
    if ns is ARRAY_NS:
        xc, rstd = ctx._extra[:2]
        if _channel_dots(g):
            return _batch_norm_bw_arrays(g, xc, rstd, w, ctx.needs_input_grad)
        xhat = xc * rstd
    else:
        xc, _, _, rstd = _bn_stats(ns, x, ctx._args["eps"])
        xhat = xc * rstd
    need = ctx.needs_input_grad
    gx = gw = gb = None
    cs = _channel_shape(x, x.shape[1])
    if need[0]:
        gxhat = g * ns.reshape(w, shape=cs) if w is not None else g
        a = ns.mean(gxhat, dim=axes, keepdim=True)
        bb = ns.mean(gxhat * xhat, dim=axes, keepdim=True)
        gx = (gxhat - xhat * bb - a) * rstd
    if w is not None and need[1]:
        gw = ns.sum(g * xhat, dim=axes)
    if len(need) > 2 and need[2]:
        gb = ns.sum(g, dim=axes)
    return gx, gw, gb


def _batch_norm_bw_arrays(g, xc, rstd, w, need):
    """The backward on arrays from two per-channel sums over the centred input ``xc``:
    ``gx = k * (g - mean(g) - xc * rstd^2 * mean(g * xc))`` with ``k = weight * rstd``, in three passes."""
    r = rstd.reshape(-1)
    fast = _batch_norm_c.backward(g, xc, r, w, need[0])
    if fast is not None:
        gx, sg, sgxc = fast
    else:
        gx, sg, sgxc = None, _channel_sum(g), _channel_dot(g, xc)
        if need[0]:
            k = r if w is None else w * r
            inv_m = g.shape[1] / g.size
            gx = _by_channel(np.multiply, g, k)
            gx -= _by_channel(np.multiply, xc, k * r * r * sgxc * inv_m)
            _by_channel(np.subtract, gx, k * sg * inv_m, out=gx)
    gw = (sgxc * r).astype(g.dtype, copy=False) if w is not None and need[1] else None
    gb = sg.astype(g.dtype, copy=False) if len(need) > 2 and need[2] else None
    return gx, gw, gb


def _update_running(running: Tensor | None, batch_value, momentum: float) -> None:
    """running = (1 - momentum) * running + momentum * batch, in place (bumps the version as torch)."""
    if running is None:
        return
    d = running._data
    d *= 1.0 - momentum
    d += momentum * batch_value.astype(d.dtype, copy=False)
    running._vc[0] += 1


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalization; in training, batch statistics (one node) and an in-place running-stats update."""
    if training:
        count = input.numel() // input.shape[1] if input.ndim > 1 else input.numel()
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{input.shape}")
        out, (_, _, mean, var) = apply(_batch_norm_train, (input, weight, bias), {"eps": float(eps)})
        if running_mean is not None or running_var is not None:
            _update_running(running_mean, mean, momentum)
            _update_running(running_var, var * (count / (count - 1)), momentum)
        return out
    if running_mean is None or running_var is None:
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
    cs = _channel_shape(input, input.shape[1])
    scale = (running_var + eps).rsqrt()
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return input * scale.reshape(cs) + shift.reshape(cs)


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel of each sample: group_norm with one group per channel, or, with running
    statistics, batch_norm over (1, N*C, ...) whose per-sample running stats are averaged back (torch's way)."""
    if use_input_stats and running_mean is None and running_var is None:
        return group_norm(input, input.shape[1], weight, bias, eps)
    n, c = input.shape[0], input.shape[1]
    rm = None if running_mean is None else running_mean.detach().repeat(n)
    rv = None if running_var is None else running_var.detach().repeat(n)
    out = batch_norm(input.reshape(1, n * c, *input.shape[2:]), rm, rv, None, None, use_input_stats, momentum, eps)
    for running, rep in ((running_mean, rm), (running_var, rv)):
        if running is not None and use_input_stats:
            running._data[...] = rep._data.reshape(n, c).mean(0)
            running._vc[0] += 1
    out = out.reshape(input.shape)
    cs = _channel_shape(input, c)
    if weight is not None:
        out = out * weight.reshape(cs)
    return out if bias is None else out + bias.reshape(cs)


# ---- normalize -----------------------------------------------------------------------------------------
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Tensor | None = None) -> Tensor:
    """``input / max(||input||_p, eps)`` along ``dim``."""
    if out is not None:
        raise NotImplementedError("normalize(out=...) is not supported by dtorch")
    denom = input.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(input)
    return input / denom

# CUDA: fused layer norm row kernels (dtorch/cuda/fused/layer_norm.py)
from ...cuda.fused import layer_norm as _cuda_layer_norm  # noqa: E402

_cuda_layer_norm.install(_layer_norm)

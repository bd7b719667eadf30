"""Loss functions, each one graph node with a hand-written backward.

cross_entropy fuses log_softmax and nll_loss: its kernel keeps ``e = exp(x - max)`` and
the row sums, so the backward is one pass ``e * (coef / sum(e))`` plus a scatter at the
targets. Inputs ``(N, C, d1, ...)`` are turned into rows ``(N*d1*..., C)`` first.

Backward formulas are written against ``ns`` (see ``dtorch._dispatch``); where the fast
array path uses in-place scatters, the tensor path (``create_graph=True``) builds the
same gradient from recorded ops, so double backward works for every loss here.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..._dispatch import ARRAY_NS, apply, defop
from ..._device import xp_of
from ...tensor import Tensor, _make

__all__ = [
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
]

_REDUCTIONS = ("none", "mean", "sum")


# ---- reduction helpers -------------------------------------------------------------------------------
def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    """torch's mapping of the deprecated size_average/reduce flags to ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn("size_average and reduce args will be deprecated, please use reduction='"
                  f"{_legacy_string(size_average, reduce)}' instead.", UserWarning, stacklevel=3)
    return _legacy_string(size_average, reduce)


def _legacy_string(size_average, reduce) -> str:
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(l, reduction: str):
    """Reduce an array of elementwise losses (kernels only)."""
    if reduction == "none":
        return l
    xp = xp_of(l)
    return xp.asarray(l.sum() if reduction == "sum" else l.mean(), dtype=l.dtype)


def _grad_scale(g, reduction: str, n: int):
    """The upstream gradient as a factor of each element's derivative."""
    return g * (1.0 / n) if reduction == "mean" else g


def _const(ns, arr):
    """A non-differentiable constant for a backward formula: an array, or a Tensor in tensor mode."""
    return arr if ns is ARRAY_NS else _make(arr)


# ---- nll_loss / cross_entropy on rows (M, C) ------------------------------------------------------------
def _check_targets(t, valid, c: int) -> None:
    if type(t) is np.ndarray and t.size:
        tv = t[valid]
        if tv.size and (tv.min() < 0 or tv.max() >= c):
            bad = tv[(tv < 0) | (tv >= c)][0]
            raise IndexError(f"Target {bad} is out of bounds.")


def _target_weights(t, w, valid, dtype):
    """(w[t] masked by valid, their sum): the per-row weight and the 'mean' denominator."""
    xp = xp_of(t)
    tc = xp.where(valid, t, 0)
    wt = w[tc] if w is not None else xp.ones(t.shape, dtype)
    wt = wt * valid
    return tc, wt.astype(dtype, copy=False), xp.asarray(wt.sum(dtype=dtype))


@defop("nll_loss", save=(1, 2), extra=True)
def _nll_loss(x, t, w, reduction, ignore_index):
    valid = t != ignore_index
    _check_targets(t, valid, x.shape[1])
    tc, wt, denom = _target_weights(t, w, valid, x.dtype)
    rows = -x[xp_of(x).arange(x.shape[0]), tc] * wt
    out = _reduce(rows, "sum") / denom if reduction == "mean" else _reduce(rows, reduction)
    return out, (tc, wt, denom)


@_nll_loss.backward
def _nll_loss_bw(ns, ctx, g, t, w):
    tc, wt, denom = ctx._extra
    red = ctx._args["reduction"]
    shape = ctx._in_meta[0][0]
    xp = xp_of(tc)
    coef = -wt / denom if red == "mean" else -wt
    dense = xp.zeros(shape, wt.dtype)
    dense[xp.arange(shape[0]), tc] = coef
    gg = g if red != "none" else ns.reshape(g, shape=(shape[0], 1))
    return gg * _const(ns, dense), None, None


@defop("cross_entropy_loss", save=(0, 1, 2), extra=True)
def _cross_entropy(x, t, w, reduction, ignore_index, label_smoothing):
    xp = xp_of(x)
    m, c = x.shape
    valid = t != ignore_index
    _check_targets(t, valid, c)
    tc, wt, denom = _target_weights(t, w, valid, x.dtype)
    s = x - x.max(axis=1, keepdims=True)
    s_t = s[xp.arange(m), tc]
    eps = label_smoothing
    if eps:
        sum_ws = s.sum(axis=1) if w is None else s @ w
    xp.exp(s, out=s)  # s is now e = exp(x - max)
    se = s.sum(axis=1)
    lse = xp.log(se)
    rows = (lse - s_t) * wt
    if eps:
        wsum = float(c) if w is None else w.sum()
        smooth = (lse * wsum - sum_ws) * valid
        rows = rows * (1 - eps) + smooth * (eps / c)
    out = _reduce(rows, "sum") / denom if reduction == "mean" else _reduce(rows, reduction)
    return out.astype(x.dtype, copy=False), (s, se, tc, wt, denom)


@_cross_entropy.backward
def _cross_entropy_bw(ns, ctx, g, x, t, w):
    # d loss_i / d x_ic = p_ic * a_i - T_ic with T the (smoothed, weighted) target distribution
    # of row i and a_i its sum; ignored rows have T = 0 and a = 0.
    e, se, tc, wt, denom = ctx._extra
    red, eps = ctx._args["reduction"], ctx._args["label_smoothing"]
    m, c = ctx._in_meta[0][0]
    xp = xp_of(e)
    valid = (_data(t) != ctx._args["ignore_index"]).astype(e.dtype)
    wd = None if w is None else _data(w)
    wsum = float(c) if wd is None else wd.sum()
    a = wt * (1 - eps) + valid * (eps * wsum / c)
    coef = g / _const(ns, denom) if red == "mean" else g
    if red == "none":
        coef = ns.reshape(coef, shape=(m, 1))
    rows = xp.arange(m)
    if ns is ARRAY_NS:
        grad = e * (a / se)[:, None]
        grad[rows, tc] -= wt * (1 - eps)
        if eps:
            grad -= (valid * (eps / c))[:, None] * (1.0 if wd is None else wd[None, :])
        return grad * coef, None, None
    target = xp.zeros((m, c), e.dtype)
    target[rows, tc] = wt * (1 - eps)
    if eps:
        target += (valid * (eps / c))[:, None] * (1.0 if wd is None else wd[None, :])
    p = ns.softmax(x, dim=1)
    return (p * _make(a[:, None]) - _make(target)) * coef, None, None


def _data(t):
    return t._data if isinstance(t, Tensor) else t


@defop("cross_entropy_probs", save=(1, 2), extra=True)
def _cross_entropy_probs(x, y, w, reduction, label_smoothing):
    xp = xp_of(x)
    c = x.shape[1]
    s = x - x.max(axis=1, keepdims=True)
    logp = s - xp.log(xp.exp(s).sum(axis=1, keepdims=True))
    yt = y * (1 - label_smoothing) + label_smoothing / c if label_smoothing else y
    wy = yt * w if w is not None else yt
    rows = -(logp * wy).sum(axis=1)
    return _reduce(rows, reduction).astype(x.dtype, copy=False), (logp, )


@_cross_entropy_probs.backward
def _cross_entropy_probs_bw(ns, ctx, g, y, w):
    (logp,) = ctx._extra
    red, eps = ctx._args["reduction"], ctx._args["label_smoothing"]
    m, c = logp.shape
    coef = _grad_scale(g, red, m)
    if red == "none":
        coef = ns.reshape(coef, shape=(m, 1))
    lp = _const(ns, logp)
    yt = y * (1 - eps) + eps / c if eps else y
    wy = yt * w if w is not None else yt
    gx = (ns.exp(lp) * ns.sum(wy, dim=(1,), keepdim=True) - wy) * coef
    gy = -(lp * w if w is not None else lp) * (coef * (1 - eps))
    return gx, gy, None


def _as_rows(input: Tensor, target: Tensor, probs: bool):
    """(rows (M, C), targets (M,) or (M, C), output shape for reduction='none')."""
    if input.ndim == 1:
        return input.reshape(1, -1), target.reshape(1, -1) if probs else target.reshape(1), ()
    if input.ndim == 2:
        return input, target, (input.shape[0],)
    c = input.shape[1]
    rows = input.movedim(1, -1).reshape(-1, c)
    t = target.movedim(1, -1).reshape(-1, c) if probs else target.reshape(-1)
    return rows, t, tuple(input.shape[:1]) + tuple(input.shape[2:])


def _check_class_target(input: Tensor, target: Tensor) -> None:
    if target.dtype.is_floating_point:
        return
    expected = tuple(input.shape[:1]) + tuple(input.shape[2:]) if input.ndim > 1 else ()
    if tuple(target.shape) != expected:
        if input.ndim >= 2 and target.ndim >= 1 and target.shape[0] != input.shape[0]:
            raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                             f"({target.shape[0]}).")
        raise RuntimeError(f"Expected target size {list(expected)}, got "
                           f"{list(target.shape)}")


def _class_weight(weight: Tensor | None, c: int) -> Tensor | None:
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != c):
        raise RuntimeError(f"weight tensor should be defined either for all {c} classes or no classes but got "
                           f"weight tensor of shape: {list(weight.shape)}")
    return weight


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over dim 1 and the negative log likelihood, fused in one node."""
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    weight = _class_weight(weight, c)
    probs = target.dtype.is_floating_point
    if probs and tuple(target.shape) != tuple(input.shape):
        raise RuntimeError(f"Expected input and target to have the same shape for class-probability targets, "
                           f"got {list(input.shape)} and {list(target.shape)}")
    _check_class_target(input, target)
    rows, t, none_shape = _as_rows(input, target, probs)
    if probs:
        out, _ = apply(_cross_entropy_probs, (rows, t, weight),
                       {"reduction": reduction, "label_smoothing": float(label_smoothing)})
    else:
        out, _ = apply(_cross_entropy, (rows, t, weight),
                       {"reduction": reduction, "ignore_index": int(ignore_index),
                        "label_smoothing": float(label_smoothing)})
    return out.reshape(none_shape) if reduction == "none" else out


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log likelihood of class-index targets given log-probabilities over dim 1."""
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    weight = _class_weight(weight, c)
    _check_class_target(input, target)
    rows, t, none_shape = _as_rows(input, target, False)
    out, _ = apply(_nll_loss, (rows, t, weight), {"reduction": reduction, "ignore_index": int(ignore_index)})
    return out.reshape(none_shape) if reduction == "none" else out


# ---- elementwise losses -----------------------------------------------------------------------------------
def _elementwise_loss(name: str, elem, derivs, n_params=()):
    """Register ``name``: a loss l(x, y) per element, times an optional weight, then reduced.

    elem(xp, x, y, **params) -> losses; derivs(ns, x, y, **params) -> (dl/dx, dl/dy), written
    against ``ns`` so they are differentiable again.
    """
    op = defop(name, save=(0, 1, 2))

    def fwd(x, y, w, reduction, **params):
        l = elem(xp_of(x), x, y, **params)
        if w is not None:
            l = l * w
        return _reduce(l.astype(x.dtype, copy=False), reduction)

    def bw(ns, ctx, g, x, y, w):
        args = dict(ctx._args)
        red = args.pop("reduction")
        dx, dy = derivs(ns, x, y, **args)
        n = math.prod(np.broadcast_shapes(tuple(x.shape), tuple(y.shape),
                                          tuple(w.shape) if w is not None else ()))
        scale = _grad_scale(g, red, n)
        if w is not None:
            scale = scale * w
        need = ctx.needs_input_grad
        return (dx * scale if need[0] else None, dy * scale if need[1] and dy is not None else None, None)

    op = op(fwd)
    op.backward(bw)
    return op


def _warn_size(input: Tensor, target: Tensor) -> None:
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. Please ensure they have the "
                      "same size.", UserWarning, stacklevel=3)


def _run_elementwise(op, input: Tensor, target: Tensor, weight, reduction: str, **params) -> Tensor:
    if not isinstance(target, Tensor):
        raise TypeError(f"expected target to be a Tensor, got {type(target).__name__}")
    return apply(op, (input, target, weight), {"reduction": _check_reduction(reduction), **params})


_mse = _elementwise_loss("mse_loss", lambda xp, x, y: (x - y) * (x - y),
                         lambda ns, x, y: (2 * (x - y), -2 * (x - y)))
_l1 = _elementwise_loss("l1_loss", lambda xp, x, y: abs(x - y),
                        lambda ns, x, y: (ns.sign(x - y), -ns.sign(x - y)))


def _smooth_l1_elem(xp, x, y, beta):
    d = xp.abs(x - y)
    if beta == 0:
        return d
    return xp.where(d < beta, (0.5 / beta) * d * d, d - 0.5 * beta)


def _smooth_l1_derivs(ns, x, y, beta):
    d = x - y
    dx = ns.sign(d) if beta == 0 else ns.clamp(d * (1.0 / beta), min=-1.0, max=1.0)
    return dx, -dx


def _huber_elem(xp, x, y, delta):
    d = xp.abs(x - y)
    return xp.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))


def _huber_derivs(ns, x, y, delta):
    dx = ns.clamp(x - y, min=-delta, max=delta)
    return dx, -dx


_smooth_l1 = _elementwise_loss("smooth_l1_loss", _smooth_l1_elem, _smooth_l1_derivs)
_huber = _elementwise_loss("huber_loss", _huber_elem, _huber_derivs)


def _bce_elem(xp, x, y):
    log_x = xp.maximum(xp.log(x), -100)
    log_1mx = xp.maximum(xp.log1p(-x), -100)
    return -(y * log_x + (1 - y) * log_1mx)


def _bce_derivs(ns, x, y):
    dx = (x - y) / ns.clamp((1 - x) * x, min=1e-12)
    dy = ns.clamp(ns.log1p(-x), min=-100.0) - ns.clamp(ns.log(x), min=-100.0)
    return dx, dy


_bce = _elementwise_loss("binary_cross_entropy", _bce_elem, _bce_derivs)


def _kl_elem(xp, x, y, log_target):
    if log_target:
        return xp.exp(y) * (y - x)
    safe = xp.where(y > 0, y, 1)
    return xp.where(y > 0, y * xp.log(safe), 0) - y * x


def _kl_derivs(ns, x, y, log_target):
    if log_target:
        ey = ns.exp(y)
        return -ey, ey * (y - x + 1)
    return -y, ns.log(y) + 1 - x


_kl = _elementwise_loss("kl_div", _kl_elem, _kl_derivs)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
             weight: Tensor | None = None) -> Tensor:
    """Mean squared error ``(input - target)^2``, reduced."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _warn_size(input, target)
    return _run_elementwise(_mse, input, target, weight, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
            weight: Tensor | None = None) -> Tensor:
    """Mean absolute error ``|input - target|``, reduced."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _warn_size(input, target)
    return _run_elementwise(_l1, input, target, weight, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """Squared below ``beta`` (scaled by 1/beta), absolute above."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _warn_size(input, target)
    return _run_elementwise(_smooth_l1, input, target, None, reduction, beta=float(beta))


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """Squared below ``delta``, ``delta``-scaled absolute above."""
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _warn_size(input, target)
    return _run_elementwise(_huber, input, target, weight, reduction, delta=float(delta))


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """``-(y log x + (1 - y) log(1 - x))`` with the logs clamped at -100, as torch."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    d = input._data
    if d.size and bool(((d < 0) | (d > 1)).any()):
        raise RuntimeError("all elements of input should be between 0 and 1")
    return _run_elementwise(_bce, input, target, weight, reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence of ``target`` from ``exp(input)`` (input holds log-probabilities)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=2)
    if reduction == "batchmean":
        total = apply(_kl, (input, target, None), {"reduction": "sum", "log_target": bool(log_target)})
        return total / input.shape[0] if input.ndim else total
    return _run_elementwise(_kl, input, target, None, reduction, log_target=bool(log_target))


# ---- binary_cross_entropy_with_logits ---------------------------------------------------------------------
def _softplus_neg(xp, x):
    """log(1 + exp(-x)), stable for any x."""
    return xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)


@defop("binary_cross_entropy_with_logits", save=(0, 1, 2, 3))
def _bce_logits(x, y, w, pw, reduction):
    xp = xp_of(x)
    sp = _softplus_neg(xp, x)
    l = (1 - y) * x + (sp if pw is None else (1 + (pw - 1) * y) * sp)
    if w is not None:
        l = l * w
    return _reduce(l.astype(x.dtype, copy=False), reduction)


@_bce_logits.backward
def _bce_logits_bw(ns, ctx, g, x, y, w, pw):
    red = ctx._args["reduction"]
    shapes = [tuple(t.shape) for t in (x, y, w, pw) if t is not None]
    scale = _grad_scale(g, red, math.prod(np.broadcast_shapes(*shapes)))
    if w is not None:
        scale = scale * w
    s = ns.sigmoid(x)
    need = ctx.needs_input_grad
    if pw is None:
        gx = (s - y) * scale if need[0] else None
        gy = -x * scale if need[1] else None
    else:
        gx = ((1 + (pw - 1) * y) * s - pw * y) * scale if need[0] else None
        gy = ((pw - 1) * ns.softplus(-x) - x) * scale if need[1] else None
    return gx, gy, None, None  # torch: weight and pos_weight are not differentiable


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Sigmoid and binary cross entropy fused, computed stably from the logits."""
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    return apply(_bce_logits, (input, target, weight, pos_weight), {"reduction": reduction})

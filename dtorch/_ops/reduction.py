"""Reductions: sum, mean, prod, var/std, logsumexp, norm, cumsum/cumprod, all/any/count_nonzero, and the
helpers every reduction shares (dims, keepdim, the gradient's shape). Max/min live in extrema.py.
"""
from __future__ import annotations

import builtins
import math
import warnings

import numpy as np

from .. import _dtype
from .._device import xp_of
from .._dispatch import apply_unary, defop, tensor_fn
from ..tensor import Tensor, _make, _wrap_dim
from ._helpers import attach, dims_tuple
from .convert import float_input, to_dtype

__all__ = [
    "sum",
    "mean",
    "prod",
    "var",
    "std",
    "var_mean",
    "std_mean",
    "logsumexp",
    "norm",
    "cumsum",
    "cumprod",
    "all",
    "any",
    "count_nonzero",
]


# ---- shared helpers ---------------------------------------------------------------------------
def _dims(input: Tensor, dim):
    """Reduction dims as None (all) or a sorted tuple; a 0-d tensor accepts dim 0/-1 and reduces nothing."""
    dims = dims_tuple(dim, input._data.ndim)
    return None if input._data.ndim == 0 else dims


def _one_dim(input: Tensor, dim) -> int:
    """A single dim for ops that take one (max(dim), cumsum...); 0 for a 0-d tensor."""
    nd = input._data.ndim
    d = _wrap_dim(int(dim), nd)
    return d if nd else 0


def _count(shape: tuple, dims) -> int:
    """How many elements each output element of a reduction over ``dims`` combines."""
    return math.prod(shape) if dims is None else math.prod(shape[d] for d in dims)


def _unsqueeze_back(g, shape, dims, keepdim: bool):
    """Reshape a reduced gradient so it broadcasts against the input ``shape``."""
    if keepdim or dims is None:
        if dims is None and not keepdim:
            return g.reshape((1,) * len(shape)) if len(shape) else g
        return g
    kept = list(shape)
    for d in dims:
        kept[d] = 1
    return g.reshape(tuple(kept))


def _as_array(a, r):
    """numpy reductions return scalars for 0-d results; keep arrays of ``a``'s module."""
    return r if type(r) is type(a) else xp_of(a).asarray(r)


def _data(x):
    return x._data if isinstance(x, Tensor) else x


def _has_zero(x) -> bool:
    return bool((_data(x) == 0).any())


def _has_nan(x) -> bool:
    d = _data(x)
    return d.dtype.kind in "fV" and bool(xp_of(d).isnan(d).any())


def _const(ref, arr: np.ndarray):
    """A constant like ``ref`` (same device and dtype): a Tensor in tensor mode, else an array."""
    d = _data(ref)
    c = xp_of(d).asarray(arr, dtype=d.dtype)
    return _make(c) if isinstance(ref, Tensor) else c


def _check_nonempty(name: str, input: Tensor, dims) -> None:
    """torch's errors for max/min/argmax-like reductions over nothing."""
    shape = input._data.shape
    if dims is None:
        if input._data.size == 0:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                               "Specify the reduction dim with the 'dim' argument.")
        return
    for d in dims:
        if input._data.ndim and shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


def _accumulate_dtype(input: Tensor, dtype):
    """The numpy dtype sum/prod/cumsum/cumprod accumulate in: ``dtype``, else int64 for integers and bools
    (as torch), else None (the input's)."""
    if dtype is not None:
        return _dtype.to_dtype(dtype).np
    return np.dtype(np.int64) if input._data.dtype.kind in "biu" else None


def _reduced_params(dims, keepdim: bool, **extra) -> dict | None:
    params = {k: v for k, v in extra.items() if v is not None}
    if dims is not None or keepdim:
        params.update(dim=dims, keepdim=keepdim)
    return params or None


# ---- sum -----------------------------------------------------------------------------------
@defop("sum")
def _sum(a, dim=None, keepdim=False, dtype=None):
    return _as_array(a, a.sum(axis=dim, keepdims=keepdim, dtype=dtype))


@_sum.backward
def _sum_bw(ns, ctx, g):
    shape = ctx._in_meta[0][0]
    args = ctx._args or {}
    g = _unsqueeze_back(g, shape, args.get("dim"), args.get("keepdim", False))
    return (ns.expand(g, shape=shape),)


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    # float input without dtype: no _accumulate_dtype call (sum is the hottest reduction)
    np_dtype = None if dtype is None and input._data.dtype.kind in "fV" else _accumulate_dtype(input, dtype)
    return apply_unary(_sum, input, _reduced_params(_dims(input, dim), keepdim, dtype=np_dtype))


tensor_fn("sum", sum)


# ---- mean ----------------------------------------------------------------------------------
@defop("mean")
def _mean(a, dim=None, keepdim=False, dtype=None):
    r = a.mean(axis=dim, keepdims=keepdim, dtype=dtype)
    return r if type(r) is type(a) else xp_of(a).asarray(r, dtype=a.dtype if dtype is None else dtype)


@_mean.backward
def _mean_bw(ns, ctx, g):
    shape = ctx._in_meta[0][0]
    args = ctx._args or {}
    dims = args.get("dim")
    g = _unsqueeze_back(g, shape, dims, args.get("keepdim", False))
    return (ns.expand(g / _count(shape, dims), shape=shape),)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if input._data.dtype.kind not in "fVc" and dtype is None:
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point or complex "
            f"dtype. Got: {input.dtype.scalar_name}"
        )
    dims = _dims(input, dim)
    np_dtype = _dtype.to_dtype(dtype).np if dtype is not None else None
    return apply_unary(_mean, input, _reduced_params(dims, keepdim, dtype=np_dtype))


tensor_fn("mean", mean)


# ---- prod ----------------------------------------------------------------------------------
@defop("prod", save=(0,), save_out=True)
def _prod(a, dim=None, keepdim=False, dtype=None):
    return _as_array(a, a.prod(axis=dim, keepdims=keepdim, dtype=dtype))


def _prod_others_array(a, d: int):
    """prod of a's slice along d without element i, at i; exact with zeros, O(n)."""
    xp = xp_of(a)
    z = a == 0
    count = z.sum(axis=d, keepdims=True)
    safe = xp.where(z, 1, a)
    p = safe.prod(axis=d, keepdims=True)
    return xp.where(z, p * (count == 1), p / safe * (count == 0))


def _prod_others_graph(ns, a: Tensor, d: int) -> Tensor:
    """Differentiable prod-of-the-others (for double backward through zeros): one row per i with a_i -> 1."""
    shp = tuple(a.shape)
    n = shp[d]
    rows = ns.reshape(a, shape=shp[:d] + (1,) + shp[d:])  # dim d indexes i, dim d+1 the factors m
    eye = _const(a, np.eye(n).reshape((n, n) + (1,) * (len(shp) - d - 1)))
    return ns.prod(rows * (1 - eye) + eye, dim=(d + 1,))


@_prod.backward
def _prod_bw(ns, ctx, g, a, out):
    shape = ctx._in_meta[0][0]
    args = ctx._args or {}
    dims, keep = args.get("dim"), args.get("keepdim", False)
    if not shape:
        return (g,)
    g = _unsqueeze_back(g, shape, dims, keep)
    if not _has_zero(a):
        return (g * _unsqueeze_back(out, shape, dims, keep) / a,)
    flat = dims is None
    if flat:
        a = ns.reshape(a, shape=(math.prod(shape),))
    d = 0 if flat else dims[0]
    others = _prod_others_graph(ns, a, d) if isinstance(a, Tensor) else _prod_others_array(a, d)
    if flat:
        others = ns.reshape(others, shape=shape)
    return (g * others,)



def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    return apply_unary(_prod, input, _reduced_params(_dims(input, dim), keepdim, dtype=_accumulate_dtype(input, dtype)))


tensor_fn("prod", prod)


# ---- var / std -------------------------------------------------------------------------------
def _var_array(a, dim, correction, keepdim: bool):
    xp = xp_of(a)
    n = _count(a.shape, dim)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = a - a.sum(axis=dim, keepdims=True) / n
        ss = ((dev * dev) if dev.dtype.kind != "c" else (dev * dev.conj()).real).sum(axis=dim, keepdims=keepdim)
        return xp.asarray(ss / builtins.max(n - correction, 0), dtype=a.real.dtype)  # complex: a real variance


@defop("var", save=(0,))
def _var(a, dim=None, correction=1, keepdim=False):
    return _var_array(a, dim, correction, keepdim)


def _var_grad(ns, ctx, g, a):
    """d var / d a = 2 (a - mean) / (N - correction), as torch's var_backward."""
    shape = ctx._in_meta[0][0]
    args = ctx._args
    dims, keep = args["dim"], args["keepdim"]
    dof = builtins.max(_count(shape, dims) - args["correction"], 0)
    scale = 2.0 / dof if dof else math.inf
    g = _unsqueeze_back(g, shape, dims, keep)
    return g * scale * (a - ns.mean(a, dim=dims, keepdim=True))


@_var.backward
def _var_bw(ns, ctx, g, a):
    return (_var_grad(ns, ctx, g, a),)


@defop("std", save=(0,), save_out=True)
def _std(a, dim=None, correction=1, keepdim=False):
    return xp_of(a).sqrt(_var_array(a, dim, correction, keepdim))


@_std.backward
def _std_bw(ns, ctx, g, a, out):
    # d std = d var / (2 std); torch defines it as 0 where std == 0
    zero = out == 0
    return (_var_grad(ns, ctx, g * (out != 0) / (2 * (out + zero)), a),)


def _var_args(name: str, input: Tensor, dim, unbiased, correction) -> tuple:
    """(dims, correction) from torch's var/std overloads: var(x, unbiased), var(x, dim, unbiased, keepdim)."""
    if input._data.dtype.kind not in "fVc":
        raise RuntimeError("std and var only support floating point and complex dtypes")
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}(): pass either unbiased or correction, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    dims = _dims(input, dim)
    if _count(input._data.shape, dims) - correction <= 0:
        warnings.warn(f"{name}(): degrees of freedom is <= 0. Correction should be strictly less than the "
                      "reduction factor (input numel divided by output numel).", UserWarning, stacklevel=3)
    return dims, correction


def var(input: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction=None) -> Tensor:
    dims, corr = _var_args("var", input, dim, unbiased, correction)
    return apply_unary(_var, input, {"dim": dims, "correction": corr, "keepdim": keepdim})


def std(input: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction=None) -> Tensor:
    dims, corr = _var_args("std", input, dim, unbiased, correction)
    return apply_unary(_std, input, {"dim": dims, "correction": corr, "keepdim": keepdim})


def var_mean(input: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
             correction=None) -> tuple:
    dims, corr = _var_args("var_mean", input, dim, unbiased, correction)
    v = apply_unary(_var, input, {"dim": dims, "correction": corr, "keepdim": keepdim})
    return v, mean(input, dims, keepdim)


def std_mean(input: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
             correction=None) -> tuple:
    dims, corr = _var_args("std_mean", input, dim, unbiased, correction)
    s = apply_unary(_std, input, {"dim": dims, "correction": corr, "keepdim": keepdim})
    return s, mean(input, dims, keepdim)


# ---- logsumexp ---------------------------------------------------------------------------------
@defop("logsumexp", save=(0,), save_out=True)
def _logsumexp(a, dim=None, keepdim=False):
    xp = xp_of(a)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if a.size == 0:
            return _as_array(a, xp.log(xp.exp(a).sum(axis=dim, keepdims=keepdim)))
        m = a.max(axis=dim, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # slices of infinities: no shift
        r = xp.log(xp.exp(a - m).sum(axis=dim, keepdims=True)) + m
    if keepdim:
        return r
    return r.reshape(()) if dim is None else r.squeeze(axis=dim)


@_logsumexp.backward
def _logsumexp_bw(ns, ctx, g, a, out):
    shape = ctx._in_meta[0][0]
    args = ctx._args or {}
    dims, keep = args.get("dim"), args.get("keepdim", False)
    g = _unsqueeze_back(g, shape, dims, keep)
    return (g * ns.exp(a - _unsqueeze_back(out, shape, dims, keep)),)


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    input = float_input(input)
    return apply_unary(_logsumexp, input, _reduced_params(_dims(input, dim), keepdim))


tensor_fn("logsumexp", logsumexp)


# ---- norm ------------------------------------------------------------------------------------
@defop("norm", save=(0,), save_out=True)
def _norm(a, p=2.0, dim=None, keepdim=False):
    xp = xp_of(a)
    kw = {"axis": dim, "keepdims": keepdim}
    if p == 2:
        r = xp.sqrt((a * a if a.dtype.kind != "c" else (a * a.conj()).real).sum(**kw))
    elif p == math.inf:
        r = xp.abs(a).max(**kw)
    elif p == -math.inf:
        r = xp.abs(a).min(**kw)
    elif p == 0:
        r = (a != 0).sum(**kw).astype(a.real.dtype)
    elif p == 1:
        r = xp.abs(a).sum(**kw)
    else:
        with np.errstate(divide="ignore"):
            r = (xp.abs(a) ** p).sum(**kw) ** (1.0 / p)
    return _as_array(a, r)


def _norm_bw(ns, ctx, g, a, out):
    """torch's norm_backward, with 0 where the norm (or a needed power of an input) is 0."""
    shape = ctx._in_meta[0][0]
    args = ctx._args
    p, dims, keep = args["p"], args["dim"], args["keepdim"]
    if p == 0:
        return (None,)
    g = _unsqueeze_back(g, shape, dims, keep)
    if p == 1:
        return (g * ns.sign(a),)
    out = _unsqueeze_back(out, shape, dims, keep)
    if math.isinf(p):
        mag = ns.abs(a)
        mask = (mag == out) | ns.isnan(mag)
        return (ns.sign(a) * (g / ns.sum(mask, dim=dims, keepdim=True)) * mask,)
    nonzero = out != 0
    safe_out = out + (out == 0)
    if p == 2:
        return (g * a / safe_out * nonzero,)
    if p < 1:
        mag = ns.abs(a) + (a == 0)  # |a|**(p-1) is infinite at 0: torch masks it to 0
        scaled = ns.sign(a) * mag ** (p - 1) * (a != 0)
        return (scaled * g * out ** (1 - p),)
    if p < 2:
        scaled = ns.sign(a) * ns.abs(a) ** (p - 1)
    else:
        scaled = a * ns.abs(a) ** (p - 2)
    return (scaled * (g / safe_out ** (p - 1) * nonzero),)


_norm.backward(_norm_bw, "LinalgVectorNormBackward0")


def _norm_p(p) -> float:
    if p is None or p == "fro":
        return 2.0
    if p == "nuc":
        raise NotImplementedError("norm(p='nuc') (the nuclear norm) is not supported by dtorch")
    if isinstance(p, str):
        raise RuntimeError(f"norm(): unsupported p {p!r}")
    return float(p)


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, out=None, dtype=None) -> Tensor:
    if out is not None:
        raise NotImplementedError("norm(out=...) is not supported by dtorch")
    if dtype is not None:
        input = to_dtype(input, _dtype.to_dtype(dtype))
    if input._data.dtype.kind not in "fVc":
        raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
                           f"{input.dtype.scalar_name}")
    pv = _norm_p(p)
    dims = _dims(input, dim)
    if math.isinf(pv) and (input._data.size == 0 if dims is None else
                           builtins.any(input._data.shape[d] == 0 for d in dims)):
        raise RuntimeError("linalg.vector_norm cannot compute the inf norm on an empty tensor because the "
                           "operation does not have an identity")
    return apply_unary(_norm, input, {"p": pv, "dim": dims, "keepdim": keepdim})


tensor_fn("norm", norm)


# ---- cumsum / cumprod ------------------------------------------------------------------------------
@defop("cumsum")
def _cumsum(a, dim, dtype=None, reverse=False):
    xp = xp_of(a)
    if a.ndim == 0:
        return a.astype(dtype or a.dtype, copy=True)
    if reverse:  # sums from the end: the adjoint of a forward cumsum
        return xp.ascontiguousarray(xp.flip(xp.cumsum(xp.flip(a, dim), axis=dim, dtype=dtype), dim))
    return xp.cumsum(a, axis=dim, dtype=dtype)


@_cumsum.backward
def _cumsum_bw(ns, ctx, g):
    args = ctx._args
    return (ns.cumsum(g, dim=args["dim"], reverse=not args.get("reverse", False)),)


@defop("cumprod", save=(0,), save_out=True)
def _cumprod(a, dim, dtype=None):
    return a.astype(dtype or a.dtype, copy=True) if a.ndim == 0 else xp_of(a).cumprod(a, axis=dim, dtype=dtype)


def _cumprod_grad_array(g, a, out, d: int):
    """Exact cumprod gradient with zeros, O(n): only inputs up to a slice's first zero get one."""
    xp = xp_of(a)
    z = a == 0
    zeros_so_far = xp.cumsum(z, axis=d)
    first = z & (zeros_so_far == 1)
    before = _cumsum.default(g * out, d, reverse=True) / xp.where(z, 1, a) * (zeros_so_far == 0)
    # at the first zero k: sum_{j>=k} g_j prod_{m<=j, m!=k} a_m, i.e. the cumprod with a_k set to 1
    skip_k = xp.cumprod(xp.where(first, 1, a), axis=d)
    return before + _cumsum.default(g * skip_k, d, reverse=True) * first


def _cumprod_grad_graph(ns, g: Tensor, a: Tensor, d: int) -> Tensor:
    """Differentiable cumprod gradient with zeros (double backward): O(n^2), one row per input i."""
    shp = tuple(a.shape)
    n = shp[d]
    trailing = (1,) * (len(shp) - d - 1)
    rows = ns.reshape(a, shape=shp[:d] + (1,) + shp[d:])  # dim d indexes i, dim d+1 the position j
    eye = _const(a, np.eye(n).reshape((n, n) + trailing))
    skip_i = ns.cumprod(rows * (1 - eye) + eye, dim=d + 1)  # prod_{m<=j, m!=i} a_m
    upper = _const(a, np.triu(np.ones((n, n))).reshape((n, n) + trailing))  # j >= i
    gj = ns.reshape(g, shape=shp[:d] + (1,) + shp[d:])
    return ns.sum(gj * skip_i * upper, dim=(d + 1,))


@_cumprod.backward
def _cumprod_bw(ns, ctx, g, a, out):
    d = ctx._args["dim"]
    if not ctx._in_meta[0][0]:
        return (g,)
    if not _has_zero(a):
        return (ns.cumsum(g * out, dim=d, reverse=True) / a,)
    if isinstance(g, Tensor):
        return (_cumprod_grad_graph(ns, g, a, d),)
    return (_cumprod_grad_array(g, a, out, d),)


def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    d = _one_dim(input, dim)
    np_dtype = _accumulate_dtype(input, dtype)
    return apply_unary(_cumsum, input, {"dim": d, "dtype": np_dtype} if np_dtype is not None else {"dim": d})


def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    d = _one_dim(input, dim)
    np_dtype = _accumulate_dtype(input, dtype)
    return apply_unary(_cumprod, input, {"dim": d, "dtype": np_dtype} if np_dtype is not None else {"dim": d})


tensor_fn("cumprod", cumprod)


# ---- all / any / count_nonzero (not differentiable) -----------------------------------------------
def _logical_reduce(fn_name: str):
    def kernel(a, dim=None, keepdim=False):
        r = _as_array(a, getattr(xp_of(a), fn_name)(a, axis=dim, keepdims=keepdim))
        return r.astype(np.uint8) if a.dtype == np.uint8 else r  # torch keeps uint8 for uint8 input

    return kernel


_all = defop("all")(_logical_reduce("all"))
_any = defop("any")(_logical_reduce("any"))


def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return apply_unary(_all, input, _reduced_params(_dims(input, dim), keepdim))


def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return apply_unary(_any, input, _reduced_params(_dims(input, dim), keepdim))


@defop("count_nonzero")
def _count_nonzero(a, dim=None):
    return xp_of(a).asarray((a != 0).sum(axis=dim), dtype=np.int64)


def count_nonzero(input: Tensor, dim=None) -> Tensor:
    dims = _dims(input, dim)
    return apply_unary(_count_nonzero, input, {"dim": dims} if dims is not None else None)


attach(__name__, {
    "sum": sum, "mean": mean, "prod": prod, "var": var, "std": std, "logsumexp": logsumexp, "norm": norm,
    "cumsum": cumsum, "cumprod": cumprod, "all": all, "any": any, "count_nonzero": count_nonzero,
})

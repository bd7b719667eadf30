"""Sorting and selection: sort, argsort, msort, topk, kthvalue, median, nanmedian.

Ops that pick input elements return their indices as ``extra`` (kept on the node), and
their gradient scatters back through them (:func:`extrema.index_backward`). Order
follows torch: NaN sorts above every number; a descending sort is stable too.
"""
from __future__ import annotations

import numpy as np

from .._device import xp_of
from .._dispatch import apply_unary, defop
from ..tensor import Tensor, _make
from ._helpers import attach
from .extrema import evenly_backward, index_backward, return_type, values_indices
from .reduction import _check_nonempty, _one_dim

__all__ = [
    "sort",
    "argsort",
    "msort",
    "topk",
    "kthvalue",
    "median",
    "nanmedian",
]

_SortResult = return_type("sort")
_TopkResult = return_type("topk")
_KthvalueResult = return_type("kthvalue")
_MedianResult = return_type("median")
_NanmedianResult = return_type("nanmedian")


# ---- array helpers ---------------------------------------------------------------------------
def _stable_argsort(a, dim: int):
    xp = xp_of(a)
    if xp is np:
        return np.argsort(a, axis=dim, kind="stable")
    return xp.argsort(a, axis=dim)  # cupy's sort is a stable radix sort


def _argsort_array(a, dim: int, descending: bool):
    """Indices sorting ``a`` along dim (NaN last ascending, first descending; ties keep their order)."""
    xp = xp_of(a)
    if a.ndim == 0:
        return xp.zeros((), np.int64)
    if not descending:
        return _stable_argsort(a, dim).astype(np.int64, copy=False)
    # stable descending: sort the reversed input ascending, then reverse the order back
    n = a.shape[dim]
    r = _stable_argsort(xp.flip(a, dim), dim)
    return xp.ascontiguousarray(n - 1 - xp.flip(r, dim)).astype(np.int64, copy=False)


def _take(a, idx, dim: int):
    return a.copy() if a.ndim == 0 else xp_of(a).take_along_axis(a, idx, axis=dim)


def _first(idx, dim: int, count):
    """The first ``count`` entries of ``idx`` along dim."""
    if idx.ndim == 0:
        return idx
    sl = [slice(None)] * idx.ndim
    sl[dim] = slice(0, count)
    return idx[tuple(sl)]


def _pick(idx, dim: int, pos):
    """Entry ``pos`` (an int, or an int array in keepdim form) of ``idx`` along dim, in keepdim form."""
    if idx.ndim == 0:
        return idx
    if isinstance(pos, int):
        sl = [slice(None)] * idx.ndim
        sl[dim] = slice(pos, pos + 1)
        return idx[tuple(sl)]
    return xp_of(idx).take_along_axis(idx, pos.astype(np.int64), axis=dim)


def _index_bw(ns, ctx, g):
    args = ctx._args
    return (index_backward(ns, ctx, g, args["dim"], args.get("keepdim", True)),)


def _squeezed(vals, dim: int, keepdim: bool):
    return vals if keepdim or vals.ndim == 0 else vals.squeeze(dim)


# ---- sort / argsort ----------------------------------------------------------------------------
@defop("sort", extra=True)
def _sort(a, dim, descending=False):
    idx = _argsort_array(a, dim, descending)
    return _take(a, idx, dim), idx


_sort.backward(_index_bw)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) sorted along dim; the sort is always stable."""
    _no_complex(input, "Sort")
    d = _one_dim(input, dim)
    values, idx = apply_unary(_sort, input, {"dim": d, "descending": bool(descending)})
    return _SortResult(values, _make(idx))


@defop("argsort")
def _argsort(a, dim, descending=False):
    return _argsort_array(a, dim, descending)


def _no_complex(input: Tensor, what: str) -> None:
    if input._data.dtype.kind == "c":
        raise RuntimeError(f" {what} does not support complex dtypes on {'CPU' if input.is_cpu else 'CUDA'}")


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    _no_complex(input, "Sort")
    return apply_unary(_argsort, input, {"dim": _one_dim(input, dim), "descending": bool(descending)})


def msort(input: Tensor) -> Tensor:
    return sort(input, 0).values


# ---- topk ---------------------------------------------------------------------------------------
@defop("topk", extra=True)
def _topk(a, k, dim, largest=True, sorted=True):
    idx = _first(_argsort_array(a, dim, largest), dim, k)
    return _take(a, idx, dim), idx


_topk.backward(_index_bw)


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """The k largest (or smallest) elements along dim and their indices, in sorted order."""
    _no_complex(input, "topk")
    d = _one_dim(input, dim)
    size = input._data.shape[d] if input._data.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError("selected index k out of range")
    values, idx = apply_unary(_topk, input, {"k": int(k), "dim": d, "largest": bool(largest)})
    return _TopkResult(values, _make(idx))


# ---- kthvalue / median ----------------------------------------------------------------------------
@defop("kthvalue", extra=True)
def _kthvalue(a, k, dim, keepdim=False):
    idx = _pick(_argsort_array(a, dim, False), dim, k - 1)
    return _squeezed(_take(a, idx, dim), dim, keepdim), idx


_kthvalue.backward(_index_bw)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """The k-th smallest element (1-based) along dim and its index."""
    d = _one_dim(input, dim)
    _check_nonempty("kthvalue", input, (d,))
    size = input._data.shape[d] if input._data.ndim else 1
    if not 1 <= k <= size:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    return values_indices(_kthvalue, input, {"k": int(k), "dim": d, "keepdim": keepdim}, _KthvalueResult,
                          keepdim, d)


def _median_index(a, dim: int, ignore_nan: bool):
    """keepdim-form index of the lower median along dim; NaN propagates unless ignore_nan."""
    xp = xp_of(a)
    order = _argsort_array(a, dim, False)
    if a.ndim == 0:
        return order
    nan = xp.isnan(a) if a.dtype.kind in "fV" else xp.zeros(a.shape, bool)
    n_valid = a.shape[dim] - nan.sum(axis=dim, keepdims=True)
    if ignore_nan:  # NaN sorts last, so the lower median of the numbers sits at (n_valid - 1) // 2
        return _pick(order, dim, xp.maximum(n_valid - 1, 0) // 2)
    idx = _pick(order, dim, (a.shape[dim] - 1) // 2)
    first_nan = xp.expand_dims(xp.argmax(nan, axis=dim), dim)
    return xp.where(n_valid < a.shape[dim], first_nan, idx).astype(np.int64)


@defop("median_dim", extra=True)
def _median_dim(a, dim, keepdim=False, ignore_nan=False):
    idx = _median_index(a, dim, ignore_nan)
    return _squeezed(_take(a, idx, dim), dim, keepdim), idx


_median_dim.backward(_index_bw, "MedianBackward1")


@defop("median", save=(0,), save_out=True)
def _median_all(a, ignore_nan=False):
    flat = a.reshape(-1)
    return flat[_median_index(flat, 0, ignore_nan)].reshape(())


_median_all.backward(lambda ns, ctx, g, a, out: (evenly_backward(ns, ctx, g, a, out),), "MedianBackward0")


def _median(name: str, result_type, input: Tensor, dim, keepdim: bool, ignore_nan: bool):
    if dim is None:
        if input._data.size == 0:
            return _make(xp_of(input._data).full((), np.nan, input._data.dtype))
        return apply_unary(_median_all, input, {"ignore_nan": True} if ignore_nan else None)
    d = _one_dim(input, dim)
    _check_nonempty(name, input, (d,))
    params = {"dim": d, "keepdim": keepdim, "ignore_nan": ignore_nan}
    return values_indices(_median_dim, input, params, result_type, keepdim, d)


def median(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """Lower median: of all elements (a 0-d tensor), or along dim as (values, indices). NaN propagates."""
    return _median("median", _MedianResult, input, dim, keepdim, False)


def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """Like :func:`median`, ignoring NaN (NaN only where a slice has no numbers)."""
    return _median("nanmedian", _NanmedianResult, input, dim, keepdim, True)


attach(__name__, {
    "sort": sort, "argsort": argsort, "msort": msort, "topk": topk, "kthvalue": kthvalue, "median": median,
    "nanmedian": nanmedian,
})

"""pad, interpolate (nearest, linear, bilinear, trilinear; nearest-exact, area, bicubic in resample.py), upsample.

``pad``: constant padding is one op whose adjoint is itself with negated pads (a crop);
reflect/replicate/circular gather along each padded dim with an index vector, and their
adjoint folds the border gradients back onto their sources.
``interpolate``: nearest and (bi)linear are separable linear maps, one small matrix per
spatial dim (``resample`` in pooling.py, whose adjoint is the transposed matrices).
"""
from __future__ import annotations

import math

import numpy as np

from ..._dispatch import apply, defop
from ..._device import xp_of
from ...tensor import Tensor
from .pooling import linear_map
from .resample import MODES as _MATRIX_MODES

__all__ = ["pad", "interpolate", "upsample", "upsample_nearest", "upsample_bilinear"]


# ---- constant pad ----------------------------------------------------------------------------------
def _pairs_from_torch(pad, ndim: int) -> tuple:
    """torch's flat ``(last_lo, last_hi, prev_lo, prev_hi, ...)`` as ``(lo, hi)`` per dim, first dim first."""
    pairs = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        pairs[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return tuple(pairs)


@defop("constant_pad_nd")
def _constant_pad(x, pairs, value=0):
    xp = xp_of(x)
    src, dst, shape = [], [], []
    for n, (lo, hi) in zip(x.shape, pairs):
        shape.append(n + lo + hi)
        src.append(slice(max(0, -lo), n - max(0, -hi)))
        dst.append(slice(max(0, lo), max(0, lo) + n - max(0, -lo) - max(0, -hi)))
    if value == 0:
        out = xp.zeros(shape, x.dtype)
    else:
        out = xp.full(shape, value, x.dtype)
    out[tuple(dst)] = x[tuple(src)]
    return out


@_constant_pad.backward
def _constant_pad_bw(ns, ctx, g):
    return (ns.constant_pad_nd(g, pairs=tuple((-lo, -hi) for lo, hi in ctx._args["pairs"]), value=0),)


_constant_pad.backward(_constant_pad_bw, "ConstantPadNdBackward0")


# ---- reflect / replicate / circular: per-dim gathers -------------------------------------------------
def _source_index(n: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """For every padded position along a dim, the source position in the input."""
    j = np.arange(-lo, n + hi)
    if mode == "reflect":
        period = 2 * (n - 1)
        j = np.abs(j) % period if period else np.zeros_like(j)
        return np.where(j >= n, period - j, j)
    if mode == "replicate":
        return np.clip(j, 0, n - 1)
    return j % n  # circular


@defop("index_pad")
def _index_pad(x, index, lows):
    """Gather along the trailing ``len(index)`` dims with one index vector each (``lows``: the low pads)."""
    xp = xp_of(x)
    nd = len(index)
    for i, idx in enumerate(index):
        x = xp.take(x, xp.asarray(idx), axis=x.ndim - nd + i)
    return x


@_index_pad.backward
def _index_pad_bw(ns, ctx, g):
    a = ctx._args
    return (ns.index_pad_backward(g, index=a["index"], lows=a["lows"], size=ctx._in_meta[0][0]),)


@defop("index_pad_backward")
def _index_pad_backward(g, index, lows, size):
    """Adjoint of index_pad: per dim, the interior slice plus the border entries added at their sources."""
    nd = len(index)
    for i, (idx, lo) in enumerate(zip(index, lows)):
        axis = g.ndim - nd + i
        n = size[axis]
        moved = xp_of(g).moveaxis(g, axis, 0)
        acc = moved[lo:lo + n].copy()
        for j in list(range(lo)) + list(range(lo + n, len(idx))):
            acc[int(idx[j])] += moved[j]
        g = xp_of(g).moveaxis(acc, 0, axis)
    return xp_of(g).ascontiguousarray(g)


@_index_pad_backward.backward
def _index_pad_backward_bw(ns, ctx, gg):
    return (ns.index_pad(gg, index=ctx._args["index"], lows=ctx._args["lows"]),)


_MODE_NODE = {"reflect": "ReflectionPad", "replicate": "ReplicationPad", "circular": "CircularPad"}


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims; ``pad`` lists (lo, hi) from the last dim backwards."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    nd = input._data.ndim
    if len(pad) // 2 > nd:
        raise RuntimeError("Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {nd}")
    if mode == "constant":
        pairs = _pairs_from_torch(pad, nd)
        for n, (lo, hi) in zip(input._data.shape, pairs):
            if n + lo + hi < 0:
                raise RuntimeError(f"The input size {n}, plus negative padding {lo} and {hi} resulted in a negative "
                                   f"output size, which is invalid. Check dimension of your input.")
        return apply(_constant_pad, (input,), {"pairs": pairs, "value": 0 if value is None else value})
    if value is not None and value != 0:
        raise RuntimeError(f"Padding mode \"{mode}\" doesn't take in value argument")
    if mode not in _MODE_NODE:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    k = len(pad) // 2
    if nd not in (k + 1, k + 2):
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {nd}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    pairs = _pairs_from_torch(pad, nd)[-k:]
    size = input._data.shape[-k:]
    for n, (lo, hi), dim in zip(size, pairs, range(nd - k, nd)):
        if lo < 0 or hi < 0:
            raise RuntimeError(f"negative padding is not supported for mode {mode}")
        if mode == "reflect" and (lo >= n or hi >= n):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input dimension, "
                               f"but got: padding ({lo}, {hi}) at dimension {dim} of input {list(input._data.shape)}")
        if mode == "circular" and (lo > n or hi > n):
            raise RuntimeError("Padding value causes wrapping around more than once.")
    index = tuple(_source_index(n, lo, hi, mode) for n, (lo, hi) in zip(size, pairs))
    return apply(_index_pad, (input,), {"index": index, "lows": tuple(lo for lo, _ in pairs)})


# ---- interpolate -----------------------------------------------------------------------------------
_upsample_nearest = linear_map("upsample_nearest", "UpsampleNearest2DBackward0")
_upsample_linear = linear_map("upsample_linear", "UpsampleBilinear2DBackward0")


def _nearest_matrix(n: int, o: int, scale: float | None, dtype) -> np.ndarray:
    if o == n:
        src = np.arange(o)
    else:
        s = np.float32(1.0 / scale if scale else n / o)
        src = np.minimum(np.floor(np.arange(o, dtype=np.float32) * s).astype(np.int64), n - 1)
    m = np.zeros((o, n), dtype)
    m[np.arange(o), src] = 1
    return m


def _linear_matrix(n: int, o: int, scale: float | None, align_corners: bool, dtype) -> np.ndarray:
    """Linear interpolation weights (torch's area_pixel_compute_source_index)."""
    dst = np.arange(o, dtype=np.float64)
    if align_corners:
        src = dst * ((n - 1) / (o - 1) if o > 1 else 0.0)
    else:
        s = 1.0 / scale if scale else n / o
        src = np.maximum((dst + 0.5) * s - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    w1 = src - i0
    m = np.zeros((o, n), np.float64)
    np.add.at(m, (np.arange(o), i0), 1 - w1)
    np.add.at(m, (np.arange(o), i1), w1)
    return m.astype(dtype)


_MODES = {"nearest": None, "linear": 1, "bilinear": 2, "trilinear": 3,
          **{mode: dims for mode, (dims, _, _) in _MATRIX_MODES.items()}}


def _out_and_scales(size_in: tuple, size, scale_factor, recompute: bool | None) -> tuple:
    k = len(size_in)
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        out = tuple(int(s) for s in size) if isinstance(size, (list, tuple)) else (int(size),) * k
        if len(out) != k:
            raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input with "
                             f"spatial dimensions of {list(size_in)} and output size of {list(out)}. Please provide "
                             f"input tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) "
                             f"format.")
        return out, (None,) * k
    if scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    scales = tuple(float(s) for s in scale_factor) if isinstance(scale_factor, (list, tuple)) else \
        (float(scale_factor),) * k
    if len(scales) != k:
        raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got input "
                         f"with spatial dimensions of {list(size_in)} and scale_factor of shape {list(scales)}. "
                         f"Please provide input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in (s1, "
                         f"s2, ...,sK) format.")
    out = tuple(int(math.floor(n * s)) for n, s in zip(size_in, scales))
    return out, ((None,) * k if recompute else scales)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize the spatial dims (nearest, nearest-exact, area, linear, bilinear, bicubic, trilinear)."""
    if mode not in _MODES:
        raise NotImplementedError(f"Input Error: mode {mode!r} is not supported by dtorch's interpolate")
    if antialias:
        raise NotImplementedError("antialias=True is not supported")
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    k = input._data.ndim - 2
    if k < 1:
        raise ValueError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input._data.ndim}D) for the "
                         f"modes: nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact "
                         f"(got {mode})")
    want = _MODES[mode]
    if want is not None and want != k:
        dims = {1: "3D", 2: "4D", 3: "5D"}
        raise NotImplementedError(f"Got {dims.get(k, f'{k + 2}D')} input, but {mode} mode needs "
                                  f"{dims[want]} input")
    size_in = tuple(input._data.shape[2:])
    out, scales = _out_and_scales(size_in, size, scale_factor, recompute_scale_factor)
    if any(o <= 0 for o in out):
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input "
                           f"({', '.join(map(str, size_in))}) and output ({', '.join(map(str, out))})")
    dt = input._data.dtype
    xp = xp_of(input._data)
    if mode == "nearest":
        mats = [_nearest_matrix(n, o, s, dt) for n, o, s in zip(size_in, out, scales)]
        op = _upsample_nearest
    elif mode in _MATRIX_MODES:
        _, matrix, op = _MATRIX_MODES[mode]
        mats = [matrix(n, o, s, bool(align_corners), dt) for n, o, s in zip(size_in, out, scales)]
    else:
        mats = [_linear_matrix(n, o, s, bool(align_corners), dt) for n, o, s in zip(size_in, out, scales)]
        op = _upsample_linear
    return apply(op, (input,), {"mats": tuple(xp.asarray(m) for m in mats)})


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None
             ) -> Tensor:
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)

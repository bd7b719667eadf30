"""torch.fft: discrete Fourier transforms on numpy.fft / cupy.fft, with torch's gradients.

Three ops do every transform: complex-to-complex (``fft_c2c``), real-to-onesided-complex (``fft_r2c``)
and its inverse (``fft_c2r``); ``n``/``s`` pad or trim the input first (``fft_resize``). Their backward
formulas follow torch's complex convention: c2c's adjoint is the opposite transform with the dual
normalisation; r2c's is the real part of the inverse of the zero-filled spectrum; c2r's is r2c of the
gradient with the bins that stand for two (a bin and its mirror) doubled.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _dtype
from ._creation import tensor
from ._device import xp_of
from ._dispatch import apply_unary, defop
from ._ops.layout import roll
from .tensor import Tensor, _make, _wrap_dim

__all__ = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2", "irfft2", "hfft2", "ihfft2",
           "fftn", "ifftn", "rfftn", "irfftn", "hfftn", "ihfftn", "fftfreq", "rfftfreq", "fftshift", "ifftshift"]

_NORMS = ("backward", "ortho", "forward")
_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


# ---- the ops ------------------------------------------------------------------------------
@defop("fft_resize")
def _resize(a, dims, sizes):
    xp = xp_of(a)
    shape = list(a.shape)
    for d, s in zip(dims, sizes):
        shape[d] = s
    out = xp.zeros(shape, a.dtype)
    common = [slice(None)] * a.ndim
    for d, s in zip(dims, sizes):
        common[d] = slice(0, min(s, a.shape[d]))
    out[tuple(common)] = a[tuple(common)]
    return out


@_resize.backward
def _resize_bw(ns, ctx, g):
    dims = ctx._args["dims"]
    shape = ctx._in_meta[0][0]
    return (ns.fft_resize(g, dims=dims, sizes=tuple(shape[d] for d in dims)),)


@defop("fft_c2c")
def _c2c(a, dims, norm, forward):
    f = xp_of(a).fft
    return (f.fftn if forward else f.ifftn)(a, axes=dims, norm=norm)


@_c2c.backward
def _c2c_bw(ns, ctx, g):
    p = ctx._args
    return (ns.fft_c2c(g, dims=p["dims"], norm=_DUAL[p["norm"]], forward=not p["forward"]),)


@defop("fft_r2c")
def _r2c(a, dims, norm):
    return xp_of(a).fft.rfftn(a, axes=dims, norm=norm)


@_r2c.backward
def _r2c_bw(ns, ctx, g):
    p = ctx._args
    dims = p["dims"]
    full = ctx._in_meta[0][0][dims[-1]]
    g = ns.fft_resize(g, dims=(dims[-1],), sizes=(full,))  # the dropped half of the spectrum: zero
    return (ns.real(ns.fft_c2c(g, dims=dims, norm=_DUAL[p["norm"]], forward=False)),)


@defop("fft_c2r")
def _c2r(a, dims, norm, last_n):
    s = [a.shape[d] for d in dims[:-1]] + [last_n]
    return xp_of(a).fft.irfftn(a, s=s, axes=dims, norm=norm)


@_c2r.backward
def _c2r_bw(ns, ctx, g):
    p = ctx._args
    dims = p["dims"]
    gi = ns.fft_r2c(g, dims=dims, norm=_DUAL[p["norm"]])
    n, m = p["last_n"], gi.shape[dims[-1]]
    if n - m <= 0:
        return (gi,)
    data = g._data if isinstance(g, Tensor) else g
    w = xp_of(data).ones(m, data.dtype)
    w[1:1 + n - m] = 2  # bins 1 .. n - m stand for themselves and their mirror
    w = w.reshape((m,) + (1,) * (len(gi.shape) - 1 - dims[-1]))
    return (gi * (_make(w) if isinstance(g, Tensor) else w),)


for _op in (_resize, _c2c, _r2c, _c2r):
    _op.node_cls._conj_wrap = False  # the formulas above are already torch's complex gradients


# ---- arguments ----------------------------------------------------------------------------
def _norm(norm: str | None) -> str:
    if norm is None:
        return "backward"
    if norm not in _NORMS:
        raise RuntimeError(f'Invalid normalization mode: "{norm}"')
    return norm


def _dims_and_sizes(x: Tensor, s, dim, default_all: bool) -> tuple[tuple, list]:
    """torch's (dims, sizes) from the ``s``/``dim`` arguments; -1 in ``s`` keeps that dimension's size."""
    nd = x._data.ndim
    if dim is None:
        if s is None:
            dims = tuple(range(nd)) if default_all else (nd - 2, nd - 1)
        else:
            dims = tuple(range(nd - len(s), nd))
    else:
        dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        dims = tuple(_wrap_dim(int(d), nd) for d in dims)
        if len(set(dims)) != len(dims):
            raise RuntimeError("FFT dims must be unique")
    if s is not None:
        s = [s] if isinstance(s, (int, np.integer)) else list(s)
        if len(s) != len(dims):
            raise RuntimeError("When given, dim and shape arguments must have the same length")
    sizes = [x._data.shape[d] if s is None or s[k] == -1 else int(s[k]) for k, d in enumerate(dims)]
    for n in sizes:
        if n < 1:
            raise RuntimeError(f"Invalid number of data points ({n}) specified")
    return dims, sizes


def _prepared(x: Tensor) -> Tensor:
    d = x.dtype
    if d in (_dtype.float16, _dtype.bfloat16):
        raise RuntimeError(f"Unsupported dtype {d.scalar_name}")
    if not (d.is_floating_point or d.is_complex):
        return x.to(_dtype.get_default_dtype())
    return x


def _resized(x: Tensor, dims: tuple, sizes: Sequence[int]) -> Tensor:
    shape = x._data.shape
    if all(shape[d] == n for d, n in zip(dims, sizes)):
        return x
    return apply_unary(_resize, x, {"dims": dims, "sizes": tuple(sizes)})


def _c2c_public(x: Tensor, s, dim, norm, forward: bool, default_all: bool = True) -> Tensor:
    x = _prepared(x)
    dims, sizes = _dims_and_sizes(x, s, dim, default_all)
    return apply_unary(_c2c, _resized(x, dims, sizes), {"dims": dims, "norm": _norm(norm), "forward": forward})


def _r2c_public(x: Tensor, s, dim, norm, name: str, default_all: bool = True) -> Tensor:
    x = _prepared(x)
    if x.dtype.is_complex:
        raise RuntimeError(f"{name} expects a real input tensor, but got {x.dtype.scalar_name}")
    dims, sizes = _dims_and_sizes(x, s, dim, default_all)
    return apply_unary(_r2c, _resized(x, dims, sizes), {"dims": dims, "norm": _norm(norm)})


def _c2r_public(x: Tensor, s, dim, norm, default_all: bool = True) -> Tensor:
    x = _prepared(x)
    if not x.dtype.is_complex:
        x = x.to(x.dtype.to_complex())
    dims, sizes = _dims_and_sizes(x, s, dim, default_all)
    if s is None or s[-1] == -1:
        sizes[-1] = 2 * (x._data.shape[dims[-1]] - 1)
        if sizes[-1] < 1:
            raise RuntimeError(f"Invalid number of data points ({sizes[-1]}) specified")
    last_n = sizes[-1]
    sizes[-1] = last_n // 2 + 1
    return apply_unary(_c2r, _resized(x, dims, sizes), {"dims": dims, "norm": _norm(norm), "last_n": last_n})


def _one(n):
    return None if n is None else (n,)


# ---- torch.fft ------------------------------------------------------------------------------
def fft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """One-dimensional discrete Fourier transform (complex output)."""
    return _c2c_public(input, _one(n), dim, norm, True)


def ifft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    return _c2c_public(input, _one(n), dim, norm, False)


def rfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """The transform of a real signal: the n // 2 + 1 non-negative frequencies."""
    return _r2c_public(input, _one(n), dim, norm, "rfft")


def irfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """The inverse of rfft: a real signal of length n (default 2 * (input length - 1))."""
    return _c2r_public(input, _one(n), dim, norm)


def hfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """The transform of a Hermitian-symmetric signal given by its first half: a real spectrum."""
    return _c2r_public(_prepared(input).conj(), _one(n), dim, _DUAL[_norm(norm)])


def ihfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """The inverse of hfft: the onesided Hermitian spectrum of a real signal."""
    return _r2c_public(input, _one(n), dim, _DUAL[_norm(norm)], "ihfft").conj()


def fft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None) -> Tensor:
    return _c2c_public(input, s, dim, norm, True, default_all=False)


def ifft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None) -> Tensor:
    return _c2c_public(input, s, dim, norm, False, default_all=False)


def rfft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None) -> Tensor:
    return _r2c_public(input, s, dim, norm, "rfftn", default_all=False)


def irfft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None) -> Tensor:
    return _c2r_public(input, s, dim, norm, default_all=False)


def hfft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None) -> Tensor:
    return _c2r_public(_prepared(input).conj(), s, dim, _DUAL[_norm(norm)], default_all=False)


def ihfft2(input: Tensor, s=None, dim=(-2, -1), norm: str | None = None) -> Tensor:
    return _r2c_public(input, s, dim, _DUAL[_norm(norm)], "ihfftn", default_all=False).conj()


def fftn(input: Tensor, s=None, dim=None, norm: str | None = None) -> Tensor:
    """N-dimensional transform over ``dim`` (all dimensions, or the last len(s), by default)."""
    return _c2c_public(input, s, dim, norm, True)


def ifftn(input: Tensor, s=None, dim=None, norm: str | None = None) -> Tensor:
    return _c2c_public(input, s, dim, norm, False)


def rfftn(input: Tensor, s=None, dim=None, norm: str | None = None) -> Tensor:
    return _r2c_public(input, s, dim, norm, "rfftn")


def irfftn(input: Tensor, s=None, dim=None, norm: str | None = None) -> Tensor:
    return _c2r_public(input, s, dim, norm)


def hfftn(input: Tensor, s=None, dim=None, norm: str | None = None) -> Tensor:
    """The n-dimensional hfft: a Hermitian-symmetric signal given by half of its last dimension."""
    return _c2r_public(_prepared(input).conj(), s, dim, _DUAL[_norm(norm)])


def ihfftn(input: Tensor, s=None, dim=None, norm: str | None = None) -> Tensor:
    return _r2c_public(input, s, dim, _DUAL[_norm(norm)], "ihfftn").conj()


# ---- frequencies and shifts -------------------------------------------------------------------
def _freqs(values: np.ndarray, dtype, device, requires_grad: bool) -> Tensor:
    dt = _dtype.get_default_dtype() if dtype is None else _dtype.to_dtype(dtype)
    if dt.is_complex:
        raise NotImplementedError(f"\"arange_cpu\" not implemented for '{dt.scalar_name}'")
    if not dt.is_floating_point:
        raise RuntimeError("fftfreq requires a floating point or complex dtype")
    return tensor(values.astype(dt.np), device=device, requires_grad=requires_grad)


def fftfreq(n: int, d: float = 1.0, *, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """The sample frequencies of an n-point fft with sample spacing d."""
    return _freqs(np.fft.fftfreq(n, d), dtype, device, requires_grad)


def rfftfreq(n: int, d: float = 1.0, *, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """The sample frequencies of an n-point rfft with sample spacing d."""
    return _freqs(np.fft.rfftfreq(n, d), dtype, device, requires_grad)


def _shifted(x: Tensor, dim, sign: int) -> Tensor:
    nd = x._data.ndim
    dims = tuple(range(nd)) if dim is None else ((dim,) if isinstance(dim, (int, np.integer)) else tuple(dim))
    dims = tuple(_wrap_dim(int(d), nd) for d in dims)
    shifts = tuple(sign * (x._data.shape[d] // 2) for d in dims)
    return roll(x, shifts, dims)


def fftshift(input: Tensor, dim=None) -> Tensor:
    """Move the zero frequency to the centre (over all dimensions by default)."""
    return _shifted(input, dim, 1)


def ifftshift(input: Tensor, dim=None) -> Tensor:
    """The inverse of fftshift."""
    return _shifted(input, dim, -1)

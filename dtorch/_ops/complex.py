"""Complex numbers: complex/polar, view_as_real/view_as_complex, real/imag views, conj, angle.

The formulas here follow torch's convention for complex gradients (the conjugate Wirtinger derivative:
a real loss L of z = x + iy gets z.grad = dL/dx + i dL/dy), so their nodes skip the dispatcher's
``conj(bw(conj(g)))`` wrap that the holomorphic ops elsewhere rely on.
"""
from __future__ import annotations

import numpy as np

from .. import _dtype
from .._device import xp_of
from .._dispatch import apply, apply_unary, defop, tensor_fn
from ..tensor import Tensor
from ._helpers import attach

__all__ = ["complex", "polar", "view_as_real", "view_as_complex", "real", "imag", "conj", "conj_physical",
           "resolve_conj", "resolve_neg", "is_conj", "angle", "is_complex"]


def _own_convention(op) -> None:
    op.node_cls._conj_wrap = False


def _as_strided(a, shape: tuple, strides: tuple):
    xp = xp_of(a)
    if xp is np:
        return np.lib.stride_tricks.as_strided(a, shape, strides)
    return xp.lib.stride_tricks.as_strided(a, shape, strides)


# ---- conj ----------------------------------------------------------------------------
@defop("conj_physical")
def _conj_physical(a):
    return xp_of(a).conj(a)


_conj_physical.backward(lambda ns, ctx, g: (g.conj(),))
_own_convention(_conj_physical)


def conj_physical(input: Tensor) -> Tensor:
    """The complex conjugate, computed now (a copy; for a real tensor, a copy of it)."""
    return apply_unary(_conj_physical, input)


def conj(input: Tensor) -> Tensor:
    """The complex conjugate; a real tensor is returned as it is (torch's conj is then a no-op)."""
    if input._data.dtype.kind != "c":
        return input
    return apply_unary(_conj_physical, input)


def resolve_conj(input: Tensor) -> Tensor:
    return input  # dtorch's conj is always materialised


def resolve_neg(input: Tensor) -> Tensor:
    return input


def is_conj(input: Tensor) -> bool:
    return False


def is_complex(input: Tensor) -> bool:
    return input.is_complex()


def _cfloat(self: Tensor) -> Tensor:
    return self.to(_dtype.complex64)


def _cdouble(self: Tensor) -> Tensor:
    return self.to(_dtype.complex128)


tensor_fn("conj", conj)
tensor_fn("conj_physical", conj_physical)


# ---- real / imag: views into the complex storage --------------------------------------
@defop("real", view=True)
def _real(a):
    return a.real


_real.backward(lambda ns, ctx, g: (g,))  # the engine casts it to the complex input's dtype
_own_convention(_real)


@defop("imag", view=True)
def _imag(a):
    return a.imag


_imag.backward(lambda ns, ctx, g: (g * 1j,))
_own_convention(_imag)


def real(input: Tensor) -> Tensor:
    """The real part, a view (a real tensor is its own real part)."""
    if input._data.dtype.kind != "c":
        return input
    return apply_unary(_real, input)


def imag(input: Tensor) -> Tensor:
    """The imaginary part, a view; torch refuses it for real tensors."""
    if input._data.dtype.kind != "c":
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
    return apply_unary(_imag, input)


def _set_real(self: Tensor, value) -> None:
    real(self).copy_(value)


def _set_imag(self: Tensor, value) -> None:
    imag(self).copy_(value)


# ---- view_as_real / view_as_complex ----------------------------------------------------
@defop("view_as_real", view=True)
def _view_as_real(a):
    r = a.real
    return _as_strided(r, a.shape + (2,), r.strides + (r.itemsize,))


@defop("view_as_complex", view=True)
def _view_as_complex(a):
    return a.view(np.complex64 if a.dtype == np.float32 else np.complex128)[..., 0]


def _view_as_real_bw(ns, ctx, g):
    g = g.contiguous() if isinstance(g, Tensor) else xp_of(g).ascontiguousarray(g)
    return (ns.view_as_complex(g),)


_view_as_real.backward(_view_as_real_bw)
_view_as_complex.backward(lambda ns, ctx, g: (ns.view_as_real(g),))
_own_convention(_view_as_real)
_own_convention(_view_as_complex)


def view_as_real(input: Tensor) -> Tensor:
    """A real view of a complex tensor with a last dimension of size 2 (real, imaginary)."""
    if input._data.dtype.kind != "c":
        raise RuntimeError("view_as_real is only supported for complex tensors")
    return apply_unary(_view_as_real, input)


def view_as_complex(input: Tensor) -> Tensor:
    """A complex view of a float/double tensor whose last dimension is (real, imaginary) with stride 1."""
    a = input._data
    if a.dtype not in (np.float32, np.float64):
        raise RuntimeError("view_as_complex is only supported for half, float and double tensors, but got a tensor "
                           f"of scalar type: {input.dtype.scalar_name}")
    if a.ndim == 0 or a.shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    if a.strides[-1] != a.itemsize:
        raise RuntimeError("Tensor must have a last dimension with stride 1")
    if any(s % (2 * a.itemsize) for s in a.strides[:-1]):
        raise RuntimeError("Tensor must have a stride divisible by 2 for all but last dimension")
    if input.storage_offset() % 2:
        raise RuntimeError("Tensor must have a storage_offset divisible by 2")
    return apply_unary(_view_as_complex, input)


tensor_fn("view_as_real", view_as_real)


# ---- complex / polar / angle -------------------------------------------------------------
def _empty_complex(a, b):
    xp = xp_of(a)
    return xp.empty(np.broadcast_shapes(a.shape, b.shape), np.complex64 if a.dtype == np.float32 else np.complex128)


@defop("complex")
def _complex(re, im):
    out = _empty_complex(re, im)
    out.real = re
    out.imag = im
    return out


_complex.backward(lambda ns, ctx, g: (ns.real(g), ns.imag(g)))
_own_convention(_complex)


@defop("polar", save_out=True)
def _polar(r, theta):
    xp = xp_of(r)
    out = _empty_complex(r, theta)
    out.real = r * xp.cos(theta)
    out.imag = r * xp.sin(theta)
    return out


def _polar_bw(ns, ctx, g, z):
    # torch's formulas (they take abs >= 0: d/dabs is along sgn(z), zero where z is 0)
    gc = ns.conj_physical(g)
    return ns.real(gc * ns.sgn(z)), ns.real(gc * z * 1j)


_polar.backward(_polar_bw)
_own_convention(_polar)


def _check_pair(real: Tensor, imag: Tensor) -> None:
    dr, di = real.dtype, imag.dtype
    if not (dr.is_floating_point and di.is_floating_point) or dr is _dtype.bfloat16 or di is _dtype.bfloat16:
        raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got {dr.scalar_name} and "
                           f"{di.scalar_name}")
    if dr is not di:
        raise RuntimeError(f"Expected object of scalar type {dr.scalar_name} but got scalar type {di.scalar_name} "
                           "for second argument")
    if dr is _dtype.float16:
        raise RuntimeError("dtorch has no complex32 (ComplexHalf): use float32 or float64 parts")


def complex(real: Tensor, imag: Tensor) -> Tensor:
    """``real + i * imag`` (same floating dtype; complex64 from float32, complex128 from float64)."""
    _check_pair(real, imag)
    return apply(_complex, (real, imag))


def polar(abs: Tensor, angle: Tensor) -> Tensor:
    """``abs * (cos(angle) + i sin(angle))``."""
    _check_pair(abs, angle)
    return apply(_polar, (abs, angle))


@defop("angle", save=(0,))
def _angle(a):
    r = xp_of(a).angle(a)
    return r if a.dtype.kind in "fc" else r.astype(_dtype.get_default_dtype().np)


def _is_c(x) -> bool:
    return x.is_complex() if isinstance(x, Tensor) else x.dtype.kind == "c"


def _angle_bw(ns, ctx, g, z):
    if not _is_c(z):
        return (g * 0,)
    sq = ns.real(z) * ns.real(z) + ns.imag(z) * ns.imag(z)
    sq = sq + (sq == 0)  # torch's gradient at 0 is 0: g * 0 / 1
    return (g * z / sq * 1j,)


_angle.backward(_angle_bw)
_own_convention(_angle)


def angle(input: Tensor) -> Tensor:
    """The argument of each element (radians); 0 or pi for real tensors."""
    return apply_unary(_angle, input)


attach(__name__, {
    "conj": conj, "conj_physical": conj_physical, "resolve_conj": resolve_conj, "resolve_neg": resolve_neg,
    "is_conj": is_conj, "angle": angle, "cfloat": _cfloat, "cdouble": _cdouble,
    "real": property(real, _set_real), "imag": property(imag, _set_imag),
})

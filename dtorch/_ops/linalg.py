"""Matrix products: matmul and its family (mm, bmm, mv, dot, outer, addmm, baddbmm...), tensordot.

Forward kernels are one BLAS call on the raw arrays; backward formulas are products with
transposes, written against ``ns`` so that ``create_graph=True`` differentiates them again.
Broadcast batch dimensions are summed back by the engine (it reduces every gradient to
its input's shape).
"""
from __future__ import annotations

import math

import numpy as np

from .._device import xp_of
from .._dispatch import apply, apply_same, defop, tensor_fn
from ..tensor import Tensor, _wrap_dim
from ._helpers import attach, broadcast_shape
from .arithmetic import mul
from .complex import conj_physical
from .view import permute, reshape

__all__ = [
    "matmul",
    "mm",
    "bmm",
    "mv",
    "dot",
    "vdot",
    "inner",
    "outer",
    "ger",
    "addmm",
    "addmv",
    "baddbmm",
    "tensordot",
]


# ---- argument checks -------------------------------------------------------------------------
def _check_tensor(x, fn: str, arg: str, pos: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{arg}' (position {pos}) must be Tensor, not {type(x).__name__}")


def _word(t: Tensor) -> str:
    return t.dtype.scalar_name


def _check_m1_m2_dtype(a: Tensor, b: Tensor) -> None:
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a.dtype.cpp_name} "
                           f"!= {b.dtype.cpp_name}")


def _check_scalar_type(a: Tensor, b: Tensor) -> None:
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(f"expected scalar type {_word(a)} but found {_word(b)}")


def _check_not_bool(t: Tensor, kernel: str) -> None:
    if t._data.dtype == np.bool_:
        raise NotImplementedError(f"\"{kernel}\" not implemented for 'Bool'")


def _check_mm_shapes(m1: tuple, m2: tuple) -> None:
    if m1[1] != m2[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({m1[0]}x{m1[1]} and {m2[0]}x{m2[1]})")


def _check_mv_shapes(rows: int, mat: tuple, vec: int) -> None:
    if mat[1] != vec:
        raise RuntimeError(f"size mismatch, got input ({rows}), mat ({mat[0]}x{mat[1]}), vec ({vec})")


def _mT(ns, x):
    return ns.transpose(x, dim0=-2, dim1=-1)


def _needs(ctx, i: int) -> bool:
    return ctx.next_functions[i][0] is not None


# ---- mm / bmm / mv / dot -----------------------------------------------------------------------
def same_dtype(out, like):
    """ml_dtypes' bfloat16 products come back as float32 (accumulated there, as torch does): round back."""
    return out if out.dtype == like.dtype else out.astype(like.dtype)


@defop("mm", save=(0, 1))
def _mm(a, b):
    out = a @ b
    return out if out.dtype is a.dtype else same_dtype(out, a)  # inline test: a call here costs 5% of a small mm


@_mm.backward
def _mm_bw(ns, ctx, g, a, b):
    ga = ns.mm(g, b.T) if _needs(ctx, 0) else None
    gb = ns.mm(a.T, g) if _needs(ctx, 1) else None
    return ga, gb


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Matrix product of two 2-D tensors (no broadcasting)."""
    _check_tensor(input, "mm", "input", 1)
    _check_tensor(mat2, "mm", "mat2", 2)
    if input._data.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if mat2._data.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    _check_m1_m2_dtype(input, mat2)
    _check_not_bool(input, "addmm_impl_cpu_")
    _check_mm_shapes(input._data.shape, mat2._data.shape)
    return apply_same(_mm, input, mat2)


@defop("bmm", save=(0, 1))
def _bmm(a, b):
    return same_dtype(xp_of(a).matmul(a, b), a)


@_bmm.backward
def _bmm_bw(ns, ctx, g, a, b):
    ga = ns.bmm(g, _mT(ns, b)) if _needs(ctx, 0) else None
    gb = ns.bmm(_mT(ns, a), g) if _needs(ctx, 1) else None
    return ga, gb


def _check_bmm(b1: Tensor, b2: Tensor, names=("batch1", "batch2")) -> None:
    for t, name in zip((b1, b2), names):
        if t._data.ndim != 3:
            raise RuntimeError(f"{name} must be a 3D tensor")
    s1, s2 = b1._data.shape, b2._data.shape
    if s2[0] != s1[0] or s2[1] != s1[2]:
        raise RuntimeError(f"Expected size for first two dimensions of {names[1]} tensor to be: "
                           f"[{s1[0]}, {s1[2]}] but got: [{s2[0]}, {s2[1]}].")


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched matrix product of two 3-D tensors with the same batch size (no broadcasting)."""
    _check_tensor(input, "bmm", "input", 1)
    _check_tensor(mat2, "bmm", "mat2", 2)
    _check_bmm(input, mat2)
    _check_scalar_type(input, mat2)
    _check_not_bool(input, "bmm")
    return apply_same(_bmm, input, mat2)


@defop("mv", save=(0, 1))
def _mv(a, v):
    return same_dtype(a @ v, a)


@_mv.backward
def _mv_bw(ns, ctx, g, a, v):
    ga = ns.reshape(g, shape=(-1, 1)) * v if _needs(ctx, 0) else None
    gv = ns.mv(a.T, g) if _needs(ctx, 1) else None
    return ga, gv


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix-vector product: (n, m) @ (m,) -> (n,)."""
    _check_tensor(input, "mv", "input", 1)
    _check_tensor(vec, "mv", "vec", 2)
    sa, sv = input._data.shape, vec._data.shape
    if len(sa) != 2 or len(sv) != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {len(sa)}, {len(sv)}")
    _check_mv_shapes(sa[0], sa, sv[0])
    if input._data.dtype != vec._data.dtype:  # torch's mv is addmv into a result of vec's dtype
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {_word(vec)}, {_word(input)}, "
                           f"and {_word(vec)}")
    _check_not_bool(input, "addmv_impl_cpu")
    return apply_same(_mv, input, vec)


def _dot_kernel(a, b):
    return xp_of(a).dot(a, b)


def _dot_bw(ns, ctx, g, a, b):
    ga = g * b if _needs(ctx, 0) else None
    gb = g * a if _needs(ctx, 1) else None
    return ga, gb


_dot = defop("dot", save=(0, 1))(_dot_kernel)
_dot.backward(_dot_bw)
_vdot = defop("vdot", save=(0, 1))(_dot_kernel)  # real dtypes only: vdot is dot
_vdot.backward(_dot_bw)


def _check_dot(a: Tensor, b: Tensor, name: str) -> None:
    _check_tensor(a, name, "input", 1)
    _check_tensor(b, name, "other", 2)
    sa, sb = a._data.shape, b._data.shape
    if len(sa) != 1 or len(sb) != 1:
        raise RuntimeError(f"1D tensors expected, but got {len(sa)}D and {len(sb)}D tensors")
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(f"{name} : expected both vectors to have same dtype, but found {_word(a)} and {_word(b)}")
    if sa[0] != sb[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{sa[0]}] and src [{sb[0]}] to have the same "
                           f"number of elements, but got {sa[0]} and {sb[0]} elements respectively")
    _check_not_bool(a, name)


def dot(input: Tensor, other: Tensor) -> Tensor:
    """Inner product of two 1-D tensors of the same size and dtype."""
    _check_dot(input, other, "dot")
    return apply_same(_dot, input, other)


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """``dot`` with the first argument conjugated (the same for real tensors)."""
    _check_dot(input, other, "vdot")
    if input._data.dtype.kind == "c":
        return apply_same(_dot, conj_physical(input), other)
    return apply_same(_vdot, input, other)


# ---- matmul --------------------------------------------------------------------------------------
@defop("matmul", save=(0, 1))
def _matmul(a, b):
    if b.ndim == 2 and a.ndim > 2 and a.flags.c_contiguous:
        # (..., m, k) @ (k, n) as one (B*m, k) @ (k, n) product: one BLAS call instead of B
        out = a.reshape(-1, a.shape[-1]) @ b
        out = out.reshape(a.shape[:-1] + (b.shape[1],))
    else:
        out = xp_of(a).matmul(a, b)
    return out if out.dtype is a.dtype else same_dtype(out, a)


@_matmul.backward
def _matmul_bw(ns, ctx, g, a, b):
    sa, sb = ctx._in_meta[0][0], ctx._in_meta[1][0]
    # 1-D operands take part as a row (left) or a column (right), as in the forward
    if len(sa) == 1:
        a = ns.reshape(a, shape=(1,) + tuple(sa))
        g = ns.reshape(g, shape=tuple(g.shape[:-1]) + (1, g.shape[-1]))
    if len(sb) == 1:
        b = ns.reshape(b, shape=tuple(sb) + (1,))
        g = ns.reshape(g, shape=tuple(g.shape) + (1,))
    ga = gb = None
    if _needs(ctx, 0):
        ga = ns.matmul(g, _mT(ns, b))
        if len(sa) == 1:
            ga = ns.reshape(ga, shape=tuple(ga.shape[:-2]) + (sa[0],))
    if _needs(ctx, 1):
        if len(sb) == 2 and len(g.shape) > 2:
            # a weight shared over the batch: fold the batch into one product
            a2 = ns.reshape(a, shape=(-1, a.shape[-1]))
            gb = ns.mm(a2.T, ns.reshape(g, shape=(-1, g.shape[-1])))
        else:
            gb = ns.matmul(_mT(ns, a), g)
            if len(sb) == 1:
                gb = ns.reshape(gb, shape=tuple(gb.shape[:-1]))
    return ga, gb


def _check_matmul_nd(sa: tuple, sb: tuple) -> None:
    """Shape checks of the folded/batched cases, with the messages of torch's (no-grad) folding."""
    ka = sa[-1]
    if len(sb) == 1:
        rows = math.prod(sa[:-1])
        _check_mv_shapes(rows, (rows, ka), sb[0])
    elif len(sb) == 2:
        _check_mm_shapes((math.prod(sa[:-1]), ka), sb)
    elif ka != sb[-2]:
        batch = math.prod(broadcast_shape(sa[:-2], sb[:-2]))
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{batch}, {ka}] but got: [{batch}, {sb[-2]}].")


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """torch.matmul: dot, mv, mm, or a batched product broadcasting the batch dimensions."""
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        a, b = input._data, other._data
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0] and a.dtype == b.dtype and a.dtype.kind in "fV":
            return apply_same(_mm, input, other)  # the common case, without the checks' calls
    _check_tensor(input, "matmul", "input", 1)
    _check_tensor(other, "matmul", "other", 2)
    da, db = input._data.ndim, other._data.ndim
    if da == 0 or db == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {da}D and {db}D")
    if da == 1 and db == 1:
        return dot(input, other)
    if da == 2 and db == 1:
        return mv(input, other)
    if da == 2 and db == 2:
        return mm(input, other)
    sa, sb = input._data.shape, other._data.shape
    if len(sa) > 2 and len(sb) > 2:
        broadcast_shape(sa[:-2], sb[:-2])  # torch reports a batch mismatch first
    _check_matmul_nd(sa, sb)
    _check_m1_m2_dtype(input, other)
    _check_not_bool(input, "addmm_impl_cpu_")
    return apply_same(_matmul, input, other)


def _rmatmul(self: Tensor, other) -> Tensor:
    return matmul(other, self)


tensor_fn("matmul", matmul)


def inner(input: Tensor, other: Tensor) -> Tensor:
    """Sum over the last dimension of both: dot for 1-D, a tensordot otherwise."""
    if input._data.ndim == 0 or other._data.ndim == 0:
        return mul(input, other)
    if input._data.ndim == 1 and other._data.ndim == 1:
        return dot(input, other)
    return tensordot(input, other, dims=([-1], [-1]))


# ---- outer ------------------------------------------------------------------------------------------
def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two 1-D tensors; like torch it is a broadcast mul (MulBackward0)."""
    for t, name in ((input, "self"), (vec2, "vec2")):
        _check_tensor(t, "outer", "input" if name == "self" else "vec2", 1 if name == "self" else 2)
        if t._data.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {t._data.ndim}-D")
    return mul(reshape(input, (-1, 1)), vec2)


ger = outer


# ---- addmm / addmv / baddbmm -----------------------------------------------------------------------
def _scaled_sum(prod, c, beta, alpha):
    """``beta * c + alpha * prod``, in place on the fresh product; beta == 0 ignores c (even NaN)."""
    prod = same_dtype(prod, c) if hasattr(c, "dtype") else prod
    if alpha != 1:
        prod *= alpha
    if beta != 0:
        prod += c if beta == 1 else beta * c
    return prod


def _scaled_grads(ns, ctx, g, ga_fn, gb_fn):
    beta, alpha = ctx._args["beta"], ctx._args["alpha"]
    gc = (g if beta == 1 else g * beta) if _needs(ctx, 0) else None
    ga = gb = None
    if _needs(ctx, 1):
        ga = ga_fn(g)
        ga = ga if alpha == 1 else ga * alpha
    if _needs(ctx, 2):
        gb = gb_fn(g)
        gb = gb if alpha == 1 else gb * alpha
    return gc, ga, gb


@defop("addmm", save=(1, 2))
def _addmm(c, a, b, beta=1, alpha=1):
    return _scaled_sum(a @ b, c, beta, alpha)


@_addmm.backward
def _addmm_bw(ns, ctx, g, a, b):
    return _scaled_grads(ns, ctx, g, lambda g: ns.mm(g, b.T), lambda g: ns.mm(a.T, g))


def _check_broadcastable(c: Tensor, shape: tuple) -> None:
    sc = c._data.shape
    if len(sc) > len(shape):
        raise RuntimeError(f"The expanded size of the tensor cannot have fewer dimensions than the tensor: "
                           f"{list(shape)} vs {list(sc)}")
    lead = len(shape) - len(sc)
    for i, s in enumerate(sc):
        if s != 1 and s != shape[lead + i]:
            raise RuntimeError(
                f"The expanded size of the tensor ({shape[lead + i]}) must match the existing size ({s}) at "
                f"non-singleton dimension {lead + i}.  Target sizes: {list(shape)}.  Tensor sizes: {list(sc)}")


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)``; input broadcasts to the product's shape."""
    for t, name in ((mat1, "mat1"), (mat2, "mat2")):
        if t._data.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix, got {t._data.ndim}-D tensor")
    if mat1._data.dtype != mat2._data.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {_word(mat1)} and {_word(mat2)}")
    if input._data.dtype != mat2._data.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got {_word(input)} and {_word(mat2)}")
    _check_mm_shapes(mat1._data.shape, mat2._data.shape)
    _check_broadcastable(input, (mat1._data.shape[0], mat2._data.shape[1]))
    _check_not_bool(mat1, "addmm_impl_cpu_")
    return apply(_addmm, (input, mat1, mat2), {"beta": beta, "alpha": alpha})


@defop("addmv", save=(1, 2))
def _addmv(c, a, v, beta=1, alpha=1):
    return _scaled_sum(a @ v, c, beta, alpha)


@_addmv.backward
def _addmv_bw(ns, ctx, g, a, v):
    return _scaled_grads(ns, ctx, g, lambda g: ns.reshape(g, shape=(-1, 1)) * v, lambda g: ns.mv(a.T, g))


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat @ vec)``."""
    sm, sv = mat._data.shape, vec._data.shape
    if len(sm) != 2 or len(sv) != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input._data.ndim}, {len(sm)}, {len(sv)}")
    if not input._data.dtype == mat._data.dtype == vec._data.dtype:
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {_word(input)}, {_word(mat)}, "
                           f"and {_word(vec)}")
    _check_mv_shapes(input._data.shape[0] if input._data.ndim else 1, sm, sv[0])
    _check_broadcastable(input, (sm[0],))
    _check_not_bool(mat, "addmv_impl_cpu")
    return apply(_addmv, (input, mat, vec), {"beta": beta, "alpha": alpha})


@defop("baddbmm", save=(1, 2))
def _baddbmm(c, a, b, beta=1, alpha=1):
    return _scaled_sum(xp_of(a).matmul(a, b), c, beta, alpha)


@_baddbmm.backward
def _baddbmm_bw(ns, ctx, g, a, b):
    return _scaled_grads(ns, ctx, g, lambda g: ns.bmm(g, _mT(ns, b)), lambda g: ns.bmm(_mT(ns, a), g))


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * bmm(batch1, batch2)``; input broadcasts to the product's shape."""
    _check_bmm(batch1, batch2)
    if not input._data.dtype == batch1._data.dtype == batch2._data.dtype:
        raise RuntimeError(f"Input dtypes must be the same, got: input {input.dtype.cpp_name}, "
                           f"batch1: {batch1.dtype.cpp_name}, batch2: {batch2.dtype.cpp_name}")
    s1, s2 = batch1._data.shape, batch2._data.shape
    _check_broadcastable(input, (s1[0], s1[1], s2[2]))
    _check_not_bool(batch1, "baddbmm")
    return apply(_baddbmm, (input, batch1, batch2), {"beta": beta, "alpha": alpha})


# ---- tensordot -------------------------------------------------------------------------------------
def _tensordot_dims(dims, na: int, nb: int) -> tuple[list, list]:
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(na, nb):
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        return list(range(na - dims, na)), list(range(dims))
    da, db = dims
    da = [da] if isinstance(da, int) else list(da)
    db = [db] if isinstance(db, int) else list(db)
    if len(da) != len(db):
        raise RuntimeError("both dimension lists should have same length")
    return da, db


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Contract ``dims`` of ``a`` with ``dims`` of ``b``: a permute, a reshape and one mm, as torch."""
    sa, sb = a._data.shape, b._data.shape
    da, db = _tensordot_dims(dims, len(sa), len(sb))
    for x, y in zip(da, db):
        if sa[x] != sb[y]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {sa[x]} in dim {x} and "
                               f"second has size {sb[y]} in dim {y}")
    da = [_wrap_dim(d, len(sa)) for d in da]
    db = [_wrap_dim(d, len(sb)) for d in db]
    free_a = [d for d in range(len(sa)) if d not in da]
    free_b = [d for d in range(len(sb)) if d not in db]
    k = math.prod(sa[d] for d in da)
    a2 = reshape(permute(a, free_a + da), (math.prod(sa[d] for d in free_a), k))
    b2 = reshape(permute(b, db + free_b), (k, math.prod(sb[d] for d in free_b)))
    out = mm(a2, b2)
    return reshape(out, tuple(sa[d] for d in free_a) + tuple(sb[d] for d in free_b))


attach(__name__, {
    "mm": mm, "bmm": bmm, "mv": mv, "dot": dot, "vdot": vdot, "matmul": matmul, "__matmul__": matmul,
    "__rmatmul__": _rmatmul, "inner": inner, "outer": outer, "ger": outer, "addmm": addmm, "addmv": addmv,
    "baddbmm": baddbmm, "tensordot": tensordot,
})

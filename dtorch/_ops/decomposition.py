"""Matrix functions and decompositions: inv, det/slogdet, solve, cholesky, qr, eigh, svd (torch.linalg's core).

Each backward recomputes what it needs from the saved input through ``ns`` (one more decomposition per
backward), so with ``create_graph=True`` the recomputation is itself recorded and higher derivatives
follow. The formulas are the standard real ones (Giles 2008; Murray 2016 for Cholesky; Townsend 2016
for the SVD); they assume distinct eigen/singular values, as torch's do.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .._device import xp_of
from .._dispatch import apply, apply_unary, defop, tensor_fn
from ..tensor import Tensor
from ._helpers import attach

__all__ = ["det", "logdet", "slogdet", "inverse", "cholesky", "pinverse"]


class LinAlgError(RuntimeError):
    """torch.linalg.LinAlgError: a decomposition or inversion that cannot be completed."""


SlogdetResult = namedtuple("linalg_slogdet", ["sign", "logabsdet"])
QRResult = namedtuple("linalg_qr", ["Q", "R"])
EighResult = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("linalg_svd", ["U", "S", "Vh"])


# ---- argument checks ---------------------------------------------------------------------------
def check_matrix(A: Tensor, fn: str, square: bool = True) -> None:
    if not isinstance(A, Tensor):
        raise TypeError(f"{fn}(): argument 'A' (position 1) must be Tensor, not {type(A).__name__}")
    if A._data.ndim < 2:
        raise RuntimeError(f"{fn}: The input tensor A must have at least 2 dimensions.")
    if A._data.dtype.kind not in "fV":
        raise RuntimeError(f"{fn}: Expected a floating point or complex tensor as input. Got {A.dtype.scalar_name}")
    if square and A._data.shape[-1] != A._data.shape[-2]:
        raise RuntimeError(f"{fn}: A must be batches of square matrices, but they are {A._data.shape[-2]} by "
                           f"{A._data.shape[-1]} matrices")


def _batch_prefix(a, index: int) -> str:
    return f"(Batch element {index}): " if a.ndim > 2 else ""


def _first_zero_pivot(m: np.ndarray) -> int:
    """1-based index of the first zero pivot of LU with partial pivoting (LAPACK getrf's ``info``), 0 if none."""
    m = np.array(m, dtype=np.float64)
    n = m.shape[0]
    for k in range(n):
        p = k + int(np.argmax(np.abs(m[k:, k])))
        if m[p, k] == 0:
            return k + 1
        m[[k, p]] = m[[p, k]]
        m[k + 1:, k:] -= np.outer(m[k + 1:, k] / m[k, k], m[k, k:])
    return 0


def _failed_minor(m: np.ndarray) -> int:
    """Order of the first leading minor that is not positive-definite (LAPACK potrf's ``info``)."""
    for k in range(1, m.shape[0] + 1):
        try:
            np.linalg.cholesky(np.asarray(m[:k, :k], dtype=np.float64))
        except np.linalg.LinAlgError:
            return k
    return m.shape[0]


def _each_matrix(a):
    flat = a.reshape((-1,) + a.shape[-2:])
    return enumerate(flat.get() if hasattr(flat, "get") else flat)


def _singular_error(a, fn: str):
    for i, m in _each_matrix(a):
        k = _first_zero_pivot(m)
        if k:
            return LinAlgError(f"{fn}: {_batch_prefix(a, i)}The diagonal element {k} is zero, the inversion could "
                               "not be completed because the input matrix is singular.")
    return LinAlgError(f"{fn}: The inversion could not be completed because the input matrix is singular.")


def _mT(ns, x):
    return ns.transpose(x, dim0=-2, dim1=-1)


# ---- inv, det, slogdet ---------------------------------------------------------------------------
@defop("linalg_inv", save=(0,))
def _inv(a):
    xp = xp_of(a)
    try:
        out = xp.linalg.inv(a)
    except np.linalg.LinAlgError:
        raise _singular_error(a, "linalg.inv") from None
    if xp is not np and not bool(xp.isfinite(out).all()):
        raise _singular_error(a, "linalg.inv")
    return out


@_inv.backward
def _inv_bw(ns, ctx, g, a):
    y_t = _mT(ns, ns.linalg_inv(a))
    return (-ns.matmul(ns.matmul(y_t, g), y_t),)


def linalg_inv(A: Tensor) -> Tensor:
    check_matrix(A, "linalg.inv")
    return apply_unary(_inv, A)


def inverse(input: Tensor) -> Tensor:
    return linalg_inv(input)


@defop("linalg_det", save=(0,))
def _det(a):
    return xp_of(a).linalg.det(a)


@_det.backward
def _det_bw(ns, ctx, g, a):
    # d det(A) = det(A) tr(A^-1 dA); through solve-free adjugate-like form (A^-T det)
    d = ns.linalg_det(a)
    return (ns.unsqueeze(ns.unsqueeze(g * d, dim=-1), dim=-1) * _mT(ns, ns.linalg_inv(a)),)


def det(A: Tensor) -> Tensor:
    check_matrix(A, "linalg.det")
    return apply_unary(_det, A)


@defop("linalg_slogdet", save=(0,), n_out=2)
def _slogdet(a):
    sign, logabs = xp_of(a).linalg.slogdet(a)
    return sign.astype(a.dtype), logabs.astype(a.dtype)


@_slogdet.backward
def _slogdet_bw(ns, ctx, g, a):
    g_log = g[1]
    return (ns.unsqueeze(ns.unsqueeze(g_log, dim=-1), dim=-1) * _mT(ns, ns.linalg_inv(a)),)


def slogdet(A: Tensor) -> SlogdetResult:
    check_matrix(A, "linalg.slogdet")
    return SlogdetResult(*apply_unary(_slogdet, A))


def logdet(input: Tensor) -> Tensor:
    """log det(A): nan for a negative determinant, -inf for a singular matrix (torch's)."""
    sign, logabs = slogdet(input)
    return logabs.masked_fill(sign < 0, float("nan"))


# ---- solve ---------------------------------------------------------------------------------------
@defop("linalg_solve", save=(0,), save_out=True)
def _solve(a, b, vector=False):
    xp = xp_of(a)
    rhs = b[..., None] if vector else b
    try:
        out = xp.linalg.solve(a, rhs)
    except np.linalg.LinAlgError:
        raise LinAlgError("torch.linalg.solve: The solver failed because the input matrix is singular.") from None
    return out[..., 0] if vector else out


@_solve.backward
def _solve_bw(ns, ctx, g, a, x):
    vector = ctx._args["vector"]
    a_t = _mT(ns, a)
    gb = ns.linalg_solve(a_t, g, vector=vector)
    if vector:
        ga = -ns.matmul(ns.unsqueeze(gb, dim=-1), ns.unsqueeze(x, dim=-2))
    else:
        ga = -ns.matmul(gb, _mT(ns, x))
    return ga, gb


def _solve_public(a: Tensor, b: Tensor, vector: bool = False) -> Tensor:
    return apply(_solve, (a, b), {"vector": vector})


tensor_fn("linalg_solve", _solve_public)


def linalg_solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    check_matrix(A, "linalg.solve")
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return linalg_solve(A.mT, B.mT).mT
    sa, sb = A._data.shape, B._data.shape
    vector = B._data.ndim == 1 or (B._data.ndim == A._data.ndim - 1 and sb == sa[:-1])
    rows = sb[-1] if vector else sb[-2]
    if rows != sa[-1]:
        cols = 1 if vector else sb[-1]
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
                           f"({sa[-2]}x{sa[-1]} and {rows}x{cols})")
    if A._data.dtype != B._data.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
                           f"{A.dtype.scalar_name} and B of type {B.dtype.scalar_name} instead")
    if vector and B._data.ndim == 1 and A._data.ndim > 2:
        B = B.expand(*sa[:-1])
    return _solve_public(A, B, vector)


# ---- cholesky ------------------------------------------------------------------------------------
@defop("linalg_cholesky", save_out=True)
def _cholesky(a):
    xp = xp_of(a)
    try:
        out = xp.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        out = None
    if out is None or (xp is not np and not bool(xp.isfinite(out).all())):
        for i, m in _each_matrix(a):
            try:
                np.linalg.cholesky(np.asarray(m, dtype=np.float64))
            except np.linalg.LinAlgError:
                raise LinAlgError(
                    f"linalg.cholesky: {_batch_prefix(a, i)}The factorization could not be completed because the "
                    f"input is not positive-definite (the leading minor of order {_failed_minor(m)} is not "
                    "positive-definite).") from None
    return out


@_cholesky.backward
def _cholesky_bw(ns, ctx, g, L):
    # Murray (2016): P = Phi(L^T gL), S = L^-T P L^-1, gA = (S + S^T) / 2; Phi: lower triangle, halved diagonal
    p = ns.tril(ns.matmul(_mT(ns, L), g), diagonal=0)
    p = p - 0.5 * ns.diag_embed(ns.diagonal(p, offset=0, dim1=-2, dim2=-1), offset=0, dim1=-2, dim2=-1)
    l_inv = ns.linalg_inv(L)
    s = ns.matmul(ns.matmul(_mT(ns, l_inv), p), l_inv)
    return (0.5 * (s + _mT(ns, s)),)


def linalg_cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    check_matrix(A, "linalg.cholesky")
    L = apply_unary(_cholesky, A)
    return L.mT if upper else L


def cholesky(input: Tensor, upper: bool = False) -> Tensor:
    return linalg_cholesky(input, upper=upper)


# ---- qr ------------------------------------------------------------------------------------------
@defop("linalg_qr", save=(0,), n_out=2)
def _qr(a, mode="reduced"):
    xp = xp_of(a)
    if mode == "r":
        r = xp.linalg.qr(a, mode="r")
        return xp.empty((0,), a.dtype), r
    q, r = xp.linalg.qr(a, mode="complete" if mode == "complete" else "reduced")
    return q, r


@_qr.backward
def _qr_bw(ns, ctx, g, a):
    # A = QR with m >= n (reduced): M = R gR^T - gQ^T Q; gA = (gQ + Q copyltu(M)) R^-T
    gq, gr = g
    q, r = ns.linalg_qr(a, mode="reduced")
    m = ns.matmul(r, _mT(ns, gr)) - ns.matmul(_mT(ns, gq), q)
    low = ns.tril(m, diagonal=-1)
    copyltu = low + _mT(ns, low) + ns.diag_embed(ns.diagonal(m, offset=0, dim1=-2, dim2=-1), offset=0, dim1=-2,
                                                  dim2=-1)
    b = gq + ns.matmul(q, copyltu)
    return (_mT(ns, ns.linalg_solve(r, _mT(ns, b), vector=False)),)


def linalg_qr(A: Tensor, mode: str = "reduced") -> QRResult:
    check_matrix(A, "linalg.qr", square=False)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
                           "'r', or 'complete'")
    m, n = A._data.shape[-2:]
    if A.requires_grad and (mode == "r" or (mode == "complete" and m > n) or m < n):
        raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please "
                           "use linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr."
                           if mode == "r" else
                           "The QR decomposition is not differentiable when mode='complete' and nrows > ncols."
                           if mode == "complete" else
                           "dtorch: linalg.qr's derivative is implemented for nrows >= ncols only")
    return QRResult(*apply_unary(_qr, A, {"mode": mode}))


tensor_fn("linalg_qr", lambda a, mode="reduced": linalg_qr(a, mode))


# ---- eigh ----------------------------------------------------------------------------------------
@defop("linalg_eigh", save=(0,), n_out=2)
def _eigh(a, UPLO="L"):
    return xp_of(a).linalg.eigh(a, UPLO=UPLO)


def _off_diagonal_inverse_gaps(ns, lam):
    """F_ij = 1 / (lam_j - lam_i) off the diagonal, 0 on it."""
    gaps = ns.unsqueeze(lam, dim=-2) - ns.unsqueeze(lam, dim=-1)
    eye = ns.diag_embed(gaps[..., 0] * 0 + 1, offset=0, dim1=-2, dim2=-1)
    return (1 - eye) / (gaps + eye)


@_eigh.backward
def _eigh_bw(ns, ctx, g, a):
    gl, gv = g
    lam, v = ns.linalg_eigh(a, UPLO=ctx._args["UPLO"])
    inner = _off_diagonal_inverse_gaps(ns, lam) * ns.matmul(_mT(ns, v), gv)
    inner = inner + ns.diag_embed(gl, offset=0, dim1=-2, dim2=-1)
    ga = ns.matmul(ns.matmul(v, inner), _mT(ns, v))
    return (0.5 * (ga + _mT(ns, ga)),)


def linalg_eigh(A: Tensor, UPLO: str = "L") -> EighResult:
    check_matrix(A, "linalg.eigh")
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return EighResult(*apply_unary(_eigh, A, {"UPLO": UPLO}))


tensor_fn("linalg_eigh", lambda a, UPLO="L": linalg_eigh(a, UPLO))


# ---- svd -----------------------------------------------------------------------------------------
@defop("linalg_svd", save=(0,), n_out=3)
def _svd(a, full_matrices=True):
    return xp_of(a).linalg.svd(a, full_matrices=full_matrices)


@_svd.backward
def _svd_bw(ns, ctx, g, a):
    # Townsend (2016), reduced SVD A = U S V^T with k = min(m, n)
    gu, gs, gvh = g
    u, s, vh = ns.linalg_svd(a, full_matrices=False)
    k = s.shape[-1]
    if ctx._args["full_matrices"]:  # as torch: only the first k singular vectors enter the derivative
        gu, gvh = gu[..., :k], gvh[..., :k, :]
    v, gv = _mT(ns, vh), _mT(ns, gvh)
    f = _off_diagonal_inverse_gaps(ns, s * s)
    s_mat = ns.diag_embed(s, offset=0, dim1=-2, dim2=-1)
    ut_gu, vt_gv = ns.matmul(_mT(ns, u), gu), ns.matmul(_mT(ns, v), gv)
    inner = (ns.matmul(f * (ut_gu - _mT(ns, ut_gu)), s_mat) + ns.matmul(s_mat, f * (vt_gv - _mT(ns, vt_gv)))
             + ns.diag_embed(gs, offset=0, dim1=-2, dim2=-1))
    ga = ns.matmul(ns.matmul(u, inner), vh)
    s_inv = ns.diag_embed(1 / s, offset=0, dim1=-2, dim2=-1)
    m, n = ctx._in_meta[0][0][-2:]
    if m > k:  # (I - U U^T) gU S^-1 V^T
        ga = ga + ns.matmul(ns.matmul(gu - ns.matmul(u, ut_gu), s_inv), vh)
    if n > k:  # U S^-1 gV^T (I - V V^T)
        ga = ga + ns.matmul(ns.matmul(u, s_inv), _mT(ns, gv - ns.matmul(v, vt_gv)))
    return (ga,)


def linalg_svd(A: Tensor, full_matrices: bool = True, *, driver=None) -> SVDResult:
    check_matrix(A, "linalg.svd", square=False)
    return SVDResult(*apply_unary(_svd, A, {"full_matrices": bool(full_matrices)}))


tensor_fn("linalg_svd", lambda a, full_matrices=True: linalg_svd(a, full_matrices))


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    """Moore-Penrose pseudo-inverse through the SVD (singular values below rcond * max cut)."""
    check_matrix(input, "linalg.pinv", square=False)
    u, s, vh = linalg_svd(input, full_matrices=False)
    cut = s > rcond * s.amax(dim=-1, keepdim=True)
    s_inv = (1 / (s + (~cut).to(s.dtype))) * cut.to(s.dtype)
    return (vh.mT * s_inv.unsqueeze(-2)) @ u.mT


attach(__name__, {"det": det, "logdet": logdet, "slogdet": slogdet, "inverse": inverse, "cholesky": cholesky,
                  "pinverse": pinverse})

"""torch.linalg: norms, solves, inverses, determinants and decompositions, with gradients.

The decompositions are ops in ``_ops/decomposition.py``; this module is torch.linalg's namespace over them
(and over matmul and the vector norm), plus what composes from them (matrix norms, pinv, lstsq, rank).
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from ._ops.decomposition import (  # noqa: F401
    EighResult, LinAlgError, QRResult, SlogdetResult, SVDResult, check_matrix, linalg_cholesky, linalg_eigh,
    linalg_inv, linalg_qr, linalg_solve, linalg_svd, pinverse, slogdet,
)
from ._ops.decomposition import det as _det
from ._ops.linalg import matmul  # noqa: F401
from ._ops.reduction import norm as _vector_norm
from .tensor import Tensor

__all__ = [
    "LinAlgError", "cholesky", "det", "eigh", "eigvalsh", "inv", "lstsq", "matmul", "matrix_norm", "matrix_power",
    "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet", "solve", "svd", "svdvals", "vector_norm",
]

LstsqResult = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])

inv = linalg_inv
det = _det
solve = linalg_solve
cholesky = linalg_cholesky
qr = linalg_qr
eigh = linalg_eigh
svd = linalg_svd


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if not isinstance(ord, (int, float)) or isinstance(ord, bool):
        raise RuntimeError(f"linalg.vector_norm: Expected a scalar `ord`, got {ord!r}")
    if dim is None:
        x = x.reshape(-1)
    return _vector_norm(x, p=ord, dim=dim, keepdim=keepdim, dtype=dtype)


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    return linalg_eigh(A, UPLO).eigenvalues


def svdvals(A: Tensor, *, driver=None) -> Tensor:
    return linalg_svd(A, full_matrices=False).S


def _to_last_two(A: Tensor, dim) -> tuple[Tensor, tuple]:
    d0, d1 = (d % A.ndim for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, {dim[1]})")
    return A.movedim((d0, d1), (-2, -1)), (d0, d1)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    if A.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    if dtype is not None:
        A = A.to(dtype)
    check_matrix(A, "linalg.matrix_norm", square=False)
    if ord not in ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    M, (d0, d1) = _to_last_two(A, dim)
    if ord == "fro":
        out = M.pow(2).sum(dim=(-2, -1)).sqrt()
    elif ord == "nuc":
        out = svdvals(M).sum(-1)
    elif ord in (2, -2):
        s = svdvals(M)
        out = s.amax(-1) if ord == 2 else s.amin(-1)
    else:
        sums = M.abs().sum(dim=-1 if abs(ord) == math.inf else -2)  # row sums for inf, column sums for 1
        out = sums.amax(-1) if ord > 0 else sums.amin(-1)
    if keepdim:
        for d in sorted((d0, d1)):
            out = out.unsqueeze(d)
    return out


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if isinstance(dim, int):
        dim = (dim,)
    if isinstance(ord, str) or (dim is not None and len(dim) == 2) or (dim is None and ord is not None and A.ndim == 2):
        if ord is None:
            ord = "fro"
        return matrix_norm(A, ord, dim if dim is not None else (-2, -1), keepdim, dtype=dtype)
    if ord is not None and dim is None and A.ndim != 1:
        raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                           f"Got {A.ndim}D.")
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def pinv(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    if atol is None and rtol is None:
        rtol = float(max(A.shape[-2:])) * _eps(A)
    if atol is not None:
        u, s, vh = linalg_svd(A, full_matrices=False)
        s_max = s.amax(-1, keepdim=True)
        cut = s > max(float(atol), 0.0) if rtol is None else (s > atol) & (s > rtol * s_max)
        s_inv = (1 / (s + (~cut).to(s.dtype))) * cut.to(s.dtype)
        return (vh.mT * s_inv.unsqueeze(-2)) @ u.mT
    return pinverse(A, rcond=rtol)


def _eps(A: Tensor) -> float:
    return float(np.finfo(A._data.dtype).eps)


def lstsq(A: Tensor, B: Tensor, rcond=None, *, driver=None) -> LstsqResult:
    """Least-squares solution of AX = B (minimum norm when rank-deficient), through the pseudo-inverse."""
    check_matrix(A, "torch.linalg.lstsq", square=False)
    vector = B.ndim == 1
    if (B.shape[0] if vector else B.shape[-2]) != A.shape[-2]:
        raise RuntimeError("torch.linalg.lstsq: input.size(-2) should match other.size(-2)")
    rtol = _eps(A) * max(A.shape[-2:]) if rcond is None or rcond < 0 else float(rcond)
    X = pinverse(A, rcond=rtol) @ (B.unsqueeze(-1) if vector else B)
    rank = matrix_rank(A, rtol=rtol)
    empty = A.new_empty((0,))
    return LstsqResult(X.squeeze(-1) if vector else X, empty, rank, empty)


def matrix_rank(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    s = svdvals(A.detach())
    if atol is None and rtol is None:
        rtol = _eps(A) * max(A.shape[-2:])
    tol = s.amax(-1, keepdim=True) * (rtol or 0.0)
    if atol is not None:
        tol = tol.clamp(min=float(atol))
    return (s > tol).sum(-1)


def multi_dot(tensors) -> Tensor:
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    first_vec, last_vec = tensors[0].ndim == 1, tensors[-1].ndim == 1
    if first_vec:
        tensors[0] = tensors[0].unsqueeze(0)
    if last_vec:
        tensors[-1] = tensors[-1].unsqueeze(-1)
    out = tensors[0]
    for t in tensors[1:]:
        out = out @ t
    if first_vec:
        out = out.squeeze(0)
    if last_vec:
        out = out.squeeze(-1)
    return out


def matrix_power(A: Tensor, n: int) -> Tensor:
    check_matrix(A, "linalg.matrix_power")
    if n < 0:
        A, n = linalg_inv(A), -n
    result = None
    base = A
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    if result is None:  # A^0: identities
        eye = A.detach().new_zeros(A.shape)
        eye.diagonal(dim1=-2, dim2=-1).fill_(1)
        return eye
    return result

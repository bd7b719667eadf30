"""torch.linalg: inv/det/slogdet/solve/cholesky/qr/eigh/svd with float64 gradcheck (and gradgradcheck: the backward
formulas recompute through recorded ops), parity with torch, the composed functions (norms, pinv, lstsq, rank,
multi_dot, matrix_power) and torch's errors."""
from __future__ import annotations

import math

import pytest

import dtorch
from dtorch import linalg as LA
from tests.oracle import check_grads, check_op, rand


def _spd(lib, x):
    return x @ x.mT + x.shape[-1] * lib.eye(x.shape[-1], dtype=x.dtype)


def _sym(x):
    return x + x.mT


def _signs(v):
    """+-1 per column of v, from its first row: LAPACK's sign choices differ between builds."""
    return (v[..., :1, :] >= 0).to(v.dtype) * 2 - 1


def _qr(lib, a):
    q, r = lib.linalg.qr(a)
    s = (lib.diagonal(r, dim1=-2, dim2=-1) >= 0).to(a.dtype).unsqueeze(-2) * 2 - 1
    return q * s, r * s.mT


def _eigh(lib, a, **kw):
    lam, v = lib.linalg.eigh(_sym(a), **kw)
    return lam, v * _signs(v)


def _svd(lib, a):
    u, s, vh = lib.linalg.svd(a, full_matrices=False)
    k = _signs(u)
    return u * k, s, vh * k.mT


CASES = {
    "inv": (lambda lib, a: lib.linalg.inv(a), [(3, 3)]),
    "inv_batched": (lambda lib, a: lib.linalg.inv(a), [(2, 3, 3)]),
    "inverse": (lambda lib, a: lib.inverse(a), [(4, 4)]),
    "det": (lambda lib, a: lib.linalg.det(a), [(3, 3)]),
    "det_batched": (lambda lib, a: lib.det(a), [(2, 2, 2)]),
    "slogdet": (lambda lib, a: lib.linalg.slogdet(a), [(3, 3)]),
    "logdet": (lambda lib, a: lib.logdet(_spd(lib, a)), [(3, 3)]),
    "solve_matrix": (lambda lib, a, b: lib.linalg.solve(a, b), [(3, 3), (3, 2)]),
    "solve_vector": (lambda lib, a, b: lib.linalg.solve(a, b), [(3, 3), (3,)]),
    "solve_batched_vector": (lambda lib, a, b: lib.linalg.solve(a, b), [(2, 3, 3), (2, 3)]),
    "solve_broadcast": (lambda lib, a, b: lib.linalg.solve(a, b), [(2, 3, 3), (3, 4)]),
    "solve_right": (lambda lib, a, b: lib.linalg.solve(a, b, left=False), [(3, 3), (2, 3)]),
    "cholesky": (lambda lib, x: lib.linalg.cholesky(_spd(lib, x)), [(3, 3)]),
    "cholesky_upper": (lambda lib, x: lib.linalg.cholesky(_spd(lib, x), upper=True), [(2, 3, 3)]),
    "qr_tall": (_qr, [(4, 3)]),
    "qr_square_batched": (_qr, [(2, 3, 3)]),
    "eigh": (_eigh, [(3, 3)]),
    "eigh_upper": (lambda lib, a: _eigh(lib, a, UPLO="U"), [(2, 3, 3)]),
    "eigvalsh": (lambda lib, a: lib.linalg.eigvalsh(_sym(a)), [(4, 4)]),
    "svd_tall": (_svd, [(4, 3)]),
    "svd_wide": (_svd, [(2, 3, 5)]),
    "svdvals": (lambda lib, a: lib.linalg.svdvals(a), [(3, 4)]),
    "pinv": (lambda lib, a: lib.linalg.pinv(a), [(4, 3)]),
    "lstsq": (lambda lib, a, b: lib.linalg.lstsq(a, b).solution, [(5, 3), (5, 2)]),
    "vector_norm_2": (lambda lib, a: lib.linalg.vector_norm(a), [(2, 3, 4)]),
    "vector_norm_ord": (lambda lib, a: lib.linalg.vector_norm(a, ord=3, dim=(0, 2), keepdim=True), [(2, 3, 4)]),
    "vector_norm_inf": (lambda lib, a: lib.linalg.vector_norm(a, ord=math.inf, dim=-1), [(3, 4)]),
    "matrix_norm_fro": (lambda lib, a: lib.linalg.matrix_norm(a), [(2, 3, 4)]),
    "matrix_norm_nuc": (lambda lib, a: lib.linalg.matrix_norm(a, ord="nuc"), [(3, 4)]),
    "matrix_norm_2": (lambda lib, a: lib.linalg.matrix_norm(a, ord=2), [(3, 4)]),
    "matrix_norm_m2": (lambda lib, a: lib.linalg.matrix_norm(a, ord=-2), [(4, 3)]),
    "matrix_norm_1_dims": (lambda lib, a: lib.linalg.matrix_norm(a, ord=1, dim=(0, 2), keepdim=True), [(3, 2, 4)]),
    "matrix_norm_inf": (lambda lib, a: lib.linalg.matrix_norm(a, ord=-math.inf), [(3, 4)]),
    "norm_default": (lambda lib, a: lib.linalg.norm(a), [(2, 3, 4)]),
    "norm_matrix_ord": (lambda lib, a: lib.linalg.norm(a, ord=1), [(3, 4)]),
    "norm_vector_dim": (lambda lib, a: lib.linalg.norm(a, ord=1, dim=1), [(3, 4)]),
    "multi_dot": (lambda lib, a, b, c: lib.linalg.multi_dot([a, b, c]), [(3,), (3, 4), (4,)]),
    "matrix_power_3": (lambda lib, a: lib.linalg.matrix_power(a, 3), [(3, 3)]),
    "matrix_power_m2": (lambda lib, a: lib.linalg.matrix_power(a, -2), [(3, 3)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_parity_with_torch(name):
    fn, shapes = CASES[name]
    check_op(fn, shapes=shapes, seed=3)


GRADCHECK = {
    "inv": (lambda a: LA.inv(a), (3, 3)),
    "det": (lambda a: LA.det(a), (2, 3, 3)),
    "slogdet": (lambda a: LA.slogdet(a).logabsdet, (3, 3)),
    "solve": (lambda a: LA.solve(a, a[..., :2].cos()), (3, 3)),
    "cholesky": (lambda a: LA.cholesky(_spd(dtorch, a)), (3, 3)),
    "qr": (lambda a: tuple(LA.qr(a)), (4, 3)),
    "eigh": (lambda a: tuple(LA.eigh(_sym(a))), (3, 3)),
    "svd": (lambda a: tuple(LA.svd(a, full_matrices=False)), (3, 4)),
    "svd_full_only_s": (lambda a: LA.svd(a).S, (4, 2)),
    "matrix_norm_nuc": (lambda a: LA.matrix_norm(a, "nuc"), (3, 3)),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK))
def test_gradcheck_and_gradgradcheck(name):
    fn, shape = GRADCHECK[name]
    dtorch.manual_seed(1)
    check_grads(fn, rand(*shape))


def test_matrix_rank_and_lstsq_fields():
    dtorch.manual_seed(0)
    a = dtorch.randn(5, 2, dtype=dtorch.float64) @ dtorch.randn(2, 4, dtype=dtorch.float64)
    assert int(LA.matrix_rank(a)) == 2
    res = LA.lstsq(a, dtorch.randn(5, 1, dtype=dtorch.float64))
    assert res._fields == ("solution", "residuals", "rank", "singular_values") and int(res.rank) == 2
    assert LA.matrix_power(a[:4], 0).tolist() == dtorch.eye(4, dtype=dtorch.float64).tolist()


ERRORS = [
    ("singular", lambda m: m.linalg.inv(m.tensor([[1.0, 2.0], [2.0, 4.0]]))),
    ("singular_batched", lambda m: m.linalg.inv(m.zeros(2, 2, 2))),
    ("not_square", lambda m: m.linalg.inv(m.zeros(2, 3))),
    ("one_dim", lambda m: m.linalg.inv(m.zeros(3))),
    ("integer", lambda m: m.linalg.inv(m.zeros(2, 2, dtype=m.long))),
    ("not_pd", lambda m: m.linalg.cholesky(m.tensor([[1.0, 2.0], [2.0, 1.0]]))),
    ("solve_singular", lambda m: m.linalg.solve(m.tensor([[1.0, 2.0], [2.0, 4.0]]), m.ones(2))),
    ("solve_shapes", lambda m: m.linalg.solve(m.eye(2), m.ones(3))),
    ("det_shape", lambda m: m.linalg.det(m.zeros(2, 3))),
    ("eigh_shape", lambda m: m.linalg.eigh(m.zeros(2, 3))),
    ("svd_integer", lambda m: m.linalg.svd(m.zeros(2, 3, dtype=m.long))),
    ("qr_one_dim", lambda m: m.linalg.qr(m.zeros(3))),
    ("vector_norm_integer", lambda m: m.linalg.vector_norm(m.zeros(3, dtype=m.long))),
    ("matrix_norm_one_dim", lambda m: m.linalg.matrix_norm(m.zeros(3))),
    ("matrix_norm_order", lambda m: m.linalg.matrix_norm(m.zeros(3, 3), ord=3)),
    ("lstsq_rows", lambda m: m.linalg.lstsq(m.zeros(3, 2), m.zeros(4, 1))),
]


@pytest.mark.parametrize("name,fn", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_like_torch(name, fn, torch):
    with pytest.raises(RuntimeError) as theirs:
        fn(torch)
    with pytest.raises(RuntimeError) as ours:
        fn(dtorch)
    assert str(ours.value) == str(theirs.value)
    assert isinstance(ours.value, LA.LinAlgError) == isinstance(theirs.value, torch.linalg.LinAlgError)

"""matmul and its family, einsum, tensordot: values, dtypes, gradients, errors (parity with torch)."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from tests.oracle import assert_close, check_grads, check_op, rand, raises_like_torch, torch_or_skip


# ---- matmul in all its shapes ------------------------------------------------------------------
MATMUL_SHAPES = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((2, 3), (5, 3, 4)),
    ((1, 5, 2, 3), (7, 1, 3, 4)),
    ((2, 1, 2, 3), (3,)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_parity(device, sa, sb, torch):
    a, b = rand(*sa, device=device, dtype=dtorch.float32), rand(*sb, device=device, dtype=dtorch.float32)
    check_op(dtorch.matmul, torch.matmul, inputs=(a, b), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_gradcheck(device, sa, sb):
    check_grads(dtorch.matmul, rand(*sa, device=device), rand(*sb, device=device))


def test_matmul_operators_and_grad_fn_names(device):
    a, b = rand(2, 3, device=device), rand(3, 4, device=device)
    assert (a @ b).grad_fn.name() == "MmBackward0"
    assert a.matmul(b).grad_fn.name() == "MmBackward0"
    assert dtorch.matmul(a, b[:, 0]).grad_fn.name() == "MvBackward0"
    assert dtorch.matmul(a[0], a[1]).grad_fn.name() == "DotBackward0"
    assert dtorch.matmul(rand(5, 2, 3, device=device), b).grad_fn.name() == "MatmulBackward0"
    # __rmatmul__ is reached when the left operand is not a Tensor
    c = rand(4, 2, device=device)
    assert_close(a.__rmatmul__(c), c.matmul(a))


def test_matmul_one_operand_needs_grad(device):
    x = rand(4, 2, 3, device=device, requires_grad=False)
    w = rand(3, 5, device=device)
    (x @ w).sum().backward()
    assert x.grad is None
    np.testing.assert_allclose(w.grad.cpu().numpy(), x.detach().cpu().numpy().sum(axis=(0, 1))[:, None] * np.ones(5))


def test_matmul_non_contiguous_inputs(device):
    torch_or_skip()
    a = rand(3, 2, device=device, dtype=dtorch.float32)
    b = rand(4, 3, device=device, dtype=dtorch.float32)
    check_op(lambda x, y: x.t() @ y.t(), lambda x, y: x.t() @ y.t(), inputs=(a, b), rtol=1e-4, atol=1e-5)
    x, w = rand(5, 3, 2, device=device, dtype=dtorch.float32), rand(4, 3, device=device, dtype=dtorch.float32)
    check_op(lambda x, y: x.transpose(1, 2) @ y.t(), lambda x, y: x.transpose(1, 2) @ y.t(), inputs=(x, w),
             rtol=1e-4, atol=1e-5)
    x, y = rand(6, 5, 3, device=device, dtype=dtorch.float32), rand(4, 3, device=device, dtype=dtorch.float32)
    check_op(lambda x, y: _strided(x) @ y.t(), lambda x, y: _strided(x) @ y.t(), inputs=(x, y),
             rtol=1e-4, atol=1e-5)
    check_grads(lambda x, y: x.transpose(1, 2) @ y.t(), rand(5, 3, 2, device=device), rand(4, 3, device=device))


def _strided(x):
    return x[::2, 1:]


def test_matmul_integer_dtypes(device):
    a = dtorch.arange(6, device=device).reshape(2, 3)
    b = dtorch.arange(12, device=device).reshape(3, 4)
    out = a @ b
    assert out.dtype == dtorch.int64
    np.testing.assert_array_equal(out.cpu().numpy(), np.arange(6).reshape(2, 3) @ np.arange(12).reshape(3, 4))
    out32 = dtorch.matmul(a.int(), b.int())
    assert out32.dtype == dtorch.int32


def test_matmul_output_owns_memory(device):
    a = rand(4, 2, 3, device=device, requires_grad=False)
    w = rand(3, 5, device=device, requires_grad=False)
    out = a @ w
    out.zero_()
    assert float(a.abs().sum()) > 0 and out.is_contiguous()


MATMUL_ERRORS = [
    ((2, 3), (4, 5)),
    ((3,), (4,)),
    ((2, 3), (4,)),
    ((3,), (4, 5)),
    ((2, 2, 3), (3, 4, 5)),
    ((2, 2, 3), (2, 4, 5)),
    ((2, 2, 3), (4, 5)),
    ((2, 2, 3), (4,)),
    ((3,), (2, 4, 5)),
    ((2, 3), (2, 4, 5)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_ERRORS)
def test_matmul_shape_errors_as_torch(sa, sb, torch):
    raises_like_torch(dtorch.matmul, torch.matmul, rand(*sa, requires_grad=False), rand(*sb, requires_grad=False))


def test_matmul_dtype_and_dim_errors(torch):
    a32 = rand(2, 3, dtype=dtorch.float32, requires_grad=False)
    b64 = rand(3, 4, requires_grad=False)
    raises_like_torch(dtorch.matmul, torch.matmul, a32, b64)
    raises_like_torch(dtorch.mm, torch.mm, a32, b64)
    raises_like_torch(dtorch.matmul, torch.matmul, rand(5, 2, 3, dtype=dtorch.float32, requires_grad=False), b64)
    raises_like_torch(dtorch.mm, torch.mm, a32, dtorch.ones(3, 4, dtype=dtorch.int64))
    raises_like_torch(dtorch.mm, torch.mm, a32, dtorch.ones(3, 4, dtype=dtorch.float16))
    raises_like_torch(dtorch.matmul, torch.matmul, dtorch.tensor(2.0), rand(3, requires_grad=False))
    raises_like_torch(dtorch.mm, torch.mm, rand(2, 3, 3, requires_grad=False), rand(3, 4, requires_grad=False))
    raises_like_torch(dtorch.mm, torch.mm, rand(2, 3, requires_grad=False), rand(3, requires_grad=False))
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"):
        dtorch.mm(rand(2, 3), rand(4, 5))
    with pytest.raises(TypeError):
        dtorch.matmul(rand(2, 3), [[1.0], [2.0], [3.0]])


# ---- mm / bmm / mv / dot / outer -------------------------------------------------------------------
def test_mm_bmm_mv_dot_parity(device, torch):
    f32 = dict(device=device, dtype=dtorch.float32)
    tol = dict(rtol=1e-4, atol=1e-5)
    check_op(dtorch.mm, torch.mm, inputs=(rand(2, 3, **f32), rand(3, 4, **f32)), **tol)
    check_op(dtorch.bmm, torch.bmm, inputs=(rand(5, 2, 3, **f32), rand(5, 3, 4, **f32)), **tol)
    check_op(dtorch.mv, torch.mv, inputs=(rand(2, 3, **f32), rand(3, **f32)), **tol)
    check_op(dtorch.dot, torch.dot, inputs=(rand(3, **f32), rand(3, **f32)), **tol)
    check_op(dtorch.vdot, torch.vdot, inputs=(rand(3, **f32), rand(3, **f32)), **tol)
    check_op(dtorch.outer, torch.outer, inputs=(rand(3, **f32), rand(4, **f32)), **tol)
    check_op(dtorch.inner, torch.inner, inputs=(rand(2, 3, **f32), rand(4, 3, **f32)), **tol)
    check_op(lambda a, b: a.bmm(b.transpose(1, 2)), lambda a, b: a.bmm(b.transpose(1, 2)),
             inputs=(rand(5, 2, 3, **f32), rand(5, 4, 3, **f32)), **tol)


def test_mm_family_gradcheck(device):
    check_grads(dtorch.mm, rand(2, 3, device=device), rand(3, 4, device=device))
    check_grads(dtorch.bmm, rand(2, 2, 3, device=device), rand(2, 3, 2, device=device))
    check_grads(dtorch.mv, rand(2, 3, device=device), rand(3, device=device))
    check_grads(dtorch.dot, rand(3, device=device), rand(3, device=device))
    check_grads(dtorch.outer, rand(3, device=device), rand(2, device=device))


def test_mm_family_grad_fn_names(device):
    a, b = rand(2, 3, device=device), rand(3, 4, device=device)
    assert dtorch.mm(a, b).grad_fn.name() == "MmBackward0"
    assert dtorch.bmm(a[None], b[None]).grad_fn.name() == "BmmBackward0"
    assert dtorch.mv(a, b[:, 0]).grad_fn.name() == "MvBackward0"
    assert dtorch.dot(a[0], a[1]).grad_fn.name() == "DotBackward0"
    assert dtorch.outer(a[0], a[1]).grad_fn.name() == "MulBackward0"
    assert dtorch.ger is dtorch.outer


def test_outer_promotes_dtypes(torch):
    check_op(dtorch.outer, torch.outer, inputs=(dtorch.arange(3), rand(4, dtype=dtorch.float32)))
    check_op(dtorch.outer, torch.outer, inputs=(rand(3, dtype=dtorch.float32), rand(4)))


def test_bmm_mv_dot_errors_as_torch(torch):
    cases = [
        (dtorch.bmm, torch.bmm, (2, 3), (4, 5)),
        (dtorch.bmm, torch.bmm, (2, 2, 3), (2, 3)),
        (dtorch.bmm, torch.bmm, (2, 2, 3), (3, 3, 5)),
        (dtorch.bmm, torch.bmm, (2, 2, 3), (2, 4, 5)),
        (dtorch.mv, torch.mv, (2, 3), (4,)),
        (dtorch.mv, torch.mv, (2, 3), (4, 1)),
        (dtorch.dot, torch.dot, (3,), (4,)),
        (dtorch.dot, torch.dot, (3, 1), (3,)),
        (dtorch.outer, torch.outer, (3, 1), (4,)),
    ]
    for fn, tfn, sa, sb in cases:
        raises_like_torch(fn, tfn, rand(*sa, requires_grad=False), rand(*sb, requires_grad=False))
    a32, a64 = rand(3, dtype=dtorch.float32, requires_grad=False), rand(3, requires_grad=False)
    raises_like_torch(dtorch.dot, torch.dot, a32, a64)
    raises_like_torch(dtorch.mv, torch.mv, rand(2, 3, requires_grad=False), a32)
    raises_like_torch(dtorch.bmm, torch.bmm, rand(2, 2, 3, dtype=dtorch.float32, requires_grad=False),
                      rand(2, 3, 2, requires_grad=False))
    bools = dtorch.ones(3, dtype=dtorch.bool)
    raises_like_torch(dtorch.dot, torch.dot, bools, bools, exc=NotImplementedError)
    raises_like_torch(dtorch.mm, torch.mm, bools.reshape(1, 3), bools.reshape(3, 1), exc=NotImplementedError)


# ---- addmm / addmv / baddbmm -----------------------------------------------------------------------
@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, 2.0), (0, 1)])
def test_addmm_family_parity(device, beta, alpha, torch):
    f32 = dict(device=device, dtype=dtorch.float32)
    tol = dict(rtol=1e-4, atol=1e-5)
    kw = dict(beta=beta, alpha=alpha)
    check_op(lambda c, a, b: dtorch.addmm(c, a, b, **kw), lambda c, a, b: torch.addmm(c, a, b, **kw),
             inputs=(rand(2, 4, **f32), rand(2, 3, **f32), rand(3, 4, **f32)), **tol)
    check_op(lambda c, a, b: dtorch.addmm(c, a, b, **kw), lambda c, a, b: torch.addmm(c, a, b, **kw),
             inputs=(rand(4, **f32), rand(2, 3, **f32), rand(3, 4, **f32)), **tol)
    check_op(lambda c, a, v: dtorch.addmv(c, a, v, **kw), lambda c, a, v: torch.addmv(c, a, v, **kw),
             inputs=(rand(2, **f32), rand(2, 3, **f32), rand(3, **f32)), **tol)
    check_op(lambda c, a, b: dtorch.baddbmm(c, a, b, **kw), lambda c, a, b: torch.baddbmm(c, a, b, **kw),
             inputs=(rand(2, 4, **f32), rand(5, 2, 3, **f32), rand(5, 3, 4, **f32)), **tol)


def test_addmm_beta_zero_ignores_nan(device):
    c = dtorch.full((2, 2), float("nan"), device=device)
    out = dtorch.addmm(c, dtorch.ones(2, 3, device=device), dtorch.ones(3, 2, device=device), beta=0)
    np.testing.assert_array_equal(out.cpu().numpy(), np.full((2, 2), 3.0, np.float32))


def test_addmm_family_gradcheck(device):
    check_grads(lambda c, a, b: dtorch.addmm(c, a, b, beta=0.5, alpha=2.0),
                rand(3, device=device), rand(2, 3, device=device), rand(3, 3, device=device))
    check_grads(dtorch.addmm, rand(2, 3, device=device), rand(2, 3, device=device), rand(3, 3, device=device))
    check_grads(lambda c, a, v: dtorch.addmv(c, a, v, alpha=3.0), rand(2, device=device), rand(2, 3, device=device),
                rand(3, device=device))
    check_grads(lambda c, a, b: dtorch.baddbmm(c, a, b, beta=2.0, alpha=0.5), rand(1, 2, device=device),
                rand(2, 2, 3, device=device), rand(2, 3, 2, device=device))


def test_addmm_family_grad_fn_names(device):
    a, b = rand(2, 3, device=device), rand(3, 4, device=device)
    assert dtorch.addmm(rand(4, device=device), a, b).grad_fn.name() == "AddmmBackward0"
    assert a.addmm(a, b.T[:3, :3]).grad_fn.name() == "AddmmBackward0"
    assert dtorch.addmv(rand(2, device=device), a, b[:, 0]).grad_fn.name() == "AddmvBackward0"
    assert dtorch.baddbmm(rand(2, 4, device=device), a[None], b[None]).grad_fn.name() == "BaddbmmBackward0"


def test_addmm_family_errors_as_torch(torch):
    f32 = dict(dtype=dtorch.float32, requires_grad=False)
    cases = [
        (dtorch.addmm, torch.addmm, [(2, 5), (2, 3), (4, 5)], [None, None, None]),
        (dtorch.addmm, torch.addmm, [(3, 5), (2, 3), (3, 5)], [None, None, None]),
        (dtorch.addmm, torch.addmm, [(2, 5), (3,), (3, 5)], [None, None, None]),
        (dtorch.addmm, torch.addmm, [(2, 5), (2, 3), (3, 5)], [dtorch.float64, None, None]),
        (dtorch.addmm, torch.addmm, [(2, 5), (2, 3), (3, 5)], [None, dtorch.float64, None]),
        (dtorch.addmv, torch.addmv, [(2,), (2, 3), (4,)], [None, None, None]),
        (dtorch.addmv, torch.addmv, [(2,), (2, 3), (3,)], [dtorch.float64, None, None]),
        (dtorch.baddbmm, torch.baddbmm, [(4, 2, 5), (4, 2, 3), (3, 3, 5)], [None, None, None]),
        (dtorch.baddbmm, torch.baddbmm, [(4, 2, 5), (4, 2, 3), (4, 3, 5)], [dtorch.float64, None, None]),
        (dtorch.baddbmm, torch.baddbmm, [(2, 2, 5), (4, 2, 3), (4, 3, 5)], [None, None, None]),
    ]
    for fn, tfn, shapes, dtypes in cases:
        ins = [rand(*s, **{**f32, **({"dtype": d} if d else {})}) for s, d in zip(shapes, dtypes)]
        raises_like_torch(fn, tfn, *ins)


# ---- einsum ------------------------------------------------------------------------------------------
EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (5, 3, 4)]),
    ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->ji", [(2, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("ij->", [(2, 3)]),
    ("ij,j->i", [(2, 3), (1,)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 2)]),
    ("iij->j", [(2, 2, 3)]),
    ("ba", [(2, 3)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM_CASES)
def test_einsum_parity(device, eq, shapes, torch):
    ops = [rand(*s, device=device, dtype=dtorch.float32) for s in shapes]
    check_op(lambda *xs: dtorch.einsum(eq, *xs), lambda *xs: torch.einsum(eq, *xs), inputs=ops, rtol=1e-4,
             atol=1e-5)


@pytest.mark.parametrize("eq,shapes", EINSUM_CASES)
def test_einsum_gradcheck(device, eq, shapes):
    check_grads(lambda *xs: dtorch.einsum(eq, *xs), *[rand(*s, device=device) for s in shapes])


def test_einsum_list_and_sublist_forms(device):
    a, b = rand(2, 3, device=device), rand(3, 4, device=device)
    expected = (a @ b).detach()
    assert_close(dtorch.einsum("ij,jk->ik", [a, b]), expected.cpu().numpy(), rtol=1e-12, atol=1e-12)
    assert_close(dtorch.einsum(a, [0, 1], b, [1, 2], [0, 2]), expected.cpu().numpy(), rtol=1e-12, atol=1e-12)
    assert_close(dtorch.einsum(a, [Ellipsis, 1], b, [1, 2]), expected.cpu().numpy(), rtol=1e-12, atol=1e-12)
    assert dtorch.einsum("ij,jk->ik", a, b).grad_fn.name() == "EinsumBackward0"


def test_einsum_output_does_not_alias_input(device):
    a = rand(2, 3, device=device, requires_grad=False)
    out = dtorch.einsum("ij->ji", a)
    out.zero_()
    assert float(a.abs().sum()) > 0


def test_einsum_errors_as_torch(torch):
    a, b = rand(2, 3, requires_grad=False), rand(3, 4, requires_grad=False)
    cases = [
        ("ij,jk->ik", [a, rand(4, 4, requires_grad=False)]),
        ("ij,jk->ik", [a]),
        ("ij,jk->ik", [a, b, b]),
        ("ij->ik", [a]),
        ("ijk->ij", [a]),
        ("ij,jk->ii", [a, b]),
        ("ij,jk->ik", [a, b.float()]),
    ]
    for eq, ops in cases:
        raises_like_torch(lambda *xs, eq=eq: dtorch.einsum(eq, *xs), lambda *xs, eq=eq: torch.einsum(eq, *xs), *ops)


def test_einsum_integer(device, torch):
    a = dtorch.arange(6, device=device).reshape(2, 3)
    check_op(lambda x: dtorch.einsum("ij,ij->i", x, x), lambda x: torch.einsum("ij,ij->i", x, x), inputs=(a,))


# ---- tensordot ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [2, 1, 0, ([1, 2], [0, 1]), ([2, 0], [1, 2])])
def test_tensordot(device, dims, torch):
    sb = (3, 4, 5) if dims != ([2, 0], [1, 2]) else (5, 4, 2)
    if dims == 0:
        sb = (2,)
    elif dims == 1:
        sb = (4, 2)
    a, b = rand(2, 3, 4, device=device, dtype=dtorch.float32), rand(*sb, device=device, dtype=dtorch.float32)
    check_op(lambda x, y: dtorch.tensordot(x, y, dims), lambda x, y: torch.tensordot(x, y, dims), inputs=(a, b),
             rtol=1e-4, atol=1e-5)


def test_tensordot_gradcheck_and_errors(device, torch):
    check_grads(lambda x, y: dtorch.tensordot(x, y, ([1, 2], [0, 1])), rand(2, 3, 2, device=device),
                rand(3, 2, 2, device=device))
    a, b = rand(2, 3, 4, requires_grad=False), rand(4, 4, 5, requires_grad=False)
    raises_like_torch(lambda x, y: dtorch.tensordot(x, y, ([1], [0, 1])),
                      lambda x, y: torch.tensordot(x, y, ([1], [0, 1])), a, b)
    with pytest.raises(RuntimeError, match="contracted dimensions need to match"):
        dtorch.tensordot(a, b, 2)


# ---- speed-relevant structure ------------------------------------------------------------------------
def test_linear_layer_weight_grad_is_folded_product(device):
    """x (B, T, K) @ w (K, N): the weight gradient equals the sum over the batch of per-batch products."""
    x, w = rand(4, 5, 3, device=device), rand(3, 2, device=device)
    out = x @ w
    g = dtorch.randn(out.shape, dtype=out.dtype, device=device)
    out.backward(g)
    xs, gs = x.detach().cpu().numpy(), g.cpu().numpy()
    np.testing.assert_allclose(w.grad.cpu().numpy(), np.einsum("btk,btn->kn", xs, gs), rtol=1e-12)
    np.testing.assert_allclose(x.grad.cpu().numpy(), gs @ w.detach().cpu().numpy().T, rtol=1e-12)

"""cat/stack, flip/roll, repeat, tril/triu, diagonals, meshgrid: values, dtypes, gradients, errors."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from tests.oracle import assert_close, check_grads, check_op, rand, raises_like_torch, torch_or_skip

F32 = dtorch.float32


# ---- cat / stack -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_parity(device, dim, torch):
    shapes = {0: [(2, 3), (1, 3), (4, 3)], 1: [(2, 3), (2, 1), (2, 2)], -1: [(2, 3), (2, 1), (2, 2)]}[dim]
    ins = [rand(*s, device=device, dtype=F32) for s in shapes]
    check_op(lambda *xs: dtorch.cat(xs, dim), lambda *xs: torch.cat(xs, dim), inputs=ins)
    assert dtorch.cat(ins, dim).grad_fn.name() == "CatBackward0"


def test_cat_aliases_and_keyword(device):
    a, b = rand(2, 3, device=device, dtype=F32), rand(2, 3, device=device, dtype=F32)
    expected = dtorch.cat([a, b], dim=1)
    for out in (dtorch.concat((a, b), dim=1), dtorch.concatenate([a, b], axis=1), dtorch.cat([a, b], -1)):
        assert_close(out, expected.detach().cpu().numpy())


@pytest.mark.parametrize("dtypes", [
    (dtorch.float32, dtorch.int64),
    (dtorch.int32, dtorch.int64),
    (dtorch.bool, dtorch.uint8),
    (dtorch.float16, dtorch.float64),
    (dtorch.bool, dtorch.float32),
])
def test_cat_promotes_dtypes(device, dtypes, torch):
    ins = [dtorch.ones(2, 3, dtype=d, device=device) for d in dtypes]
    check_op(lambda *xs: dtorch.cat(xs), lambda *xs: torch.cat(xs), inputs=ins)
    check_op(lambda *xs: dtorch.stack(xs), lambda *xs: torch.stack(xs), inputs=ins)


def test_cat_mixed_dtype_gradients_come_back_in_input_dtype(device, torch):
    check_op(lambda a, b: dtorch.cat([a, b]), lambda a, b: torch.cat([a, b]),
             inputs=(rand(2, 3, device=device, dtype=F32), rand(1, 3, device=device)))


def test_cat_skips_legacy_empty(device, torch):
    empty64 = dtorch.empty(0, dtype=dtorch.float64, device=device)
    a = rand(2, 3, device=device, dtype=F32)
    check_op(lambda x, e: dtorch.cat([x, e], dim=1), lambda x, e: torch.cat([x, e], dim=1), inputs=(a, empty64))
    out = dtorch.cat([empty64, dtorch.empty(0, device=device)])
    assert out.shape == (0,) and out.dtype == dtorch.float64


def test_cat_copies(device):
    a = rand(2, 3, device=device, requires_grad=False, dtype=F32)
    out = dtorch.cat([a])
    out.zero_()
    assert float(a.abs().sum()) > 0


def test_cat_stack_errors_as_torch(torch):
    a = rand(2, 3, requires_grad=False, dtype=F32)
    raises_like_torch(lambda *xs: dtorch.cat(xs), lambda *xs: torch.cat(xs), a,
                      rand(2, 4, requires_grad=False, dtype=F32))
    raises_like_torch(lambda *xs: dtorch.cat(xs), lambda *xs: torch.cat(xs), a,
                      rand(2, 4, 3, requires_grad=False, dtype=F32))
    raises_like_torch(lambda *xs: dtorch.cat(xs), lambda *xs: torch.cat(xs), a, dtorch.tensor(1.0))
    raises_like_torch(lambda *xs: dtorch.cat(xs, dim=2), lambda *xs: torch.cat(xs, dim=2), a, a, exc=IndexError)
    raises_like_torch(lambda *xs: dtorch.stack(xs), lambda *xs: torch.stack(xs), a,
                      rand(2, 4, requires_grad=False, dtype=F32))
    raises_like_torch(lambda *xs: dtorch.stack(xs, 3), lambda *xs: torch.stack(xs, 3), a, a, exc=IndexError)
    with pytest.raises(ValueError, match="expected a non-empty list of Tensors"):
        dtorch.cat([])
    with pytest.raises(RuntimeError, match="stack expects a non-empty TensorList"):
        dtorch.stack([])


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack_parity(device, dim, torch):
    ins = [rand(2, 3, device=device, dtype=F32) for _ in range(3)]
    check_op(lambda *xs: dtorch.stack(xs, dim), lambda *xs: torch.stack(xs, dim), inputs=ins)
    assert dtorch.stack(ins, dim).grad_fn.name() == "StackBackward0"


def test_cat_stack_gradcheck(device):
    check_grads(lambda a, b: dtorch.cat([a, b], 1), rand(2, 3, device=device), rand(2, 2, device=device))
    check_grads(lambda a, b: dtorch.cat([a, b, a]), rand(2, 3, device=device), rand(1, 3, device=device))
    check_grads(lambda a, b: dtorch.stack([a, b], 1), rand(2, 3, device=device), rand(2, 3, device=device))


@pytest.mark.parametrize("name", ["hstack", "vstack", "dstack", "column_stack"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 2)])
def test_hvd_stack_parity(device, name, shape, torch):
    if name == "column_stack" and len(shape) > 2:
        shape = (2, 3)
    ins = [rand(*shape, device=device, dtype=F32), rand(*shape, device=device, dtype=F32)]
    check_op(lambda *xs: getattr(dtorch, name)(xs), lambda *xs: getattr(torch, name)(xs), inputs=ins)


def test_hvstack_gradcheck(device):
    check_grads(lambda a, b: dtorch.hstack([a, b]), rand(3, device=device), rand(2, device=device))
    check_grads(lambda a, b: dtorch.vstack([a, b]), rand(3, device=device), rand(2, 3, device=device))


# ---- flip / roll ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [(0,), (1,), (0, 2), (-1,), ()])
def test_flip_parity(device, dims, torch):
    check_op(lambda x: dtorch.flip(x, dims), lambda x: torch.flip(x, dims),
             inputs=(rand(2, 3, 4, device=device, dtype=F32),))


def test_flip_variants(device, torch):
    x = rand(2, 3, device=device, dtype=F32)
    check_op(lambda t: t.flip(0, 1), lambda t: t.flip(0, 1), inputs=(x,))
    check_op(lambda t: t.flip(1), lambda t: t.flip(1), inputs=(rand(2, 3, device=device, dtype=F32),))
    check_op(dtorch.fliplr, torch.fliplr, inputs=(rand(2, 3, device=device, dtype=F32),))
    check_op(dtorch.flipud, torch.flipud, inputs=(rand(2, 3, device=device, dtype=F32),))
    assert dtorch.flip(x, (0,)).grad_fn.name() == "FlipBackward0"
    y = x.detach()
    f = y.flip(0)
    f.zero_()  # flip copies, as torch
    assert float(y.abs().sum()) > 0


def test_flip_errors_as_torch(torch):
    x = rand(2, 3, requires_grad=False, dtype=F32)
    raises_like_torch(lambda t: dtorch.flip(t, (0, 0)), lambda t: torch.flip(t, (0, 0)), x)
    raises_like_torch(lambda t: dtorch.flip(t, (2,)), lambda t: torch.flip(t, (2,)), x, exc=IndexError)
    raises_like_torch(dtorch.fliplr, torch.fliplr, rand(3, requires_grad=False, dtype=F32))
    raises_like_torch(dtorch.flipud, torch.flipud, dtorch.tensor(1.0))


@pytest.mark.parametrize("shifts,dims", [(1, None), (-2, None), (1, 0), ((1, 2), (0, 1)), (5, -1), ((1, -1), (1, 1))])
def test_roll_parity(device, shifts, dims, torch):
    check_op(lambda x: dtorch.roll(x, shifts, dims), lambda x: torch.roll(x, shifts, dims),
             inputs=(rand(2, 3, device=device, dtype=F32),))
    assert rand(2, 3, device=device, dtype=F32).roll(shifts, dims).grad_fn.name() == "RollBackward0"


def test_roll_errors_as_torch(torch):
    x = rand(2, 3, requires_grad=False, dtype=F32)
    raises_like_torch(lambda t: dtorch.roll(t, (1, 2)), lambda t: torch.roll(t, (1, 2)), x)
    raises_like_torch(lambda t: dtorch.roll(t, (1, 2), (0,)), lambda t: torch.roll(t, (1, 2), (0,)), x)
    raises_like_torch(lambda t: dtorch.roll(t, 1, 5), lambda t: torch.roll(t, 1, 5), x, exc=IndexError)


def test_flip_roll_gradcheck(device):
    check_grads(lambda x: dtorch.flip(x, (0, 2)), rand(2, 3, 2, device=device))
    check_grads(lambda x: dtorch.roll(x, (1, -1), (0, 1)), rand(3, 4, device=device))
    check_grads(lambda x: dtorch.roll(x, 2), rand(3, 2, device=device))


# ---- repeat / tile / repeat_interleave -----------------------------------------------------------
@pytest.mark.parametrize("sizes", [(2, 2), (1, 3), (2, 1, 1), (3, 2, 2), (1, 1), (0, 2)])
def test_repeat_parity(device, sizes):
    torch_or_skip()
    check_op(lambda x: x.repeat(*sizes), lambda x: x.repeat(*sizes), inputs=(rand(2, 3, device=device, dtype=F32),))
    check_op(lambda x: x.repeat(sizes), lambda x: x.repeat(sizes), inputs=(rand(2, 3, device=device, dtype=F32),))


@pytest.mark.parametrize("dims", [(2,), (2, 1), (2, 1, 3), ()])
def test_tile_parity(device, dims, torch):
    check_op(lambda x: dtorch.tile(x, dims), lambda x: torch.tile(x, dims),
             inputs=(rand(2, 3, device=device, dtype=F32),))


def test_repeat_errors_and_names():
    torch_or_skip()
    x = rand(2, 3, dtype=F32)
    raises_like_torch(lambda t: t.repeat(2), lambda t: t.repeat(2), x.detach())
    assert x.repeat(2, 2).grad_fn.name() == "RepeatBackward0"
    assert dtorch.tile(x, (2,)).grad_fn.name() == "RepeatBackward0"


@pytest.mark.parametrize("repeats,dim", [(2, None), (2, 0), (3, 1), ("tensor", 0), ("tensor0", 1), ("scalar", 0),
                                         ("one", 1)])
def test_repeat_interleave_parity(device, repeats, dim, torch):
    if repeats == "tensor":
        reps = dtorch.tensor([1, 0, 3], device=device)
    elif repeats == "tensor0":
        reps = dtorch.tensor([0, 2], device=device)
    elif repeats == "scalar":
        reps = dtorch.tensor(2, device=device)
    elif repeats == "one":
        reps = dtorch.tensor([3], device=device)
    else:
        reps = repeats
    t_reps = torch.from_numpy(reps.cpu().numpy()) if isinstance(reps, dtorch.Tensor) else reps
    check_op(lambda x: dtorch.repeat_interleave(x, reps, dim), lambda x: torch.repeat_interleave(x, t_reps, dim),
             inputs=(rand(3, 2, device=device, dtype=F32),))


def test_repeat_interleave_indices_form(device, torch):
    reps = dtorch.tensor([2, 0, 1], device=device)
    assert_close(dtorch.repeat_interleave(reps), torch.repeat_interleave(torch.tensor([2, 0, 1])))
    assert_close(reps.repeat_interleave(), torch.repeat_interleave(torch.tensor([2, 0, 1])))


def test_repeat_interleave_errors_as_torch(torch):
    x = rand(2, 3, requires_grad=False, dtype=F32)
    cases = [
        (dtorch.tensor([1, 2]), 1, RuntimeError),
        (dtorch.tensor([1, -2]), 0, RuntimeError),
        (dtorch.tensor([[1, 2]]), 0, RuntimeError),
        (dtorch.tensor([1.0, 2.0]), 0, NotImplementedError),
    ]
    for reps, dim, exc in cases:
        t_reps = torch.from_numpy(reps.numpy())
        raises_like_torch(lambda t, r=reps, d=dim: dtorch.repeat_interleave(t, r, d),
                          lambda t, r=t_reps, d=dim: torch.repeat_interleave(t, r, d), x, exc=exc)
    raises_like_torch(lambda t: dtorch.repeat_interleave(t, 2, 0, output_size=5),
                      lambda t: torch.repeat_interleave(t, 2, 0, output_size=5), x)
    raises_like_torch(dtorch.repeat_interleave, torch.repeat_interleave, dtorch.tensor([[1, 2]]))


def test_repeat_gradcheck(device):
    check_grads(lambda x: x.repeat(2, 1, 3), rand(2, 2, device=device))
    check_grads(lambda x: dtorch.tile(x, (2,)), rand(2, 2, device=device))
    check_grads(lambda x: dtorch.repeat_interleave(x, 2, 1), rand(2, 2, device=device))
    reps = dtorch.tensor([2, 0, 1], device=device)
    check_grads(lambda x: dtorch.repeat_interleave(x, reps, 0), rand(3, 2, device=device))
    check_grads(lambda x: dtorch.repeat_interleave(x, 3), rand(2, 2, device=device))


# ---- tril / triu ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tril", "triu"])
@pytest.mark.parametrize("diagonal", [0, 1, -1, 5, -5])
def test_tril_triu_parity(device, name, diagonal, torch):
    check_op(lambda x: getattr(dtorch, name)(x, diagonal), lambda x: getattr(torch, name)(x, diagonal),
             inputs=(rand(3, 4, device=device, dtype=F32),))
    check_op(lambda x: getattr(x, name)(diagonal), lambda x: getattr(x, name)(diagonal),
             inputs=(rand(2, 4, 3, device=device, dtype=F32),))


def test_tril_triu_inplace_bool_and_errors(device, torch):
    mask = dtorch.ones(3, 3, dtype=dtorch.bool, device=device)
    assert_close(dtorch.tril(mask), torch.tril(torch.ones(3, 3, dtype=torch.bool)))
    m = dtorch.ones(3, 3, device=device)
    assert m.triu_(1) is m
    assert_close(m, torch.ones(3, 3).triu_(1))
    x = rand(3, 3, device=device)
    y = x * 1
    y.tril_()
    y.sum().backward()
    assert_close(x.grad, torch.ones(3, 3, dtype=torch.float64).tril())
    raises_like_torch(dtorch.tril, torch.tril, rand(3, requires_grad=False, dtype=F32))
    assert dtorch.triu(rand(3, 3, dtype=F32)).grad_fn.name() == "TriuBackward0"


def test_tril_triu_gradcheck(device):
    check_grads(lambda x: dtorch.tril(x, -1), rand(3, 4, device=device))
    check_grads(lambda x: dtorch.triu(x, 1), rand(2, 3, 3, device=device))


# ---- diag / diagonal / diag_embed / trace ------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3,), (3, 4), (4, 3)])
@pytest.mark.parametrize("offset", [0, 1, -2, 5])
def test_diag_parity(device, shape, offset, torch):
    check_op(lambda x: dtorch.diag(x, offset), lambda x: torch.diag(x, offset),
             inputs=(rand(*shape, device=device, dtype=F32),))


def test_diag_names_and_errors(torch):
    assert dtorch.diag(rand(3, dtype=F32)).grad_fn.name() == "DiagEmbedBackward0"
    assert dtorch.diag(rand(3, 3, dtype=F32)).grad_fn.name() == "DiagonalBackward0_copy"
    raises_like_torch(dtorch.diag, torch.diag, rand(2, 2, 2, requires_grad=False, dtype=F32))
    d = dtorch.diag(rand(3, 3, requires_grad=False, dtype=F32))
    assert d._base is None  # diag copies, diagonal views


@pytest.mark.parametrize("offset,dim1,dim2", [(0, 0, 1), (1, 0, 1), (-1, 0, 1), (0, 1, 2), (1, 2, 0), (-2, -1, 0),
                                              (7, 0, 1)])
def test_diagonal_parity(device, offset, dim1, dim2, torch):
    check_op(lambda x: dtorch.diagonal(x, offset, dim1, dim2), lambda x: torch.diagonal(x, offset, dim1, dim2),
             inputs=(rand(3, 4, 5, device=device, dtype=F32),))


def test_diagonal_is_a_writable_view(device):
    x = dtorch.zeros(3, 3, device=device)
    d = x.diagonal()
    assert d._base is x
    d.fill_(1.0)
    np.testing.assert_array_equal(x.cpu().numpy(), np.eye(3, dtype=np.float32))
    assert x._version == d._version
    xt = dtorch.zeros(4, 3, device=device).t()  # non-contiguous base
    xt.diagonal(1).add_(2.0)
    np.testing.assert_array_equal(xt.cpu().numpy(), np.eye(3, 4, 1, dtype=np.float32) * 2)
    with pytest.raises(RuntimeError, match="diagonal dimensions cannot be identical 0, 0"):
        dtorch.diagonal(x, 0, 0, 0)


@pytest.mark.parametrize("offset,dim1,dim2", [(0, -2, -1), (1, 0, 2), (-1, 2, 0), (0, 1, 0)])
def test_diag_embed_parity(device, offset, dim1, dim2, torch):
    check_op(lambda x: dtorch.diag_embed(x, offset, dim1, dim2), lambda x: torch.diag_embed(x, offset, dim1, dim2),
             inputs=(rand(2, 3, device=device, dtype=F32),))


@pytest.mark.parametrize("dtype", [dtorch.float32, dtorch.int32, dtorch.uint8, dtorch.float16])
def test_trace_parity(device, dtype, torch):
    x = (dtorch.arange(12, device=device).reshape(3, 4)).to(dtype)
    if dtype == dtorch.float32:
        x.requires_grad_()
    check_op(dtorch.trace, torch.trace, inputs=(x,))


def test_trace_errors_as_torch(torch):
    raises_like_torch(dtorch.trace, torch.trace, rand(3, requires_grad=False, dtype=F32))
    raises_like_torch(dtorch.trace, torch.trace, dtorch.ones(2, 2, dtype=dtorch.bool), exc=NotImplementedError)
    assert dtorch.trace(rand(2, 2, dtype=F32)).grad_fn.name() == "TraceBackward0"


def test_diagonals_gradcheck(device):
    check_grads(lambda x: dtorch.diag(x, 1), rand(3, device=device))
    check_grads(lambda x: dtorch.diag(x, -1), rand(3, 4, device=device))
    check_grads(lambda x: dtorch.diagonal(x, 1, 2, 0), rand(3, 2, 4, device=device))
    check_grads(lambda x: dtorch.diag_embed(x, -1, 0, 2), rand(2, 3, device=device))
    check_grads(dtorch.trace, rand(3, 4, device=device))


# ---- meshgrid / broadcast_tensors / cartesian_prod -------------------------------------------------
@pytest.mark.parametrize("indexing", ["ij", "xy"])
@pytest.mark.parametrize("shapes", [[(3,), (4,)], [(3,), (4,), (2,)], [(), (4,)], [(3,)]])
def test_meshgrid_parity(device, indexing, shapes, torch):
    ins = [rand(*s, device=device, dtype=F32) for s in shapes]
    for k in range(len(ins)):
        check_op(lambda *xs, k=k: dtorch.meshgrid(*xs, indexing=indexing)[k],
                 lambda *xs, k=k: torch.meshgrid(*xs, indexing=indexing)[k],
                 inputs=[rand(*s, device=device, dtype=F32) for s in shapes])
    grids = dtorch.meshgrid(ins, indexing=indexing)
    assert all(g._base is not None for g in grids)


def test_meshgrid_default_and_errors(torch):
    a, b = rand(3, requires_grad=False, dtype=F32), rand(4, requires_grad=False, dtype=F32)
    with pytest.warns(UserWarning, match="indexing argument"):
        grids = dtorch.meshgrid(a, b)
    assert grids[0].shape == (3, 4)
    raises_like_torch(lambda x, y: dtorch.meshgrid(x, y, indexing="foo"),
                      lambda x, y: torch.meshgrid(x, y, indexing="foo"), a, b)
    raises_like_torch(lambda x, y: dtorch.meshgrid(x, y, indexing="ij"),
                      lambda x, y: torch.meshgrid(x, y, indexing="ij"), a, b.double())
    with pytest.raises(RuntimeError, match="Expected 0D or 1D tensor"):
        dtorch.meshgrid(rand(2, 2, requires_grad=False, dtype=F32), b, indexing="ij")


def test_broadcast_tensors(device, torch):
    shapes = [(3, 1), (2, 1, 4), ()]
    for k in range(3):
        check_op(lambda *xs, k=k: dtorch.broadcast_tensors(*xs)[k],
                 lambda *xs, k=k: torch.broadcast_tensors(*xs)[k],
                 inputs=[rand(*s, device=device, dtype=F32) for s in shapes])
    assert dtorch.broadcast_shapes((3, 1), (4,), 1) == torch.broadcast_shapes((3, 1), (4,), 1)
    raises_like_torch(lambda *xs: dtorch.broadcast_tensors(*xs), lambda *xs: torch.broadcast_tensors(*xs),
                      rand(3, 2, requires_grad=False, dtype=F32), rand(4, requires_grad=False, dtype=F32))
    check_grads(lambda x, y: dtorch.broadcast_tensors(x, y), rand(3, 1, device=device), rand(2, 1, 4, device=device))


def test_cartesian_prod(device, torch):
    check_op(lambda *xs: dtorch.cartesian_prod(*xs), lambda *xs: torch.cartesian_prod(*xs),
             inputs=(rand(3, device=device, dtype=F32), rand(2, device=device, dtype=F32),
                         rand(2, device=device, dtype=F32)))
    x = rand(3, device=device, dtype=F32)
    assert dtorch.cartesian_prod(x) is x
    raises_like_torch(lambda *xs: dtorch.cartesian_prod(*xs), lambda *xs: torch.cartesian_prod(*xs),
                      rand(3, requires_grad=False, dtype=F32), rand(2, 2, requires_grad=False, dtype=F32))
    check_grads(lambda a, b: dtorch.cartesian_prod(a, b), rand(3, device=device), rand(2, device=device))


def test_meshgrid_gradcheck(device):
    check_grads(lambda a, b: dtorch.meshgrid(a, b, indexing="xy"), rand(3, device=device), rand(2, device=device))


def test_inplace_on_diagonal_view_records_copy_slices(device, torch):
    weights = dtorch.arange(12.0, device=device).reshape(3, 4)
    x = dtorch.ones(3, 4, device=device, requires_grad=True)
    y = x * 1
    y.diagonal(1).mul_(2)
    (y * weights).sum().backward()
    tx = torch.ones(3, 4, requires_grad=True)
    ty = tx * 1
    ty.diagonal(1).mul_(2)
    (ty * torch.arange(12.0).reshape(3, 4)).sum().backward()
    assert_close(x.grad, tx.grad)

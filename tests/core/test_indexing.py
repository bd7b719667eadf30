"""Indexing ops: x[i], x[i] = v, gather/scatter, index_*, masked_*, take, where, nonzero, one_hot.

Every differentiable op gets a float64 gradcheck + gradgradcheck, and parity with torch
(forward values/dtypes and gradients) where torch is installed.
"""
from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

import dtorch
from dtorch._ops import scatter
from tests.oracle import check_grads, check_op, rand, to_torch, torch_or_skip


def _i(data, device="cpu", dtype=dtorch.int64) -> dtorch.Tensor:
    return dtorch.tensor(data, dtype=dtype, device=device)


# ---- basic indexing: views ---------------------------------------------------------------------
class _Index:
    """An object with __index__ (numpy scalars and user types) indexes like an int."""

    def __init__(self, i: int) -> None:
        self.i = i

    def __index__(self) -> int:
        return self.i

    def __repr__(self) -> str:
        return f"_Index({self.i})"


BASIC = [_Index(1), (slice(None), _Index(-1)),
    1, -1, (1, 2), (-1, -3), slice(1, None), slice(None, None, 2), (slice(None), 1), (Ellipsis, 1),
    (None, 1), (1, None, slice(0, 3)), (slice(-2, None), slice(None, -1)), (), Ellipsis,
    (slice(5, 10),), (Ellipsis, None), (0, Ellipsis, 0),
]


@pytest.mark.parametrize("index", BASIC, ids=[repr(i) for i in BASIC])
def test_basic_index_parity_and_grad(index):
    x = rand(3, 4)
    check_op(lambda m, x: x[index], inputs=(x,))


def test_basic_index_is_a_view(device):
    x = dtorch.arange(12.0, device=device).reshape(3, 4)
    base = x._base if x._base is not None else x
    for v in (x[1], x[:, 1:3], x[None, ..., 0], x[1, 2], x[...], x[()], x[dtorch.tensor(1)]):
        assert v._base is base
        assert v._vc is x._vc
        lo, hi = base.data_ptr(), base.data_ptr() + base.nbytes
        assert lo <= v.data_ptr() < hi
    row = x[1]
    row[2] = 100.0
    assert x[1, 2].item() == 100.0
    col = x[:, 3]
    col.mul_(-1)
    assert x[0, 3].item() == -3.0 and x._version == row._version == 2
    s = x[1, 2]
    assert s.shape == () and s._base is base
    s.fill_(7.0)
    assert x[1, 2].item() == 7.0


def test_basic_index_grad_fn_and_writes_through_nonleaf_view(device):
    x = rand(3, 4, device=device)
    y = x * 2
    v = y[1:]
    assert type(v.grad_fn).__name__ == "SliceBackward0"
    v[0] = 5.0  # in place on a view of a non-leaf: the base's history becomes CopySlices
    assert y[1, 0].item() == 5.0
    y.sum().backward()
    expected = np.full((3, 4), 2.0)
    expected[1] = 0.0
    np.testing.assert_allclose(x.grad.cpu().numpy(), expected)


def test_zero_dim_indexing():
    x = dtorch.tensor(5.0)
    assert x[None].shape == (1,) and x[...].shape == () and x[()].shape == ()
    assert x[dtorch.tensor(True)].shape == (1,)
    with pytest.raises(IndexError, match="invalid index of a 0-dim tensor"):
        x[0]
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(x)


def test_iteration_yields_views():
    x = dtorch.arange(6.0).reshape(3, 2)
    rows = list(x)
    assert len(rows) == 3 and rows[1].tolist() == [2.0, 3.0] and rows[1]._vc is x._vc


def test_basic_index_errors():
    x = dtorch.zeros(3, 4)
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::-1]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[:, ::0]
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        x[5]
    with pytest.raises(IndexError, match="index -4 is out of bounds for dimension 0 with size 3"):
        x[-4]
    with pytest.raises(IndexError, match="index 7 is out of bounds for dimension 1 with size 4"):
        x[:, 7]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        x[1, 2, 3]
    with pytest.raises(IndexError, match=r"only integers, slices .* \(got float\)"):
        x[1.5]
    with pytest.raises(IndexError, match="tensors used as indices must be long, int, byte or bool tensors"):
        x[dtorch.tensor([1.0])]
    with pytest.raises(IndexError, match="tensors used as indices must be long, int, byte or bool tensors"):
        x[dtorch.tensor(1.0)]


# ---- advanced indexing ---------------------------------------------------------------------------
def _adv_cases():
    return [
        ("list", lambda: [0, 2]),
        ("negative", lambda: [-1, 0, -3]),
        ("duplicates", lambda: [1, 1, 0, 1]),
        ("tensor", lambda: _i([[0, 1], [2, 2]])),
        ("int32", lambda: _i([2, 0], dtype=dtorch.int32)),
        ("empty", lambda: []),
        ("mask", lambda: _i([[True, False, True, False]] * 2 + [[False] * 4], dtype=dtorch.bool)),
        ("row_mask", lambda: _i([True, False, True], dtype=dtorch.bool)),
        ("bool_list", lambda: [True, False, True]),
        ("slice_then_list", lambda: (slice(None), [3, 0, 3])),
        ("two_lists", lambda: ([0, 2, 2], [1, -1, 1])),
        ("broadcast_lists", lambda: (_i([[0], [2]]), _i([1, 3, 3]))),
        ("int_and_list", lambda: (1, [0, 0, 3])),
        ("none_and_list", lambda: (None, [2, 0], slice(1, 3))),
        ("mask_and_list", lambda: (_i([True, False, True], dtype=dtorch.bool), [1, 3])),
        ("ellipsis_list", lambda: (Ellipsis, [1, 1])),
        ("zero_dim_true", lambda: True),
        ("zero_dim_false", lambda: False),
        ("seq_as_tuple", lambda: [[0, 1], [1, 2]]),
        ("range", lambda: range(2)),
        ("two_ranges", lambda: (range(2), range(1, 3))),
        ("slice_then_reversed_range", lambda: (slice(None), range(3, 0, -1))),
        ("deque", lambda: collections.deque([0, 2])),
    ]


@pytest.mark.parametrize("name,make", _adv_cases(), ids=[c[0] for c in _adv_cases()])
def test_advanced_index_parity(name, make, device):
    x = rand(3, 4, device=device)
    index = make()
    if isinstance(index, dtorch.Tensor):
        index = index.to(device)

    def fn(m, x):
        idx = index
        if m is not dtorch:
            idx = tuple(to_torch(i) if isinstance(i, dtorch.Tensor) else i for i in idx) \
                if isinstance(idx, tuple) else (to_torch(idx) if isinstance(idx, dtorch.Tensor) else idx)
        return x[idx]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates x[[[0, 1], [1, 2]]] (a list read as a tuple)
        out = check_op(fn, inputs=(x,))
    assert out._base is None  # advanced indexing copies


def test_advanced_index_three_dims_transposition():
    # ints are applied first as a view (torch), so x[0, :, [0, 1]] keeps the slice dim first
    x = rand(2, 3, 4)
    for index in [(0, slice(None), [0, 1]), ([0, 1], slice(None), [0, 1]), (slice(None), [0, 1], None, [0, 1]),
                  (None, [0, 1], slice(None), None)]:
        check_op(lambda m, x, index=index: x[index], inputs=(x,))


def test_advanced_index_noncontiguous_input(device):
    x = rand(4, 3, device=device)
    check_op(lambda m, x: x.t()[[2, 0, 2]], inputs=(x,))
    check_op(lambda m, x: x.t()[:, [1, 1, 3]], inputs=(x,))
    check_op(lambda m, x: x[::2][[1, 0]], inputs=(x,))


def test_advanced_index_grads(device):
    x = rand(3, 4, device=device)
    check_grads(lambda x: x[_i([0, 2, 0, -1], device)], x)
    check_grads(lambda x: x[1:, [0, 0]], x)
    check_grads(lambda x: x[x.detach() > 0], x)
    check_grads(lambda x: x[None, 1, [2, 2]], x)
    check_grads(lambda x: x.t()[[1, 1, 2]], x)


def test_advanced_index_grad_fn_and_create_graph():
    x = rand(3)
    y = x[[0, 0, 2]]
    assert type(y.grad_fn).__name__ == "IndexBackward0"
    (g,) = dtorch.autograd.grad((y * y).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [4 * x[0].item(), 0.0, 2 * x[2].item()])
    (gg,) = dtorch.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), [4.0, 0.0, 2.0])


def test_advanced_index_errors():
    x = dtorch.zeros(3, 4)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        x[[0, 5]]
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 4"):
        x[:, [0, 5]]  # torch counts the dimension among the indexed ones
    with pytest.raises(IndexError, match="index -5 is out of bounds for dimension 1 with size 4"):
        x[[0, 1], [0, -5]]
    with pytest.raises(IndexError, match=r"shape mismatch: indexing tensors could not be broadcast together with "
                                         r"shapes \[2\], \[3\]"):
        x[[0, 1], [0, 1, 2]]
    with pytest.raises(IndexError, match=r"The shape of the mask \[2\] at index 0 does not match the shape of the "
                                         r"indexed tensor \[3, 4\] at index 0"):
        x[dtorch.tensor([True, False])]
    y = dtorch.zeros(2, 3, 4)
    with pytest.raises(IndexError, match=r"The shape of the mask \[2, 4\] at index 1 does not match"):
        y[dtorch.zeros(2, 4, dtype=dtorch.bool)]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        x[1:, dtorch.tensor([[True, False, True, True]])]


# ---- __setitem__ -----------------------------------------------------------------------------------
SET_CASES = [
    ("int_scalar", 1, 5.0),
    ("slice_tensor", (slice(None), slice(1, 3)), "t2"),
    ("leading_ones", 0, "t1x4"),
    ("broadcast_row", (slice(None), slice(None)), "t4"),
    ("list", [0, 2], "t4"),
    ("negative_list", [-1], 3.0),
    ("mask", "mask", -1.0),
    ("mask_tensor", "mask", "tmask"),
    ("two_lists", ([0, 1], [3, 3]), "t2"),
    ("slice_and_list", (slice(1, None), [0, 2]), "t1"),
    ("int_and_list", (2, [1, 0]), "t2"),
]


def _set_value(spec, device):
    if not isinstance(spec, str):
        return spec
    shapes = {"t1": (1,), "t2": (2,), "t4": (4,), "t1x4": (1, 4), "tmask": (6,)}
    return dtorch.randn(*shapes[spec], dtype=dtorch.float64, device=device)


def _assign(x, index, value):
    x[index] = value
    return x


@pytest.mark.parametrize("name,index,value", SET_CASES, ids=[c[0] for c in SET_CASES])
def test_setitem_parity(name, index, value, device):
    x = dtorch.randn(3, 4, dtype=dtorch.float64, device=device)
    if index == "mask":
        mask = x > 0
        if isinstance(value, str):
            x = dtorch.tensor([[1.0, -1, 2, 3], [-1, -2, 4, 5], [-3, 6, -4, -5]], dtype=dtorch.float64, device=device)
            mask = x > 0
        index = mask
    version = x._version
    check_op(_assign, _assign, inputs=[x, index, _set_value(value, device)])
    assert x._version > version


def test_setitem_autograd_parity(device):
    x, v = rand(3, 4, device=device), rand(2, 1, device=device)

    def fn(m, x, v):
        y = x * 1.5
        y[[0, 2]] = v
        y[1, 1:3] = v[:, 0] * 3
        y[y.detach() > 1] = 0.5
        return y

    check_op(fn, inputs=(x, v))


def test_setitem_grads(device):
    x, v = rand(3, 4, device=device), rand(2, 4, device=device)

    def fn(x, v):
        y = x * 1
        y[[2, 0]] = v
        return y

    def basic(x, v):
        y = x * 1
        y[1:3, 0] = v[0, :2]
        return y

    check_grads(fn, x, v)
    check_grads(basic, x, v)


def test_setitem_through_views_is_visible(device):
    x = dtorch.zeros(3, 4, device=device)
    row = x[1]
    x[1, [0, 2]] = 7.0
    assert row.tolist() == [7.0, 0.0, 7.0, 0.0]
    col = x[:, 3]
    col[[0, 2]] = 5.0
    assert x[:, 3].tolist() == [5.0, 0.0, 5.0] and x._version == col._version
    x[x == 5.0] = 1.0
    assert x[0, 3].item() == 1.0


def test_setitem_on_view_of_nonleaf_with_advanced_index(device):
    x = rand(3, 4, device=device)

    def fn(m, x):
        y = x * 2
        v = y[1:]
        v[[0, 1], [3, 0]] = 9.0
        return y

    check_op(fn, inputs=(x,))


def test_setitem_leaf_errors_and_no_grad():
    x = dtorch.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being used in an in-place"):
        x[0] = 1.0
    with pytest.raises(RuntimeError, match="^a leaf Variable that requires grad is being used in an in-place"):
        x[[0]] = 1.0
    with pytest.raises(RuntimeError, match="^a leaf Variable that requires grad is being used in an in-place"):
        x[dtorch.tensor([True, False, True])] = 1.0
    with dtorch.no_grad():
        x[[0]] = 1.0
        x[1] = 2.0
    assert x.tolist() == [1.0, 2.0, 0.0] and x.grad_fn is None


def test_setitem_errors():
    x = dtorch.zeros(3, 4)
    with pytest.raises(RuntimeError, match=r"shape mismatch: value tensor of shape \[3\] cannot be broadcast to "
                                           r"indexing result of shape \[2, 4\]"):
        x[[0, 1]] = dtorch.ones(3)
    with pytest.raises(RuntimeError, match="Index put requires the source and destination dtypes match, got Float "
                                           "for the destination and Long for the source."):
        x[[0, 1]] = dtorch.ones(4, dtype=dtorch.int64)
    with pytest.raises(RuntimeError, match="must match the existing size"):
        x[0] = dtorch.ones(3)
    with pytest.raises(TypeError, match="can't assign a list to a"):
        x[0] = [1, 2, 3, 4]
    x[0] = dtorch.ones(4, dtype=dtorch.int64)  # basic indexing copies with a cast, as torch
    xi = dtorch.zeros(3, dtype=dtorch.int64)
    xi[[0, 1]] = 1.7  # a Python scalar is cast
    assert xi.tolist() == [1, 1, 0] and x[0].tolist() == [1.0] * 4


# ---- index_put --------------------------------------------------------------------------------------
def test_index_put_parity_and_grads(device):
    x, v = rand(3, 4, device=device), rand(4, device=device)
    i0, i1 = _i([0, 2, 0], device), _i([1, 1, 1], device)
    check_op(lambda m, x, v, i0, i1: m.index_put(x, (i0, i1), v[:3], accumulate=True), inputs=(x, v, i0, i1))
    check_op(lambda m, x, v, i0: m.index_put(x, (i0[:2],), v), inputs=(x, v, i0))
    check_op(lambda m, x, i0: x.index_put((i0[:2],), m.tensor(2.0, dtype=m.float64)), inputs=(x, i0))
    check_grads(lambda x, v: dtorch.index_put(x, (i0, i1), v[:3], accumulate=True), x, v)
    check_grads(lambda x, v: x.index_put((i0[:2],), v), x, v)
    y = dtorch.zeros(3, device=device)
    version = y._version
    y.index_put_((_i([0, 0], device),), dtorch.ones(2, device=device), accumulate=True)
    assert y.tolist() == [2.0, 0.0, 0.0] and y._version == version + 1


def test_index_put_errors():
    x = dtorch.zeros(3)
    with pytest.raises(TypeError, match="must be tuple of Tensors, not Tensor"):
        dtorch.index_put(x, dtorch.tensor([0]), dtorch.tensor(1.0))
    with pytest.raises(TypeError, match="'values' .* must be Tensor, not float"):
        dtorch.index_put(x, (dtorch.tensor([0]),), 1.0)
    with pytest.raises(RuntimeError, match="got Float for the destination and Double for the source"):
        dtorch.index_put(x, (dtorch.tensor([0]),), dtorch.tensor(1.0, dtype=dtorch.float64))
    with pytest.raises(IndexError, match=r"too many indices for tensor of dimension 1 \(got 2\)"):
        dtorch.index_put(x, (dtorch.tensor([0]), dtorch.tensor([0])), dtorch.tensor(1.0))


# ---- gather / scatter ---------------------------------------------------------------------------------
def test_gather_parity_and_grads(device):
    x = rand(3, 4, device=device)
    idx = _i([[0, 0], [3, 1], [2, 2]], device)
    check_op(lambda m, x, i: m.gather(x, 1, i), inputs=(x, idx))
    check_op(lambda m, x, i: x.gather(-2, i[::2, :1]), inputs=(x, idx))  # index smaller than input
    check_op(lambda m, x, i: m.gather(x.t(), 0, i.t()[:, :2].contiguous()), inputs=(x, idx))  # non-contiguous input
    check_op(lambda m, x, i: m.gather(x, 1, i.int()), inputs=(x, idx))
    check_grads(lambda x: dtorch.gather(x, 1, idx), x)
    check_grads(lambda x: dtorch.gather(x, 0, _i([[0, 2, 2, 0]], device)), x)
    assert type(dtorch.gather(x, 1, idx).grad_fn).__name__ == "GatherBackward0"
    s = dtorch.tensor(5.0)
    assert dtorch.gather(s, 0, dtorch.tensor(0)).item() == 5.0


def test_gather_errors():
    x = dtorch.zeros(3, 4)
    with pytest.raises(RuntimeError, match=r"gather\(\): Expected dtype int32/int64 for index"):
        dtorch.gather(x, 1, dtorch.zeros(3, 1))
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of dimensions as input tensor"):
        dtorch.gather(x, 1, _i([0]))
    with pytest.raises(RuntimeError, match=r"Size does not match at dimension 1 expected index \[2, 5\] to be no "
                                           r"larger than self \[3, 4\] apart from dimension 0"):
        dtorch.gather(x, 0, dtorch.zeros(2, 5, dtype=dtorch.int64))
    with pytest.raises(RuntimeError, match="index 4 is out of bounds for dimension 1 with size 4"):
        dtorch.gather(x, 1, _i([[0, 4]]))
    with pytest.raises(RuntimeError, match="index -1 is out of bounds for dimension 1 with size 4"):
        dtorch.gather(x, 1, _i([[0, -1]]))
    with pytest.raises(IndexError, match="Dimension out of range"):
        dtorch.gather(x, 2, _i([[0]]))


def test_scatter_parity_and_grads(device):
    x, s = rand(3, 4, device=device), rand(2, 4, device=device)
    idx = _i([[0, 1, 2, 0], [2, 0, 1, 1]], device)  # unique per column
    check_op(lambda m, x, i, s: m.scatter(x, 0, i, s), inputs=(x, idx, s))
    check_op(lambda m, x, i: m.scatter(x, 0, i, 2.5), inputs=(x, idx))
    # src larger than index (torch's backward rejects the src gradient there: compare forward only)
    check_op(lambda m, x, i, s: x.scatter(0, i[:1, :2], s), inputs=(x, idx, s.detach()))
    dup = _i([[0, 0, 2, 0], [0, 0, 1, 1]], device)
    check_op(lambda m, x, i, s: m.scatter_add(x, 0, i, s), inputs=(x, dup, s))
    check_op(lambda m, x, i, s: x.scatter_add(1, i[:, :3], s[:, 1:]), inputs=(x, dup, s))  # non-contiguous src
    check_grads(lambda x, s: dtorch.scatter(x, 0, idx, s), x, s)
    check_grads(lambda x: dtorch.scatter(x, 1, idx[:, :3], -1.0), x)
    check_grads(lambda x, s: dtorch.scatter_add(x, 0, dup, s), x, s)
    assert type(dtorch.scatter(x, 0, idx, s).grad_fn).__name__ == "ScatterBackward0"
    assert type(dtorch.scatter_add(x, 0, dup, s).grad_fn).__name__ == "ScatterAddBackward0"


def test_scatter_inplace_and_reduce(device, torch):
    def run(x, idx, src):
        version = x._version
        assert x.scatter_(0, idx, src) is x and x._version == version + 1
        x.scatter_add_(1, idx, src)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch deprecates reduce=
            x.scatter_(1, idx, 2.0, reduce="multiply")
            x.scatter_(0, idx, src, reduce="add")
        return x

    x = dtorch.arange(12.0, device=device).reshape(3, 4)
    check_op(run, run, inputs=[x, _i([[0, 1], [2, 0]], device), dtorch.ones(2, 2, device=device) * 3])
    y = rand(3, 4) * 1
    out = dtorch.scatter(y, 0, _i([[0]]), 1.0, reduce="add")
    with pytest.raises(RuntimeError, match="derivative for aten::scatter is not implemented"):
        out.sum().backward()
    assert torch is not None


def test_scatter_inplace_autograd(device):
    x, s = rand(3, 4, device=device), rand(2, 4, device=device)
    idx = _i([[0, 1, 2, 0], [2, 0, 1, 1]], device)

    def fn(m, x, s, i):
        y = x * 2
        y.scatter_(0, i, s)
        y.scatter_add_(0, i, s * s)
        return y

    check_op(fn, inputs=(x, s, idx))


def test_scatter_errors():
    x, s = dtorch.zeros(3, 4), dtorch.ones(2, 2)
    i = _i([[0, 1], [2, 0]])
    with pytest.raises(RuntimeError, match=r"scatter\(\): Expected dtype int32/int64 for index"):
        dtorch.scatter(x, 1, i.float(), 1.0)
    with pytest.raises(RuntimeError, match=r"scatter\(\): Expected self.dtype to be equal to src.dtype"):
        dtorch.scatter(x, 0, i, s.double())
    with pytest.raises(RuntimeError, match=r"Expected index \[2, 2\] to be no larger than self \[3, 4\] apart from "
                                           r"dimension 0 and to be no larger size than src \[1, 1\]"):
        dtorch.scatter(x, 0, i, dtorch.ones(1, 1))
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of dimensions as self tensor"):
        dtorch.scatter(x, 0, _i([0, 1]), 1.0)
    with pytest.raises(RuntimeError, match="index 5 is out of bounds for dimension 0 with size 3"):
        dtorch.scatter(x, 0, _i([[5]]), s)
    with pytest.raises(RuntimeError, match="reduce argument must be either add or multiply."):
        dtorch.scatter(x, 0, i, s, reduce="max")
    with pytest.raises(TypeError, match="must be Tensor, not float"):
        dtorch.scatter_add(x, 0, i, 1.0)


# ---- index_select / index_add / index_copy / index_fill ----------------------------------------------
def test_index_select_parity_and_grads(device):
    x = rand(3, 4, device=device)
    idx = _i([3, 0, 3], device)
    check_op(lambda m, x, i: m.index_select(x, 1, i), inputs=(x, idx))
    check_op(lambda m, x, i: x.t().index_select(0, i.int()), inputs=(x, idx))
    check_op(lambda m, x, i: m.index_select(x, 0, i[1]), inputs=(x, idx))  # a 0-d index keeps the dim
    check_grads(lambda x: dtorch.index_select(x, 1, idx), x)
    assert type(dtorch.index_select(x, 1, idx).grad_fn).__name__ == "IndexSelectBackward0"


def test_index_select_errors():
    x = dtorch.zeros(3, 4)
    with pytest.raises(IndexError, match="index out of range in self"):
        dtorch.index_select(x, 0, _i([3]))
    with pytest.raises(IndexError, match="index out of range in self"):
        dtorch.index_select(x, 0, _i([-1]))
    with pytest.raises(IndexError, match=r"index_select\(\): Index is supposed to be a vector"):
        dtorch.index_select(x, 0, _i([[0]]))
    with pytest.raises(RuntimeError, match=r"index_select\(\): Expected dtype int32 or int64 for index"):
        dtorch.index_select(x, 0, dtorch.tensor([0.0]))


def test_index_add_copy_fill_parity_and_grads(device):
    x, src, v = rand(3, 4, device=device), rand(2, 4, device=device), rand(device=device)
    dup, uniq = _i([0, 0], device), _i([2, 0], device)
    check_op(lambda m, x, i, s: m.index_add(x, 0, i, s, alpha=2.0), inputs=(x, dup, src))
    check_op(lambda m, x, i, s: x.index_add(1, i, s.t().contiguous().t()), inputs=(x, uniq, rand(3, 2, device=device)))
    check_op(lambda m, x, i, s: m.index_copy(x, 0, i, s), inputs=(x, uniq, src))
    check_op(lambda m, x, i: m.index_fill(x, 1, i, -2.0), inputs=(x, uniq))
    check_op(lambda m, x, i: x.index_fill(0, i, 3.0), inputs=(x, _i([-1, 0], device)))
    check_op(lambda m, x, i, v: x.index_fill(0, i, v), inputs=(x, uniq, v))  # torch's backward rejects -1 here
    check_grads(lambda x, s: dtorch.index_add(x, 0, dup, s, alpha=-0.5), x, src)
    check_grads(lambda x, s: dtorch.index_copy(x, 0, uniq, s), x, src)
    check_grads(lambda x, v: dtorch.index_fill(x, 0, uniq, v), x, v)
    names = [type(f().grad_fn).__name__ for f in (lambda: dtorch.index_add(x, 0, dup, src),
                                                  lambda: dtorch.index_copy(x, 0, uniq, src),
                                                  lambda: dtorch.index_fill(x, 0, uniq, 1.0))]
    assert names == ["IndexAddBackward0", "IndexCopyBackward0", "IndexFillBackward0"]


def test_index_inplace_variants(device):
    x, src = rand(3, 4, device=device), rand(2, 4, device=device)
    i = _i([2, 0], device)

    def fn(m, x, s, i):
        y = x * 1
        y.index_add_(0, i, s, alpha=3)
        y.index_copy_(0, i[:1], s[:1] * 2)
        y.index_fill_(1, i[1:], 0.25)
        return y

    check_op(fn, inputs=(x, src, i))
    z = dtorch.zeros(3, device=device)
    version = z._version
    z.index_add_(0, _i([1, 1], device), dtorch.ones(2, device=device))
    z.index_fill_(0, _i([0], device), 4.0)
    assert z.tolist() == [4.0, 2.0, 0.0] and z._version == version + 2


def test_index_add_copy_fill_errors():
    x = dtorch.zeros(3, 4)
    ones = dtorch.ones(2, 4)
    with pytest.raises(RuntimeError, match=r"index_add_\(\): Number of indices \(3\) should be equal to "
                                           r"source.size\(dim\): \(2\), for dim: 0"):
        dtorch.index_add(x, 0, _i([0, 0, 1]), ones)
    with pytest.raises(RuntimeError, match="index 3 is out of bounds for dimension 0 with size 3"):
        dtorch.index_add(x, 0, _i([0, 3]), ones)
    with pytest.raises(RuntimeError, match=r"self \(Float\) and source \(Double\) must have the same scalar type"):
        dtorch.index_add(x, 0, _i([0, 1]), ones.double())
    with pytest.raises(RuntimeError, match="source tensor shape must match self tensor shape"):
        dtorch.index_add(x, 0, _i([0]), dtorch.ones(1, 3))
    with pytest.raises(IndexError, match=r"index_copy_\(\): index 5 is out of bounds for dimension 0 with size 3"):
        dtorch.index_copy(x, 0, _i([5]), dtorch.ones(1, 4))
    with pytest.raises(RuntimeError, match=r"index_copy_\(\): Expected a long tensor for index, but got Int"):
        dtorch.index_copy(x, 0, _i([0], dtype=dtorch.int32), dtorch.ones(1, 4))
    with pytest.raises(IndexError, match=r"index_copy_\(\): Number of indices \(1\) should be equal to "
                                         r"source.size\(dim\) \(2\)"):
        dtorch.index_copy(x, 0, _i([0]), ones)
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        dtorch.index_fill(x, 0, _i([0, 3]), 1.0)
    with pytest.raises(IndexError, match=r"index_fill_\(\): Expected dtype int64 for index."):
        dtorch.index_fill(x, 0, _i([0], dtype=dtorch.int32), 1.0)
    with pytest.raises(RuntimeError, match=r"index_fill_ only supports a 0-dimensional value tensor, but got tensor "
                                           r"with 1 dimension\(s\)."):
        dtorch.index_fill(x, 0, _i([0]), dtorch.tensor([1.0]))


# ---- take / take_along_dim ----------------------------------------------------------------------------
def test_take_parity_and_grads(device):
    x = rand(3, 4, device=device)
    idx = _i([[0, 11], [-1, 3], [3, 3]], device)
    check_op(lambda m, x, i: m.take(x, i), inputs=(x, idx))
    check_op(lambda m, x, i: x.t().take(i), inputs=(x, idx))
    check_grads(lambda x: dtorch.take(x, idx), x)
    with pytest.raises(IndexError, match="out of range: tried to access index 12 on a tensor of 12 elements."):
        dtorch.take(x, _i([12], device))
    with pytest.raises(RuntimeError, match=r"take\(\): Expected a long tensor for index, but got Int"):
        dtorch.take(x, _i([1], device, dtorch.int32))


def test_take_along_dim_parity_and_grads(device):
    x = rand(3, 4, device=device)
    check_op(lambda m, x, i: m.take_along_dim(x, i, 1), inputs=(x, _i([[0], [3], [3]], device)))
    check_op(lambda m, x, i: m.take_along_dim(x, i, dim=0), inputs=(x, _i([[0, 1, 1, 2], [2, 2, 0, 1]], device)))
    check_op(lambda m, x, i: m.take_along_dim(x, i), inputs=(x, _i([0, 11, 5, 5], device)))
    check_op(lambda m, x, i: x.take_along_dim(i, 0), inputs=(x, _i([[2], [1]], device)))  # broadcast indices
    check_op(lambda m, x, i: m.take_along_dim(x[:1], i, 1), inputs=(x, _i([[0], [3], [3]], device)))  # broadcast input
    check_grads(lambda x: dtorch.take_along_dim(x, _i([[3], [0], [3]], device), 1), x)


def test_take_along_dim_errors():
    x = dtorch.zeros(3, 4)
    with pytest.raises(RuntimeError, match="should have the same number of dimensions, but got 2 dimensions for "
                                           "input, and 1 dimensions for indices"):
        dtorch.take_along_dim(x, _i([0, 1]), 0)
    with pytest.raises(RuntimeError, match="dtype of indices should be Long but got Int"):
        dtorch.take_along_dim(x, _i([[0]], dtype=dtorch.int32), 0)
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(4\) must match the size of tensor b \(2\) at "
                                           r"non-singleton dimension 1"):
        dtorch.take_along_dim(x, _i([[0, 1]]), 0)


# ---- masked_fill / masked_select / masked_scatter -------------------------------------------------------
def test_masked_fill_parity_and_grads(device):
    x, v = rand(3, 4, device=device), rand(device=device)
    mask = _i([True, False, True, False], device, dtorch.bool)
    check_op(lambda m, x, k: m.masked_fill(x, k, 1.5), inputs=(x, mask))
    check_op(lambda m, x, k, v: x.masked_fill(k, v), inputs=(x, mask, v))
    check_op(lambda m, x, k: m.masked_fill(x[0], k.expand(3, 4), -1.0), inputs=(x, mask))  # broadcast input
    check_op(lambda m, x, k: m.masked_fill(x.t(), x.t() > 0, 0.0), inputs=(x, mask))
    check_grads(lambda x, v: dtorch.masked_fill(x, mask, v), x, v)
    check_grads(lambda x: dtorch.masked_fill(x[0], mask.expand(3, 4), 2.0), x)
    assert type(dtorch.masked_fill(x, mask, 1.0).grad_fn).__name__ == "MaskedFillBackward0"
    xi = dtorch.arange(4, device=device)
    assert dtorch.masked_fill(xi, mask, 1.7).tolist() == [1, 1, 1, 3]


def test_masked_fill_inplace(device):
    x = rand(3, 4, device=device)
    mask = _i([True, False, True, False], device, dtorch.bool)

    def fn(m, x, k):
        y = x * 1
        y.masked_fill_(k, 3.0)
        y[1:].masked_fill_(k, -1.0)
        return y

    check_op(fn, inputs=(x, mask))
    z = dtorch.zeros(2, 4, device=device)
    version = z._version
    z.masked_fill_(mask, 1.0)
    assert z._version == version + 1 and z.sum().item() == 4.0


def test_masked_fill_errors():
    x = dtorch.zeros(3, 4)
    mask = dtorch.tensor([True, False, True, False])
    with pytest.raises(RuntimeError, match="masked_fill_ only supports boolean masks, but got mask with dtype float"):
        dtorch.masked_fill(x, mask.float(), 1.0)
    with pytest.raises(RuntimeError, match="only supports a 0-dimensional value tensor, but got tensor with 1"):
        dtorch.masked_fill(x, mask, dtorch.tensor([1.0]))
    with pytest.raises(RuntimeError, match=r"output with shape \[4\] doesn't match the broadcast shape \[3, 4\]"):
        x[0].clone().masked_fill_(dtorch.ones(3, 4, dtype=dtorch.bool), 1.0)
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(4\) must match the size of tensor b \(3\)"):
        dtorch.masked_fill(x, dtorch.ones(3, dtype=dtorch.bool), 1.0)


def test_masked_select_parity_and_grads(device):
    x = rand(3, 4, device=device)
    mask = _i([True, False, True, True], device, dtorch.bool)
    check_op(lambda m, x, k: m.masked_select(x, k), inputs=(x, mask))
    check_op(lambda m, x, k: x[0].masked_select(k.expand(3, 4)), inputs=(x, mask))  # broadcast input
    check_op(lambda m, x: m.masked_select(x.t(), x.t() > 0), inputs=(x,))
    check_grads(lambda x: dtorch.masked_select(x[:2], mask), x)
    with pytest.raises(RuntimeError, match="masked_select: expected BoolTensor for mask"):
        dtorch.masked_select(x, mask.float())


def test_masked_scatter_parity_and_grads(device):
    x, src = rand(3, 4, device=device), rand(10, device=device)
    mask = _i([True, False, True, True], device, dtorch.bool)
    check_op(lambda m, x, k, s: m.masked_scatter(x, k, s), inputs=(x, mask, src))
    check_op(lambda m, x, k, s: x.masked_scatter(k, s.reshape(2, 5)), inputs=(x, mask, src))
    check_grads(lambda x, s: dtorch.masked_scatter(x, mask, s), x, src)

    def inplace(m, x, k, s):
        y = x * 1
        y.masked_scatter_(k, s)
        return y

    check_op(inplace, inputs=(x, mask, src))
    with pytest.raises(RuntimeError, match="Number of elements of source < number of ones in mask"):
        dtorch.masked_scatter(x, mask, src[:2])
    with pytest.raises(RuntimeError, match="masked_scatter: expected self and source to have same dtypes but "
                                           "gotDouble and Float"):
        dtorch.masked_scatter(x, mask, src.float())


# ---- where -------------------------------------------------------------------------------------------------
def test_where_parity_and_grads(device):
    x, y = rand(3, 4, device=device), rand(4, device=device)
    cond = _i([True, False, True, False], device, dtorch.bool)
    check_op(lambda m, c, x, y: m.where(c, x, y), inputs=(cond, x, y))
    check_op(lambda m, c, x: m.where(c[:, None], x[0], x), inputs=(cond[:3], x))
    check_op(lambda m, c, x: m.where(c, x, 0.5), inputs=(cond, x))
    check_op(lambda m, c, x: m.where(c, -1, x.t()), inputs=(cond[:3], x))
    check_op(lambda m, c, x: x.where(c, 2), inputs=(cond, x))
    check_grads(lambda x, y: dtorch.where(cond, x, y), x, y)
    check_grads(lambda x: dtorch.where(x.detach() > 0, x, x * x), x)
    assert type(dtorch.where(cond, x, y).grad_fn).__name__ == "WhereBackward0"


@pytest.mark.parametrize("a,b", [
    ("f32", 0.0), (1.0, 0.0), (1, 0), (1, 0.5), ("f64", 0), ("f32", "f64"), ("i64", 0.5), ("i64", "f32"),
    ("i32", 2), ("bool", True), ("f16", 1.0), ("i64_0d", "f32"), (True, 2), ("u8", "i32"),
])
def test_where_promotion(a, b):
    cond = dtorch.tensor([True, False, True])
    dts = {"f32": dtorch.float32, "f64": dtorch.float64, "f16": dtorch.float16, "i64": dtorch.int64,
           "i32": dtorch.int32, "bool": dtorch.bool, "u8": dtorch.uint8}

    def make(spec):
        if spec == "i64_0d":
            return dtorch.tensor(3)
        return dtorch.ones(3, dtype=dts[spec]) if isinstance(spec, str) else spec

    check_op(lambda m, c, a, b: m.where(c, a, b), inputs=[cond, make(a), make(b)])


def test_where_condition_forms():
    x = dtorch.tensor([[0.0, 1.0], [2.0, 0.0]])
    rows, cols = dtorch.where(x > 0)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0] and rows.dtype == dtorch.int64
    assert dtorch.where(dtorch.tensor([1, 0], dtype=dtorch.uint8), 1.0, 0.0).tolist() == [1.0, 0.0]
    with pytest.raises(RuntimeError, match="where expected condition to be a boolean tensor, but got a tensor with "
                                           "dtype Float"):
        dtorch.where(x, x, 0.0)
    with pytest.raises(RuntimeError, match="The size of tensor a"):
        dtorch.where(x > 0, x, dtorch.zeros(3))


# ---- nonzero / argwhere ---------------------------------------------------------------------------------------
def test_nonzero_and_argwhere(device):
    forms = [lambda m, x: m.nonzero(x), lambda m, x: x.nonzero(), lambda m, x: m.argwhere(x),
             lambda m, x: m.nonzero(x, as_tuple=True)]
    for x in (dtorch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]], device=device), dtorch.tensor(5.0),
              dtorch.tensor(0.0)):
        for form in forms if x.ndim else (forms[0], forms[3]):
            check_op(form, inputs=[x])
    assert dtorch.nonzero(dtorch.zeros(0, 3)).shape == (0, 2)


# ---- one_hot ---------------------------------------------------------------------------------------------------
def test_one_hot(device):
    torch_or_skip()
    import torch.nn.functional as F

    one_hot = scatter.one_hot
    assert "one_hot" not in scatter.__all__
    x = dtorch.tensor([[0, 2], [1, 2]], device=device)
    check_op(one_hot, F.one_hot, inputs=[x])
    check_op(lambda x: one_hot(x, 5), lambda x: F.one_hot(x, 5), inputs=[x])
    assert one_hot(dtorch.tensor([], dtype=dtorch.int64), 3).shape == (0, 3)
    assert one_hot(dtorch.tensor(2), 3).tolist() == [0, 0, 1]
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes."):
        one_hot(x, 2)
    with pytest.raises(RuntimeError, match="Class values must be non-negative."):
        one_hot(dtorch.tensor([0, -1]))
    with pytest.raises(RuntimeError, match="one_hot is only applicable to index tensor of type LongTensor."):
        one_hot(dtorch.tensor([0, 1], dtype=dtorch.int32))
    with pytest.raises(RuntimeError, match="Can not infer total number of classes from empty tensor."):
        one_hot(dtorch.tensor([], dtype=dtorch.int64))


# ---- cross-device indices -----------------------------------------------------------------------------------
@pytest.mark.cuda
def test_cpu_index_on_cuda_tensor():
    if not dtorch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = dtorch.arange(6.0, device="cuda")
    assert x[dtorch.tensor([5, 0])].tolist() == [5.0, 0.0]
    x[dtorch.tensor([1])] = dtorch.tensor(9.0)
    assert x[1].item() == 9.0 and x.masked_fill(dtorch.tensor([True] * 6), 0.0).sum().item() == 0.0


# ---- autograd bookkeeping ------------------------------------------------------------------------------------
def test_augmented_assignment_through_index(device):
    x, v = rand(3, 4, device=device), rand(4, device=device)

    def fn(m, x, v):
        y = x * 1
        y[1:] += v
        y[[0, 2]] *= 2.0
        y[y.detach() < 0] -= 1.0
        return y

    check_op(fn, inputs=(x, v))


def test_index_changed_in_place_after_forward_does_not_change_grad():
    x = rand(4)
    idx = dtorch.tensor([0, 0, 3])
    y = x[idx]
    idx.fill_(1)
    (g,) = dtorch.autograd.grad(y.sum(), x)
    assert g.tolist() == [2.0, 0.0, 0.0, 1.0]


def test_setitem_on_saved_tensor_is_detected():
    x = rand(3)
    y = x * 1
    z = y * y
    y[[0]] = 0.0
    assert y._version == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()

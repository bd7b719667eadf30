"""Views: storage sharing, _base, version counters, errors, and autograd through (in-place on) views."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from tests.oracle import TOL, assert_close, check_op, normal


def _x(mod):
    return mod.arange(24.0).reshape(2, 3, 4).clone()  # a contiguous tensor that is not itself a view


def _same_storage(v, x) -> bool:
    return np.shares_memory(v.detach().cpu().numpy(), x.detach().cpu().numpy())


# ---- every view op shares storage and records the root as _base --------------------------------
VIEW_OPS = {
    "view": lambda x: x.view(6, 4),
    "view_infer": lambda x: x.view(2, -1),
    "view_as": lambda x: x.view_as(dtorch.zeros(4, 6)),
    "reshape_contiguous": lambda x: x.reshape(4, 6),
    "t": lambda x: x.select(0, 0).t(),
    "T": lambda x: x.select(0, 1).T,
    "mT": lambda x: x.mT,
    "transpose": lambda x: x.transpose(0, 2),
    "swapaxes": lambda x: x.swapaxes(0, 1),
    "permute": lambda x: x.permute(2, 0, 1),
    "movedim": lambda x: dtorch.movedim(x, 0, 2),
    "expand": lambda x: x.unsqueeze(0).expand(3, 2, 3, 4),
    "expand_as": lambda x: x.select(2, 0).unsqueeze(-1).expand_as(dtorch.zeros(2, 3, 5)),
    "broadcast_to": lambda x: x.broadcast_to((5, 2, 3, 4)),
    "squeeze": lambda x: x.unsqueeze(1).squeeze(),
    "squeeze_dim": lambda x: x.unsqueeze(1).squeeze(1),
    "unsqueeze": lambda x: x.unsqueeze(-1),
    "flatten": lambda x: x.flatten(1),
    "unflatten": lambda x: x.unflatten(2, (2, 2)),
    "narrow": lambda x: x.narrow(2, 1, 2),
    "select": lambda x: x.select(1, -1),
    "unbind": lambda x: x.unbind(2)[1],
    "split": lambda x: x.split(2, 2)[1],
    "split_sizes": lambda x: x.split([1, 3], 2)[1],
    "chunk": lambda x: x.chunk(3, 1)[2],
    "tensor_split": lambda x: x.tensor_split([1, 3], 2)[1],
    "as_strided": lambda x: x.as_strided((3, 2), (2, 5), 1),
    "detach": lambda x: x.detach(),
}


@pytest.mark.parametrize("name", sorted(VIEW_OPS))
def test_view_ops_share_storage_and_base(name, device):
    x = _x(dtorch).to(device)
    v = VIEW_OPS[name](x)
    assert _same_storage(v, x)
    assert v._vc is x._vc
    if name == "detach":
        assert v._base is None  # detach shares storage but is not a view for autograd, as torch
    else:
        assert v._base is x
        assert VIEW_OPS[name](x.view(x.shape))._base is x  # a view of a view records the root


WRITABLE_VIEWS = sorted(set(VIEW_OPS) - {"expand", "expand_as", "broadcast_to"})  # no overlapping elements


@pytest.mark.parametrize("name", WRITABLE_VIEWS)
def test_writes_through_views(name, device):
    x = _x(dtorch).to(device)
    v = VIEW_OPS[name](x)
    v.fill_(-1.0)
    assert (x == -1.0).sum().item() == v.numel()
    assert x._version == v._version == 1
    x.zero_()
    assert v.sum().item() == 0 and v._version == 2


@pytest.mark.parametrize("name", sorted(set(VIEW_OPS) - {"detach", "view_as", "expand_as"}))
def test_view_ops_values_match_torch(name, torch):
    torch_ops = {
        "movedim": lambda x: torch.movedim(x, 0, 2),
        "broadcast_to": lambda x: x.broadcast_to((5, 2, 3, 4)),
    }
    got = VIEW_OPS[name](_x(dtorch))
    want = torch_ops[name](_x(torch)) if name in torch_ops else VIEW_OPS[name](_x(torch))
    assert_close(got, want)
    assert got.stride() == want.stride()
    assert got.storage_offset() == want.storage_offset()
    assert got.is_contiguous() == want.is_contiguous()


def test_base_of_view_of_view_is_root():
    x = dtorch.arange(6.0).reshape(2, 3)  # reshape of a fresh tensor: itself a view of the arange
    root = x._base
    w = x.t().select(0, 1).unsqueeze(0)
    assert w._base is root and x.t()._base is root
    assert root._base is None


def test_version_counter_shared_by_views():
    a = dtorch.zeros(4)
    v = a.view(2, 2)
    s = v.select(0, 1)
    assert (a._version, v._version, s._version) == (0, 0, 0)
    s.add_(1)
    v.mul_(2)
    a.sub_(1)
    assert a._version == v._version == s._version == 3
    assert a.tolist() == [-1.0, -1.0, 1.0, 1.0]
    c = a.clone()
    c.add_(1)
    assert a._version == 3 and c._version == 1


# ---- errors ----------------------------------------------------------------------------------------
VIEW_ERRORS = [
    lambda m: _x(m).transpose(0, 2).view(-1),
    lambda m: _x(m).transpose(1, 2).view(2, 12),
    lambda m: _x(m).narrow(2, 0, 2).view(2, 6),
    lambda m: _x(m).narrow(1, 0, 2).view(4, 4),
    lambda m: _x(m).view(-1, -1),
    lambda m: _x(m).view(5, -1),
    lambda m: _x(m).view(7),
    lambda m: _x(m).permute(0, 1),
    lambda m: _x(m).permute(0, 1, 1),
    lambda m: _x(m).flatten(2, 1),
    lambda m: _x(m).unflatten(2, (3, 2)),
    lambda m: m.zeros(1, 3, 1).squeeze(3),
    lambda m: m.zeros(3).unsqueeze(2),
    lambda m: _x(m).narrow(1, 2, 2),
    lambda m: _x(m).select(1, 3),
    lambda m: m.tensor(1.0).select(0, 0),
    lambda m: _x(m).split([1, 2], 2),
    lambda m: m.zeros(3, 1).expand(3, 4, 5),
    lambda m: m.zeros(3, 2).expand(3, 4),
    lambda m: m.zeros(3, 1).expand(4),
    lambda m: _x(m).t(),
    lambda m: _x(m).chunk(0),
]


@pytest.mark.parametrize("case", range(len(VIEW_ERRORS)))
def test_view_errors_like_torch(case, torch):
    with pytest.raises(Exception) as want:
        VIEW_ERRORS[case](torch)
    with pytest.raises(type(want.value)):
        VIEW_ERRORS[case](dtorch)


def test_view_error_message():
    with pytest.raises(RuntimeError, match="view size is not compatible with input tensor's size and stride"):
        _x(dtorch).transpose(0, 2).view(-1)
    with pytest.raises(RuntimeError, match=r"shape '\[5, -1\]' is invalid for input of size 24"):
        _x(dtorch).view(5, -1)


def test_view_allowed_across_compatible_strides():
    x = _x(dtorch)
    v = x.narrow(2, 0, 2).view(6, 2)  # the last dim stays intact: a view is possible
    assert v._base is x and v.stride() == (4, 1)
    w = x.narrow(1, 0, 2).view(2, 8)
    assert w._base is x and w.stride() == (12, 1)
    e = x.unsqueeze(0).expand(3, 2, 3, 4).view(3, 2, 12)
    assert e.stride() == (0, 12, 1)
    assert x.unsqueeze(0).expand(3, 2, 3, 4).view(3, 24).stride() == (0, 1)  # as torch
    assert dtorch.zeros(2, 0).view(0, 5).shape == (0, 5)


# ---- reshape copies only when it must ---------------------------------------------------------------
def test_reshape_views_when_possible():
    x = _x(dtorch)
    r = x.reshape(4, 6)
    assert r._base is x and r.data_ptr() == x.data_ptr()
    n = x.narrow(2, 0, 2).reshape(6, 2)
    assert n._base is x
    assert x.reshape(2, 3, 4)._base is x


def test_reshape_copies_when_it_must():
    x = _x(dtorch)
    c = x.transpose(0, 2).reshape(-1)
    assert c._base is None and not _same_storage(c, x)
    assert c.tolist() == np.arange(24.0).reshape(2, 3, 4).transpose(2, 1, 0).reshape(-1).tolist()
    m = x.view(6, 4).t()
    assert m.reshape(24)._base is None and m.reshape(2, 2, 6)._base is x  # splitting a dim is a view
    assert m.reshape(4, 6)._base is x  # same shape: a view
    f = x.permute(2, 0, 1).flatten()
    assert f._base is None and f.is_contiguous()


def test_reshape_grad_fn_names():
    x = dtorch.arange(6.0, requires_grad=True)
    y = x * 1
    assert y.view(2, 3).t().reshape(6).grad_fn.name() == "UnsafeViewBackward0"
    assert y.reshape(2, 3).grad_fn.name() == "ViewBackward0"


def test_contiguous_is_a_copy_for_strided_tensors():
    x = _x(dtorch)
    t = x.transpose(0, 1)
    c = t.contiguous()
    assert c.is_contiguous() and not _same_storage(c, x) and c._base is None
    assert c.tolist() == t.tolist()


def test_chunk_and_split_shapes():
    x = dtorch.zeros(5)
    assert [p.shape[0] for p in x.chunk(3)] == [2, 2, 1]
    assert [p.shape[0] for p in dtorch.zeros(6).chunk(4)] == [2, 2, 2]
    assert [p.shape[0] for p in dtorch.zeros(0).chunk(4)] == [0, 0, 0, 0]
    assert [p.shape[0] for p in x.tensor_split(3)] == [2, 2, 1]
    assert [p.shape[0] for p in x.tensor_split([1, 4])] == [1, 3, 1]
    assert [p.shape[0] for p in x.split(2)] == [2, 2, 1]


def test_as_strided_values():
    a = dtorch.arange(6.0)
    assert a.as_strided((2, 2), (1, 2)).tolist() == [[0.0, 2.0], [1.0, 3.0]]
    assert a.as_strided((2, 2), (1, 2), 1).tolist() == [[1.0, 3.0], [2.0, 4.0]]


# ---- node names -------------------------------------------------------------------------------------
def test_view_node_names_match_torch(torch):

    def names(m):
        x = m.arange(6.0, requires_grad=True).reshape(2, 3)
        return [x.grad_fn.name(), x.t().grad_fn.name(), x.transpose(0, 1).grad_fn.name(),
                x.permute(1, 0).grad_fn.name(), x.view(6).grad_fn.name(), x.unsqueeze(0).grad_fn.name(),
                x.unsqueeze(0).squeeze().grad_fn.name(), x.unsqueeze(0).squeeze(0).grad_fn.name(),
                x.unsqueeze(0).squeeze((0,)).grad_fn.name(), x.expand(2, 2, 3).grad_fn.name(),
                x.narrow(0, 0, 1).grad_fn.name(), x.select(0, 1).grad_fn.name(), x.flatten().grad_fn.name(),
                x.as_strided((2,), (1,)).grad_fn.name(), x.T.grad_fn.name(), x.mT.grad_fn.name(),
                x.select(0, 0).t().grad_fn.name(), x.movedim(0, 1).grad_fn.name()]

    assert names(dtorch) == names(torch)


# ---- gradients through views ---------------------------------------------------------------------
GRAD_THROUGH_VIEWS = {
    "view_t": lambda m, a: a.view(3, 4).t() * m.arange(12.0, dtype=m.float64).view(4, 3),
    "many": lambda m, a: (a.reshape(3, 4).split([1, 3], 1)[0].sum() * 2
                          + a.reshape(3, 4).split([1, 3], 1)[1].t().narrow(0, 1, 2).sum() * 3
                          + a.reshape(3, 4).select(0, 2).unsqueeze(0).expand(4, 4).sum()
                          + a.reshape(3, 4).unbind(1)[3].sum()),
    "permute_flatten": lambda m, a: (a.view(2, 3, 2).permute(2, 0, 1).flatten(1) ** 2),
    "squeeze": lambda m, a: a.view(1, 12, 1).squeeze().unsqueeze(1).squeeze(1) ** 3,
    "as_strided": lambda m, a: a.as_strided((2, 2), (1, 2), 1) * m.tensor([[1.0, 2.0], [3.0, 4.0]],
                                                                          dtype=m.float64),
    "as_strided_overlap": lambda m, a: a.as_strided((3, 2), (1, 1)) ** 2,
    "expand": lambda m, a: a.view(12, 1).expand(12, 3) * m.arange(36.0, dtype=m.float64).view(12, 3),
    "chunk": lambda m, a: a.chunk(5)[1] * a.chunk(5)[2],
    "movedim": lambda m, a: m.movedim(a.view(3, 4), 0, 1).reshape(-1) ** 2,
}


@pytest.mark.parametrize("name", sorted(GRAD_THROUGH_VIEWS))
def test_gradients_flow_through_views(name):
    check_op(GRAD_THROUGH_VIEWS[name], shapes=[(12,)], make=normal, **TOL["float64"])


@pytest.mark.parametrize("name", sorted(set(VIEW_OPS) - {"detach"}))
def test_view_ops_gradcheck(name):
    x = dtorch.tensor(np.random.default_rng(0).standard_normal((2, 3, 4)), requires_grad=True)
    assert dtorch.autograd.gradcheck(lambda t: VIEW_OPS[name](t) * 1.5, (x,))
    assert dtorch.autograd.gradgradcheck(lambda t: VIEW_OPS[name](t) ** 2, (x,))


def test_views_of_a_leaf_require_grad():
    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    v = a.view(2)
    assert v.requires_grad and not v.is_leaf and v.grad_fn.name() == "ViewBackward0"
    with dtorch.no_grad():
        w = a.view(2)
    assert not w.requires_grad and w._base is a


# ---- in-place on views ---------------------------------------------------------------------------
def test_inplace_on_view_of_leaf_is_refused():
    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        a.narrow(0, 0, 1).add_(1)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        a.add_(1)
    with dtorch.no_grad():
        a.narrow(0, 0, 1).add_(1)
        a.mul_(2)
    assert a.tolist() == [4.0, 4.0] and a.is_leaf and a.requires_grad and a._version == 2


INPLACE_ON_VIEWS = {
    "mul_tensor": lambda m, a: _inplace(m, a, lambda b: b.narrow(0, 1, 2).mul_(m.tensor([10.0, 20.0],
                                                                                         dtype=m.float64))),
    "mul_other_grad": lambda m, a, c: _inplace(m, a, lambda b: b.view(2, 2).select(1, 0).mul_(c)),
    "two_levels": lambda m, a: _inplace(m, a, lambda b: b.view(2, 2).t().select(0, 1).pow_(2)),
    "copy_from_grad": lambda m, a, c: _inplace(m, a, lambda b: b.narrow(0, 2, 2).copy_(c * 3)),
    "transpose": lambda m, a: _inplace(m, a, lambda b: b.view(2, 2).t().mul_(
        m.tensor([[1.0], [2.0]], dtype=m.float64))),
    "zero": lambda m, a: _inplace(m, a, lambda b: b.narrow(0, 0, 2).zero_()),
    "fill_tensor": lambda m, a: _inplace(m, a, lambda b: b.narrow(0, 0, 2).fill_(m.tensor(3.0, dtype=m.float64))),
    "clamp": lambda m, a: _inplace(m, a, lambda b: b.narrow(0, 1, 3).clamp_(min=-0.5, max=0.5)),
    "unary_chain": lambda m, a: _inplace(m, a, lambda b: b.narrow(0, 1, 2).exp_()),
    "add_alpha": lambda m, a, c: _inplace(m, a, lambda b: b.narrow(0, 0, 2).add_(c, alpha=3)),
    "div": lambda m, a, c: _inplace(m, a, lambda b: b.narrow(0, 2, 2).div_(c * c + 1)),
    "sibling_view_used_after": lambda m, a: _sibling(m, a),
    "view_of_view_base": lambda m, a: _view_of_view(m, a),
}


def _inplace(m, a, modify):
    b = a * 2
    modify(b)
    return b * m.arange(1.0, 5.0, dtype=m.float64)


def _sibling(m, a):
    b = a.exp() * 1
    v = b.view(2, 2)
    v.narrow(1, 1, 1).mul_(2)  # v itself was not modified in place: its grad_fn must still be rebuilt
    w = b.view(4)
    w.narrow(0, 0, 1).mul_(5)
    return v.sum(0) * m.tensor([1.0, 2.0], dtype=m.float64)


def _view_of_view(m, a):
    b = (a * 1).view(2, 2)  # b is itself a view: in-place ops on its views rebase their common root
    b.select(0, 0).mul_(b.select(0, 1).clone())
    b.t().narrow(0, 1, 1).add_(1)
    return b * b


@pytest.mark.parametrize("name", sorted(INPLACE_ON_VIEWS))
def test_inplace_on_views_of_non_leaves_gives_torch_gradients(name):
    fn = INPLACE_ON_VIEWS[name]
    n_args = fn.__code__.co_argcount - 1
    check_op(fn, shapes=[(4,)] + [(2,)] * (n_args - 1), make=normal, **TOL["float64"])


def test_inplace_on_view_node_names():
    a = dtorch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    b = a * 2
    v = b.narrow(0, 1, 2)
    v.mul_(dtorch.tensor([10.0, 20.0]))
    assert b.grad_fn.name() == "CopySlices" and v.grad_fn.name() == "AsStridedBackward0"
    assert b.tolist() == [2.0, 40.0, 120.0, 8.0]
    assert v._version == b._version == 1


def test_inplace_on_view_with_large_broadcast_grad():
    """The incoming gradient of the base may be a stride-0 broadcast (sum's backward)."""
    def fn(m, a):
        b = a * 2
        b.narrow(0, 1, 10).mul_(3)
        return b.sum()

    check_op(fn, inputs=[dtorch.arange(5000.0, requires_grad=True)])


def test_saved_view_modified_in_place_raises():
    a = dtorch.arange(12.0, requires_grad=True)
    b = (a * 1).view(3, 4)
    b.select(0, 1).mul_(b.select(0, 2))  # saves a view of b ...
    b.t().narrow(0, 0, 2).add_(1)  # ... that this modifies
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (b * b).sum().backward()


def test_double_backward_through_inplace_on_view():
    def fn(m, a):
        b = a * a
        b.narrow(0, 1, 2).mul_(a.narrow(0, 0, 2))
        return b

    check_op(fn, inputs=[dtorch.tensor([1.0, 2.0, 3.0], requires_grad=True)], gradgrad=True)


def test_as_strided_double_backward_with_overlap():
    def fn(m, a):
        v = (a * a).as_strided((3, 2), (1, 1))
        return v * v

    check_op(fn, inputs=[dtorch.arange(4.0, requires_grad=True)], gradgrad=True)


def test_inplace_on_base_then_use_older_view():
    check_op(_base_then_view, shapes=[(6,)], make=normal, **TOL["float64"])


def _base_then_view(m, a):
    b = a * 1
    v = b.view(2, 3)
    b.mul_(2)
    return v * v

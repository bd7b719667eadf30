"""layer_norm / group_norm / batch_norm / normalize and their modules, against torch."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch.autograd import gradcheck
from tests.oracle import assert_close, to_torch, torch_or_skip


def _rand(*shape, device="cpu", dtype=dtorch.float64, rg=True):
    return dtorch.randn(*shape, dtype=dtype).to(device).requires_grad_(rg)


def _gradgradcheck(fn, inputs) -> bool:
    """gradcheck of the create_graph=True gradients (second derivatives)."""
    go = dtorch.randn(*fn(*inputs).shape, dtype=dtorch.float64, requires_grad=True)
    n = len(inputs)

    def first(*args):
        with dtorch.enable_grad():
            out = fn(*args[:n])
            return dtorch.autograd.grad(out, args[:n], args[n:], create_graph=True)

    return gradcheck(first, tuple(inputs) + (go,))


def _check_grads(out, tout, pairs, rtol=1e-5, atol=1e-6):
    assert_close(out, tout, rtol=rtol, atol=atol)
    g = np.random.default_rng(1).standard_normal(tuple(out.shape))
    out.backward(dtorch.tensor(g, dtype=out.dtype, device=out.device))
    tout.backward(to_torch(dtorch.tensor(g, dtype=out.dtype)))
    for ours, theirs in pairs:
        assert_close(ours.grad, theirs.grad, rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape,norm_shape", [((4, 6), (6,)), ((2, 3, 4, 5), (4, 5))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch(device, shape, norm_shape, affine):
    torch = torch_or_skip()
    x = _rand(*shape, device=device)
    w = _rand(*norm_shape, device=device) if affine else None
    b = _rand(*norm_shape, device=device) if affine else None
    tx, tw, tb = to_torch(x), to_torch(w) if affine else None, to_torch(b) if affine else None
    out = F.layer_norm(x, norm_shape, w, b, eps=1e-4)
    assert type(out.grad_fn).__name__ == "NativeLayerNormBackward0"
    tout = torch.nn.functional.layer_norm(tx, norm_shape, tw, tb, eps=1e-4)
    _check_grads(out, tout, [(x, tx)] + ([(w, tw), (b, tb)] if affine else []))


def test_layer_norm_float32_and_errors():
    torch = torch_or_skip()
    x = dtorch.randn(8, 32, requires_grad=True)
    tx = to_torch(x)
    _check_grads(F.layer_norm(x, (32,)), torch.nn.functional.layer_norm(tx, (32,)), [(x, tx)], rtol=1e-4, atol=1e-5)
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[5\], expected input with shape \[\*, 5\]"):
        F.layer_norm(x, (5,))


def test_layer_norm_gradcheck_and_double_backward():
    x, w, b = _rand(3, 4), _rand(4), _rand(4)
    fn = lambda x, w, b: F.layer_norm(x, (4,), w, b)
    assert gradcheck(fn, (x, w, b))
    assert _gradgradcheck(fn, (x, w, b))


@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(device, affine):
    torch = torch_or_skip()
    x = _rand(3, 6, 4, 2, device=device)
    w, b = (_rand(6, device=device), _rand(6, device=device)) if affine else (None, None)
    tx, tw, tb = to_torch(x), to_torch(w) if affine else None, to_torch(b) if affine else None
    out = F.group_norm(x, 3, w, b)
    tout = torch.nn.functional.group_norm(tx, 3, tw, tb)
    _check_grads(out, tout, [(x, tx)] + ([(w, tw), (b, tb)] if affine else []))


def test_group_norm_gradcheck_and_double_backward():
    x, w, b = _rand(2, 4, 3), _rand(4), _rand(4)
    fn = lambda x, w, b: F.group_norm(x, 2, w, b)
    assert gradcheck(fn, (x, w, b))
    assert _gradgradcheck(fn, (x, w, b))


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 4, 5)])
def test_batch_norm_training_matches_torch(device, shape):
    torch = torch_or_skip()
    x, w, b = _rand(*shape, device=device), _rand(3, device=device), _rand(3, device=device)
    rm = dtorch.rand(3, dtype=dtorch.float64).to(device)
    rv = (dtorch.rand(3, dtype=dtorch.float64) + 0.5).to(device)
    tx, tw, tb, trm, trv = (to_torch(t) for t in (x, w, b, rm, rv))
    out = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3)
    tout = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.3)
    _check_grads(out, tout, [(x, tx), (w, tw), (b, tb)])
    assert_close(rm, trm)
    assert_close(rv, trv)


def test_batch_norm_eval_and_errors():
    torch = torch_or_skip()
    x, w, b = _rand(4, 3, 2), _rand(3), _rand(3)
    rm, rv = dtorch.rand(3, dtype=dtorch.float64), dtorch.rand(3, dtype=dtorch.float64) + 0.5
    tx, tw, tb = to_torch(x), to_torch(w), to_torch(b)
    out = F.batch_norm(x, rm, rv, w, b, training=False)
    tout = torch.nn.functional.batch_norm(tx, to_torch(rm), to_torch(rv), tw, tb, training=False)
    _check_grads(out, tout, [(x, tx), (w, tw), (b, tb)])
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(dtorch.randn(1, 3), None, None, training=True)


def test_batch_norm_gradcheck_and_double_backward():
    x, w, b = _rand(4, 3, 2), _rand(3), _rand(3)
    fn = lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)
    assert gradcheck(fn, (x, w, b))
    assert _gradgradcheck(fn, (x, w, b))


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, -1)])
def test_normalize_matches_torch(p, dim):
    torch = torch_or_skip()
    x = _rand(4, 5)
    tx = to_torch(x)
    _check_grads(F.normalize(x, p, dim), torch.nn.functional.normalize(tx, p, dim), [(x, tx)])
    assert gradcheck(lambda x: F.normalize(x, p, dim), (x,))


def _load_from(dm, tm):
    dm.load_state_dict({k: dtorch.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})


def test_modules_init_repr_and_state_dict():
    torch = torch_or_skip()
    for ctor in ["LayerNorm(4)", "LayerNorm((2, 3), elementwise_affine=False)", "LayerNorm(5, bias=False)",
                 "GroupNorm(2, 4)", "GroupNorm(2, 4, affine=False)", "BatchNorm1d(3)",
                 "BatchNorm2d(3, momentum=None, affine=False)", "BatchNorm2d(3, track_running_stats=False)"]:
        dm, tm = eval("dtorch.nn." + ctor), eval("torch.nn." + ctor, {"torch": torch})
        assert repr(dm) == repr(tm)
        dsd, tsd = dm.state_dict(), tm.state_dict()
        assert list(dsd) == list(tsd)
        for k in dsd:
            assert_close(dsd[k], tsd[k])


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_module_training_and_eval(momentum):
    torch = torch_or_skip()
    dm, tm = dtorch.nn.BatchNorm2d(3, momentum=momentum).double(), torch.nn.BatchNorm2d(3, momentum=momentum).double()
    for _ in range(3):
        x = _rand(4, 3, 2, 2)
        tx = to_torch(x)
        _check_grads(dm(x), tm(tx), [(x, tx)])
    for k, v in tm.state_dict().items():
        assert_close(dm.state_dict()[k], v)
    dm.eval(), tm.eval()
    x = _rand(2, 3, 2, 2)
    assert_close(dm(x), tm(to_torch(x)))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        dm(dtorch.randn(2, 3))


def test_layernorm_groupnorm_modules_grads():
    torch = torch_or_skip()
    for dm, tm, shape in [(dtorch.nn.LayerNorm(6), torch.nn.LayerNorm(6), (3, 6)),
                          (dtorch.nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4), (3, 4, 5))]:
        dm, tm = dm.double(), tm.double()
        with torch.no_grad():
            tm.weight.normal_(), tm.bias.normal_()
        _load_from(dm, tm)
        x = _rand(*shape)
        tx = to_torch(x)
        _check_grads(dm(x), tm(tx), [(x, tx), (dm.weight, tm.weight), (dm.bias, tm.bias)])

"""layer_norm / group_norm / batch_norm / normalize and their modules, against torch."""
from __future__ import annotations

import pytest

import dtorch
import dtorch.nn.functional as F
from tests.oracle import F32_TOL, assert_close, check_grads, check_op, load_from_torch, rand, to_torch


@pytest.mark.parametrize("shape,norm_shape", [((4, 6), (6,)), ((2, 3, 4, 5), (4, 5))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch(device, shape, norm_shape, affine, torch):
    x = rand(*shape, device=device)
    w = rand(*norm_shape, device=device) if affine else None
    b = rand(*norm_shape, device=device) if affine else None
    out = check_op(lambda x, w, b: F.layer_norm(x, norm_shape, w, b, eps=1e-4),
                   lambda x, w, b: torch.nn.functional.layer_norm(x, norm_shape, w, b, eps=1e-4), inputs=[x, w, b])
    assert type(out.grad_fn).__name__ == "NativeLayerNormBackward0"


def test_layer_norm_float32_and_errors(torch):
    x = dtorch.randn(8, 32, requires_grad=True)
    check_op(lambda x: F.layer_norm(x, (32,)), lambda x: torch.nn.functional.layer_norm(x, (32,)), inputs=[x],
             **F32_TOL)
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[5\], expected input with shape \[\*, 5\]"):
        F.layer_norm(x, (5,))


def test_layer_norm_gradcheck_and_double_backward():
    check_grads(lambda x, w, b: F.layer_norm(x, (4,), w, b), rand(3, 4), rand(4), rand(4))


@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(device, affine, torch):
    x = rand(3, 6, 4, 2, device=device)
    w, b = (rand(6, device=device), rand(6, device=device)) if affine else (None, None)
    check_op(lambda x, w, b: F.group_norm(x, 3, w, b), lambda x, w, b: torch.nn.functional.group_norm(x, 3, w, b),
             inputs=[x, w, b])


def test_group_norm_gradcheck_and_double_backward():
    check_grads(lambda x, w, b: F.group_norm(x, 2, w, b), rand(2, 4, 3), rand(4), rand(4))


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 4, 5)])
def test_batch_norm_training_matches_torch(device, shape, torch):
    x, w, b = rand(*shape, device=device), rand(3, device=device), rand(3, device=device)
    rm = dtorch.rand(3, dtype=dtorch.float64).to(device)
    rv = (dtorch.rand(3, dtype=dtorch.float64) + 0.5).to(device)
    trm, trv = to_torch(rm), to_torch(rv)
    check_op(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3),
             lambda x, w, b: torch.nn.functional.batch_norm(x, trm, trv, w, b, training=True, momentum=0.3),
             inputs=[x, w, b])
    assert_close(rm, trm)
    assert_close(rv, trv)


def test_batch_norm_eval_and_errors(torch):
    rm, rv = dtorch.rand(3, dtype=dtorch.float64), dtorch.rand(3, dtype=dtorch.float64) + 0.5
    check_op(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False),
             lambda x, w, b: torch.nn.functional.batch_norm(x, to_torch(rm), to_torch(rv), w, b, training=False),
             inputs=[rand(4, 3, 2), rand(3), rand(3)])
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(dtorch.randn(1, 3), None, None, training=True)


def test_batch_norm_gradcheck_and_double_backward():
    check_grads(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), rand(4, 3, 2), rand(3), rand(3))


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, -1)])
def test_normalize_matches_torch(p, dim, torch):
    x = rand(4, 5)
    check_op(lambda x: F.normalize(x, p, dim), lambda x: torch.nn.functional.normalize(x, p, dim), inputs=[x])
    check_grads(lambda x: F.normalize(x, p, dim), x, gradgrad=False)


def test_modules_init_repr_and_state_dict(torch):
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
def test_batchnorm2d_module_training_and_eval(momentum, torch):
    dm, tm = dtorch.nn.BatchNorm2d(3, momentum=momentum).double(), torch.nn.BatchNorm2d(3, momentum=momentum).double()
    for _ in range(3):
        check_op(dm, tm, inputs=[rand(4, 3, 2, 2)], params=(dm.parameters(), tm.parameters()))
    for k, v in tm.state_dict().items():
        assert_close(dm.state_dict()[k], v)
    dm.eval(), tm.eval()
    check_op(dm, tm, inputs=[rand(2, 3, 2, 2)], params=(dm.parameters(), tm.parameters()))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        dm(dtorch.randn(2, 3))


def test_layernorm_groupnorm_modules_grads(torch):
    for dm, tm, shape in [(dtorch.nn.LayerNorm(6), torch.nn.LayerNorm(6), (3, 6)),
                          (dtorch.nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4), (3, 4, 5))]:
        dm, tm = dm.double(), tm.double()
        with torch.no_grad():
            tm.weight.normal_(), tm.bias.normal_()
        load_from_torch(dm, tm)
        check_op(dm, tm, inputs=[rand(*shape)], params=(dm.parameters(), tm.parameters()))

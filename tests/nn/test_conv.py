"""conv1d/2d/3d, conv_transpose, unfold/fold and the Conv modules: parity with torch, gradcheck, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch.autograd import gradcheck, gradgradcheck
from tests.oracle import F32_TOL, check_grads, check_op, rand, to_torch

F32 = dtorch.float32

CONV2D_CASES = [
    dict(),
    dict(stride=2),
    dict(padding=1),
    dict(padding=(2, 0), stride=(2, 1)),
    dict(padding="same"),
    dict(padding="same", dilation=2),
    dict(padding="valid"),
    dict(dilation=(2, 1), padding=1),
    dict(groups=2),
    dict(groups=4, stride=2, padding=1),
    dict(stride=3, padding=2, dilation=2),
]


@pytest.mark.parametrize("kw", CONV2D_CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_parity(device, kw, bias, torch):
    x = rand(2, 4, 9, 8, device=device, dtype=F32)
    w = rand(6 if kw.get("groups", 1) != 4 else 8, 4 // kw.get("groups", 1), 3, 2, device=device, dtype=F32)
    b = rand(w.shape[0], device=device, dtype=F32) if bias else None
    check_op(lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **kw),
             inputs=[x, w, b], **F32_TOL)


def test_conv2d_even_kernel_same_pads_unevenly(torch):
    x, w = rand(1, 2, 6, 7, dtype=F32), rand(3, 2, 4, 2, dtype=F32)
    check_op(lambda x, w: F.conv2d(x, w, padding="same"),
             lambda x, w: torch.nn.functional.conv2d(x, w, padding="same"), inputs=[x, w], **F32_TOL)


def test_conv2d_unbatched_and_noncontiguous(torch):
    x = rand(3, 7, 7, dtype=F32)
    w = rand(4, 3, 3, 3, dtype=F32)
    check_op(lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: torch.nn.functional.conv2d(x, w, padding=1),
             inputs=[x, w], **F32_TOL)
    xt = rand(2, 3, 7, 6, dtype=F32).detach()
    xt = xt.transpose(2, 3).requires_grad_()
    check_op(F.conv2d, torch.nn.functional.conv2d, inputs=[xt, w], **F32_TOL)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=3),
                                dict(groups=2, bias=False)], ids=str)
def test_conv1d_parity(kw, torch):
    kw = dict(kw)
    bias = kw.pop("bias", True)
    x, w = rand(2, 4, 11, dtype=F32), rand(6, 4 // kw.get("groups", 1), 3, dtype=F32)
    b = rand(6, dtype=F32) if bias else None
    check_op(lambda x, w, b: F.conv1d(x, w, b, **kw), lambda x, w, b: torch.nn.functional.conv1d(x, w, b, **kw),
             inputs=[x, w, b], **F32_TOL)


def test_conv3d_parity(torch):
    x, w, b = rand(1, 2, 5, 4, 6, dtype=F32), rand(3, 2, 2, 3, 2, dtype=F32), rand(3,
                   dtype=F32)
    check_op(lambda x, w, b: F.conv3d(x, w, b, stride=(1, 2, 1), padding=1),
             lambda x, w, b: torch.nn.functional.conv3d(x, w, b, stride=(1, 2, 1), padding=1),
             inputs=[x, w, b], **F32_TOL)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2), dict(stride=2, padding=1, output_padding=1),
                                dict(stride=(2, 3), output_padding=(1, 2), dilation=1),
                                dict(groups=2, dilation=2, padding=2), dict(stride=3, dilation=2, output_padding=2)],
                         ids=str)
def test_conv_transpose2d_parity(device, kw, torch):
    x, w, b = rand(2, 4, 5, 6, device=device, dtype=F32), rand(4, 3, 3, 2, device=device,
                   dtype=F32), rand(3 * kw.get("groups", 1),
                                                                                       device=device, dtype=F32)
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw),
             lambda x, w, b: torch.nn.functional.conv_transpose2d(x, w, b, **kw), inputs=[x, w, b], **F32_TOL)


def test_conv_transpose1d_parity(torch):
    x, w = rand(2, 3, 7, dtype=F32), rand(3, 2, 4, dtype=F32)
    check_op(lambda x, w: F.conv_transpose1d(x, w, stride=2, padding=1),
             lambda x, w: torch.nn.functional.conv_transpose1d(x, w, stride=2, padding=1), inputs=[x, w], **F32_TOL)


@pytest.mark.parametrize("name,x_shape,w_shape,kw", [
    ("conv2d", (0, 4, 9, 9), (8, 2, 3, 3), dict(stride=2, padding=1, groups=2)),
    ("conv1d", (0, 3, 9), (16, 3, 3), dict()),
    ("conv_transpose2d", (0, 4, 9, 9), (4, 2, 3, 3), dict(stride=2)),
], ids=str)
def test_an_empty_batch_matches_torch(name, x_shape, w_shape, kw, torch):
    bias = w_shape[1] if "transpose" in name else w_shape[0]
    x, w, b = rand(*x_shape, dtype=F32), rand(*w_shape, dtype=F32), rand(bias, dtype=F32)
    check_op(lambda x, w, b: getattr(F, name)(x, w, b, **kw),
             lambda x, w, b: getattr(torch.nn.functional, name)(x, w, b, **kw), inputs=[x, w, b], **F32_TOL)


def test_conv_grad_fn_is_one_node():
    y = F.conv2d(rand(1, 2, 5, 5, dtype=F32), rand(3, 2, 3, 3, dtype=F32),
                 rand(3, dtype=F32))
    assert y.grad_fn.name() == "ConvolutionBackward0"
    assert len(y.grad_fn.next_functions) == 3


@pytest.mark.parametrize("fn", [
    lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
    lambda x, w, b: F.conv2d(x, w, b, padding="same", dilation=(1, 2), groups=2),
], ids=["strided", "same-dilated"])
def test_conv2d_gradcheck_and_double_backward(fn):
    d = dtorch.float64
    x, w, b = rand(2, 4, 5, 5, dtype=d), rand(4, 2, 3, 3, dtype=d), rand(4, dtype=d)
    check_grads(fn, x, w, b)


def test_conv_transpose2d_gradcheck_and_double_backward():
    d = dtorch.float64
    fn = lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2)  # noqa: E731
    x, w, b = rand(1, 4, 3, 3, dtype=d), rand(4, 2, 3, 2, dtype=d), rand(4, dtype=d)
    check_grads(fn, x, w, b)


def test_unfold_fold_parity_and_gradcheck(torch):
    x = rand(2, 3, 7, 6, dtype=F32)
    kw = dict(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1))
    check_op(lambda x: F.unfold(x, **kw), lambda x: torch.nn.functional.unfold(x, **kw), inputs=[x], **F32_TOL)
    cols = rand(2, 3 * 4, 20, dtype=F32)
    check_op(lambda c: F.fold(c, (5, 6), (2, 2)), lambda c: torch.nn.functional.fold(c, (5, 6), (2, 2)),
             inputs=[cols], **F32_TOL)
    d = dtorch.float64
    assert gradcheck(lambda a: F.unfold(a, 2, padding=1, stride=2), (rand(1, 2, 4, 5, dtype=d),))
    assert gradgradcheck(lambda c: F.fold(c, (4, 4), 2), (rand(1, 8, 9, dtype=d),))


@pytest.mark.parametrize("call, msg", [
    (lambda: F.conv2d(rand(2, 4, 8, 8, dtype=F32), rand(16, 3, 3, 3, dtype=F32)),
     "Given groups=1, weight of size [16, 3, 3, 3], expected input[2, 4, 8, 8] to have 3 channels, but got 4 "
     "channels instead"),
    (lambda: F.conv2d(rand(2, 3, dtype=F32), rand(16, 3, 3, 3, dtype=F32)),
     "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [2, 3]"),
    (lambda: F.conv2d(rand(2, 3, 2, 2, dtype=F32), rand(16, 3, 3, 3, dtype=F32)),
     "Calculated padded input size per channel: (2 x 2). Kernel size: (3 x 3). Kernel size can't be greater than "
     "actual input size"),
    (lambda: F.conv2d(rand(2, 6, 8, 8, dtype=F32), rand(3, 3, 3, 3, dtype=F32), groups=2),
     "Given groups=2, expected weight to be divisible by 2 at dimension 0"),
    (lambda: F.conv2d(rand(2, 3, 8, 8, dtype=F32), rand(16, 3, 3, 3, dtype=F32), rand(8, dtype=F32)),
     "expected bias to be 1-dimensional with 16 elements, but got bias of size [8] instead"),
    (lambda: F.conv2d(rand(2, 3, 8, 8, dtype=dtorch.float64), rand(16, 3, 3, 3, dtype=F32)),
     "expected scalar type Double but found Float"),
    (lambda: F.conv2d(rand(2, 3, 8, 8, dtype=F32), rand(16, 3, 3, 3, dtype=F32), padding="foo"),
     "Invalid padding string: 'foo'"),
    (lambda: F.conv2d(rand(2, 3, 8, 8, dtype=F32), rand(16, 3, 3, 3, dtype=F32), padding="same", stride=2),
     "padding='same' is not supported for strided convolutions"),
    (lambda: F.conv2d(rand(2, 3, 8, 8, dtype=F32), rand(16, 3, 3, 3, dtype=F32), stride=0),
     "non-positive stride is not supported"),
    (lambda: F.conv2d(rand(2, 3, 8, 8, dtype=F32), rand(16, 3, 3, 3, dtype=F32), padding=-1),
     "negative padding is not supported"),
    (lambda: F.conv_transpose2d(rand(2, 3, 8, 8, dtype=F32), rand(16, 3, 3, 3, dtype=F32)),
     "Given transposed=1, weight of size [16, 3, 3, 3], expected input[2, 3, 8, 8] to have 16 channels"),
    (lambda: F.conv_transpose2d(rand(2, 16, 8, 8, dtype=F32), rand(16, 3, 3, 3, dtype=F32), output_padding=2),
     "output padding must be smaller than either stride or dilation"),
])
def test_conv_errors(call, msg):
    with pytest.raises(RuntimeError) as e:
        call()
    assert msg in str(e.value)


# ---- modules ------------------------------------------------------------------------------------------
def test_conv_module_reprs_match_torch(torch):
    for args, kw in [((1, 16, 3), {}), ((2, 4, (3, 5)), dict(stride=2, padding=1, dilation=2, groups=2, bias=False,
                                                             padding_mode="reflect")),
                     ((2, 4, 3), dict(padding="same"))]:
        assert repr(dtorch.nn.Conv2d(*args, **kw)) == repr(torch.nn.Conv2d(*args, **kw))
    assert repr(dtorch.nn.Conv1d(2, 4, 3, padding="valid")) == repr(torch.nn.Conv1d(2, 4, 3, padding="valid"))
    assert repr(dtorch.nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1)) == \
        repr(torch.nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1))
    assert repr(dtorch.nn.Conv2d(1, 16, 3)) == "Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1))"


def test_conv_module_default_init_statistics():
    m = dtorch.nn.Conv2d(64, 32, 3)
    fan_in = 64 * 9
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) gives the same bound as the bias
    w = m.weight.detach().numpy()
    assert w.shape == (32, 64, 3, 3) and np.abs(w).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert np.abs(m.bias.detach().numpy()).max() <= bound
    t = dtorch.nn.ConvTranspose2d(8, 4, 3, groups=2)
    assert tuple(t.weight.shape) == (8, 2, 3, 3) and tuple(t.bias.shape) == (4,)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv2d_module_padding_modes_match_torch(mode, torch):
    m = dtorch.nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode)
    tm = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode)
    with torch.no_grad():
        tm.weight.copy_(to_torch(m.weight.detach()))
        tm.bias.copy_(to_torch(m.bias.detach()))
    check_op(m, tm, inputs=[rand(2, 2, 5, 6, dtype=F32)], params=(m.parameters(), tm.parameters()), **F32_TOL)


def test_conv_transpose_module_output_size():
    m = dtorch.nn.ConvTranspose2d(4, 2, 3, stride=2)
    assert tuple(m(rand(1, 4, 5, 5, dtype=F32)).shape) == (1, 2, 11, 11)
    assert tuple(m(rand(1, 4, 5, 5, dtype=F32), output_size=(12, 12)).shape) == (1, 2, 12, 12)
    with pytest.raises(ValueError):
        m(rand(1, 4, 5, 5, dtype=F32), output_size=(14, 14))


def test_conv_module_constructor_errors():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        dtorch.nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        dtorch.nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        dtorch.nn.Conv2d(3, 4, 3, padding_mode="bogus")

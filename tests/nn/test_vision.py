"""F.pad and F.interpolate: parity with torch (values and gradients), gradcheck, errors."""
from __future__ import annotations

import pytest

import dtorch
import dtorch.nn.functional as F
from tests.oracle import F32_TOL, check_grads, check_op, rand

F32 = dtorch.float32


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", [(1, 2), (1, 2, 2, 1), (0, 3, 3, 0)], ids=str)
def test_pad_parity(device, mode, pad, torch):
    x = rand(*((2, 3, 4, 5) if len(pad) == 4 else (3, 4, 5)), device=device, dtype=F32)
    check_op(lambda x: F.pad(x, pad, mode=mode), lambda x: torch.nn.functional.pad(x, pad, mode=mode), inputs=[x],
             **F32_TOL)


def test_pad_constant_value_negative_and_3d(torch):
    x = rand(2, 3, 4, 5, dtype=F32)
    pad = (1, -2, 0, 1, 1, 1)
    check_op(lambda x: F.pad(x, pad, value=3.5), lambda x: torch.nn.functional.pad(x, pad, value=3.5), inputs=[x],
             **F32_TOL)
    x1 = rand(2, 3, 4, dtype=F32)
    check_op(lambda x: F.pad(x, (3, 3), mode="circular"),
             lambda x: torch.nn.functional.pad(x, (3, 3), mode="circular"), inputs=[x1], **F32_TOL)
    x5 = rand(1, 2, 3, 4, 5, dtype=F32)
    check_op(lambda x: F.pad(x, (1, 1, 2, 0, 1, 2), mode="replicate"),
             lambda x: torch.nn.functional.pad(x, (1, 1, 2, 0, 1, 2), mode="replicate"), inputs=[x5], **F32_TOL)


def test_pad_errors():
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        F.pad(rand(2, 3, dtype=F32), (1,))
    with pytest.raises(RuntimeError, match="Padding size should be less than the corresponding input dimension"):
        F.pad(rand(1, 2, 3, dtype=F32), (3, 0), mode="reflect")
    with pytest.raises(NotImplementedError, match="Padding size 2 is not supported for 4D input tensor"):
        F.pad(rand(1, 2, 3, 4, dtype=F32), (1, 1), mode="replicate")


SIZES = [dict(scale_factor=2), dict(size=(7, 3)), dict(scale_factor=(1.7, 0.6)), dict(size=1)]


@pytest.mark.parametrize("kw", SIZES, ids=str)
@pytest.mark.parametrize("mode, ac", [("nearest", None), ("bilinear", False), ("bilinear", True)])
def test_interpolate_parity(device, kw, mode, ac, torch):
    x = rand(2, 3, 5, 6, device=device, dtype=F32)
    check_op(lambda x: F.interpolate(x, mode=mode, align_corners=ac, **kw),
             lambda x: torch.nn.functional.interpolate(x, mode=mode, align_corners=ac, **kw), inputs=[x], **F32_TOL)


def test_interpolate_linear_1d_and_nearest_3d(torch):
    x = rand(2, 3, 5, dtype=F32)
    check_op(lambda x: F.interpolate(x, scale_factor=3, mode="linear"),
             lambda x: torch.nn.functional.interpolate(x, scale_factor=3, mode="linear"), inputs=[x], **F32_TOL)
    x3 = rand(1, 2, 3, 4, 2, dtype=F32)
    check_op(lambda x: F.interpolate(x, size=(5, 3, 4)), lambda x: torch.nn.functional.interpolate(x, size=(5, 3, 4)),
             inputs=[x3], **F32_TOL)


@pytest.mark.parametrize("fn", [
    lambda a: F.pad(a, (1, 2, 2, 1), mode="reflect"),
    lambda a: F.pad(a, (2, 1, 3, 3), mode="circular"),
    lambda a: F.pad(a, (1, -2, 2, 1), value=2.0),
    lambda a: F.interpolate(a, scale_factor=1.5, mode="bilinear"),
    lambda a: F.interpolate(a, size=(7, 2), mode="nearest"),
], ids=["reflect", "circular", "constant", "bilinear", "nearest"])
def test_vision_gradcheck_and_double_backward(fn):
    x = rand(1, 2, 4, 5, dtype=dtorch.float64)
    check_grads(fn, x)


def test_interpolate_errors():
    x = rand(1, 2, 4, 5, dtype=F32)
    with pytest.raises(ValueError, match="only one of size or scale_factor should be defined"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(x, size=3, align_corners=True)
    with pytest.raises(NotImplementedError):
        F.interpolate(x, size=3, mode="linear")

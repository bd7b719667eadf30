"""The convolution kernels' layouts (per-sample column GEMMs, batch-minor columns with one GEMM per batch
chunk, channels-last rows, whose stride-1 input gradient is a full correlation or one BLAS-accumulated GEMM per
kernel row, 'taps') and their batch chunking:
conv2d, conv_transpose2d and conv1d forward and backward against torch over a table of stride / padding /
dilation / groups, and float64 gradcheck + gradgradcheck, each layout forced."""
from __future__ import annotations

import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch.nn._functional import _conv_c, _conv_rows, _conv_taps, conv
from tests.oracle import F32_TOL, check_grads, check_op, rand

F32 = dtorch.float32
CONV_CASES = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(0, 2)),
    dict(padding="same", dilation=2),
    dict(dilation=(2, 1), padding=1, stride=2),
    dict(groups=2, stride=2),
    dict(groups=4, padding=1),
    dict(padding=3),  # wider than the kernel's reach: the stride-1 input gradient cannot be a full correlation
]
# kernels a multiple of the stride (DCGAN's 4x4 stride 2): the input gradient by phases
PHASE_CASES = [
    dict(stride=2, padding=1),
    dict(stride=2),
    dict(stride=(2, 4), padding=(3, 0)),
    dict(stride=(4, 2), padding=(0, 2)),
    dict(stride=2, padding=1, output_padding=1),
]
TRANSPOSE_CASES = [
    dict(),
    dict(padding=1),
    dict(stride=2, padding=1),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 3), output_padding=(1, 2)),
    dict(groups=2, dilation=2, padding=2),
    dict(stride=3, dilation=2, output_padding=2, groups=2),
]


@pytest.fixture(params=["per-sample", "per-sample-numpy", "batch-minor", "batch-minor-numpy", "batch-minor-chunked",
                        "rows", "rows-numpy", "rows-chunked", "taps", "taps-chunked"])
def layout(request, monkeypatch):
    """Force one layout (rows where groups == 1, the strided input gradient by sub-pixel phases where the
    kernel is a multiple of the stride; taps: rows, the stride-1 input gradient by kernel rows where it has
    no more rows than the full correlation); 'chunked' also makes every batch chunk one sample. Columns and
    rows come from the C kernels, or with 'numpy' from numpy's loops (as without a C compiler)."""
    rows = request.param.startswith(("rows", "taps"))
    monkeypatch.setattr(conv, "_MINOR_BELOW", 0 if request.param.startswith("per-sample") else 1 << 30)
    if rows:
        monkeypatch.setattr(conv, "_COLUMNS_FROM", dict.fromkeys(conv._COLUMNS_FROM, 1 << 30))
    if request.param.endswith("numpy"):
        monkeypatch.setattr(_conv_c.KERNELS, "fns", {})
    monkeypatch.setattr(_conv_rows, "ROWS_MIN_RUN", 0 if rows else 1 << 30)
    monkeypatch.setattr(_conv_rows, "SUBPIXEL_MIN_COLS", 0)
    monkeypatch.setattr(_conv_taps, "TAPS_MIN_K", 0 if request.param.startswith("taps") else 1 << 30)
    if request.param.endswith("chunked"):
        monkeypatch.setitem(conv._CHUNK_BYTES, "cpu", 1)
        monkeypatch.setattr(_conv_taps, "CHUNK_BYTES", 1)
    return request.param


@pytest.mark.parametrize("kw", CONV_CASES, ids=str)
def test_conv2d_layouts_match_torch(layout, kw, torch):
    g = kw.get("groups", 1)
    x, w, b = rand(3, 4, 8, 7, dtype=F32), rand(8, 4 // g, 4, 3, dtype=F32), rand(8, dtype=F32)
    check_op(lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **kw),
             inputs=[x, w, b], **F32_TOL)


@pytest.mark.parametrize("kw", TRANSPOSE_CASES, ids=str)
def test_conv_transpose2d_layouts_match_torch(layout, kw, torch):
    g = kw.get("groups", 1)
    x, w, b = rand(3, 4, 5, 4, dtype=F32), rand(4, 6 // g, 4, 3, dtype=F32), rand(6, dtype=F32)
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw),
             lambda x, w, b: torch.nn.functional.conv_transpose2d(x, w, b, **kw), inputs=[x, w, b], **F32_TOL)


@pytest.mark.parametrize("kw", PHASE_CASES, ids=str)
def test_kernel_multiple_of_stride_layouts_match_torch(layout, kw, torch):
    x, w = rand(2, 5, 9, 8, dtype=F32), rand(6, 5, 4, 4, dtype=F32)
    conv_kw = {k: v for k, v in kw.items() if k != "output_padding"}
    check_op(lambda x, w: F.conv2d(x, w, **conv_kw), lambda x, w: torch.nn.functional.conv2d(x, w, **conv_kw),
             inputs=[x, w], **F32_TOL)
    z, wt = rand(2, 6, 4, 3, dtype=F32), rand(6, 5, 4, 4, dtype=F32)
    check_op(lambda z, w: F.conv_transpose2d(z, w, **kw),
             lambda z, w: torch.nn.functional.conv_transpose2d(z, w, **kw), inputs=[z, wt], **F32_TOL)


def test_conv1d_and_1x1_output_layouts_match_torch(layout, torch):
    x, w = rand(3, 4, 9, dtype=F32), rand(6, 2, 3, dtype=F32)
    kw = dict(stride=2, padding=1, groups=2)
    check_op(lambda x, w: F.conv1d(x, w, **kw), lambda x, w: torch.nn.functional.conv1d(x, w, **kw),
             inputs=[x, w], **F32_TOL)
    # DCGAN's ends: a 4x4 input to a 1x1 output, and a 1x1 noise to a 4x4 image
    x, w = rand(5, 8, 4, 4, dtype=F32), rand(1, 8, 4, 4, dtype=F32)
    check_op(F.conv2d, torch.nn.functional.conv2d, inputs=[x, w], **F32_TOL)
    z, wt = rand(5, 10, 1, 1, dtype=F32), rand(10, 6, 4, 4, dtype=F32)
    check_op(F.conv_transpose2d, torch.nn.functional.conv_transpose2d, inputs=[z, wt], **F32_TOL)


def test_layouts_gradcheck_and_double_backward(layout):
    d = dtorch.float64
    x, w, b = rand(2, 4, 5, 5, dtype=d), rand(4, 2, 3, 3, dtype=d), rand(4, dtype=d)
    check_grads(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2), x, w, b)
    x, w, b = rand(2, 4, 3, 3, dtype=d), rand(4, 2, 3, 2, dtype=d), rand(4, dtype=d)
    check_grads(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2),
                x, w, b)
    x, w = rand(2, 3, 3, 4, dtype=d), rand(3, 2, 4, 2, dtype=d)
    check_grads(lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1), x, w)


# stride 1 without padding past the kernel's reach: the input gradient by kernel rows in the taps layouts
STRIDE1_CASES = [
    dict(),
    dict(dilation=(2, 1)),
    dict(padding=(1, 0), dilation=(1, 2)),
]


@pytest.mark.parametrize("kw", STRIDE1_CASES, ids=str)
def test_stride1_input_grad_layouts_match_torch(layout, kw, torch):
    x, w, b = rand(3, 5, 9, 8, dtype=F32), rand(6, 5, 3, 2, dtype=F32), rand(6, dtype=F32)
    check_op(lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **kw),
             inputs=[x, w, b], **F32_TOL)
    x3, w3 = rand(2, 3, 5, 6, 4, dtype=F32), rand(4, 3, 2, 3, 2, dtype=F32)
    check_op(F.conv3d, torch.nn.functional.conv3d, inputs=[x3, w3], **F32_TOL)


def test_stride1_layouts_gradcheck_and_double_backward(layout):
    d = dtorch.float64
    x, w, b = rand(2, 3, 6, 5, dtype=d), rand(4, 3, 3, 2, dtype=d), rand(4, dtype=d)
    check_grads(lambda x, w, b: F.conv2d(x, w, b, dilation=(1, 2)), x, w, b)
    z, wt = rand(2, 4, 6, 5, dtype=d), rand(4, 3, 2, 2, dtype=d)
    check_grads(lambda z, w: F.conv_transpose2d(z, w), z, wt)


def test_3d_phases_match_torch(layout, torch):
    """3-D kernels a multiple of the stride: the strided input gradient by sub-pixel phases in three dims."""
    x, w = rand(2, 3, 5, 6, 4, dtype=F32), rand(4, 3, 2, 4, 2, dtype=F32)
    kw = dict(stride=(2, 2, 1), padding=(1, 0, 1))
    check_op(lambda x, w: F.conv3d(x, w, **kw), lambda x, w: torch.nn.functional.conv3d(x, w, **kw),
             inputs=[x, w], **F32_TOL)
    z, wt = rand(2, 4, 3, 3, 2, dtype=F32), rand(4, 3, 4, 2, 2, dtype=F32)
    kw = dict(stride=2, padding=1, output_padding=(1, 0, 1))
    check_op(lambda z, w: F.conv_transpose3d(z, w, **kw), lambda z, w: torch.nn.functional.conv_transpose3d(z, w, **kw),
             inputs=[z, wt], **F32_TOL)

"""The C kernels of the convolutions (nn/_functional/_conv_c.py): the same columns, rows and sums as numpy's loops,
bit for bit, over strides, padding, dilation, groups, both column layouts, 1-D and 2-D, float32 and float64 and
non-contiguous inputs; a machine without a C compiler falls back to numpy; the convolutions agree either way."""
from __future__ import annotations

import contextlib
import os
import shutil

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch.nn._functional import _conv_c, _conv_cols, _conv_rows

GEOMETRIES = [  # (spatial size, kernel, stride, padding (lo, hi) per dim, dilation)
    ((9, 11), (3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1)),
    ((9, 11), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    ((12, 12), (4, 4), (2, 2), ((1, 1), (1, 1)), (1, 1)),
    ((10, 13), (3, 2), (3, 2), ((2, 0), (0, 3)), (1, 1)),
    ((11, 11), (3, 3), (1, 2), ((2, 2), (1, 2)), (2, 3)),
    ((5, 5), (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1)),
    ((3, 4), (3, 3), (1, 1), ((4, 4), (4, 4)), (1, 1)),  # padding past the kernel's reach: all-zero rows
    ((17,), (5,), (2,), ((2, 1),), (1,)),
    ((17,), (3,), (1,), ((0, 0),), (3,)),
]


@contextlib.contextmanager
def numpy_loops():
    """Run a block as on a machine without a C compiler."""
    saved = _conv_c.KERNELS.get()
    _conv_c.KERNELS.fns = {}
    try:
        yield
    finally:
        _conv_c.KERNELS.fns = saved


def test_kernels_are_built_where_a_compiler_exists():
    assert shutil.which(os.environ.get("CC", "cc")), "the test machine has a C compiler"
    for dt in (np.float32, np.float64):
        assert _conv_c.available(np.zeros((1, 1, 2, 2), dt), 2)
    assert not _conv_c.available(np.zeros((1, 1, 2, 2, 2), np.float32), 3)
    assert not _conv_c.available(np.zeros((1, 1, 2, 2), np.float16), 2)


@pytest.mark.parametrize("geom", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_minor", [False, True])
@pytest.mark.parametrize("groups", [1, 2])
def test_columns_and_sums_equal_numpy(geom, dtype, batch_minor, groups):
    size, kernel, stride, padding, dilation = geom
    rng = np.random.default_rng(len(size) + 10 * stride[0])
    # a non-contiguous input: every other channel of a wider array, the spatial dims in reverse memory order
    wide = rng.standard_normal((3, 8) + tuple(reversed(size))).astype(dtype)
    x = wide[:, ::2].transpose((0, 1) + tuple(range(wide.ndim - 1, 1, -1)))
    assert x.shape == (3, 4) + size and not x.flags.c_contiguous
    cols_c, out_c = _conv_cols.im2col(x, kernel, stride, padding, dilation, groups, batch_minor=batch_minor)
    with numpy_loops():
        cols_np, out_np = _conv_cols.im2col(x, kernel, stride, padding, dilation, groups, batch_minor=batch_minor)
    assert out_c == out_np and cols_c.shape == cols_np.shape
    np.testing.assert_array_equal(cols_c, cols_np)
    assert np.any(cols_np != 0)

    g = rng.standard_normal(cols_np.shape).astype(dtype)
    k = 4 * int(np.prod(kernel))
    flat = g.reshape(k, -1) if batch_minor else g.reshape(3, k, -1)

    def sums():  # batch-minor writes into a given output, which the kernels clear first
        out = np.full((3, 4) + size, 7.0, dtype) if batch_minor else None
        return _conv_cols.col2im(flat, 4, size, kernel, stride, padding, dilation, out=out, batch_minor=batch_minor)

    with numpy_loops():
        sums_np = sums()
    sums_c = sums()
    assert sums_c.dtype == dtype
    np.testing.assert_array_equal(sums_c, sums_np)


@pytest.mark.parametrize("geom", [g for g in GEOMETRIES if len(g[0]) == 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channels_last_rows_and_their_adjoint_equal_numpy(geom, dtype):
    size, kernel, stride, padding, dilation = geom
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 20) + size[::-1]).astype(dtype)[:, 1::3].swapaxes(2, 3)  # 7 channels, strided
    out = _conv_cols.out_size(size, kernel, stride, padding, dilation)
    y_c = np.full((2, 9) + size, np.nan, dtype)[:, 1:8]  # a strided output for the adjoint
    y_np = np.full((2, 7) + size, np.nan, dtype)
    rows_c = _conv_rows.im2row(x, kernel, stride, padding, dilation, out)
    _conv_rows.row2im_into(rows_c, y_c, kernel, stride, padding, dilation, out)
    with numpy_loops():
        rows_np = _conv_rows.im2row(x, kernel, stride, padding, dilation, out)
        _conv_rows.row2im_into(rows_np, y_np, kernel, stride, padding, dilation, out)
    assert rows_c.shape == rows_np.shape == (2 * out[0] * out[1], 7 * kernel[0] * kernel[1])
    np.testing.assert_array_equal(rows_c, rows_np)
    np.testing.assert_array_equal(y_c, y_np)
    assert not np.isnan(y_c).any()


@pytest.mark.parametrize("geom", GEOMETRIES[:3] + GEOMETRIES[-2:])
def test_ones_row_for_the_bias(geom):
    """Per-sample columns with a row of ones appended (the forward adds its bias inside the GEMM)."""
    size, kernel, stride, padding, dilation = geom
    x = np.random.default_rng(9).standard_normal((2, 3) + size)
    plain, out = _conv_cols.im2col(x, kernel, stride, padding, dilation, 1)
    for loops in (contextlib.nullcontext, numpy_loops):
        with loops():
            cols, _ = _conv_cols.im2col(x, kernel, stride, padding, dilation, 1, ones_row=True)
        assert cols.shape == (2, 1, plain.shape[2] + 1, plain.shape[3])
        np.testing.assert_array_equal(cols[:, :, :-1], plain)
        assert np.all(cols[:, :, -1] == 1)


def test_col2im_into_a_strided_output():
    rng = np.random.default_rng(3)
    size, kernel, stride, padding = (7, 6), (3, 3), (2, 1), ((1, 1), (1, 1))
    out = _conv_cols.out_size(size, kernel, stride, padding, (1, 1))
    cols = rng.standard_normal((2, 5 * 9, out[0] * out[1]))
    base = np.full((2, 7, 5, 6), 3.0).transpose(0, 2, 1, 3)  # (N, C, H, W), H and C swapped in memory
    _conv_cols.col2im(cols, 5, size, kernel, stride, padding, (1, 1), out=base)
    ref = np.zeros((2, 5) + size)
    with numpy_loops():
        _conv_cols.col2im(cols, 5, size, kernel, stride, padding, (1, 1), out=ref)
    np.testing.assert_array_equal(base, ref)


def _conv_step(x, w, b, **kw):
    x, w, b = (dtorch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    y = F.conv2d(x, w, b, **kw)
    (y * y).sum().backward()
    return [t.detach().numpy() for t in (y, x.grad, w.grad, b.grad)]


@pytest.mark.parametrize("kw", [dict(), dict(padding=1), dict(stride=2, padding=1), dict(groups=2, dilation=2)])
def test_convolution_agrees_without_a_compiler(kw):
    """MNIST-sized layers (wide enough for the column layout) in float64: forward, input and weight gradients."""
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((3, 4, 20, 20)), rng.standard_normal((6, 4 // kw.get("groups", 1), 3, 3)), \
        rng.standard_normal(6)
    with_c = _conv_step(x, w, b, **kw)
    with numpy_loops():
        without = _conv_step(x, w, b, **kw)
    for a, r in zip(with_c, without):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


def test_no_compiler_falls_back_to_numpy(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("DTORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.setattr(_conv_c.KERNELS, "fns", None)
    x = np.ones((1, 1, 4, 4), np.float32)
    assert not _conv_c.available(x, 2)
    cols, _ = _conv_cols.im2col(x, (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    assert cols.shape == (1, 1, 4, 9) and np.all(cols == 1)
    assert not (tmp_path / "ext" / "dtorch_conv_cols").exists() or not any(
        (tmp_path / "ext" / "dtorch_conv_cols").rglob("*.so"))

"""The BLAS ``gemm`` binding (accumulating products on views, numpy's answer where BLAS cannot take the operands
or is not there) and the stride-1 input gradient by kernel rows at the default thresholds."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import dtorch
import dtorch.nn.functional as F
from dtorch.nn._functional import _blas, _conv_c, _conv_rows, _conv_taps
from tests.oracle import F32_TOL, check_op, rand


def _operands(dtype, rng):
    a = rng.standard_normal((30, 7)).astype(dtype)
    b = rng.standard_normal((7, 9)).astype(dtype)
    base = rng.standard_normal((60, 12)).astype(dtype)
    return [
        (a, b, "contiguous"),
        (np.asfortranarray(a), b, "a transposed"),
        (a, np.asfortranarray(b), "b transposed"),
        (a[::2], b[:, ::-1], "a row-strided, b negative stride"),
        (as_strided(base, (30, 7), (base.strides[1] * 2, base.strides[1])), b, "a rows overlapping"),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gemm_matches_numpy_on_views(dtype, beta):
    rng = np.random.default_rng(0)
    for a, b, what in _operands(dtype, rng):
        m = a.shape[0]
        block = rng.standard_normal((2 * m, 9)).astype(dtype)
        c = block[::2]  # a row-strided output view
        want = a.astype(np.float64) @ b.astype(np.float64) + beta * c.astype(np.float64)
        _blas.gemm(a, b, c, beta=beta)
        tol = 1e-2 if dtype == np.float16 else 1e-5
        np.testing.assert_allclose(c, want, rtol=tol, atol=tol, err_msg=what)
    assert _blas.available(np.float16) is False


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("blas", [True, False])
def test_gemm_sum_adds_every_product(dtype, blas, monkeypatch):
    """c += sum_i a[i] @ b[i]: a's products transposed (a conv's columns against g^T), b negative-strided."""
    if not blas:
        monkeypatch.setattr(_blas, "_functions", lambda: {})
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 6, 5)).astype(dtype)
    b = rng.standard_normal((4, 3, 6)).astype(dtype).swapaxes(1, 2)[::-1]  # (4, 6, 3) transposed, reversed
    a = a.swapaxes(1, 2)  # (4, 5, 6), each a[i] a transposed view
    c = np.full((5, 3), 2.0, dtype)
    want = 2.0 + sum(a[i].astype(np.float64) @ b[i].astype(np.float64) for i in range(4))
    _blas.gemm_sum(a, b, c)
    tol = 2e-2 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(c, want, rtol=tol, atol=tol)


def test_gemm_leaves_rows_between_a_strided_output_alone():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
    block = np.full((8, 5), 7.0, np.float32)
    _blas.gemm(a, b, block[::2], beta=0.0)
    assert (block[1::2] == 7.0).all()
    np.testing.assert_allclose(block[::2], a @ b, rtol=1e-5)


def test_gemm_without_blas_is_numpy(monkeypatch):
    monkeypatch.setattr(_blas, "_functions", lambda: {})
    assert not _blas.available(np.float32)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    c = np.ones((6, 3), np.float32)
    _blas.gemm(a, b, c, beta=1.0)
    np.testing.assert_allclose(c, a @ b + 1, rtol=1e-5)


def test_numpy_bundled_openblas_is_found():
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if blas.get("name") != "scipy-openblas" or "64" not in str(blas.get("include directory", "")):
        pytest.skip(f"numpy is built against {blas.get('name')}, not the ILP64 scipy-openblas wheel")
    assert _blas.available(np.float32) and _blas.available(np.float64)


def test_kernel_rows_serve_unpadded_stride1_input_grad_by_default(torch, monkeypatch):
    """A conv like MNIST's second (32 channels, 3x3, no padding) with fewer than 256 output pixels takes the
    kernel-row input gradient at the default thresholds; it agrees with torch, chunked and not. With 256 or
    more, the C column kernels serve it, unless there is no C compiler."""
    calls = []
    real = _conv_taps.input_grad
    monkeypatch.setattr(_conv_taps, "input_grad", lambda *a: calls.append(a[0].shape) or real(*a))
    f32 = dtorch.float32
    x, w, b = rand(3, 32, 16, 15, dtype=f32), rand(16, 32, 3, 3, dtype=f32), rand(16, dtype=f32)
    assert _conv_rows.use_rows(x._data, 32, (3, 3), 1)
    for chunk in (_conv_taps.CHUNK_BYTES, 1):
        monkeypatch.setattr(_conv_taps, "CHUNK_BYTES", chunk)
        check_op(F.conv2d, torch.nn.functional.conv2d, inputs=[x, w, b], **F32_TOL)
    assert calls == [(3, 16, 14, 13)] * 2
    wide = rand(2, 32, 18, 18, dtype=f32)  # 16 x 16 outputs
    check_op(F.conv2d, torch.nn.functional.conv2d, inputs=[wide, w, b], **F32_TOL)
    assert len(calls) == 2 and _conv_c.available(wide._data, 2)
    monkeypatch.setattr(_conv_c.KERNELS, "fns", {})
    check_op(F.conv2d, torch.nn.functional.conv2d, inputs=[wide, w, b], **F32_TOL)
    assert calls[2:] == [(2, 16, 16, 16)]

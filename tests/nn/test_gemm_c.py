"""The thin float32 GEMMs and in-place convolutions in C (nn/_functional/_gemm_c.py): the same products as a
float64 reference over tile tails, strided and transposed operands and L1-aliasing row strides; BLAS wherever
they do not serve (more than one BLAS thread, other widths and dtypes, short products, no compiler); the
convolutions that take them agree with the BLAS path and with torch."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import dtorch
import dtorch.nn.functional as F
from dtorch.nn._functional import _blas, _conv_c, _conv_nchw_c, _conv_rows, _gemm_c


@contextlib.contextmanager
def one_thread():
    with threadpool_limits(limits=1):
        assert _blas.threads() == 1
        yield


@contextlib.contextmanager
def blas_only():
    """Run a block as on a machine without a C compiler."""
    saved = [(lib, lib.get()) for lib in (_gemm_c.KERNELS, _conv_nchw_c.KERNELS)]
    for lib, _ in saved:
        lib.fns = {}
    try:
        yield
    finally:
        for lib, fns in saved:
            lib.fns = fns


def _close(got, want, k: int):
    """float32 products against float64: a few ulp per term of the inner product."""
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=4e-7 * (k ** 0.5 + 1) * np.abs(want).max())


def test_the_library_is_built_and_knows_the_blas_threads():
    assert _gemm_c.KERNELS.get(), "the test machine has a C compiler"
    with threadpool_limits(limits=2):
        assert _blas.threads() in (1, 2)  # a 1-core machine keeps 1
    with one_thread():
        assert _blas.threads() == 1


# (rows, inner, columns): every tile height's tail, 16/32/64-wide column blocks, 48 and 80 (16 x odd), one inner step
SHAPES = [(256, 64, 16), (300, 37, 32), (517, 128, 64), (289, 9, 48), (263, 1, 80), (1000, 200, 128), (256, 3, 16)]


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_matmul_equals_the_float64_product(m, k, n):
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    with one_thread():
        got = _gemm_c.matmul(a, b)
    _close(got, a.astype(np.float64) @ b, k)


def test_matmul_takes_strided_rows_transposed_weights_and_aliasing_strides():
    rng = np.random.default_rng(0)
    wide = rng.standard_normal((400, 1024 + 7)).astype(np.float32)
    a = wide[:, 3:3 + 1024]  # rows 1031 floats apart
    b = rng.standard_normal((32, 1024)).astype(np.float32).T  # a transposed view
    aliasing = rng.standard_normal((300, 1024)).astype(np.float32)  # rows 4 KiB apart: tiles of at most 8 rows
    bb = rng.standard_normal((1024, 16)).astype(np.float32)
    with one_thread():
        _close(_gemm_c.matmul(a, b), a.astype(np.float64) @ b, 1024)
        _close(_gemm_c.matmul(aliasing, bb), aliasing.astype(np.float64) @ bb, 1024)


@pytest.mark.parametrize("m,k,n", [(256, 7, 16), (1500, 50, 32), (700, 13, 64), (513, 30, 48)])
def test_add_tn_accumulates_the_transposed_product(m, k, n):
    rng = np.random.default_rng(m)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((m, n)).astype(np.float32)
    out = rng.standard_normal((k, n)).astype(np.float32)
    want = out.astype(np.float64) + a.T.astype(np.float64) @ b
    with one_thread():
        _gemm_c.add_tn(a, b, out)
    _close(out, want, m)


def test_blas_runs_where_the_kernels_do_not_serve():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((512, 40)).astype(np.float32)
    b32 = rng.standard_normal((40, 32)).astype(np.float32)
    cases = [(a, rng.standard_normal((40, 24)).astype(np.float32)),  # 24 columns: not a multiple of 16
             (a[:100], b32),  # a short product
             (np.broadcast_to(a[0], (512, 40)), b32),  # rows that overlap (stride 0)
             (a.astype(np.float64), b32.astype(np.float64))]
    with one_thread():
        for x, y in cases:
            np.testing.assert_array_equal(_gemm_c.matmul(x, y), x @ y)
    if _blas.threads() > 1:  # more BLAS threads than one: BLAS splits the product across them
        np.testing.assert_array_equal(_gemm_c.matmul(a, b32), a @ b32)
    with one_thread(), blas_only():
        np.testing.assert_array_equal(_gemm_c.matmul(a, b32), a @ b32)
        out, want = np.ones((40, 32), np.float32), np.ones((40, 32), np.float32)
        _gemm_c.add_tn(a, rng.standard_normal((512, 32)).astype(np.float32), out)
        assert not np.array_equal(out, want)


CONVS = [  # (channels, size, out channels, kernel, stride, padding (lo, hi) per dim, dilation)
    (16, (32, 32), 32, (4, 4), (2, 2), ((1, 1), (1, 1)), (1, 1)),  # DCGAN's second layer
    (3, (20, 18), 16, (4, 4), (2, 2), ((1, 1), (1, 1)), (1, 1)),  # RGB in
    (16, (14, 14), 32, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),  # the CNN's conv2
    (64, (8, 8), 128, (4, 4), (2, 2), ((1, 1), (1, 1)), (1, 1)),  # 4-pixel output rows
    (5, (13, 11), 48, (3, 2), (3, 1), ((2, 0), (1, 3)), (2, 1)),  # uneven padding, dilated rows
    (7, (9, 9), 64, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1)),
]


def _reference(x, w, stride, padding, dilation):
    """float64 output and the weight gradient of sum(out * g) through im2row."""
    kernel = w.shape[2:]
    out = tuple((s + lo + hi - d * (k - 1) - 1) // st + 1
                for s, k, st, (lo, hi), d in zip(x.shape[2:], kernel, stride, padding, dilation))
    rows = _conv_rows.im2row(x.astype(np.float64), kernel, stride, padding, dilation, out)
    return rows, out


@pytest.mark.parametrize("conv", CONVS)
def test_in_place_convolution_and_weight_gradient(conv):
    c, size, o, kernel, stride, padding, dilation = conv
    rng = np.random.default_rng(c + o)
    x = rng.standard_normal((3, c) + size).astype(np.float32)
    w = rng.standard_normal((o, c) + kernel).astype(np.float32)
    rows, out = _reference(x, w, stride, padding, dilation)
    wt = np.ascontiguousarray(_conv_rows.weight_rows(w).T)
    gr = rng.standard_normal((rows.shape[0], o)).astype(np.float32)
    k = rows.shape[1]
    with one_thread():
        assert _gemm_c.conv_serves(x, o, dilation)
        xp = _conv_rows._channels_last(x, padding)
        _close(_gemm_c.conv_forward(xp, wt, kernel, stride, dilation, out), rows @ wt.astype(np.float64), k)
        gwt = np.ones_like(wt)
        _gemm_c.conv_weight_grad_add(xp, gr, gwt, kernel, stride, dilation, out)
    _close(gwt, 1 + rows.T @ gr.astype(np.float64), rows.shape[0])


def test_in_place_convolution_is_not_taken_where_it_cannot_be():
    x = np.zeros((1, 3, 8, 8), np.float32)
    with one_thread():
        assert not _gemm_c.conv_serves(x, 24, (1, 1))  # output channels not a multiple of 16
        assert not _gemm_c.conv_serves(x, 32, (1, 2))  # dilated along the width
        assert not _gemm_c.conv_serves(x.astype(np.float64), 32, (1, 1))
        with blas_only():
            assert not _gemm_c.conv_serves(x, 32, (1, 1))


@pytest.mark.parametrize("padding", [((1, 2), (0, 3)), ((0, 0), (0, 0)), ((3, 3), (2, 2))])
def test_channels_last_in_c_equals_numpy(padding):
    rng = np.random.default_rng(2)
    wide = rng.standard_normal((2, 10, 9, 7)).astype(np.float32)
    x = wide[:, ::2].swapaxes(2, 3)  # strided channels, width-major memory
    want = np.pad(np.moveaxis(x, 1, -1), ((0, 0),) + padding + ((0, 0),))
    np.testing.assert_array_equal(_conv_c.channels_last(x, padding), want)


@pytest.mark.parametrize("conv", CONVS[:4])
def test_conv2d_and_its_gradients_agree_with_the_blas_path(conv):
    c, size, o, kernel, stride, padding, dilation = conv
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, c) + size).astype(np.float32)
    w = (rng.standard_normal((o, c) + kernel) * 0.1).astype(np.float32)
    pad = padding[0][0]

    def run():
        xt, wt = dtorch.tensor(x, requires_grad=True), dtorch.tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, stride=stride, padding=pad)
        (y * y).sum().backward()
        return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()

    with one_thread():
        fast = run()
        with blas_only():
            slow = run()
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * np.abs(b).max())


def test_dcgan_layer_matches_torch_at_one_thread(torch):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    w = (rng.standard_normal((32, 16, 4, 4)) * 0.1).astype(np.float32)
    g = rng.standard_normal((8, 32, 16, 16)).astype(np.float32)
    with one_thread():
        xd, wd = dtorch.tensor(x, requires_grad=True), dtorch.tensor(w, requires_grad=True)
        yd = F.conv2d(xd, wd, stride=2, padding=1)
        yd.backward(dtorch.tensor(g))
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, stride=2, padding=1)
    yt.backward(torch.tensor(g))
    for a, b in ((yd.detach(), yt.detach()), (xd.grad, xt.grad), (wd.grad, wt.grad)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4 * float(b.abs().max()))


NCHW = [  # (channels, size, out channels, kernel, stride, padding): output rows a multiple of 16 wide
    (3, (64, 64), 16, (4, 4), (2, 2), ((1, 1), (1, 1))),  # DCGAN's RGB layer
    (16, (32, 32), 32, (4, 4), (2, 2), ((1, 1), (1, 1))),  # its second layer: 256 taps, padded weight rows
    (2, (18, 34), 5, (3, 3), (1, 1), ((0, 0), (0, 0))),  # 5 output channels: every tile height's tail
    (4, (10, 47), 40, (2, 3), (3, 3), ((2, 1), (0, 2))),  # stride 3, uneven padding, 24 + 16 channels
    (1, (5, 16), 17, (1, 1), (1, 1), ((0, 0), (0, 0))),
]


@pytest.mark.parametrize("conv", NCHW)
def test_nchw_convolution_equals_the_float64_product(conv):
    c, size, o, kernel, stride, padding = conv
    rng = np.random.default_rng(o)
    wide = rng.standard_normal((3, c + 1) + size).astype(np.float32)
    x = wide[:, 1:]  # not contiguous
    w = rng.standard_normal((o, c) + kernel).astype(np.float32)
    rows, out = _reference(x, w, stride, padding, (1, 1))
    want = (rows @ _conv_rows.weight_rows(w).T.astype(np.float64)).reshape((3,) + out + (o,))
    y = np.full((3, o) + out, np.nan, np.float32)
    with one_thread():
        assert _conv_nchw_c.serves(x, (1, 1), out)
        _conv_nchw_c.forward(x, w, y, stride, padding)
    _close(y, np.moveaxis(want, -1, 1), rows.shape[1])


def test_nchw_convolution_is_not_taken_where_it_cannot_be():
    x = np.zeros((1, 3, 8, 40), np.float32)
    with one_thread():
        assert not _conv_nchw_c.serves(x, (1, 1), (6, 38))  # rows of 38
        assert not _conv_nchw_c.serves(x, (1, 2), (6, 36))
        assert not _conv_nchw_c.serves(x.astype(np.float64), (1, 1), (6, 32))


@pytest.mark.parametrize("conv", NCHW)
def test_nchw_weight_gradient_equals_the_float64_product(conv):
    c, size, o, kernel, stride, padding = conv
    rng = np.random.default_rng(o + 1)
    x = rng.standard_normal((3, c) + size).astype(np.float32)
    rows, out = _reference(x, np.zeros((o, c) + kernel), stride, padding, (1, 1))
    gy = rng.standard_normal((3, o) + out).astype(np.float32)
    gw = np.ones((o, c) + kernel, np.float32)
    with one_thread():
        _conv_nchw_c.weight_grad(x, gy, gw, stride, padding)
    want = 1 + _conv_rows.rows_weight(_conv_rows.to_rows(gy).T.astype(np.float64) @ rows, gw.shape)
    _close(gw, want, rows.shape[0])


@pytest.mark.parametrize("c,size,o", [(3, 64, 16), (16, 16, 32)])  # the NCHW tiles, the rows read in place
def test_an_empty_batch(c, size, o):
    with one_thread():
        x = dtorch.zeros(0, c, size, size, requires_grad=True)
        w = dtorch.ones(o, c, 4, 4, requires_grad=True)
        y = F.conv2d(x, w, stride=2, padding=1)
        y.sum().backward()
    assert tuple(y.shape) == (0, o, size // 2, size // 2)
    assert tuple(x.grad.shape) == (0, c, size, size)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((o, c, 4, 4), np.float32))

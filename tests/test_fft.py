"""dtorch.fft: values and gradients against torch.fft, float64/complex128 gradchecks, torch's errors."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from dtorch.autograd import gradcheck, gradgradcheck

# (function, input shape, input is complex, keyword arguments)
CASES = [
    ("fft", (6,), True, {}),
    ("fft", (5,), False, {"n": 8}),
    ("fft", (3, 5), True, {"n": 3, "dim": 0, "norm": "ortho"}),
    ("ifft", (6,), True, {"norm": "forward"}),
    ("ifft", (2, 5), True, {"n": 7}),
    ("rfft", (6,), False, {}),
    ("rfft", (7,), False, {"n": 4, "norm": "ortho"}),
    ("rfft", (3, 5), False, {"dim": 0, "norm": "forward"}),
    ("irfft", (5,), True, {}),
    ("irfft", (4,), True, {"n": 7}),
    ("irfft", (4,), True, {"n": 3, "norm": "ortho"}),
    ("irfft", (3, 4), True, {"n": 8, "dim": 0, "norm": "forward"}),
    ("hfft", (4,), True, {}),
    ("hfft", (4,), True, {"n": 5, "norm": "ortho"}),
    ("ihfft", (6,), False, {}),
    ("ihfft", (5,), False, {"norm": "forward"}),
    ("fft2", (3, 4), True, {}),
    ("ifft2", (3, 4), True, {"s": (4, 2)}),
    ("rfft2", (4, 6), False, {}),
    ("irfft2", (4, 4), True, {"s": (4, 5)}),
    ("fftn", (2, 3, 4), True, {}),
    ("fftn", (2, 3, 4), False, {"s": (2, 5)}),
    ("ifftn", (2, 3, 4), True, {"dim": (0, 2), "norm": "ortho"}),
    ("rfftn", (2, 3, 4), False, {"s": (3, 6)}),
    ("irfftn", (2, 3, 3), True, {}),
    ("irfftn", (2, 3, 3), True, {"s": (2, 4), "dim": (0, 2), "norm": "forward"}),
    ("hfft2", (3, 4), True, {"s": (3, 5), "norm": "ortho"}),
    ("ihfft2", (3, 6), False, {}),
    ("hfftn", (2, 3, 3), True, {"norm": "forward"}),
    ("ihfftn", (2, 3, 4), False, {"dim": (0, 2)}),
]


def _values(shape, is_complex: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(shape)
    return v + 1j * rng.standard_normal(shape) if is_complex else v


def _np(t) -> np.ndarray:
    return t.detach().resolve_conj().numpy()  # torch's conj and ihfft give lazily conjugated tensors


def _ids(case) -> str:
    return f"{case[0]}-{'x'.join(map(str, case[1]))}-{'c' if case[2] else 'r'}-{case[3]}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_values_dtypes_and_gradients_match_torch(case, torch):
    name, shape, is_complex, kw = case
    x = _values(shape, is_complex)
    ours = dtorch.tensor(x, requires_grad=True)  # complex128 / float64
    theirs = torch.tensor(x, requires_grad=True)
    out, t_out = getattr(dtorch.fft, name)(ours, **kw), getattr(torch.fft, name)(theirs, **kw)
    assert out.dtype.name == str(t_out.dtype).split(".")[-1]
    np.testing.assert_allclose(out.detach().numpy(), _np(t_out), rtol=1e-10, atol=1e-12)
    go = _values(tuple(t_out.shape), t_out.is_complex(), seed=1)
    out.backward(dtorch.tensor(go))
    t_out.backward(torch.tensor(go))
    assert ours.grad.dtype == ours.dtype
    np.testing.assert_allclose(ours.grad.numpy(), _np(theirs.grad), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_gradcheck(case):
    name, shape, is_complex, kw = case
    x = dtorch.tensor(_values(shape, is_complex), requires_grad=True)
    assert gradcheck(lambda t: getattr(dtorch.fft, name)(t, **kw), (x,))


@pytest.mark.parametrize("name,is_complex", [("fft", True), ("rfft", False), ("irfft", True)])
def test_gradgradcheck(name, is_complex):
    x = dtorch.tensor(_values((5,), is_complex), requires_grad=True)
    assert gradgradcheck(lambda t: getattr(dtorch.fft, name)(t, n=6), (x,))


@pytest.mark.parametrize("name,is_complex,out", [("fft", False, "complex64"), ("fft", True, "complex64"),
                                                  ("rfft", False, "complex64"), ("irfft", True, "float32"),
                                                  ("ihfft", False, "complex64"), ("hfft", True, "float32")])
def test_single_precision_stays_single(name, is_complex, out, torch):
    x = _values((6,), is_complex).astype(np.complex64 if is_complex else np.float32)
    ours, theirs = getattr(dtorch.fft, name)(dtorch.tensor(x)), getattr(torch.fft, name)(torch.tensor(x))
    assert ours.dtype.name == out == str(theirs.dtype).split(".")[-1]
    np.testing.assert_allclose(ours.numpy(), _np(theirs), rtol=1e-5, atol=1e-5)


def test_integer_input_is_computed_in_the_default_float(torch):
    ours, theirs = dtorch.fft.fft(dtorch.arange(4)), torch.fft.fft(torch.arange(4))
    assert ours.dtype is dtorch.complex64 and theirs.dtype == torch.complex64
    np.testing.assert_allclose(ours.numpy(), _np(theirs))


def test_rfft_backward_is_real_and_irfft_doubles_mirrored_bins(torch):
    # irfft of length 6 from 4 bins: bins 1 and 2 stand for two, bins 0 and 3 for one
    z = dtorch.zeros(4, dtype=dtorch.complex128, requires_grad=True)
    dtorch.fft.irfft(z, n=6).sum().backward()
    tz = torch.zeros(4, dtype=torch.complex128, requires_grad=True)
    torch.fft.irfft(tz, n=6).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), tz.grad.numpy())
    x = dtorch.ones(5, dtype=dtorch.float64, requires_grad=True)
    dtorch.fft.rfft(x).abs().sum().backward()
    assert x.grad.dtype is dtorch.float64


def test_freqs_and_shifts_match_torch(torch):
    for n, d in ((8, 1.0), (7, 0.5)):
        np.testing.assert_allclose(dtorch.fft.fftfreq(n, d).numpy(), torch.fft.fftfreq(n, d).numpy())
        np.testing.assert_allclose(dtorch.fft.rfftfreq(n, d).numpy(), torch.fft.rfftfreq(n, d).numpy())
    assert dtorch.fft.fftfreq(4, dtype=dtorch.float64).dtype is dtorch.float64
    x = np.arange(15.0).reshape(3, 5)
    for dim in (None, 0, (1,), (0, 1)):
        for name in ("fftshift", "ifftshift"):
            ours = getattr(dtorch.fft, name)(dtorch.tensor(x), dim=dim)
            np.testing.assert_array_equal(ours.numpy(), getattr(torch.fft, name)(torch.tensor(x), dim=dim).numpy())
    t = dtorch.tensor(x, requires_grad=True)
    dtorch.fft.fftshift(t).mul(dtorch.tensor(x)).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), np.fft.ifftshift(x))


@pytest.mark.parametrize("call", [
    lambda f, t: f.rfft(t.ones(3, dtype=t.complex64)),
    lambda f, t: f.fft(t.ones(3), norm="bad"),
    lambda f, t: f.fft(t.ones(3), n=0),
    lambda f, t: f.fft(t.ones(3), dim=2),
    lambda f, t: f.irfft(t.ones(1, dtype=t.complex64)),
    lambda f, t: f.fftn(t.ones(3, 3), dim=(0, 0)),
    lambda f, t: f.fftn(t.ones(3, 3), s=(2,), dim=(0, 1)),
    lambda f, t: f.fft(t.ones(3, dtype=t.float16)),
    lambda f, t: f.fftfreq(4, dtype=t.complex64),
    lambda f, t: f.fftfreq(4, dtype=t.int64),
])
def test_errors_match_torch(call, torch):
    with pytest.raises(Exception) as theirs:
        call(torch.fft, torch)
    with pytest.raises(type(theirs.value)) as ours:
        call(dtorch.fft, dtorch)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.cuda
@pytest.mark.skipif(not dtorch.cuda.is_available(), reason="no CUDA device (cupy + NVIDIA GPU)")
def test_cupy_matches_numpy():
    x = dtorch.tensor(_values((4, 6), True).astype(np.complex64), requires_grad=True)
    xc = x.detach().cuda().requires_grad_(True)
    for fn in (lambda t: dtorch.fft.fft2(t), lambda t: dtorch.fft.irfft(t, n=9), lambda t: dtorch.fft.rfft(t.real)):
        out, out_c = fn(x), fn(xc)
        assert out_c.is_cuda and out_c.dtype == out.dtype
        np.testing.assert_allclose(out_c.detach().cpu().numpy(), out.detach().numpy(), rtol=1e-4, atol=1e-4)
        out.abs().sum().backward()
        out_c.abs().sum().backward()
        np.testing.assert_allclose(xc.grad.cpu().numpy(), x.grad.numpy(), rtol=1e-3, atol=1e-3)
        x.grad = xc.grad = None

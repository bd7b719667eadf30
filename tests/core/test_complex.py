"""Complex dtypes: promotion, creation, repr, views, ops and torch's complex autograd convention."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import dtorch
from dtorch.autograd import gradcheck, gradgradcheck


def _np(t) -> np.ndarray:
    return t.detach().resolve_conj().numpy()


def _z(shape=(3, 4), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def test_dtypes_and_names():
    assert dtorch.cfloat is dtorch.complex64 and dtorch.cdouble is dtorch.complex128
    assert dtorch.complex64.is_complex and not dtorch.complex64.is_floating_point
    assert dtorch.complex64.to_real() is dtorch.float32 and dtorch.float64.to_complex() is dtorch.complex128
    assert dtorch.complex64.itemsize == 8 and repr(dtorch.complex128) == "dtorch.complex128"
    assert dtorch.finfo(dtorch.complex64).dtype == "float32" and dtorch.finfo(dtorch.cdouble).bits == 64
    z = dtorch.zeros(2, dtype=dtorch.cfloat)
    assert z.is_complex() and dtorch.is_complex(z) and not dtorch.ones(2).is_complex()


def test_promotion_matches_torch(torch):
    names = ["bool", "uint8", "int32", "int64", "float16", "bfloat16", "float32", "float64", "complex64", "complex128"]
    for a in names:
        for b in names:
            ours = dtorch.promote_types(getattr(dtorch, a if a != "bool" else "bool"), getattr(dtorch, b))
            assert ours.name == str(torch.promote_types(getattr(torch, a), getattr(torch, b))).split(".")[-1], (a, b)
    cases = [(lambda L: L.ones(2), lambda L: L.tensor(1j, dtype=L.complex128)),
             (lambda L: L.ones(2, dtype=L.int32), lambda L: L.tensor(1j, dtype=L.complex128)),
             (lambda L: L.ones(2, dtype=L.float64), lambda L: 1j), (lambda L: L.ones(2, dtype=L.int64), lambda L: 2j),
             (lambda L: L.ones(2, dtype=L.complex64), lambda L: 2.5), (lambda L: 1j, lambda L: 2)]
    for a, b in cases:
        theirs = torch.result_type(a(torch), b(torch))
        assert dtorch.result_type(a(dtorch), b(dtorch)).name == str(theirs).split(".")[-1]


def test_creation_follows_the_default_float():
    assert dtorch.tensor([1 + 2j]).dtype is dtorch.complex64
    assert dtorch.tensor([1, 2.5j]).dtype is dtorch.complex64
    assert dtorch.tensor(np.array([1j], np.complex128)).dtype is dtorch.complex128
    prev = dtorch.get_default_dtype()
    dtorch.set_default_dtype(dtorch.float64)
    try:
        assert dtorch.tensor([1j]).dtype is dtorch.complex128
        assert (dtorch.ones(2, dtype=dtorch.int64) * 1j).dtype is dtorch.complex128
    finally:
        dtorch.set_default_dtype(prev)
    assert (dtorch.ones(2) + 1j).dtype is dtorch.complex64
    z = dtorch.randn(1000, dtype=dtorch.cfloat)
    assert z.dtype is dtorch.complex64 and abs(float(z.real.var()) - 0.5) < 0.1


@pytest.mark.parametrize("data", [[1 + 2j], [1.5 + 2j, 3 - 1j, -0.0 - 0.0j], 1 + 2j, [1e-8 + 1j, 2],
                                  [[1j, -2.25], [3, 4j]]])
def test_repr_matches_torch(data, torch):
    assert repr(dtorch.tensor(data)).replace("dtorch", "torch") == repr(torch.tensor(data))
    t = torch.tensor(data, dtype=torch.complex128)
    assert repr(dtorch.tensor(data, dtype=dtorch.complex128)).replace("dtorch", "torch") == repr(t)


def test_item_numpy_and_save_load():
    z = dtorch.tensor([1 + 2j, -3j])
    assert z[0].item() == 1 + 2j and isinstance(z[1].item(), complex) and complex(z[1]) == -3j
    assert z.numpy().dtype == np.complex64 and z.tolist() == [1 + 2j, -3j]
    buf = io.BytesIO()
    dtorch.save({"z": z}, buf)
    buf.seek(0)
    back = dtorch.load(buf)["z"]
    assert back.dtype is dtorch.complex64 and np.array_equal(back.numpy(), z.numpy())
    with pytest.raises(TypeError, match="complex128 cannot be stored in safetensors .*C64 only"):
        dtorch.save({"z": z.to(dtorch.complex128)}, io.BytesIO())


def test_real_imag_are_settable_views():
    z = dtorch.tensor([1 + 2j, 3 - 4j])
    r, i = z.real, z.imag
    assert r.dtype is dtorch.float32 and np.array_equal(r.numpy(), [1, 3]) and np.array_equal(i.numpy(), [2, -4])
    r[0] = 10
    assert z[0].item() == 10 + 2j
    z.imag = dtorch.tensor([7.0, 8.0])
    assert np.array_equal(z.numpy(), np.array([10 + 7j, 3 + 8j], np.complex64))
    z[1] = 1 - 1j
    assert z[1].item() == 1 - 1j
    x = dtorch.ones(2)
    assert x.real is x
    with pytest.raises(RuntimeError, match="imag is not implemented for tensors with non-complex dtypes."):
        x.imag  # noqa: B018


def test_view_as_real_and_complex_share_storage():
    z = dtorch.tensor(_z((2, 3)))
    r = dtorch.view_as_real(z)
    assert r.shape == (2, 3, 2) and np.array_equal(r.numpy()[..., 1], z.numpy().imag)
    r[0, 0, 1] = 5.0
    assert z[0, 0].item().imag == 5.0
    back = dtorch.view_as_complex(r)
    back[1, 2] = 0j
    assert z[1, 2].item() == 0j and np.array_equal(back.numpy(), z.numpy())


@pytest.mark.parametrize("fn", [
    lambda L, z: (z * z.conj()).real.sum(),
    lambda L, z: z.abs().sum(),
    lambda L, z: (L.exp(z) * z).abs().sum(),
    lambda L, z: (1 / (z + 2)).real.sum() + (z / (z * z + 1)).imag.sum(),
    lambda L, z: (L.log(z) + L.sqrt(z)).abs().mean(),
    lambda L, z: (z ** 3).angle().sum(),
    lambda L, z: L.view_as_real(z.sum(0) * 2j).pow(2).sum(),
    lambda L, z: (z @ z.t().conj_physical()).abs().sum(),
    lambda L, z: (L.sin(z) - z.mean()).imag.sum(),
    lambda L, z: z.var() + z.std(1, correction=0).sum(),
    lambda L, z: z.norm() + L.linalg.vector_norm(z, 1, dim=1).sum() + L.linalg.vector_norm(z, 3, dim=0).sum(),
    lambda L, z: L.linalg.vector_norm(z, float("inf")) + L.linalg.vector_norm(z, 0.5),
    lambda L, z: (L.sgn(z) * (1 + 2j)).real.sum(),
    lambda L, z: L.vdot(z[0], z[1] * 1j).abs() + L.dot(z[1], z[2]).real,
])
def test_gradients_match_torch(fn, torch):
    x = _z()
    ours, theirs = dtorch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, t_out = fn(dtorch, ours), fn(torch, theirs)
    np.testing.assert_allclose(_np(out), _np(t_out), rtol=1e-10)
    out.backward()
    t_out.backward()
    assert ours.grad.dtype is dtorch.complex128
    np.testing.assert_allclose(ours.grad.numpy(), _np(theirs.grad), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fn", [
    lambda L, x, y: (L.complex(x, y) ** 2).abs().sum(),
    lambda L, x, y: (L.polar(x.abs(), y) * (1 + 2j)).imag.sum(),
    lambda L, x, y: (x * L.complex(y, x)).abs().sum() + (L.complex(x, y) + x).real.sum(),
    lambda L, x, y: L.view_as_complex(L.stack([x, y], -1)).angle().sum(),
])
def test_real_inputs_get_real_gradients_like_torch(fn, torch):
    a, b = np.random.default_rng(1).standard_normal((2, 3, 4))
    ours = [dtorch.tensor(v, requires_grad=True) for v in (a, b)]
    theirs = [torch.tensor(v, requires_grad=True) for v in (a, b)]
    fn(dtorch, *ours).backward()
    fn(torch, *theirs).backward()
    for o, t in zip(ours, theirs):
        assert o.grad.dtype is dtorch.float64
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fn", [
    lambda z: z * z.exp() / (z + 3),
    lambda z: z.abs(),
    lambda z: z.angle(),
    lambda z: z.conj() * z.real + z.imag,
    lambda z: dtorch.view_as_real(z * 1j),
    lambda z: (z @ z.t()).sqrt(),
])
def test_gradcheck_complex_inputs(fn):
    z = dtorch.tensor(_z((2, 2)) + 3, requires_grad=True)
    assert gradcheck(fn, (z,))


def test_gradgradcheck_complex():
    z = dtorch.tensor(_z((3,)), requires_grad=True)
    for fn in (lambda z: z * z.exp(), lambda z: z.abs() ** 3, lambda z: z.angle() * z.imag,
               lambda z: dtorch.linalg.vector_norm(z, 3), lambda z: dtorch.view_as_real(z.sqrt())):
        assert gradgradcheck(fn, (z,))


def test_cfloat_cdouble():
    x = dtorch.ones(2, requires_grad=True)
    y = x.cfloat() * 1j
    assert y.dtype is dtorch.complex64 and x.cdouble().dtype is dtorch.complex128
    y.abs().sum().backward()
    assert x.grad.dtype is dtorch.float32 and x.grad.tolist() == [1.0, 1.0]


def test_gradcheck_real_to_complex():
    x, y = (dtorch.tensor(v + 2, requires_grad=True) for v in np.random.default_rng(2).standard_normal((2, 3)))
    assert gradcheck(lambda a, b: dtorch.complex(a, b) * dtorch.polar(a, b), (x, y))
    assert gradcheck(lambda a: dtorch.view_as_complex(a.reshape(3, 1).expand(3, 2).contiguous()).log(), (x,))


def test_gradcheck_catches_a_wrong_complex_gradient():
    class Wrong(dtorch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            return z * 2j

        @staticmethod
        def backward(ctx, g):
            return g * 2j  # the right one is g * conj(2j)

    z = dtorch.tensor(_z((2,)), requires_grad=True)
    assert not gradcheck(Wrong.apply, (z,), raise_exception=False)


def test_arithmetic_matches_numpy():
    a, b = _z(seed=3), _z(seed=4)
    ta, tb = dtorch.tensor(a), dtorch.tensor(b)
    for got, want in [(ta + tb, a + b), (ta - tb, a - b), (ta * tb, a * b), (ta / tb, a / b), (ta ** 2, a ** 2),
                      (ta.exp(), np.exp(a)), (ta.log(), np.log(a)), (ta.sqrt(), np.sqrt(a)), (ta.sum(0), a.sum(0)),
                      (ta.mean(), a.mean()), (ta @ tb.t(), a @ b.T), (ta.abs(), np.abs(a)), (ta.angle(), np.angle(a)),
                      (ta.conj(), a.conj()), (dtorch.conj_physical(ta), a.conj())]:
        np.testing.assert_allclose(got.numpy(), want.astype(got.numpy().dtype), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("call", [
    lambda t: t.ones(3).imag,
    lambda t: t.view_as_real(t.ones(2)),
    lambda t: t.view_as_complex(t.ones(3)),
    lambda t: t.view_as_complex(t.ones(2, 2).t()),
    lambda t: t.view_as_complex(t.ones(2, dtype=t.int64)),
    lambda t: t.complex(t.ones(2), t.ones(2, dtype=t.float64)),
    lambda t: t.complex(t.ones(2, dtype=t.int64), t.ones(2, dtype=t.int64)),
    lambda t: t.polar(t.ones(2), t.ones(2, dtype=t.float64)),
    lambda t: t.tensor([1 + 2j], requires_grad=True).sum().backward(),
    lambda t: t.ones(2).add_(1j),
])
def test_errors_match_torch(call, torch):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(type(theirs.value)) as ours:
            call(dtorch)
    assert str(ours.value).replace("dtorch", "torch") == str(theirs.value)


_Z = [1 + 2j, 3j]


@pytest.mark.parametrize("call", [
    lambda t: t.tensor(_Z) < t.tensor(_Z), lambda t: t.tensor(_Z) <= 1, lambda t: t.tensor(_Z) > 0.5j,
    lambda t: t.ge(t.tensor(_Z), t.tensor(_Z)), lambda t: t.ones(2) < t.tensor(_Z),
    lambda t: t.tensor(_Z).max(), lambda t: t.tensor(_Z).min(), lambda t: t.tensor(_Z).max(0),
    lambda t: t.tensor(_Z).argmax(), lambda t: t.tensor(_Z).argmin(0), lambda t: t.tensor(_Z).amax(),
    lambda t: t.maximum(t.tensor(_Z), t.tensor(_Z)), lambda t: t.relu(t.tensor(_Z)),
    lambda t: t.clamp(t.tensor(_Z), min=0), lambda t: t.tensor(_Z).floor(),
    lambda t: t.tensor(_Z).frac(), lambda t: t.nn.functional.hardtanh(t.tensor(_Z)),
    lambda t: t.nn.functional.gelu(t.tensor(_Z)), lambda t: t.nn.functional.elu(t.tensor(_Z)),
    lambda t: t.tensor(_Z).sort(), lambda t: t.tensor(_Z).argsort(), lambda t: t.tensor(_Z).topk(1),
])
def test_orderless_ops_refuse_complex_like_torch(call, torch):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(type(theirs.value)) as ours:
        call(dtorch)
    assert str(ours.value) == str(theirs.value)

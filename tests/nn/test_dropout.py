"""dropout: statistics, scaling, reproducibility with manual_seed, gradients, modules."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from tests.oracle import same_values, to_numpy


def test_dropout_zeroes_and_scales(device):
    x = dtorch.ones(200, 100, device=device, requires_grad=True)
    out = F.dropout(x, 0.25)
    kept = out != 0
    frac = kept.float().mean().item()
    assert abs(frac - 0.75) < 0.02
    np.testing.assert_allclose(to_numpy(out)[to_numpy(kept)], 1 / 0.75, rtol=1e-6)
    out.sum().backward()
    assert same_values(x.grad, out.detach())


def test_dropout_reproducible_with_manual_seed():
    x = dtorch.randn(50, 20)
    dtorch.manual_seed(3)
    a = F.dropout(x, 0.5)
    dtorch.manual_seed(3)
    b = F.dropout(x, 0.5)
    assert same_values(a, b)
    assert not same_values(a, F.dropout(x, 0.5))


@pytest.mark.parametrize("dtype", [dtorch.float32, dtorch.float64, dtorch.float16])
def test_dropout_mask_is_the_generators_uniform_draws(dtype):
    """The mask keeps exactly the elements whose uniform draw is >= p (what a seed gave before the mask became a
    scaled float), and scales them by 1/(1-p) rounded to the dtype."""
    x = dtorch.randn(64, 300).to(dtype)
    dtorch.manual_seed(7)
    out = F.dropout(x, 0.3)
    dtorch.manual_seed(7)
    draw_dtype = np.float64 if dtype == dtorch.float64 else np.float32
    u = dtorch.random.default_generator._np.random((64, 300), dtype=draw_dtype)
    keep = u >= 0.3
    xs = x.numpy()
    np.testing.assert_array_equal(out.numpy(), np.where(keep, xs * xs.dtype.type(1 / 0.7), 0).astype(xs.dtype))


@pytest.mark.parametrize("dtype,name", [(dtorch.int64, "Long"), (dtorch.bool, "Bool")])
def test_dropout_of_integers_is_refused_as_torch(dtype, name):
    with pytest.raises(RuntimeError, match=f"result type Float can't be cast to the desired output type {name}"):
        F.dropout(dtorch.ones(4, dtype=dtype), 0.5)


def test_dropout_identity_cases_and_errors():
    x = dtorch.randn(4, 5)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert same_values(F.dropout(x, 1.0), dtorch.zeros(4, 5))
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        F.dropout(x, 1.5)


def test_dropout_inplace():
    x = dtorch.ones(10, 10)
    y = F.dropout(x, 0.5, inplace=True)
    assert y is x
    assert set(np.unique(x.numpy()).tolist()) <= {0.0, 2.0}


def test_dropout_double_backward():
    x = dtorch.randn(6, 5, dtype=dtorch.float64, requires_grad=True)
    out = F.dropout(x, 0.4)
    (g,) = dtorch.autograd.grad(out.sum(), x, create_graph=True)
    assert same_values(g, (out != 0).double() / 0.6)


def test_dropout2d_zeroes_whole_channels():
    x = dtorch.ones(8, 16, 3, 3)
    out = F.dropout2d(x, 0.5)
    per_channel = out.reshape(8, 16, 9)
    assert same_values(per_channel.amax(-1), per_channel.amin(-1))


def test_dropout_modules(torch):
    for ctor in ["Dropout()", "Dropout(0.2, inplace=True)", "Dropout2d(0.3)"]:
        assert repr(eval("dtorch.nn." + ctor)) == repr(eval("torch.nn." + ctor, {"torch": torch}))
    m = dtorch.nn.Dropout(0.5)
    x = dtorch.ones(100)
    assert (m(x) == 0).any()
    m.eval()
    assert m(x) is x

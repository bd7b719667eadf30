"""torch's ``out=``: results written into the given tensor (also a view), returned, with torch's dtype, resize and
autograd rules, compared with torch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import dtorch

A = np.arange(1.0, 7.0).reshape(2, 3)
B = np.linspace(-1.0, 2.0, 6).reshape(2, 3)

CASES = {
    "add": (lambda m, a, b, o: m.add(a, b, alpha=2, out=o), lambda m: m.empty(2, 3)),
    "mul_scalar": (lambda m, a, b, o: m.mul(a, 3, out=o), lambda m: m.empty(2, 3)),
    "div_floor": (lambda m, a, b, o: m.div(a, b, rounding_mode="floor", out=o), lambda m: m.empty(2, 3)),
    "pow": (lambda m, a, b, o: m.pow(a, 2, out=o), lambda m: m.empty(2, 3)),
    "exp_into_float64": (lambda m, a, b, o: m.exp(a, out=o), lambda m: m.empty(2, 3, dtype=m.float64)),
    "clamp": (lambda m, a, b, o: m.clamp(b, min=0, out=o), lambda m: m.empty(2, 3)),
    "where": (lambda m, a, b, o: m.where(b > 0, a, b, out=o), lambda m: m.empty(2, 3)),
    "eq_into_bool": (lambda m, a, b, o: m.eq(a, a, out=o), lambda m: m.empty(2, 3, dtype=m.bool)),
    "sum_dim": (lambda m, a, b, o: m.sum(a, 1, out=o), lambda m: m.empty(2)),
    "mean_keepdim": (lambda m, a, b, o: m.mean(a, 0, keepdim=True, out=o), lambda m: m.empty(1, 3)),
    "cumsum": (lambda m, a, b, o: m.cumsum(a, 1, out=o), lambda m: m.empty(2, 3)),
    "argmax": (lambda m, a, b, o: m.argmax(b, 1, out=o), lambda m: m.empty(2, dtype=m.long)),
    "matmul_resizes_empty": (lambda m, a, b, o: m.matmul(a, b.T, out=o), lambda m: m.empty(0)),
    "mm": (lambda m, a, b, o: m.mm(a, b.T, out=o), lambda m: m.empty(2, 2)),
    "addmm": (lambda m, a, b, o: m.addmm(m.ones(2, 2), a, b.T, beta=0.5, out=o), lambda m: m.empty(2, 2)),
    "cat": (lambda m, a, b, o: m.cat([a, b], 0, out=o), lambda m: m.empty(4, 3)),
    "stack": (lambda m, a, b, o: m.stack([a, b], out=o), lambda m: m.empty(2, 2, 3)),
    "tril": (lambda m, a, b, o: m.tril(a, out=o), lambda m: m.empty(2, 3)),
    "zeros_dtype_from_out": (lambda m, a, b, o: m.zeros(2, 2, out=o), lambda m: m.empty(0, dtype=m.long)),
    "arange_into_float64": (lambda m, a, b, o: m.arange(5, out=o), lambda m: m.empty(5, dtype=m.float64)),
    "full": (lambda m, a, b, o: m.full((2, 2), 7.0, out=o), lambda m: m.empty(2, 2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_out_like_torch(name, torch):
    fn, make_out = CASES[name]
    results = []
    for m in (dtorch, torch):
        a, b, o = m.tensor(A, dtype=m.float32), m.tensor(B, dtype=m.float32), make_out(m)
        r = fn(m, a, b, o)
        assert r is o
        results.append((o.numpy(), str(o.dtype).split(".")[-1], tuple(o.shape)))
    (ours, od, os_), (theirs, td, ts) = results
    assert (od, os_) == (td, ts)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_out_view_writes_through_and_bumps_version():
    x = dtorch.zeros(6)
    v = x[::2]
    before = x._version
    dtorch.add(dtorch.ones(3), 1, out=v)
    assert x.tolist() == [2.0, 0.0, 2.0, 0.0, 2.0, 0.0] and x._version > before


def test_out_errors_and_resize_warning_like_torch(torch):
    for m in (dtorch, torch):
        a = m.ones(3)
        with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
            m.add(a, a, out=m.zeros(3, dtype=m.long))
        with pytest.raises(RuntimeError, match=r"add\(\): functions with out=\.\.\. arguments don't support automatic "
                                               "differentiation, but one of the arguments requires grad."):
            m.add(m.ones(3, requires_grad=True), a, out=m.zeros(3))
        with pytest.raises(TypeError, match=r"add\(\): argument 'out' must be Tensor, not list"):
            m.add(a, a, out=[1])
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            o = m.zeros(2)
            m.add(a, a, out=o)
        assert o.tolist() == [2.0, 2.0, 2.0]
        assert "An output with one or more elements was resized since it had shape [2], which does not match the " \
               "required output shape [3]." in str(w[0].message)
    with dtorch.no_grad():
        assert dtorch.add(dtorch.ones(2, requires_grad=True), 1, out=dtorch.empty(2)).tolist() == [2.0, 2.0]

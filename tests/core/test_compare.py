"""allclose / isclose / equal against torch."""
from __future__ import annotations

import pytest

import dtorch
from tests.oracle import check_op


@pytest.mark.parametrize("b", [[1.0, 2.0], [1.0, 2.00001], [1.0, 2.1], [1.0, float("nan")]])
def test_isclose_allclose_match_torch(b):
    for equal_nan in (False, True):
        for name in ("isclose", "allclose"):
            check_op(lambda m, x, y, name=name, e=equal_nan: getattr(m, name)(x, y, equal_nan=e),
                     inputs=[dtorch.tensor([1.0, 2.0]), dtorch.tensor(b)])


def test_allclose_broadcasts_and_tolerances():
    a = dtorch.zeros(3, 2)
    assert dtorch.allclose(a, dtorch.zeros(2))
    assert not dtorch.allclose(a + 1e-3, a)
    assert dtorch.allclose(a + 1e-3, a, atol=1e-2)


def test_equal_needs_same_shape_and_values():
    a = dtorch.arange(4)
    assert dtorch.equal(a, a.clone()) and a.equal(dtorch.arange(4))
    assert not dtorch.equal(a, dtorch.arange(5)) and not dtorch.equal(a, a.reshape(2, 2))
    assert not dtorch.equal(a, a + 1)


def test_isclose_refuses_mixed_dtypes_as_torch():
    with pytest.raises(RuntimeError, match="Float did not match Long"):
        dtorch.isclose(dtorch.ones(2), dtorch.ones(2, dtype=dtorch.int64))

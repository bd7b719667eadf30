"""torch's type promotion: tensor/tensor, zero-dim tensors, Python scalars, in-place casts."""
from __future__ import annotations

import itertools

import pytest

import dtorch
from tests.oracle import check_op

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow in float16 powers, as torch

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
SCALARS = [True, False, 2, -3, 300, 2.5, -0.0]
BINARY_OPS = ["add", "sub", "mul", "div", "remainder", "fmod", "pow", "maximum", "minimum", "eq", "lt",
              "floor_divide"]


def _make(mod, name: str, dim: bool, value=1):
    dt = mod.bool if name == "bool" else getattr(mod, name)
    return mod.full((3,) if dim else (), value, dtype=dt)


def _dtype_name(d) -> str:
    return str(d).split(".")[-1]


EXACT = {"rtol": 0, "atol": 0, "grad": False, "errors": True}  # dtype and values exactly, or the same error


# ---- promote_types / result_type -----------------------------------------------------------
@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, DTYPES)))
def test_promote_types(a, b):
    got = dtorch.promote_types(getattr(dtorch, a), getattr(dtorch, b))
    assert got.name == _dtype_name(torch.promote_types(getattr(torch, a), getattr(torch, b)))


@pytest.mark.parametrize("a", DTYPES)
def test_result_type_tensor_pairs(a):
    for b, da, db in itertools.product(DTYPES, (True, False), (True, False)):
        got = dtorch.result_type(_make(dtorch, a, da), _make(dtorch, b, db))
        want = torch.result_type(_make(torch, a, da), _make(torch, b, db))
        assert got.name == _dtype_name(want), (a, da, b, db)


@pytest.mark.parametrize("a", DTYPES)
def test_result_type_with_python_scalars(a):
    for s, dim in itertools.product(SCALARS, (True, False)):
        got = dtorch.result_type(_make(dtorch, a, dim), s)
        want = torch.result_type(_make(torch, a, dim), s)
        assert got.name == _dtype_name(want), (a, dim, s)


def test_result_type_respects_default_dtype(float64_default):
    for a in DTYPES:
        got = dtorch.result_type(_make(dtorch, a, True), 2.5)
        assert got.name == _dtype_name(torch.result_type(_make(torch, a, True), 2.5))


# ---- the ops themselves ---------------------------------------------------------------------------
@pytest.mark.parametrize("op", BINARY_OPS)
@pytest.mark.parametrize("a", DTYPES)
def test_binary_op_dtypes_tensor_tensor(op, a):
    for b, da, db in itertools.product(DTYPES, (True, False), (True, False)):
        check_op(lambda m, x, y: getattr(m, op)(x, y), inputs=[_make(dtorch, a, da, 3), _make(dtorch, b, db, 2)],
                 **EXACT)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "remainder", "fmod", "pow", "floor_divide", "eq",
                                "lt"])
@pytest.mark.parametrize("a", DTYPES)
def test_binary_op_dtypes_tensor_scalar(op, a):
    for s, dim in itertools.product(SCALARS, (True, False)):
        if op in ("div", "remainder", "fmod", "floor_divide") and s in (0, False):
            continue  # division by zero: integer results differ by platform
        check_op(lambda m, x, s=s: getattr(m, op)(x, s), inputs=[_make(dtorch, a, dim, 5)], **EXACT)


@pytest.mark.parametrize("op", ["__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__rpow__", "__rmod__",
                                "__rfloordiv__"])
@pytest.mark.parametrize("a", DTYPES)
def test_reflected_operators_with_scalars(op, a):
    for s, dim in itertools.product([True, 2, -3, 2.5], (True, False)):
        check_op(lambda m, x, s=s: getattr(x, op)(s), inputs=[_make(dtorch, a, dim, 2)], **EXACT)


def test_int_scalars_out_of_range_wrap_like_torch():
    for op in ("add", "sub", "mul", "lt", "eq", "remainder", "floor_divide"):
        for s in (-3, 300, -200):
            for name in ("uint8", "int8"):
                check_op(lambda m, x, op=op, s=s: getattr(m, op)(x, s), inputs=[_make(dtorch, name, True, 5)],
                         **EXACT)


def test_integer_power_rules():
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
        dtorch.tensor([1, 2]) ** -1
    base = dtorch.tensor([2, 1, -1, -1, 3])
    exp = dtorch.tensor([-1, -5, -3, -2, 2])
    want = torch.tensor([2, 1, -1, -1, 3]) ** torch.tensor([-1, -5, -3, -2, 2])
    assert (base ** exp).tolist() == want.tolist()


def test_bool_subtraction_errors():
    with pytest.raises(RuntimeError, match="with two bool tensors is not supported"):
        dtorch.tensor([True]) - dtorch.tensor([False])
    with pytest.raises(RuntimeError, match="with a bool tensor is not supported"):
        dtorch.tensor([1.0]) - True
    with pytest.raises(RuntimeError, match="with a bool tensor is not supported"):
        1 - dtorch.tensor([True])


def test_alpha_rules():
    with pytest.raises(RuntimeError, match="alpha must not be a floating point number"):
        dtorch.add(dtorch.tensor([1, 2]), dtorch.tensor([1, 2]), alpha=2.5)
    r = dtorch.add(dtorch.tensor([1.0, 2.0]), dtorch.tensor([1, 2]), alpha=2.5)
    assert r.dtype is dtorch.float32 and r.tolist() == [3.5, 7.0]
    b = dtorch.add(dtorch.tensor([True, False]), dtorch.tensor([True, False]), alpha=2)
    assert b.dtype is dtorch.bool and b.tolist() == [True, False]
    assert dtorch.sub(dtorch.tensor([5, 5]), dtorch.tensor([1, 2]), alpha=2).tolist() == [3, 1]
    assert dtorch.rsub(dtorch.tensor([1, 2]), 5).tolist() == [4, 3]


# ---- in place: the result must fit the tensor -----------------------------------------------------
@pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_", "pow_", "remainder_", "floor_divide_"])
@pytest.mark.parametrize("a", DTYPES)
def test_inplace_casting_rules(op, a):
    def run(mod, t, o):
        r = getattr(t, op)(o)
        assert r is t
        return t

    for other in DTYPES + [True, 2, 2.5]:
        o = _make(dtorch, other, True, 2) if isinstance(other, str) else other
        check_op(run, inputs=[_make(dtorch, a, True, 3), o], **EXACT)


def test_inplace_float_into_int_message():
    t = dtorch.tensor([1, 2])
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        t.add_(1.5)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        t /= 2
    with pytest.raises(RuntimeError, match="result type Double can't be cast to the desired output type Int"):
        dtorch.tensor([1], dtype=dtorch.int32).mul_(dtorch.tensor([1.0], dtype=dtorch.float64))
    assert t.tolist() == [1, 2] and t._version == 0  # a refused op changes nothing


def test_inplace_keeps_dtype_and_wraps():
    u = dtorch.tensor([5, 250], dtype=dtorch.uint8)
    u.add_(-3)
    assert u.dtype is dtorch.uint8 and u.tolist() == [2, 247]
    u += dtorch.tensor([10, 10], dtype=dtorch.int64)
    assert u.dtype is dtorch.uint8 and u.tolist() == [12, 1]
    h = dtorch.ones(2, dtype=dtorch.float16)
    h.add_(dtorch.tensor([1e-4, 1.0], dtype=dtorch.float64))
    assert h.dtype is dtorch.float16 and h.tolist() == torch.ones(2, dtype=torch.float16).add_(
        torch.tensor([1e-4, 1.0], dtype=torch.float64)).tolist()


def test_operators_on_zero_dim_results_keep_tensor_dtype():
    x = dtorch.ones(3, dtype=dtorch.float16)
    s = dtorch.tensor(2.0, dtype=dtorch.float64)
    assert (x * s).dtype is dtorch.float16
    i = dtorch.ones(3, dtype=dtorch.int32)
    assert (i * dtorch.tensor(2)).dtype is dtorch.int32
    assert (i * dtorch.tensor(2.0)).dtype is dtorch.float32
    assert (dtorch.tensor(2, dtype=dtorch.int8) * dtorch.tensor(2, dtype=dtorch.int16)).dtype is dtorch.int16

"""Every op of _ops/arithmetic.py and _ops/unary.py against torch: forward values and dtypes,
gradients (broadcasting, non-contiguous inputs), float64 gradcheck/gradgradcheck, operators,
reflected and in-place forms."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dtorch
from tests.oracle import TOL, check_grads, check_op, make_inputs, to_torch

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf/nan at domain edges, as torch (silent)


def _f(m):
    """The functional namespace holding activations: dtorch itself, torch.nn.functional for torch."""
    return dtorch if m is dtorch else torch.nn.functional


# ---- input domains (kept away from non-differentiable points) -----------------------------------
def _signed(rng, shape):
    return rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def _pos(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def _unit(rng, shape):
    return rng.uniform(-0.8, 0.8, shape)


def _gt1(rng, shape):
    return rng.uniform(1.2, 3.0, shape)


def _off_grid(rng, shape):
    """Away from integers and halves (rounding ops are steps there)."""
    return rng.integers(-3, 3, shape) + rng.uniform(0.1, 0.4, shape) + rng.choice([0.0, 0.5], shape)


def _wide(rng, shape):
    return rng.uniform(0.3, 4.0, shape) * rng.choice([-1.0, 1.0], shape)


# name -> (call(m, x), domain, has a torch in-place method name or None, differentiable)
UNARY = {
    "neg": (lambda m, x: m.neg(x), _signed, "neg_", True),
    "negative": (lambda m, x: m.negative(x), _signed, None, True),
    "exp": (lambda m, x: m.exp(x), _signed, "exp_", True),
    "exp2": (lambda m, x: m.exp2(x), _signed, "exp2_", True),
    "expm1": (lambda m, x: m.expm1(x), _signed, "expm1_", True),
    "log": (lambda m, x: m.log(x), _pos, "log_", True),
    "log2": (lambda m, x: m.log2(x), _pos, "log2_", True),
    "log10": (lambda m, x: m.log10(x), _pos, "log10_", True),
    "log1p": (lambda m, x: m.log1p(x), _pos, "log1p_", True),
    "sqrt": (lambda m, x: m.sqrt(x), _pos, "sqrt_", True),
    "rsqrt": (lambda m, x: m.rsqrt(x), _pos, "rsqrt_", True),
    "square": (lambda m, x: m.square(x), _signed, None, True),
    "abs": (lambda m, x: m.abs(x), _signed, "abs_", True),
    "absolute": (lambda m, x: m.absolute(x), _signed, None, True),
    "sign": (lambda m, x: m.sign(x), _signed, "sign_", True),
    "sgn": (lambda m, x: m.sgn(x), _signed, None, True),
    "reciprocal": (lambda m, x: m.reciprocal(x), _signed, "reciprocal_", True),
    "sin": (lambda m, x: m.sin(x), _wide, "sin_", True),
    "cos": (lambda m, x: m.cos(x), _wide, "cos_", True),
    "tan": (lambda m, x: m.tan(x), _unit, "tan_", True),
    "asin": (lambda m, x: m.asin(x), _unit, "asin_", True),
    "acos": (lambda m, x: m.acos(x), _unit, "acos_", True),
    "atan": (lambda m, x: m.atan(x), _wide, "atan_", True),
    "sinh": (lambda m, x: m.sinh(x), _signed, "sinh_", True),
    "cosh": (lambda m, x: m.cosh(x), _signed, "cosh_", True),
    "tanh": (lambda m, x: m.tanh(x), _signed, "tanh_", True),
    "asinh": (lambda m, x: m.asinh(x), _wide, "asinh_", True),
    "acosh": (lambda m, x: m.acosh(x), _gt1, "acosh_", True),
    "atanh": (lambda m, x: m.atanh(x), _unit, "atanh_", True),
    "arcsin": (lambda m, x: m.arcsin(x), _unit, None, True),
    "arccos": (lambda m, x: m.arccos(x), _unit, None, True),
    "arctan": (lambda m, x: m.arctan(x), _wide, None, True),
    "arcsinh": (lambda m, x: m.arcsinh(x), _wide, None, True),
    "arccosh": (lambda m, x: m.arccosh(x), _gt1, None, True),
    "arctanh": (lambda m, x: m.arctanh(x), _unit, None, True),
    "sigmoid": (lambda m, x: m.sigmoid(x), _wide, "sigmoid_", True),
    "erf": (lambda m, x: m.erf(x), _signed, "erf_", True),
    "floor": (lambda m, x: m.floor(x), _off_grid, "floor_", True),
    "ceil": (lambda m, x: m.ceil(x), _off_grid, "ceil_", True),
    "trunc": (lambda m, x: m.trunc(x), _off_grid, "trunc_", True),
    "fix": (lambda m, x: m.fix(x), _off_grid, None, True),
    "frac": (lambda m, x: m.frac(x), _off_grid, "frac_", True),
    "round": (lambda m, x: m.round(x), _off_grid, "round_", True),
    "round_decimals": (lambda m, x: m.round(x * 10, decimals=-1), _off_grid, None, True),
    "relu": (lambda m, x: m.relu(x), _signed, "relu_", True),
    "gelu": (lambda m, x: _f(m).gelu(x), _wide, None, True),
    "gelu_tanh": (lambda m, x: _f(m).gelu(x, approximate="tanh"), _wide, None, True),
    "silu": (lambda m, x: _f(m).silu(x), _wide, None, True),
    "softplus": (lambda m, x: _f(m).softplus(x), _wide, None, True),
    "softplus_beta": (lambda m, x: _f(m).softplus(x, beta=2.0, threshold=3.0), _wide, None, True),
    "elu": (lambda m, x: _f(m).elu(x), _signed, None, True),
    "elu_alpha": (lambda m, x: _f(m).elu(x, alpha=0.5), _signed, None, True),
    "leaky_relu": (lambda m, x: _f(m).leaky_relu(x), _signed, None, True),
    "leaky_relu_slope": (lambda m, x: _f(m).leaky_relu(x, 0.2), _signed, None, True),
    "hardtanh": (lambda m, x: _f(m).hardtanh(x), _wide, None, True),
    "hardtanh_range": (lambda m, x: _f(m).hardtanh(x, -0.5, 1.5), _wide, None, True),
    "clamp": (lambda m, x: m.clamp(x, -0.5, 1.0), _wide, "clamp_", True),
    "clamp_min": (lambda m, x: m.clamp(x, min=0.5), _wide, None, True),
    "clamp_max": (lambda m, x: m.clamp(x, max=0.5), _wide, None, True),
    "clamp_min_fn": (lambda m, x: m.clamp_min(x, 0.5), _wide, None, True),
    "clamp_max_fn": (lambda m, x: m.clamp_max(x, 0.5), _wide, None, True),
    "clip": (lambda m, x: m.clip(x, -0.5, 1.0), _wide, None, True),
    "nan_to_num": (lambda m, x: m.nan_to_num(x), _signed, None, True),
    "isnan": (lambda m, x: m.isnan(x), _signed, None, False),
    "isinf": (lambda m, x: m.isinf(x), _signed, None, False),
    "isfinite": (lambda m, x: m.isfinite(x), _signed, None, False),
    "isposinf": (lambda m, x: m.isposinf(x), _signed, None, False),
    "isneginf": (lambda m, x: m.isneginf(x), _signed, None, False),
    "signbit": (lambda m, x: m.signbit(x), _signed, None, False),
}

# in-place methods whose torch name differs from the key, or that take arguments
INPLACE_CALLS = {"clamp_": lambda t: t.clamp_(-0.5, 1.0)}


def _data(name, shape=(3, 4), seed=0):
    return UNARY[name][1](np.random.default_rng(seed), shape)


# ---- unary: forward ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_unary_forward(name, dtype):
    x = dtorch.tensor(_data(name), dtype=getattr(dtorch, dtype)).t().contiguous().t()  # column-major strides
    assert not x.is_contiguous()
    check_op(UNARY[name][0], inputs=[x], grad=False, **TOL[dtype])


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_unary_integer_inputs(name, dtype):
    """Integer inputs: the same result dtype (or the same error) as torch."""
    x = dtorch.tensor([[0, 1, 2], [3, 1, 0]], dtype=getattr(dtorch, dtype))
    check_op(UNARY[name][0], inputs=[x], errors=True)


SPECIAL_VALUES = [0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e-30, -1e30, 88.0, -88.0, 1.0, -1.0, 0.5]


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_special_values(name):
    call = UNARY[name][0]
    values = SPECIAL_VALUES
    if name.startswith("gelu"):  # torch's vectorised gelu gives NaN at +inf (the formula gives inf): skipped
        values = [v for v in values if v != float("inf")]
    check_op(call, inputs=[dtorch.tensor(values)], grad=False)


def test_nan_to_num_options():
    vals = [float("nan"), float("inf"), -float("inf"), 1.5]
    for kw in ({}, {"nan": 2.0}, {"nan": 0.0, "posinf": 7.0, "neginf": -7.0}):
        check_op(lambda m, x, kw=kw: m.nan_to_num(x, **kw), inputs=[dtorch.tensor(vals)])


# ---- unary: gradients -------------------------------------------------------------------------
DIFFERENTIABLE = sorted(n for n, spec in UNARY.items() if spec[3])


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_unary_gradient_matches_torch(name):
    call = UNARY[name][0]

    def non_contiguous(m, x):  # a non-contiguous, non-leaf input
        xv = x.t().contiguous().t()
        assert not xv.is_contiguous()
        return call(m, xv)

    check_op(non_contiguous, shapes=[(3, 4)], make=UNARY[name][1], dtype=dtorch.float32, seed=1, grad_rtol=1e-4,
             grad_atol=1e-5, check_grad_fn=True)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_unary_gradcheck(name):
    call = UNARY[name][0]
    check_grads(lambda t: call(dtorch, t), *make_inputs([(2, 3)], make=UNARY[name][1], seed=3))


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_unary_second_derivative_matches_torch(name):
    check_op(UNARY[name][0], shapes=[(5,)], make=UNARY[name][1], seed=4, gradgrad=True, rtol=1e-8, atol=1e-10)


GRAD_EDGE_CASES = [
    ("abs", [0.0, -1.0, 2.0]), ("relu", [0.0, -1.0, 2.0]), ("sqrt", [0.0, 4.0]), ("clamp", [-0.5, 1.0, 0.2, 3.0]),
    ("hardtanh", [-1.0, 1.0, 0.0, 2.0]), ("sigmoid", [-100.0, 100.0, 0.0]), ("softplus", [25.0, -25.0, 20.0, 0.0]),
    ("elu", [0.0, -50.0]), ("leaky_relu", [0.0]), ("sign", [0.0, 1.0]), ("round", [0.5, 1.5, 2.5]),
    ("log", [0.0]), ("tanh", [30.0, -30.0]), ("exp", [100.0]), ("rsqrt", [0.0]), ("reciprocal", [0.0]),
    ("silu", [-100.0, 100.0]), ("gelu", [-10.0, 10.0]), ("erf", [-10.0, 0.0]),
]


@pytest.mark.parametrize("name,values", GRAD_EDGE_CASES, ids=[c[0] for c in GRAD_EDGE_CASES])
def test_unary_gradient_at_edges(name, values):
    """Values and gradients at kinks, saturation and infinities, as torch."""
    check_op(UNARY[name][0], inputs=[dtorch.tensor(values, requires_grad=True)])


# ---- unary: in-place ---------------------------------------------------------------------------
INPLACE_UNARY = sorted(n for n, spec in UNARY.items() if spec[2])


@pytest.mark.parametrize("name", INPLACE_UNARY)
def test_unary_inplace(name):
    method = UNARY[name][2]
    run = INPLACE_CALLS.get(method, lambda t: getattr(t, method)())
    arr = _data(name, seed=5)

    def in_place(m, x):
        r = run(x)
        assert r is x and x._version == 1
        return x

    check_op(in_place, inputs=[dtorch.tensor(arr, dtype=dtorch.float32)])
    if method in ("acosh_", "asinh_", "atanh_"):
        return  # torch has no derivative for these in-place forms (dtorch has)
    # on a non-leaf: the gradient goes through the in-place op
    check_op(lambda m, x: run(x * 1), inputs=[dtorch.tensor(arr, dtype=dtorch.float32, requires_grad=True)],
             grad_rtol=1e-4, grad_atol=1e-5)


def test_unary_inplace_on_leaf_refused():
    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        x.exp_()


def test_unary_inplace_int_to_float_refused():
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2]).exp_()
    with pytest.raises(RuntimeError):
        dtorch.tensor([1, 2]).exp_()


# ---- binary ops -------------------------------------------------------------------------------
def _any(rng, shape):
    return _signed(rng, shape)


def _nonzero(rng, shape):
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def _mod_a(rng, shape):
    return rng.uniform(0.3, 5.0, shape) * rng.choice([-1.0, 1.0], shape)


def _mod_b(rng, shape):
    return rng.uniform(0.7, 1.3, shape) * rng.choice([-1.0, 1.0], shape) + 0.05


def _distinct(rng, shape):
    return rng.uniform(-2.0, 2.0, shape)


# name -> (call(m, a, b), domain of a, domain of b, differentiable)
BINARY = {
    "add": (lambda m, a, b: m.add(a, b), _any, _any, True),
    "add_alpha": (lambda m, a, b: m.add(a, b, alpha=2.5), _any, _any, True),
    "sub": (lambda m, a, b: m.sub(a, b), _any, _any, True),
    "sub_alpha": (lambda m, a, b: m.sub(a, b, alpha=-1.5), _any, _any, True),
    "subtract": (lambda m, a, b: m.subtract(a, b), _any, _any, True),
    "rsub": (lambda m, a, b: m.rsub(a, b), _any, _any, True),
    "mul": (lambda m, a, b: m.mul(a, b), _any, _any, True),
    "multiply": (lambda m, a, b: m.multiply(a, b), _any, _any, True),
    "div": (lambda m, a, b: m.div(a, b), _any, _nonzero, True),
    "divide": (lambda m, a, b: m.divide(a, b), _any, _nonzero, True),
    "true_divide": (lambda m, a, b: m.true_divide(a, b), _any, _nonzero, True),
    "div_floor": (lambda m, a, b: m.div(a, b, rounding_mode="floor"), _mod_a, _mod_b, False),
    "div_trunc": (lambda m, a, b: m.div(a, b, rounding_mode="trunc"), _mod_a, _mod_b, False),
    "floor_divide": (lambda m, a, b: m.floor_divide(a, b), _mod_a, _mod_b, False),
    "remainder": (lambda m, a, b: m.remainder(a, b), _mod_a, _mod_b, True),
    "fmod": (lambda m, a, b: m.fmod(a, b), _mod_a, _mod_b, True),
    "pow": (lambda m, a, b: m.pow(a, b), _pos, _any, True),
    "float_power": (lambda m, a, b: m.float_power(a, b), _pos, _any, True),
    "maximum": (lambda m, a, b: m.maximum(a, b), _distinct, _distinct, True),
    "minimum": (lambda m, a, b: m.minimum(a, b), _distinct, _distinct, True),
    "fmax": (lambda m, a, b: m.fmax(a, b), _distinct, _distinct, True),
    "fmin": (lambda m, a, b: m.fmin(a, b), _distinct, _distinct, True),
    "clamp_tensor": (lambda m, a, b: m.clamp(a, min=b), _distinct, _distinct, True),
    "clamp_tensor_max": (lambda m, a, b: m.clamp(a, max=b), _distinct, _distinct, True),
    "eq": (lambda m, a, b: m.eq(a, a.round()) | m.eq(a, b), _off_grid, _any, False),
    "ne": (lambda m, a, b: m.ne(a, b), _any, _any, False),
    "lt": (lambda m, a, b: m.lt(a, b), _any, _any, False),
    "le": (lambda m, a, b: m.le(a, b), _any, _any, False),
    "gt": (lambda m, a, b: m.gt(a, b), _any, _any, False),
    "ge": (lambda m, a, b: m.ge(a, b), _any, _any, False),
    "greater": (lambda m, a, b: m.greater(a, b), _any, _any, False),
    "greater_equal": (lambda m, a, b: m.greater_equal(a, b), _any, _any, False),
    "less": (lambda m, a, b: m.less(a, b), _any, _any, False),
    "less_equal": (lambda m, a, b: m.less_equal(a, b), _any, _any, False),
    "not_equal": (lambda m, a, b: m.not_equal(a, b), _any, _any, False),
    "logical_and": (lambda m, a, b: m.logical_and(a > 0, b), _any, _any, False),
    "logical_or": (lambda m, a, b: m.logical_or(a > 0, b > 0), _any, _any, False),
    "logical_xor": (lambda m, a, b: m.logical_xor(a, b > 0), _any, _any, False),
}

SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((3, 4), ()), ((), (2, 3)), ((2, 1, 3), (4, 1))]


def _pair(name, sa, sb, dtype="float32", requires_grad=False, seed=0):
    _, da, db, _ = BINARY[name]
    return make_inputs([sa, sb], make=[da, db], dtype=getattr(dtorch, dtype), requires_grad=requires_grad, seed=seed)


@pytest.mark.parametrize("shapes", SHAPES, ids=repr)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_forward_broadcasting(name, shapes):
    check_op(BINARY[name][0], inputs=_pair(name, *shapes), grad=False)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_binary_forward_dtypes(name, dtype):
    check_op(BINARY[name][0], inputs=_pair(name, (3, 4), (3, 4), dtype), grad=False, **TOL[dtype])


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_forward_non_contiguous(name):
    call = BINARY[name][0]
    check_op(lambda m, a, b: call(m, a.t(), b), inputs=_pair(name, (4, 3), (3, 4)), grad=False)
    check_op(lambda m, a, b: call(m, b.t(), a), inputs=_pair(name, (4, 3), (3, 4)), grad=False)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("s", [2, -3, 1.5, True])
def test_binary_with_python_scalars(name, s):
    call = BINARY[name][0]
    if name in ("eq", "logical_and", "logical_or"):
        pytest.skip("the call builds its own operands")
    if name in ("maximum", "minimum", "fmax", "fmin", "logical_xor"):
        pytest.skip("torch takes tensors only (TypeError); dtorch also accepts a number")
    check_op(lambda m, a: call(m, a, s), inputs=_pair(name, (3, 4), (3, 4))[:1], grad=False, errors=True)


@pytest.mark.parametrize("name", sorted(n for n, spec in BINARY.items() if spec[3]))
@pytest.mark.parametrize("shapes", SHAPES, ids=repr)
def test_binary_gradient_matches_torch(name, shapes):
    check_op(BINARY[name][0], inputs=_pair(name, *shapes, requires_grad=True, seed=1), grad_rtol=1e-4, grad_atol=1e-5,
             check_grad_fn=True)


@pytest.mark.parametrize("name", sorted(n for n, spec in BINARY.items() if spec[3]))
def test_binary_gradcheck(name):
    call = BINARY[name][0]
    check_grads(lambda x, y: call(dtorch, x, y), *_pair(name, (2, 3), (3,), "float64", requires_grad=True, seed=3))


@pytest.mark.parametrize("name", sorted(n for n, spec in BINARY.items() if spec[3]))
@pytest.mark.parametrize("s", [2.0, -1.5])
def test_binary_scalar_gradcheck(name, s):
    call = BINARY[name][0]
    _, da, _, _ = BINARY[name]
    if name in ("remainder", "fmod") and s < 0:
        s = -1.3
    check_grads(lambda x: call(dtorch, x, s), *make_inputs([(2, 3)], make=da, seed=4))


def test_pow_with_scalar_base_and_exponent_gradcheck():
    x = dtorch.tensor([[0.5, 1.5, -0.7], [2.0, 0.3, -1.2]], dtype=dtorch.float64, requires_grad=True)
    for fn in (lambda t: 2.5 ** t, lambda t: t ** 3, lambda t: t ** -2, lambda t: t.abs() ** 0.5, lambda t: t ** 0,
               lambda t: 0.5 ** t, lambda t: dtorch.float_power(t, 2)):
        check_grads(fn, x)


BINARY_EDGES = [
    ("maximum tie", lambda m, a, b: m.maximum(a, b), [1.0, 2.0, 3.0], [1.0, 0.0, 3.0]),
    ("minimum tie", lambda m, a, b: m.minimum(a, b), [1.0, 2.0, 3.0], [1.0, 0.0, 3.0]),
    ("fmax nan", lambda m, a, b: m.fmax(a, b), [float("nan"), 2.0, 1.0], [1.0, float("nan"), 1.0]),
    ("fmin nan", lambda m, a, b: m.fmin(a, b), [float("nan"), 2.0, 1.0], [1.0, float("nan"), 1.0]),
    ("maximum nan", lambda m, a, b: m.maximum(a, b), [float("nan"), 2.0], [1.0, float("nan")]),
    ("pow at zero", lambda m, a, b: m.pow(a, b), [0.0, 0.0, 2.0, -2.0], [2.0, 0.0, 0.0, 2.0]),
    ("div by zero", lambda m, a, b: m.div(a, b), [1.0, -1.0, 0.0], [0.0, 0.0, 0.0]),
    ("remainder signs", lambda m, a, b: m.remainder(a, b), [5.0, -5.0, 5.0, -5.0], [3.0, 3.0, -3.0, -3.0]),
    ("fmod signs", lambda m, a, b: m.fmod(a, b), [5.0, -5.0, 5.0, -5.0], [3.0, 3.0, -3.0, -3.0]),
    ("clamp tensor ties", lambda m, a, b: m.clamp(a, b, b + 1), [1.0, 2.0, 3.0, 0.0], [1.0, 1.0, 2.0, 1.0]),
]


@pytest.mark.parametrize("case", BINARY_EDGES, ids=[c[0] for c in BINARY_EDGES])
def test_binary_values_and_gradients_at_edges(case):
    _, call, a_vals, b_vals = case
    check_op(call, inputs=[dtorch.tensor(a_vals, requires_grad=True), dtorch.tensor(b_vals, requires_grad=True)])


def test_integer_and_bool_binary_ops():
    ai = np.array([[7, -7, 0], [3, 2, -1]])
    bi = np.array([[2, 2, 5], [-2, 3, 4]])
    for call in (lambda m, a, b: a + b, lambda m, a, b: a - b, lambda m, a, b: a * b, lambda m, a, b: a / b,
                 lambda m, a, b: a // b, lambda m, a, b: a % b, lambda m, a, b: m.fmod(a, b),
                 lambda m, a, b: a ** b.abs(), lambda m, a, b: m.maximum(a, b), lambda m, a, b: a & b,
                 lambda m, a, b: a | b, lambda m, a, b: a ^ b, lambda m, a, b: ~a, lambda m, a, b: -a,
                 lambda m, a, b: abs(a), lambda m, a, b: m.sign(a), lambda m, a, b: m.square(a),
                 lambda m, a, b: m.bitwise_not(a), lambda m, a, b: m.logical_not(a),
                 lambda m, a, b: m.div(a, b, rounding_mode="trunc"), lambda m, a, b: m.clamp(a, -1, 2)):
        for dt in ("int64", "int32", "int8", "uint8"):
            a_arr, b_arr = (np.abs(ai), np.abs(bi) + 1) if dt == "uint8" else (ai, bi)
            check_op(call, inputs=[dtorch.tensor(a_arr, dtype=getattr(dtorch, dt)),
                                   dtorch.tensor(b_arr, dtype=getattr(dtorch, dt))])
    ab = np.array([True, False, True, False])
    bb = np.array([True, True, False, False])
    for call in (lambda m, a, b: a & b, lambda m, a, b: a | b, lambda m, a, b: a ^ b, lambda m, a, b: ~a,
                 lambda m, a, b: a + b, lambda m, a, b: a * b, lambda m, a, b: m.logical_xor(a, b),
                 lambda m, a, b: a == b, lambda m, a, b: m.maximum(a, b)):
        check_op(call, inputs=[dtorch.tensor(ab), dtorch.tensor(bb)])


def test_bitwise_ops_refuse_floats():
    for call in (lambda m: m.ones(2) & m.ones(2), lambda m: ~m.ones(2), lambda m: m.ones(2) | 1):
        with pytest.raises(type(_error(call, torch))):
            call(dtorch)


def _error(call, m):
    try:
        call(m)
    except Exception as e:  # noqa: BLE001
        return e
    raise AssertionError("torch did not raise")


# ---- operators, reflected and in-place forms ------------------------------------------------------
OPERATORS = {
    "+": (lambda a, b: a + b), "-": (lambda a, b: a - b), "*": (lambda a, b: a * b), "/": (lambda a, b: a / b),
    "//": (lambda a, b: a // b), "%": (lambda a, b: a % b), "**": (lambda a, b: abs(a) ** b),
    "==": (lambda a, b: a == b), "!=": (lambda a, b: a != b), "<": (lambda a, b: a < b),
    "<=": (lambda a, b: a <= b), ">": (lambda a, b: a > b), ">=": (lambda a, b: a >= b),
}


@pytest.mark.parametrize("op", sorted(OPERATORS))
def test_operators_tensor_tensor_and_scalars(op):
    fn = OPERATORS[op]
    rng = np.random.default_rng(6)
    a, b = _mod_a(rng, (3, 4)), _mod_b(rng, (4,))
    ad, bd = dtorch.tensor(a, dtype=dtorch.float32), dtorch.tensor(b, dtype=dtorch.float32)
    check_op(fn, fn, inputs=[ad, bd])
    for s in (2, 1.5, -3):
        check_op(lambda x, s=s: fn(x, s), lambda x, s=s: fn(x, s), inputs=[ad])
        if op != "**":
            check_op(lambda x, s=s: fn(s, x), lambda x, s=s: fn(s, x), inputs=[ad])  # reflected
    check_op(lambda x: 2.0 ** x, lambda x: 2.0 ** x, inputs=[ad])


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**"])
def test_reflected_operator_gradients(op):
    fn = OPERATORS[op]
    reflected = (lambda a: fn(1.5, a)) if op != "**" else (lambda a: 1.5 ** a)
    x = dtorch.tensor(_pos(np.random.default_rng(7), (3,)), dtype=dtorch.float32, requires_grad=True)
    y, ty = check_op(reflected, reflected, inputs=[x], check_grad_fn=True), reflected(to_torch(x))
    assert [n is not None for n, _ in y.grad_fn.next_functions] == [n is not None for n, _ in ty.grad_fn.next_functions]


INPLACE_BINARY = {
    "add_": lambda t, o: t.add_(o), "add_alpha_": lambda t, o: t.add_(o, alpha=2), "sub_": lambda t, o: t.sub_(o),
    "mul_": lambda t, o: t.mul_(o), "div_": lambda t, o: t.div_(o), "pow_": lambda t, o: t.abs_().pow_(o),
    "remainder_": lambda t, o: t.remainder_(o), "fmod_": lambda t, o: t.fmod_(o),
    "floor_divide_": lambda t, o: t.floor_divide_(o), "div_floor_": lambda t, o: t.div_(o, rounding_mode="floor"),
    "subtract_": lambda t, o: t.subtract_(o), "multiply_": lambda t, o: t.multiply_(o),
    "clamp_": lambda t, o: t.clamp_(min=-0.5, max=o if isinstance(o, float) else 0.7),
    "+=": None, "-=": None, "*=": None, "/=": None, "**=": None, "%=": None, "//=": None,
}


def _augmented(op, t, o):
    if op == "+=":
        t += o
    elif op == "-=":
        t -= o
    elif op == "*=":
        t *= o
    elif op == "/=":
        t /= o
    elif op == "**=":
        t.abs_()
        t **= o
    elif op == "%=":
        t %= o
    else:
        t //= o
    return t


@pytest.mark.parametrize("name", sorted(INPLACE_BINARY))
@pytest.mark.parametrize("other", ["tensor", "broadcast", "scalar"])
def test_inplace_binary_forms(name, other):
    fn = INPLACE_BINARY[name] or (lambda t, o: _augmented(name, t, o))
    rng = np.random.default_rng(8)
    a = _mod_a(rng, (3, 4))
    o_arr = {"tensor": _mod_b(rng, (3, 4)), "broadcast": _mod_b(rng, (4,)), "scalar": None}[other]
    def operands(requires_grad):
        o = [] if o_arr is None else [dtorch.tensor(o_arr, dtype=dtorch.float32, requires_grad=requires_grad)]
        return [dtorch.tensor(a, dtype=dtorch.float32, requires_grad=requires_grad)] + o

    def in_place(m, x, *o):
        r = fn(x, o[0] if o else 1.3)
        assert r is x and x._version >= 1
        return r

    check_op(in_place, inputs=operands(False))
    # with autograd: on a non-leaf, the other operand requiring grad
    if name in ("floor_divide_", "div_floor_", "//=", "clamp_") or (name == "%=" and o_arr is None):
        return
    check_op(lambda m, x, *o: fn(x * 1, o[0] if o else 1.3), inputs=operands(True), grad_rtol=1e-4, grad_atol=1e-5)


def test_inplace_on_leaf_or_wrong_dtype_refused():
    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        x += 1
    i = dtorch.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        i *= 1.5
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        i /= 2
    i //= 2
    assert i.tolist() == [0, 1] and i.dtype is dtorch.int64


def test_unary_operators():
    ad = dtorch.tensor(_signed(np.random.default_rng(9), (3, 4)), dtype=dtorch.float32)
    for fn in (lambda x: -x, lambda x: +x, abs):
        check_op(fn, fn, inputs=[ad])
    assert (+ad) is ad


def test_every_public_elementwise_op_is_covered():
    """A new op in arithmetic.py, compare.py, unary.py or activation.py must get a parity entry here."""
    from dtorch._ops import activation, arithmetic, compare, unary

    covered = set(UNARY) | set(BINARY) | {"bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "logical_not"}
    whole_tensor = {"isclose", "allclose", "equal"}  # compare.py's closeness checks: tested in tests/core
    missing = [n for m in (arithmetic, compare, unary, activation) for n in m.__all__
               if n not in covered and n not in whole_tensor]
    assert missing == []


@pytest.mark.parametrize("name", ["exp", "sin", "sigmoid", "tanh", "sqrt"])
def test_unary_math_matches_python(name):
    """A check that needs no torch-side rounding: float64 against the math module."""
    x = _data(name, (7,), seed=10)
    got = UNARY[name][0](dtorch, dtorch.tensor(x, dtype=dtorch.float64)).tolist()
    ref = {"exp": math.exp, "sin": math.sin, "sigmoid": lambda v: 1 / (1 + math.exp(-v)), "tanh": math.tanh,
           "sqrt": math.sqrt}[name]
    assert np.allclose(got, [ref(v) for v in x], rtol=1e-14, atol=1e-15)

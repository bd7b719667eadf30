"""Activation functions and modules vs torch: forward, backward, in-place forms, reprs, gradcheck."""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

import dtorch
import dtorch.nn as nn
import dtorch.nn.functional as F
from tests.oracle import check_grads, check_op

# (name, kwargs) for F.<name>(x, **kwargs); the same call on torch.nn.functional is the oracle
FUNCTIONAL = [
    ("relu", {}), ("relu6", {}), ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}),
    ("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}), ("celu", {"alpha": 1.5}),
    ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("mish", {}),
    ("sigmoid", {}), ("tanh", {}), ("hardtanh", {}), ("hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    ("hardsigmoid", {}), ("hardswish", {}), ("logsigmoid", {}), ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 1.0}), ("softsign", {}), ("tanhshrink", {}),
    ("hardshrink", {}), ("softshrink", {"lambd": 0.3}), ("threshold", {"threshold": 0.1, "value": -2.0}),
    ("glu", {}), ("glu", {"dim": 0}),
    ("softmax", {"dim": 1}), ("softmax", {"dim": 0}), ("log_softmax", {"dim": -1}), ("softmin", {"dim": 1}),
]


def _input(device, dtype=dtorch.float32):
    # avoid the kinks (0, +-1, +-3, +-0.5, 6...) where one-sided derivatives differ by convention
    x = dtorch.randn(4, 6, dtype=dtype) * 3
    x = x + (x.abs() < 0.05).to(dtype) * 0.1
    return x.to(device)


@pytest.mark.parametrize("name,kwargs", FUNCTIONAL, ids=[f"{n}-{i}" for i, (n, _) in enumerate(FUNCTIONAL)])
def test_functional_forward_backward_vs_torch(name, kwargs, device, torch):
    check_op(lambda x: getattr(F, name)(x, **kwargs), lambda x: getattr(torch.nn.functional, name)(x, **kwargs),
             inputs=[_input(device).requires_grad_()], grad_rtol=1e-4, grad_atol=1e-5)


@pytest.mark.parametrize("name,kwargs", FUNCTIONAL, ids=[f"{n}-{i}" for i, (n, _) in enumerate(FUNCTIONAL)])
def test_functional_gradcheck_float64(name, kwargs):
    check_grads(lambda t: getattr(F, name)(t, **kwargs), _input("cpu", dtorch.float64).requires_grad_(), gradgrad=False)


def test_prelu_vs_torch(torch):
    x = _input("cpu").reshape(2, 3, 4).requires_grad_()
    w = dtorch.tensor([0.1, 0.2, 0.3], requires_grad=True)
    check_op(F.prelu, torch.nn.functional.prelu, inputs=[x, w], grad_atol=1e-5)
    m = nn.PReLU()
    assert m.weight.shape == (1,) and m.weight.item() == pytest.approx(0.25)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "hardtanh", "relu6", "silu", "selu", "celu",
                                  "mish", "hardsigmoid", "hardswish", "threshold"])
def test_inplace_forms_modify_input(name, torch):
    args = (0.1, -1.0) if name == "threshold" else ()

    def in_place(functional, x):
        out = getattr(functional, name)(x, *args, inplace=True)
        assert out is x
        return x

    check_op(lambda x: in_place(F, x), lambda x: in_place(torch.nn.functional, x), inputs=[_input("cpu")])


def test_inplace_on_non_leaf_backprops(torch):
    check_op(lambda x: F.relu(x * 2, inplace=True) ** 2, lambda x: torch.nn.functional.relu(x * 2, inplace=True) ** 2,
             inputs=[_input("cpu").requires_grad_()])


def test_trailing_underscore_functions():
    x = dtorch.tensor([-1.0, 2.0])
    assert F.relu_(x) is x and x.tolist() == [0.0, 2.0]
    y = dtorch.tensor([-1.0, 2.0])
    assert F.leaky_relu_(y, 0.5) is y and y.tolist() == [-0.5, 2.0]
    z = dtorch.tensor([-3.0, 3.0])
    assert F.hardtanh_(z) is z and z.tolist() == [-1.0, 1.0]


def test_errors_like_torch():
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.gelu(dtorch.zeros(2), approximate="erf")
    with pytest.raises(RuntimeError, match="Halving dimension must be even, but dimension 1 is size 5"):
        F.glu(dtorch.zeros(2, 5))
    with pytest.raises(AssertionError, match="must be greater than min_val"):
        nn.Hardtanh(1.0, 0.0)


# (class name, constructor args) for module parity: forward and repr
MODULES = [
    ("ReLU", ()), ("ReLU", (True,)), ("ReLU6", ()), ("LeakyReLU", ()), ("LeakyReLU", (0.2, True)),
    ("GELU", ()), ("GELU", ("tanh",)), ("SiLU", ()), ("SiLU", (True,)), ("Mish", ()), ("Sigmoid", ()),
    ("Tanh", ()), ("Softmax", (1,)), ("Softmax", ()), ("LogSoftmax", (1,)), ("Softmin", (0,)), ("ELU", ()),
    ("ELU", (0.5, True)), ("CELU", (2.0,)), ("SELU", ()), ("Softplus", ()), ("Softplus", (2, 10)),
    ("Hardtanh", ()), ("Hardtanh", (-2.0, 3.0)), ("Hardsigmoid", ()), ("Hardswish", ()), ("LogSigmoid", ()),
    ("Softsign", ()), ("Tanhshrink", ()), ("Hardshrink", ()), ("Softshrink", (0.2,)), ("GLU", ()),
    ("Threshold", (0.1, 20.0)), ("PReLU", ()), ("PReLU", (3,)), ("Softmax2d", ()),
]


@pytest.mark.parametrize("name,args", MODULES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(MODULES)])
def test_modules_forward_and_repr_vs_torch(name, args, torch):
    m, tm = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(m) == repr(tm)
    x = _input("cpu").reshape(2, 3, 4).requires_grad_(not getattr(m, "inplace", False))  # no leaf in place

    def torch_fn(x):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tm(x)

    implicit_dim = name == "Softmax" and not args  # warns, as torch
    with pytest.warns(UserWarning, match="Implicit dimension") if implicit_dim else contextlib.nullcontext():
        check_op(m, torch_fn, inputs=[x], params=(m.parameters(), tm.parameters()), grad_rtol=1e-4, grad_atol=1e-5)


def test_module_gradients_flow_to_prelu_weight(torch):
    m, tm = nn.PReLU(3), torch.nn.PReLU(3)
    check_op(lambda x: m(x).pow(2), lambda x: tm(x).pow(2), inputs=[_input("cpu").reshape(2, 3, 4)],
             params=(m.parameters(), tm.parameters()), grad_atol=1e-5)


def test_softmax_dtype_argument():
    x = dtorch.randn(3, 4)
    out = F.softmax(x, dim=1, dtype=dtorch.float64)
    assert out.dtype == dtorch.float64
    np.testing.assert_allclose(out.sum(1).numpy(), np.ones(3))

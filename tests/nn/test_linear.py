"""F.linear / F.bilinear and the Linear / Bilinear modules: parity with torch, gradcheck, init, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch.autograd import gradcheck
from tests.oracle import F32_TOL, check_grads, check_op, rand

F32 = dtorch.float32


@pytest.mark.parametrize("shape", [(5, 3), (4, 5, 3), (2, 3, 4, 3)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_parity(device, shape, bias, torch):
    x, w = rand(*shape, device=device, dtype=F32), rand(6, 3, device=device, dtype=F32)
    b = rand(6, device=device, dtype=F32) if bias else None
    check_op(F.linear, torch.nn.functional.linear, inputs=[x, w, b], **F32_TOL)


def test_linear_is_one_node_and_noncontiguous_input(torch):
    x = rand(4, 5, 3, dtype=F32)
    y = F.linear(x, rand(6, 3, dtype=F32), rand(6, dtype=F32))
    assert y.grad_fn.name() == "LinearBackward0"
    xt = rand(3, 5, dtype=F32).detach().t().requires_grad_()
    w = rand(2, 3, dtype=F32)
    check_op(F.linear, torch.nn.functional.linear, inputs=[xt, w], **F32_TOL)


def test_linear_vector_input_and_weight(torch):
    x, w, b = rand(3, dtype=F32), rand(4, 3, dtype=F32), rand(4, dtype=F32)
    check_op(F.linear, torch.nn.functional.linear, inputs=[x, w, b], **F32_TOL)


def test_linear_gradcheck_and_double_backward():
    d = dtorch.float64
    x, w, b = rand(2, 3, 4, dtype=d), rand(5, 4, dtype=d), rand(5, dtype=d)
    check_grads(F.linear, x, w, b)


def test_bilinear_parity_and_gradcheck(torch):
    x1, x2, w, b = rand(2, 4, 3, dtype=F32), rand(2, 4, 5, dtype=F32), rand(6, 3, 5,
                        dtype=F32), rand(6, dtype=F32)
    check_op(F.bilinear, torch.nn.functional.bilinear, inputs=[x1, x2, w, b], **F32_TOL)
    d = dtorch.float64
    assert gradcheck(F.bilinear, (rand(3, 2, dtype=d), rand(3, 4, dtype=d), rand(2, 2, 4, dtype=d),
                                  rand(2, dtype=d)))


@pytest.mark.parametrize("call, msg", [
    (lambda: F.linear(rand(2, 3, dtype=F32), rand(4, 5, dtype=F32)),
     "mat1 and mat2 shapes cannot be multiplied (2x3 and 5x4)"),
    (lambda: F.linear(rand(2, 6, 3, dtype=F32), rand(4, 5, dtype=F32)),
     "mat1 and mat2 shapes cannot be multiplied (12x3 and 5x4)"),
    (lambda: F.linear(rand(2, 3, dtype=dtorch.float64), rand(4, 3, dtype=F32)),
     "expected m1 and m2 to have the same dtype, but got: double != float"),
    (lambda: F.linear(rand(2, 3, dtype=F32), rand(4, 3, dtype=F32), rand(5, dtype=F32)),
     "The expanded size of the tensor (4) must match the existing size (5) at non-singleton dimension 1"),
])
def test_linear_errors(call, msg):
    with pytest.raises(RuntimeError) as e:
        call()
    assert msg in str(e.value)


def test_linear_module_repr_init_and_forward(torch):
    m = dtorch.nn.Linear(400, 30)
    assert repr(m) == repr(torch.nn.Linear(400, 30)) == "Linear(in_features=400, out_features=30, bias=True)"
    assert repr(dtorch.nn.Linear(2, 3, bias=False)) == "Linear(in_features=2, out_features=3, bias=False)"
    assert dtorch.nn.Linear(2, 3, bias=False).bias is None
    bound = 1 / math.sqrt(400)
    w = m.weight.detach().numpy()
    assert w.shape == (30, 400) and np.abs(w).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert np.abs(m.bias.detach().numpy()).max() <= bound
    assert sorted(n for n, _ in m.named_parameters()) == ["bias", "weight"]
    check_op(lambda x, w, b: m(x), torch.nn.functional.linear, inputs=[rand(7, 400, dtype=F32), m.weight, m.bias],
             **F32_TOL)


def test_linear_module_dtype_and_bilinear_module():
    m = dtorch.nn.Linear(3, 2, dtype=dtorch.float64)
    assert m.weight.dtype == dtorch.float64 and m.bias.dtype == dtorch.float64
    b = dtorch.nn.Bilinear(3, 4, 5)
    assert repr(b) == "Bilinear(in1_features=3, in2_features=4, out_features=5, bias=True)"
    assert tuple(b(rand(2, 3, dtype=F32), rand(2, 4, dtype=F32)).shape) == (2, 5)
    assert np.abs(b.weight.detach().numpy()).max() <= 1 / math.sqrt(3)

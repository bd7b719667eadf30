"""The oracle itself: check_op passes on agreement and fails on each kind of disagreement (no vacuous checks)."""
from __future__ import annotations

import pytest

import dtorch
from tests.oracle import check_grads, check_op, leaf, make_inputs, rand, torch_or_skip


def _grad_as(x, value, slope):
    """``value`` forward, ``slope * dL/dout`` backward into ``x``, with no graph behind the slope."""
    return value.detach() + (x - x.detach()) * slope.detach()


def test_agreement_passes():
    torch = torch_or_skip()
    out = check_op(lambda x, y: (x * y).sum(1), lambda x, y: (x * y).sum(1), [(3, 4), (4,)], gradgrad=True)
    assert isinstance(out, dtorch.Tensor) and out.shape == (3,)
    check_op(lambda m, x: m.sort(x, 1), shapes=[(2, 5)])  # a (values, indices) pair
    check_op(lambda m, x: m.exp(x), inputs=[dtorch.tensor([1, 2])])  # no gradient for integers
    lin, tlin = dtorch.nn.Linear(3, 2).double(), torch.nn.Linear(3, 2).double()
    lin.load_state_dict({k: dtorch.tensor(v.detach().numpy()) for k, v in tlin.state_dict().items()})
    check_op(lin, tlin, [(4, 3)], params=(lin.parameters(), tlin.parameters()))


def test_forward_value_dtype_and_requires_grad_mismatches_fail():
    torch_or_skip()
    with pytest.raises(AssertionError):
        check_op(lambda x: x * 2, lambda x: x * 2.001, [(3,)], grad=False)
    with pytest.raises(AssertionError, match="dtype"):
        check_op(lambda x: x.float(), lambda x: x, [(3,)], grad=False)
    with pytest.raises(AssertionError, match="requires_grad"):
        check_op(lambda x: x.detach(), lambda x: x, [(3,)])
    with pytest.raises(AssertionError, match="outputs"):
        check_op(lambda m, x: (x, x) if m is dtorch else x, shapes=[(3,)], grad=False)


def test_gradient_mismatch_fails():
    torch_or_skip()
    with pytest.raises(AssertionError):
        check_op(lambda x: _grad_as(x, x * 2, dtorch.tensor(3.0, dtype=x.dtype)), lambda x: x * 2, [(3, 2)])
    with pytest.raises(AssertionError, match="gradient"):  # torch has one, dtorch none
        check_op(lambda x, y: x * y.detach(), lambda x, y: x * y, [(3,), (3,)])
    with pytest.raises(AssertionError, match="gradient"):  # dtorch has one, torch none
        check_op(lambda x, y: x * y, lambda x, y: x * y.detach(), [(3,), (3,)])


def test_second_derivative_mismatch_fails():
    torch_or_skip()
    cube = lambda x: _grad_as(x, x ** 3, 3 * x ** 2)  # right value and slope, but the slope has no graph
    check_op(cube, lambda x: x ** 3, [(4,)])
    with pytest.raises(AssertionError):
        check_op(cube, lambda x: x ** 3, [(4,)], gradgrad=True)


def test_parameter_gradient_mismatch_fails():
    torch = torch_or_skip()
    lin, tlin = dtorch.nn.Linear(3, 2).double(), torch.nn.Linear(3, 2).double()
    lin.load_state_dict({k: dtorch.tensor(v.detach().numpy()) for k, v in tlin.state_dict().items()})
    with pytest.raises(AssertionError):
        check_op(lambda x: lin(x) * 1.0, lambda x: tlin(x), [(4, 3)], params=([lin.weight], [tlin.bias]))


def test_indices_are_compared_unless_told():
    torch_or_skip()
    x = leaf([[1.0, 1.0, 0.0]])
    flip = lambda m, t: (m.zeros_like(t), m.tensor([[1, 0, 2]]))
    same = lambda m, t: (m.zeros_like(t), m.tensor([[0, 1, 2]]))
    with pytest.raises(AssertionError):
        check_op(lambda m, t: flip(m, t) if m is dtorch else same(m, t), inputs=[x], grad=False)
    check_op(lambda m, t: flip(m, t) if m is dtorch else same(m, t), inputs=[x], grad=False, check_indices=False)


def test_errors_must_match_torch():
    torch_or_skip()
    check_op(lambda m, x: x.exp_(), inputs=[dtorch.tensor([1, 2])], errors=True)  # both: int can't hold exp
    with pytest.raises(RuntimeError):  # without errors=True, torch raising is a failure
        check_op(lambda m, x: x.exp_(), inputs=[dtorch.tensor([1, 2])])
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        check_op(lambda x: x * 2, lambda x: x.exp_(), inputs=[dtorch.tensor([1, 2])], errors=True)
    with pytest.raises(AssertionError, match="torch raises"):
        check_op(lambda x: x[5], lambda x: x.exp_(), inputs=[dtorch.tensor([1, 2])], errors=True)  # IndexError


def test_inputs_helpers():
    a, b = make_inputs([(2, 3), ()], low=1.0, high=2.0, seed=3)
    assert a.dtype == dtorch.float64 and a.requires_grad and b.shape == ()
    assert ((a >= 1.0) & (a < 2.0)).all().item()
    assert make_inputs([(2,)], make=lambda rng, s: [5.0, 6.0])[0].tolist() == [5.0, 6.0]
    assert not make_inputs([(2,)], requires_grad=False)[0].requires_grad
    assert rand(2, dtype=dtorch.float32).dtype == dtorch.float32 and rand(2).requires_grad
    assert not leaf([1, 2], dtype=dtorch.int64).requires_grad and leaf([1]).dtype == dtorch.float64
    check_grads(lambda t: t.sin() * t, rand(3))
    with pytest.raises(Exception):  # noqa: B017 - gradcheck's error type
        check_grads(lambda t: _grad_as(t, t.sin(), t.cos() * 1.5), rand(3), gradgrad=False)

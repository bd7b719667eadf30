"""Autograd: graphs, backward/grad options, grad modes, hooks, version checks, custom Functions,
gradcheck and anomaly detection."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dtorch
from dtorch.autograd import Function
from tests.oracle import assert_close, check_op


def _names(node) -> list:
    return [None if n is None else n.name() for n, _ in node.next_functions]


# ---- the tutorial cases ------------------------------------------------------------------------
def test_chain_rule_scalar(device):
    x = dtorch.tensor(2.0, requires_grad=True, device=device)
    y = x ** 2
    z = 3 * y
    loss = z + 1
    loss.backward()
    assert x.grad.item() == 12.0  # d(3x^2 + 1)/dx = 6x
    assert loss.grad_fn.name() == "AddBackward0"
    assert z.grad_fn.name() == "MulBackward0" and y.grad_fn.name() == "PowBackward0"
    assert _names(loss.grad_fn) == ["MulBackward0", None]  # the scalar 1 has no edge
    assert _names(z.grad_fn) == ["PowBackward0", None]  # 3 * y is y * 3, as torch
    assert _names(y.grad_fn) == ["AccumulateGrad"]  # x ** 2 has one input
    assert y.grad_fn.next_functions[0][0].variable is x
    assert x.is_leaf and not y.is_leaf and x.grad_fn is None


def test_product_rule_two_leaves(device):
    x = dtorch.tensor(3.0, requires_grad=True, device=device)
    y = dtorch.tensor(2.0, requires_grad=True, device=device)
    loss = (x * y) ** 2
    loss.backward()
    assert x.grad.item() == 24.0 and y.grad.item() == 36.0  # 2xy^2, 2x^2y
    mul = loss.grad_fn.next_functions[0][0]
    assert mul.name() == "MulBackward0"
    (ax, nx), (ay, ny) = mul.next_functions
    assert ax.name() == ay.name() == "AccumulateGrad" and ax is not ay
    assert ax.variable is x and ay.variable is y and nx == ny == 0


def test_first_and_second_derivative_of_cube(device):
    x = dtorch.tensor(2.0, requires_grad=True, device=device)
    y = x ** 3
    g, = dtorch.autograd.grad(y, x, create_graph=True)
    assert g.item() == 12.0 and g.requires_grad and g.grad_fn is not None
    g2, = dtorch.autograd.grad(g, x)
    assert g2.item() == 12.0  # 6x
    assert x.grad is None  # autograd.grad does not accumulate


def test_second_derivative_through_backward_create_graph():
    x = dtorch.tensor(2.0, requires_grad=True)
    (x ** 3).backward(create_graph=True)
    g = x.grad
    assert g.item() == 12.0 and g.requires_grad
    x.grad = None
    g.backward()
    assert x.grad.item() == 12.0


def test_node_names_match_torch(torch):

    def names(m):
        a = m.tensor([1.5, 2.5], requires_grad=True)
        b = m.tensor([0.5, 3.0], requires_grad=True)
        outs = [a + b, a - b, a * b, a / b, a ** 2, a ** b, 2 ** a, -a, a.exp(), a.log(), a.sin(), a.tanh(),
                a.sigmoid(), a.sqrt(), a.abs(), a.clamp(0, 2), a.sum(), a.mean(), a.view(2, 1), a.clone(),
                a.to(m.float64), 1 - a, 2 / a, a % 2, a.relu(), a.square(), a.log1p()]
        return [o.grad_fn.name() for o in outs]

    assert names(dtorch) == names(torch)


# ---- backward options ---------------------------------------------------------------------------
def test_backward_twice_needs_retain_graph():
    x = dtorch.tensor(2.0, requires_grad=True)
    y = x.exp() * x
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward(torch):
    out = []
    for m in (dtorch, torch):
        x = m.tensor([0.5, 2.0], requires_grad=True)
        y = (x.exp() * x).sum()
        y.backward(retain_graph=True)
        first = x.grad.clone()
        y.backward()
        out.append((first, x.grad))
    assert_close(out[0][0], out[1][0])
    assert_close(out[0][1], out[1][1])
    assert np.allclose(out[0][1].numpy(), 2 * out[0][0].numpy())


def test_non_scalar_backward_needs_gradient():
    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(dtorch.tensor([1.0, 3.0]))
    assert x.grad.tolist() == [2.0, 6.0]
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(dtorch.tensor([1.0, 3.0, 4.0]))


def test_backward_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        dtorch.ones(2).sum().backward()


def test_backward_inputs_restricts_accumulation():
    x = dtorch.tensor(2.0, requires_grad=True)
    y = dtorch.tensor(3.0, requires_grad=True)
    (x * y).backward(inputs=[x])
    assert x.grad.item() == 3.0 and y.grad is None
    h = x * 3
    (h * h).backward(inputs=[h])
    assert h.grad.item() == 12.0 and x.grad.item() == 3.0  # the leaf is untouched
    with pytest.raises(RuntimeError, match="cannot be empty"):
        (x * y).backward(inputs=[])


def test_grad_accumulates_across_backward_calls():
    x = dtorch.tensor([2.0, 1.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [7.0, 5.0]
    x.grad.zero_()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_grad_accumulates_for_zero_dim_leaf_used_twice():
    x = dtorch.tensor(2.0, requires_grad=True)
    (x * x).backward()  # two edges into one AccumulateGrad: the engine adds the two 0-d gradients
    assert isinstance(x.grad._data, np.ndarray) and repr(x.grad) == "tensor(4.)"
    (x * 3).backward()
    assert x.grad.item() == 7.0
    w = dtorch.tensor(2.0, requires_grad=True)  # e.g. a scalar parameter used in two terms of a loss
    ((w * dtorch.ones(3)).sum() + (w * dtorch.ones(3) * 2).sum()).backward()
    w.grad.zero_()
    assert w.grad.item() == 0.0


def test_autograd_grad_options():
    x = dtorch.tensor(2.0, requires_grad=True)
    y = dtorch.tensor(3.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="The differentiated Tensor at index 1 appears to not have been used"):
        dtorch.autograd.grad(x * 2, [x, y])
    gx, gy = dtorch.autograd.grad(x * 2, [x, y], allow_unused=True)
    assert gx.item() == 2.0 and gy is None
    gx, gy = dtorch.autograd.grad(x * 2, [x, y], materialize_grads=True)
    assert gy.item() == 0.0
    v = dtorch.tensor([1.0, 2.0], requires_grad=True)
    g, = dtorch.autograd.grad(v * v, v, grad_outputs=dtorch.tensor([1.0, 10.0]))
    assert g.tolist() == [2.0, 40.0] and v.grad is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        dtorch.autograd.grad(v.sum(), dtorch.ones(2))


def test_grad_of_zero_dim_is_a_tensor():
    x = dtorch.tensor(2.0, requires_grad=True)
    g, = dtorch.autograd.grad(x * x, x)
    assert isinstance(g._data, np.ndarray) and g.shape == () and g.item() == 4.0
    assert repr(g) == "tensor(4.)"


def test_grads_never_alias_each_other():
    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    b = dtorch.tensor([1.0, 2.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.add_(100)
    assert b.grad.tolist() == [1.0, 1.0]
    c = dtorch.tensor([1.0, 2.0], requires_grad=True)
    d = dtorch.tensor([3.0, 4.0], requires_grad=True)
    (c * 1 + d).sum().backward()
    c.grad.mul_(5)
    assert d.grad.tolist() == [1.0, 1.0]
    e = dtorch.tensor([1.0, 2.0], requires_grad=True)
    f = dtorch.tensor([1.0, 2.0], requires_grad=True)
    g = dtorch.tensor([5.0, 6.0])
    (e + f).backward(g)
    e.grad.add_(1)
    assert f.grad.tolist() == [5.0, 6.0] and g.tolist() == [5.0, 6.0]
    e.backward(g)  # a leaf's own gradient is copied too
    e.grad.add_(1)
    assert g.tolist() == [5.0, 6.0]


def test_grad_of_a_plus_a():
    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    (a + a).sum().backward()
    assert a.grad.tolist() == [2.0, 2.0]
    b = dtorch.tensor([1.0, 2.0], requires_grad=True)
    (a - b).sum().backward()
    a.grad.add_(1)
    b.grad.add_(1)
    assert a.grad.tolist() == [4.0, 4.0] and b.grad.tolist() == [0.0, 0.0]


# ---- grad modes ---------------------------------------------------------------------------------
def test_grad_mode_context_managers_and_decorators():
    x = dtorch.ones(2, requires_grad=True)
    with dtorch.no_grad():
        assert not dtorch.is_grad_enabled()
        assert not (x * 2).requires_grad
        with dtorch.enable_grad():
            assert (x * 2).requires_grad
    assert dtorch.is_grad_enabled()

    @dtorch.no_grad()
    def f(t):
        return t * 2

    @dtorch.enable_grad()
    def g(t):
        return t * 2

    assert not f(x).requires_grad
    with dtorch.no_grad():
        assert g(x).requires_grad
    with dtorch.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    dtorch.set_grad_enabled(False)
    assert not (x * 2).requires_grad
    dtorch.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with dtorch.no_grad():
            raise ValueError
    assert dtorch.is_grad_enabled()


def test_inference_mode():
    x = dtorch.ones(2, requires_grad=True)
    with dtorch.inference_mode():
        assert dtorch.is_inference_mode_enabled() and not dtorch.is_grad_enabled()
        assert not (x * 2).requires_grad

    @dtorch.inference_mode()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert not dtorch.is_inference_mode_enabled() and dtorch.is_grad_enabled()


def test_inference_mode_false_inside():
    with dtorch.inference_mode():
        with dtorch.inference_mode(False):
            assert not dtorch.is_inference_mode_enabled() and dtorch.is_grad_enabled()


# ---- leaves, requires_grad, detach, retain_grad -----------------------------------------------------
def test_requires_grad_and_detach():
    x = dtorch.ones(2)
    assert x.requires_grad_() is x and x.requires_grad and x.is_leaf
    y = x * 2
    assert y.requires_grad and not y.is_leaf
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)
    assert y.requires_grad_() is y
    y.detach_()
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    d = x.detach()
    assert not d.requires_grad and d.data_ptr() == x.data_ptr()
    x.requires_grad = False
    assert not x.requires_grad


def test_retain_grad():
    x = dtorch.tensor(2.0, requires_grad=True)
    y = x * 3
    y.retain_grad()
    assert y.retains_grad and not x.retains_grad
    (y * y).backward()
    assert y.grad.item() == 12.0 and x.grad.item() == 36.0
    z = x * 2
    with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed"):
        assert z.grad is None
    with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has requires_grad=False"):
        dtorch.ones(1).retain_grad()


def test_assigning_grad_checks():
    x = dtorch.ones(2, requires_grad=True)
    x.grad = dtorch.full((2,), 3.0)
    (x * 1).sum().backward()
    assert x.grad.tolist() == [4.0, 4.0]
    with pytest.raises(RuntimeError, match="assigned grad has data of a different size"):
        x.grad = dtorch.ones(3)
    with pytest.raises(RuntimeError, match="assigned grad has data of type"):
        x.grad = dtorch.ones(2, dtype=dtorch.float64)
    with pytest.raises(TypeError):
        x.grad = [1.0, 2.0]


# ---- hooks ----------------------------------------------------------------------------------------
def test_tensor_hooks_see_and_modify_grads():
    x = dtorch.tensor(2.0, requires_grad=True)
    y = x * 3
    seen = []
    h = y.register_hook(lambda g: seen.append(("y", g.item())) or g * 10)
    x.register_hook(lambda g: seen.append(("x", g.item())))
    (y * y).backward()
    assert seen == [("y", 12.0), ("x", 360.0)] and x.grad.item() == 360.0
    h.remove()
    x.grad = None
    y2 = x * 3
    (y2 * y2).backward()
    assert x.grad.item() == 36.0


def test_leaf_hook_modifies_accumulated_grad():
    x = dtorch.tensor(2.0, requires_grad=True)
    x.register_hook(lambda g: g * 2)
    (x * 5).backward()
    assert x.grad.item() == 10.0
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        dtorch.ones(1).register_hook(lambda g: g)


def test_post_accumulate_grad_hook():
    x = dtorch.tensor([2.0], requires_grad=True)
    seen = []
    handle = x.register_post_accumulate_grad_hook(lambda t: seen.append((t is x, t.grad.item())))
    (x * x).sum().backward()
    (x * x).sum().backward()
    assert seen == [(True, 4.0), (True, 8.0)]
    handle.remove()
    (x * x).sum().backward()
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be registered on non-leaf tensors"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)


def test_node_hooks(torch):
    res = []
    for m in (dtorch, torch):
        x = m.tensor(2.0, requires_grad=True)
        y = x * 3
        z = y.exp()
        seen = []
        z.grad_fn.register_prehook(lambda go, seen=seen: seen.append(("pre", go[0].item())))
        y.grad_fn.register_hook(
            lambda gi, go, seen=seen: seen.append(("post", gi[0].item(), go[0].item())) or (gi[0] * 2, None))
        z.backward()
        res.append((seen, x.grad.item()))
    assert res[0][0][0] == res[1][0][0]
    assert np.allclose(res[0][0][1][1:], res[1][0][1][1:], rtol=1e-6)
    assert math.isclose(res[0][1], res[1][1], rel_tol=1e-6)


def test_prehook_can_replace_grad():
    x = dtorch.tensor(2.0, requires_grad=True)
    y = x * 3
    y.grad_fn.register_prehook(lambda go: (go[0] * 0 + 1,))
    (y * 100).backward()
    assert x.grad.item() == 3.0


# ---- version checks ------------------------------------------------------------------------------------
def test_inplace_on_leaf_requiring_grad_raises():
    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        x.mul_(2)
    with dtorch.no_grad():
        x.mul_(2)
    assert x.tolist() == [2.0, 2.0] and x._version == 1


@pytest.mark.parametrize("case,which", [
    ("input", "an input of MulBackward0"),
    ("output", "output 0 of ExpBackward0"),
    ("sigmoid", "output 0 of SigmoidBackward0"),
])
def test_modified_saved_tensor_raises_at_backward(case, which):
    x = dtorch.ones(2, requires_grad=True)
    if case == "input":
        y = x * 2
        z = y * y
        y.add_(1)
    elif case == "output":
        z = x.exp()
        z.add_(1)
    else:
        z = x.sigmoid()
        z.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation") as e:
        z.sum().backward()
    assert which in str(e.value) and "is at version 1; expected version 0 instead" in str(e.value)


def test_unsaved_tensor_may_be_modified():
    x = dtorch.ones(2, requires_grad=True)
    y = x * 1
    z = y + 3  # add saves nothing
    y.mul_(5)
    z.sum().backward()  # z's graph refers to y's history before the in-place op
    assert x.grad.tolist() == [1.0, 1.0]


def test_inplace_keeps_correct_gradient():
    def fn(m, x):
        y = x * 2
        y.add_(1).mul_(m.tensor([2.0, 3.0, 4.0]))
        return y.sin_().exp_()

    check_op(fn, inputs=[dtorch.tensor([1.0, 2.0, 3.0], requires_grad=True)])


# ---- custom Functions -----------------------------------------------------------------------------------
class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        r = x.exp()
        ctx.save_for_backward(r)
        return r

    @staticmethod
    def backward(ctx, g):
        r, = ctx.saved_tensors
        return g * r  # written with dtorch ops: differentiable itself


def test_custom_function_forward_backward():
    x = dtorch.tensor([1.0, 2.0], dtype=dtorch.float64, requires_grad=True)
    y = Exp.apply(x)
    assert y.grad_fn.name() == "ExpBackward" and y.requires_grad and not y.is_leaf
    assert _names(y.grad_fn) == ["AccumulateGrad"]
    y.sum().backward()
    assert np.allclose(x.grad.numpy(), np.exp([1.0, 2.0]))
    assert not Exp.apply(dtorch.ones(2)).requires_grad
    with dtorch.no_grad():
        assert Exp.apply(x).grad_fn is None


def test_custom_function_backward_is_differentiable():
    x = dtorch.tensor([1.0, 2.0], dtype=dtorch.float64, requires_grad=True)
    g, = dtorch.autograd.grad(Exp.apply(x).sum(), x, create_graph=True)
    g2, = dtorch.autograd.grad(g.sum(), x)
    assert np.allclose(g2.numpy(), np.exp([1.0, 2.0]))
    assert dtorch.autograd.gradcheck(Exp.apply, (x,))
    assert dtorch.autograd.gradgradcheck(Exp.apply, (x,))


def test_saved_tensors_freed_after_backward():
    x = dtorch.tensor([1.0], requires_grad=True)
    y = Exp.apply(x)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        _ = y.grad_fn.saved_tensors


def test_custom_function_needs_input_grad_and_non_tensor_args():
    class Scale(Function):
        @staticmethod
        def forward(ctx, a, b, k):
            ctx.k = k
            ctx.save_for_backward(a, b)
            return a * b * k

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            ctx.seen = ctx.needs_input_grad
            return (g * b * ctx.k if ctx.needs_input_grad[0] else None,
                    g * a * ctx.k if ctx.needs_input_grad[1] else None, None)

    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    b = dtorch.tensor([3.0, 4.0])
    y = Scale.apply(a, b, 2.0)
    y.sum().backward()
    assert a.grad.tolist() == [6.0, 8.0] and y.grad_fn.seen == (True, False, False)


def test_custom_function_setup_context():
    class Mul(Function):
        @staticmethod
        def forward(a, k):
            return a * k

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.k = inputs[1]

        @staticmethod
        def backward(ctx, g):
            return g * ctx.k, None

    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    Mul.apply(a, 3.0).sum().backward()
    assert a.grad.tolist() == [3.0, 3.0]


def test_custom_function_mark_dirty():
    class Double(Function):
        @staticmethod
        def forward(ctx, a):
            a.mul_(2)
            ctx.mark_dirty(a)
            return a

        @staticmethod
        def backward(ctx, g):
            return g * 2

    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    b = a * 1
    c = Double.apply(b)
    assert c is b and c.grad_fn.name() == "DoubleBackward" and b._version == 2  # as torch
    (c * c).sum().backward()
    assert a.grad.tolist() == [8.0, 16.0]
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad has been used in an in-place"):
        Double.apply(dtorch.tensor([1.0], requires_grad=True))


def test_custom_function_mark_non_differentiable():
    class WithMask(Function):
        @staticmethod
        def forward(ctx, a):
            mask = (a > 1).to(a.dtype)
            ctx.mark_non_differentiable(mask)
            return a * 2, mask

        @staticmethod
        def backward(ctx, g, gmask):
            return g * 2

    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    y, mask = WithMask.apply(a)
    assert not mask.requires_grad and y.requires_grad
    y.sum().backward()
    assert a.grad.tolist() == [2.0, 2.0]


def test_custom_function_materialize_grads():
    class Two(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2, a * 3

        @staticmethod
        def backward(ctx, g1, g2):
            ctx.got = (g1.tolist(), g2.tolist())
            return g1 * 2 + g2 * 3

    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    y1, _ = Two.apply(a)
    y1.sum().backward()
    assert a.grad.tolist() == [2.0, 2.0] and y1.grad_fn.got == ([1.0, 1.0], [0.0, 0.0])


def test_custom_function_set_materialize_grads_false():
    class Two(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.set_materialize_grads(False)
            return a * 2, a * 3

        @staticmethod
        def backward(ctx, g1, g2):
            ctx.got = (g1 is None, g2 is None)
            return g1 * 2 if g2 is None else g1 * 2 + g2 * 3

    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    y1, _ = Two.apply(a)
    y1.sum().backward()
    assert y1.grad_fn.got == (False, True)


def test_once_differentiable():
    class Square(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a ** 2

        @staticmethod
        @dtorch.autograd.function.once_differentiable
        def backward(ctx, g):
            a, = ctx.saved_tensors
            return 2 * a * g

    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    g, = dtorch.autograd.grad(Square.apply(a).sum(), a, create_graph=True)
    assert g.tolist() == [2.0, 4.0] and not g.requires_grad  # the incoming grad did not require grad
    y = Square.apply(a) * a
    g, = dtorch.autograd.grad(y.sum(), a, create_graph=True)
    with pytest.raises(RuntimeError, match="trying to differentiate twice a function that was marked with "
                                           "@once_differentiable"):
        g.sum().backward()


def test_custom_function_wrong_number_of_grads():
    class Bad(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g

    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="returned an incorrect number of gradients"):
        Bad.apply(a, a).sum().backward()


def test_custom_function_saved_tensor_modified():
    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    b = a * 1
    y = Exp.apply(b)
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_custom_function_returning_input_gives_new_tensor():
    class Ident(Function):
        @staticmethod
        def forward(ctx, a):
            return a

        @staticmethod
        def backward(ctx, g):
            return g * 5

    a = dtorch.tensor([1.0, 2.0], requires_grad=True)
    y = Ident.apply(a)
    assert y is not a and y.data_ptr() == a.data_ptr()
    y.sum().backward()
    assert a.grad.tolist() == [5.0, 5.0]


# ---- gradcheck / gradgradcheck ----------------------------------------------------------------------
def test_gradcheck_passes_and_fails():
    x = dtorch.tensor([1.0, 2.0], dtype=dtorch.float64, requires_grad=True)
    assert dtorch.autograd.gradcheck(lambda t: (t * t).sin(), (x,))

    class Wrong(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3

    assert dtorch.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        dtorch.autograd.gradcheck(Wrong.apply, (x,))


def test_gradgradcheck_catches_a_non_differentiable_backward():
    class Cube(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a ** 3

        @staticmethod
        def backward(ctx, g):
            a, = ctx.saved_tensors
            return g * 3 * a.detach() ** 2  # right first derivative, wrong second

    x = dtorch.tensor([1.0, 2.0], dtype=dtorch.float64, requires_grad=True)
    assert dtorch.autograd.gradcheck(Cube.apply, (x,))
    assert dtorch.autograd.gradgradcheck(Cube.apply, (x,), raise_exception=False) is False
    assert dtorch.autograd.gradgradcheck(lambda t: t ** 3, (x,))


def test_gradcheck_non_contiguous_and_zero_dim_inputs():
    base = dtorch.tensor([[0.5, -1.0, 0.2], [2.0, 0.3, 1.1]], dtype=dtorch.float64)
    a = base.t().requires_grad_()
    assert not a.is_contiguous()
    s = dtorch.tensor(0.7, dtype=dtorch.float64, requires_grad=True)
    assert dtorch.autograd.gradcheck(lambda x, y: (x * y).exp() * dtorch.arange(3.0, dtype=dtorch.float64).view(3, 1),
                                     (a, s))
    assert a.tolist() == base.t().tolist()  # the perturbations were undone


def test_gradcheck_multiple_inputs_and_outputs():
    a = dtorch.tensor([[0.5, -1.0], [2.0, 0.3]], dtype=dtorch.float64, requires_grad=True)
    b = dtorch.tensor([0.7, 1.5], dtype=dtorch.float64, requires_grad=True)
    assert dtorch.autograd.gradcheck(lambda x, y: (x * y, (x + y).exp()), (a, b))
    assert dtorch.autograd.gradgradcheck(lambda x, y: (x * y).tanh(), (a, b))


# ---- anomaly detection -------------------------------------------------------------------------------
def test_detect_anomaly_names_the_op():
    x = dtorch.tensor([0.0, 1.0], requires_grad=True)
    with dtorch.autograd.detect_anomaly():
        assert dtorch.is_anomaly_enabled()
        y = (x * 0).sqrt()  # sqrt's gradient at 0 is inf, times 0 in MulBackward0: NaN
        with pytest.raises(RuntimeError, match="Function 'MulBackward0' returned nan values in its 0th output") as e:
            y.sum().backward()
    assert "y = (x * 0).sqrt()" in str(e.value) or "test_detect_anomaly_names_the_op" in str(e.value)
    assert not dtorch.is_anomaly_enabled()
    x.grad = None
    (x * 0).sqrt().sum().backward()  # off: NaN passes silently
    assert math.isnan(x.grad.tolist()[0])


def test_set_detect_anomaly():
    with dtorch.autograd.set_detect_anomaly(True):
        assert dtorch.is_anomaly_enabled()
    assert not dtorch.is_anomaly_enabled()
    dtorch.autograd.set_detect_anomaly(True)
    assert dtorch.is_anomaly_enabled()
    dtorch.autograd.set_detect_anomaly(False)
    assert not dtorch.is_anomaly_enabled()


def test_detect_anomaly_as_decorator():
    try:
        @dtorch.autograd.detect_anomaly()
        def f():
            return dtorch.is_anomaly_enabled()

        assert not dtorch.is_anomaly_enabled()
        assert f() and not dtorch.is_anomaly_enabled()
    finally:
        dtorch.autograd.set_detect_anomaly(False)

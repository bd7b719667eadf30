"""Graph passes: node counts before/after, outputs unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch import jit, nn
from tests.jit.models import cnn, gpt_block, mlp


def _fn_graph(fn, *inputs):
    return jit.trace(fn, inputs, check_trace=False)


def _rerun(traced, graph, inputs):
    """The outputs of ``graph`` (a pass's result) and of the traced original on ``inputs``."""
    from dtorch.jit._exec import Plan

    got = Plan(graph).run_arrays([t._data for t in inputs])
    want = Plan(traced.graph).run_arrays([t._data for t in inputs])
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_dead_code_elimination():
    def f(x):
        unused = (x.exp() * 3).sum()  # noqa: F841
        return x + 1

    x = dtorch.randn(3)
    t = _fn_graph(f, x)
    g = t.graph.copy()
    before = g.count()
    assert jit.eliminate_dead_code(g) == 4 and g.count() == before - 3  # exp, mul, sum and a constant
    assert [n.op for n in g.nodes if n.op != "prim::Constant"] == ["add"]
    _rerun(t, g, [x])


def test_common_subexpression_elimination_not_across_in_place_or_random():
    def f(x):
        a = x.exp() + x.exp()
        x.mul_(2)
        b = x.exp()  # x changed in between: not the same value as the exps above
        return a + b

    x = dtorch.randn(3)
    t = _fn_graph(f, x.clone())
    g = t.graph.copy()
    assert g.count("exp") == 3
    assert jit.eliminate_common_subexpression(g) >= 1 and g.count("exp") == 2
    got = jit.trace(f, x.clone(), check_trace=False)
    from dtorch.jit._exec import Plan

    np.testing.assert_allclose(Plan(g).run_arrays([x.clone()._data])[0], got(x.clone()).numpy(), rtol=1e-6)

    def random(x):
        return F.dropout(x, 0.5, True) + F.dropout(x, 0.5, True)

    g2 = _fn_graph(random, x).graph.copy()
    jit.eliminate_common_subexpression(g2)
    assert g2.count("dropout") == 2


def test_constant_folding():
    def f(x):
        return x + (dtorch.ones(3) * 2).exp()

    x = dtorch.randn(3)
    t = _fn_graph(f, x)
    g = t.graph.copy()
    assert g.count("mul") == 1 and g.count("exp") == 1
    assert jit.constant_fold(g) == 2
    jit.eliminate_dead_code(g)
    assert g.count() == 1 and g.count("add") == 1
    _rerun(t, g, [x])


def test_algebraic_simplification():
    def f(x):
        y = (x * 1 + 0) / 1
        y = y.transpose(0, 1).transpose(0, 1)
        y = y.view(6, 2).reshape(3, 4).view(2, 6)
        y = y.t().t().permute(1, 0).permute(1, 0)
        return F.dropout(y, 0.2, True).to(dtorch.float32)

    x = dtorch.randn(2, 6)
    t = _fn_graph(f, x)
    g = t.graph.copy()
    assert g.count() == 13
    jit.simplify(g)
    assert [n.op for n in g.nodes if n.op != "prim::Constant"] == ["dropout"]  # the chain ends at x's shape
    _rerun(t, g, [x])
    jit.simplify(g, inference=True)
    assert g.count() == 0 and g.outputs == g.inputs


def test_freeze_folds_conv_and_batch_norm():
    model = cnn(dtorch).eval()
    with dtorch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
    x = dtorch.randn(2, 3, 8, 8)
    traced = jit.trace(model, x)
    frozen = jit.freeze(traced)
    g = frozen.graph
    assert len(g.inputs) == 1 and not list(frozen.parameters())
    assert traced.graph.count() == 15 and g.count() == 5
    assert [n.op for n in g.nodes if n.op != "prim::Constant"] == ["convolution", "relu", "max_pool", "view",
                                                                   "linear"]
    with dtorch.no_grad():
        for batch in (2, 3):
            xb = dtorch.randn(batch, 3, 8, 8)
            np.testing.assert_allclose(frozen(xb).numpy(), model(xb).numpy(), rtol=1e-5, atol=1e-5)


def test_freeze_folds_linear_and_batch_norm_1d():
    model = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU()).eval()
    with dtorch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    x = dtorch.randn(5, 6)
    frozen = jit.freeze(jit.trace(model, x))
    assert [n.op for n in frozen.graph.nodes if n.op != "prim::Constant"] == ["linear", "relu"]
    with dtorch.no_grad():
        np.testing.assert_allclose(frozen(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_freeze_refuses_training_mode_and_non_script_modules():
    model = mlp(dtorch)
    with pytest.raises(RuntimeError, match="only implemented for modules in eval mode"):
        jit.freeze(jit.trace(model, dtorch.randn(2, 8)))
    with pytest.raises(RuntimeError, match="Freezing expects a ScriptModule"):
        jit.freeze(model)


@pytest.mark.parametrize("make,shape", [(mlp, (3, 8)), (gpt_block, (3, 8, 16)), (cnn, (3, 3, 8, 8))])
def test_optimize_for_inference_keeps_outputs(make, shape):
    model = make(dtorch).eval()
    traced = jit.trace(model, dtorch.randn(*shape))
    opt = jit.optimize_for_inference(traced)
    assert opt.graph.count() <= traced.graph.count() and len(opt.graph.inputs) == 1
    x = dtorch.randn(5, *shape[1:])
    with dtorch.no_grad():
        np.testing.assert_allclose(opt(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    assert "prim::Constant" in str(opt.graph)

"""dtorch.jit.trace: recorded graphs replay the eager models, in place ops and views, checks, warnings."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import dtorch
from dtorch import jit, nn
from tests.jit.models import cnn, copy_weights, gpt_block, mlp

MODELS = {
    "mlp": (lambda lib: mlp(lib), lambda lib, b: lib.randn(b, 8)),
    "cnn": (lambda lib: cnn(lib), lambda lib, b: lib.randn(b, 3, 8, 8)),
    "gpt": (lambda lib: gpt_block(lib), lambda lib, b: lib.randn(b, 8, 16)),
    "gpt_sdpa": (lambda lib: gpt_block(lib, sdpa=True), lambda lib, b: lib.randn(b, 8, 16)),
}


def _eval_model(name):
    make, data = MODELS[name]
    model = make(dtorch).eval()
    if name == "cnn":  # non-trivial running statistics
        with dtorch.no_grad():
            model.bn.running_mean.uniform_(-0.5, 0.5)
            model.bn.running_var.uniform_(0.5, 2.0)
    return model, data


@pytest.mark.parametrize("name", sorted(MODELS))
def test_traced_models_equal_eager_at_two_batch_sizes(name):
    model, data = _eval_model(name)
    traced = jit.trace(model, data(dtorch, 2))
    for batch in (2, 5):
        x = data(dtorch, batch)
        with dtorch.no_grad():
            np.testing.assert_allclose(traced(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["mlp", "cnn", "gpt"])
def test_traced_module_trains_through_the_recorded_ops(name):
    model, data = _eval_model(name)
    traced = jit.trace(model, data(dtorch, 2))
    x = data(dtorch, 3)
    traced(x).square().sum().backward()
    grads = {k: p.grad.clone() for k, p in traced.named_parameters()}
    model.zero_grad()
    model(x).square().sum().backward()
    assert grads and set(grads) == {k for k, _ in model.named_parameters()}
    for k, p in model.named_parameters():
        np.testing.assert_allclose(grads[k].numpy(), p.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_graph_records_every_op_once_and_params_as_named_inputs():
    model, data = _eval_model("cnn")
    g = jit.trace(model, data(dtorch, 2)).graph
    names = [v.name for v in g.inputs]
    assert names == ["x", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias",
                     "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]  # parameters, then buffers
    ops = [n.op for n in g.nodes if n.op != "prim::Constant"]
    assert ops[0] == "convolution" and ops[-4:] == ["relu", "max_pool", "view", "linear"]  # BN eval: arithmetic
    assert ops.count("convolution") == ops.count("linear") == 1


def test_script_module_keeps_the_hierarchy_and_state():
    model, data = _eval_model("gpt")
    traced = jit.trace(model, data(dtorch, 2))
    assert isinstance(traced, jit.ScriptModule) and isinstance(traced, nn.Module)
    assert [k for k, _ in traced.named_parameters()] == [k for k, _ in model.named_parameters()]
    assert list(traced.state_dict()) == list(model.state_dict())
    assert isinstance(traced.attn, jit.ScriptModule) and traced.attn.original_name == "Attention"
    assert not traced.training and traced.train().training and not traced.eval().training
    text = str(traced)
    assert text.startswith("Block(\n  original_name=Block\n") and "(attn): Attention(" in text
    assert "(c_attn): Linear(original_name=Linear)" in text


def test_to_float64_moves_what_the_graph_reads():
    model = mlp(dtorch).eval()
    traced = jit.trace(model, dtorch.randn(3, 8))
    traced.to(dtorch.float64)
    x = dtorch.randn(4, 8, dtype=dtorch.float64)
    with dtorch.no_grad():
        out = traced(x)
    assert out.dtype == dtorch.float64
    np.testing.assert_allclose(out.numpy(), model(x).detach().numpy(), rtol=1e-12)


def test_in_place_views_and_creation_ops_replay():
    def f(x, y):
        z = x * 2 + y
        z.add_(1)
        z.mul_(0.5)
        w = dtorch.zeros(2, 3)
        w[:, 0] = 5
        v = z.view(3, 2)
        v[0].relu_()
        m = dtorch.tril(dtorch.ones(3, 3)) + dtorch.arange(3)
        return z + w, (m @ z.t()).sum(0)

    traced = jit.trace(f, (dtorch.randn(2, 3), dtorch.randn(2, 3)))
    kinds = [n.kind() for n in traced.graph.nodes]
    assert {"aten::add_", "aten::mul_", "aten::copy_", "aten::relu_", "aten::tril", "aten::view"} <= set(kinds)
    for _ in range(2):  # the constant written in place is fresh on every run
        a, b = dtorch.randn(2, 3), dtorch.randn(2, 3)
        for got, want in zip(traced(a, b), f(a, b)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_in_place_on_an_input_mutates_the_caller_tensor():
    def f(x):
        x.add_(1)
        return x * 2

    traced = jit.trace(f, dtorch.zeros(2), check_trace=False)
    x = dtorch.zeros(2)
    out = traced(x)
    assert x.tolist() == [1.0, 1.0] and out.tolist() == [2.0, 2.0]


def test_outputs_structure_and_strict():
    traced = jit.trace(lambda x: (x + 1, {"a": (x * 2,)}) if False else (x + 1, (x * 2, x)), dtorch.ones(2))
    a, (b, c) = traced(dtorch.ones(2))
    assert a.tolist() == [2, 2] and b.tolist() == [2, 2] and c.tolist() == [1, 1]
    with pytest.raises(RuntimeError, match="Encountering a list at the output of the tracer"):
        jit.trace(lambda x: [x + 1], dtorch.ones(2))
    out = jit.trace(lambda x: {"y": x + 1}, dtorch.ones(2), strict=False)(dtorch.zeros(2))
    assert out["y"].tolist() == [1, 1]


def _conversions(lib, x):
    if x.sum() > 0:  # line +1
        pass
    a = x.sum().item()  # line +3
    b = float(x.sum())  # line +4
    c = int(x.sum())  # line +5
    d = x.tolist()  # line +6
    e = x.numpy()  # line +7
    return x * 2 + (a + b + c + len(d) + e.size) * 0


def _record_warnings(lib, fn, x):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        lib.jit.trace(fn, x, check_trace=False)
    return [(str(r.message).split(" might")[0], r.lineno - _conversions.__code__.co_firstlineno)
            for r in w if issubclass(r.category, lib.jit.TracerWarning)]


def test_tracer_warnings_wording_and_places():
    got = _record_warnings(dtorch, lambda x: _conversions(dtorch, x), dtorch.randn(2, 3))
    assert got == [("Converting a tensor to a Python boolean", 1), ("Converting a tensor to a Python number", 3),
                   ("Converting a tensor to a Python float", 4), ("Converting a tensor to a Python integer", 5),
                   ("Converting a tensor to a Python list", 6), ("Converting a tensor to a NumPy array", 7)]
    assert dtorch.randn(2).sum().item() is not None  # conversions are plain again after the trace


def test_tracer_warnings_match_torch(torch):
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    assert _record_warnings(dtorch, lambda x: _conversions(dtorch, x), dtorch.randn(2, 3)) == \
        _record_warnings(torch, lambda x: _conversions(torch, x), torch.randn(2, 3))


def _branchy(x):
    if x.sum() > 0:
        return x * 2
    return x - 1


@pytest.mark.parametrize("lib_name", ["dtorch", "torch"])
def test_check_trace_catches_a_data_dependent_branch(lib_name):
    lib = dtorch if lib_name == "dtorch" else pytest.importorskip("torch")
    x = lib.ones(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = lib.jit.trace(_branchy, x, check_inputs=[(x,)])  # the same input: the same graph
        assert traced(-x).tolist() == [-2.0] * 3  # the branch taken was baked in
        with pytest.raises(lib.jit.TracingCheckError, match="Graphs differed across invocations"):
            lib.jit.trace(_branchy, x, check_inputs=[(-x,)])


def test_check_trace_reports_diverging_tensor_constants():
    def f(x):
        return x + dtorch.tensor(x.tolist())  # the data flows through Python: a tensor constant

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(jit.TracingCheckError, match="Tensor-valued Constant nodes differed"):
            jit.trace(f, dtorch.ones(2), check_inputs=[(dtorch.zeros(2),)])


def test_trace_matches_torch_outputs(torch):
    for name in ("mlp", "cnn", "gpt"):
        make, data = MODELS[name]
        dm, tm = make(dtorch).eval(), make(torch).eval()
        copy_weights(dm, tm, torch)
        x = data(dtorch, 3)
        with dtorch.no_grad(), torch.no_grad():
            got = jit.trace(dm, x)(x).numpy()
            want = torch.jit.trace(tm, torch.from_numpy(x.numpy()))(torch.from_numpy(x.numpy())).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_graph_text_is_torchscript_style():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            return self.fc(x)

    traced = jit.trace(Net(), dtorch.randn(2, 3))
    text = str(traced.graph)
    assert text.startswith("graph(%x : Float(2, 3, strides=[3, 1], requires_grad=0, device=cpu),\n"
                           "      %fc.weight : Float(4, 3, strides=[3, 1], requires_grad=1, device=cpu),")
    assert " = aten::linear(%x, %fc.weight, %fc.bias)\n" in text and text.endswith("  return (%3)\n")
    assert "torch.linear(x, self.fc.weight, self.fc.bias)" in traced.code
    fn = jit.trace(lambda a, b: a * b + 1, (dtorch.ones(2), dtorch.ones(2)))
    assert isinstance(fn, jit.ScriptFunction) and "aten::mul(%a, %b)" in str(fn.graph)


def test_tracing_inside_autocast_is_refused_and_code_names_sequential_children():
    model = mlp(dtorch)
    with dtorch.autocast("cpu"):
        with pytest.raises(RuntimeError, match="tracing inside autocast is not supported"):
            jit.trace(model, dtorch.randn(2, 8))
    assert dtorch.randn(2).relu().shape == (2,)  # the dispatcher is back to plain eager
    code = jit.trace(model, dtorch.randn(2, 8)).code
    assert "torch.linear(input, self['0'].weight, self['0'].bias)" in code


def test_array_params_from_traced_tensors_are_inputs_and_others_warn():
    emb = dtorch.randn(10, 4)

    def f(x, idx):
        values, where = x.max(1)  # the indices leave the dispatcher as an array and come back
        return nn.functional.embedding(idx, emb).sum(1) + where.float()

    x, idx = dtorch.randn(3, 5), dtorch.tensor([0, 2, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traced = jit.trace(f, (x, idx))
    emb_node = next(n for n in traced.graph.nodes if n.op == "embedding")
    assert emb_node.refs == {"indices": 1} and emb_node.inputs[1] is traced.graph.inputs[1]
    assert "aten::embedding[padding_idx=None, scale_grad_by_freq=False](%" in str(traced.graph)
    x2, idx2 = dtorch.randn(3, 5), dtorch.tensor([9, 1, 1])
    np.testing.assert_allclose(traced(x2, idx2).numpy(), f(x2, idx2).numpy(), rtol=1e-6)
    with pytest.warns(jit.TracerWarning, match="the array argument 'index' of index does not come from a traced"):
        jit.trace(lambda a, i: a[i], (x, dtorch.tensor([0, 2])), check_trace=False)


def test_positions_made_inside_the_function_are_silent_constants():
    emb = nn.Embedding(8, 4)

    def f(idx):
        return emb(idx) + emb(dtorch.arange(idx.shape[1]))  # nanoGPT's positions

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traced = jit.trace(f, dtorch.tensor([[1, 2, 3]]))
    idx = dtorch.tensor([[7, 0, 5], [1, 1, 1]])
    np.testing.assert_allclose(traced(idx).detach().numpy(), f(idx).detach().numpy(), rtol=1e-6)

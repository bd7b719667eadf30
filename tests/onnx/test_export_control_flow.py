"""ONNX export of scripted control flow: prim::If -> If with two subgraphs, prim::Loop -> Loop; checked by
onnx.checker (full) and equal to dtorch in ONNX Runtime on inputs that take each branch and several trip counts."""
from __future__ import annotations

import io
from typing import Tuple

import numpy as np
import pytest

import dtorch
import dtorch.nn as nn
from dtorch import jit
from tests.jit.models import branchy

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def halve(x):
    steps = 0
    while x.abs().max() > 1.0:
        x = x / 2
        steps += 1
    return x, x * 0 + steps


def counted(x, n: int):
    for i in range(n):
        x = x * 0.5 + i
    return x


def first_big(x):
    total = x * 0
    for i in range(6):
        if total.sum() > 10:
            break
        total = total + x * i
    return total


@pytest.mark.parametrize("opset", [11, 17])
def test_break_becomes_the_loop_condition(opset):
    s = jit.script(first_big)
    proto, sess = _export(s, (dtorch.ones(2),), opset)
    assert "Loop" in _ops(proto)
    for v in (0.1, 1.0, 5.0):
        x = dtorch.full((2,), v)
        np.testing.assert_allclose(_run(sess, (x,))[0], first_big(x).numpy(), rtol=1e-6)


def rnn(x, state: Tuple[dtorch.Tensor, dtorch.Tensor]):
    h, c = state
    for t in range(x.size(0)):
        h = (x[t] + h).tanh()
        c = c + h
    return h, c


@pytest.mark.parametrize("opset", [11, 17])
def test_tuple_state_and_loop_counter_indexing(opset):
    s = jit.script(rnn)
    x, state = dtorch.randn(5, 3), (dtorch.zeros(3), dtorch.ones(3))
    proto, sess = _export(s, (x, state), opset)
    got = sess.run(None, {"input": x.numpy(), "input_1": state[0].numpy(), "input_2": state[1].numpy()})
    for g, w in zip(got, rnn(x, state)):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-6)


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        h = self.fc(x)
        if h.mean() > 0:
            h = h.relu()
        else:
            h = self.out.weight.sum() * h
        for _ in range(2):
            h = self.fc(h).tanh()
        return self.out(h)


def _export(model, args, opset):
    f = io.BytesIO()
    dtorch.onnx.export(model, args, f, opset_version=opset)
    proto = onnx.load_from_string(f.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    return proto, ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])


def _run(sess, args):
    tensors = [a.numpy() for a in args if isinstance(a, dtorch.Tensor)]
    return sess.run(None, {i.name: t for i, t in zip(sess.get_inputs(), tensors)})


def _ops(proto):
    return [n.op_type for n in proto.graph.node]


@pytest.mark.parametrize("opset", [11, 17])
def test_if_becomes_onnx_if_with_two_subgraphs(opset):
    s = jit.script(branchy)
    pos = (dtorch.tensor([1.0, 2.0, 0.5]), dtorch.tensor([3.0, -4.0, 1.0]))
    neg = (-pos[0], pos[1])
    proto, sess = _export(s, pos, opset)
    node = next(n for n in proto.graph.node if n.op_type == "If")
    assert {a.name for a in node.attribute} == {"then_branch", "else_branch"}
    for args in (pos, neg):
        np.testing.assert_allclose(_run(sess, args)[0], s(*args).numpy(), rtol=1e-6)
        np.testing.assert_allclose(_run(sess, args)[0], branchy(*args).numpy(), rtol=1e-6)


@pytest.mark.parametrize("opset", [11, 17])
def test_while_becomes_onnx_loop_with_dynamic_trip_count(opset):
    s = jit.script(halve)
    proto, sess = _export(s, (dtorch.tensor([9.0, -3.0]),), opset)
    assert "Loop" in _ops(proto)
    for scale in (0.5, 3.0, 100.0):
        x = dtorch.tensor([scale, -scale / 4])
        got = _run(sess, (x,))
        for g, w in zip(got, halve(x)):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-6)


@pytest.mark.parametrize("opset", [11, 17])
@pytest.mark.parametrize("n", [0, 3])
def test_range_loop_with_counter_arithmetic(opset, n):
    s = jit.script(counted)
    x = dtorch.randn(3)
    proto, sess = _export(s, (x, n), opset)
    assert "Loop" in _ops(proto)
    np.testing.assert_allclose(_run(sess, (x,))[0], counted(x, n).numpy(), rtol=1e-6)


@pytest.mark.parametrize("opset", [11, 17])
def test_module_parameters_read_inside_subgraphs(opset):
    dtorch.manual_seed(3)
    m = Gated().eval()
    s = jit.script(m)
    x = dtorch.randn(5, 4)
    proto, sess = _export(s, (x,), opset)
    assert {"If", "Loop"} <= set(_ops(proto))
    for sign in (1.0, -1.0):
        xs = sign * x
        with dtorch.no_grad():
            want = m(xs).numpy()
        np.testing.assert_allclose(_run(sess, (xs,))[0], want, rtol=1e-5, atol=1e-6)

"""dtorch.onnx.export checked by onnx's full checker and run by ONNX Runtime: MLP, CNN (conv, BN, ReLU, max and
adaptive pooling, flatten, linear, softmax) and a nanoGPT model (embedding, layer norm, matmul, masked_fill,
softmax, GELU, transpose/reshape, and the SDPA path) at opsets 11, 17 and 20, another batch size under
dynamic_axes, file paths and file objects, export_params, and the unsupported-operator error."""
from __future__ import annotations

import io

import numpy as np
import pytest

import dtorch
from dtorch import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _export(model, x, opset, **kw) -> bytes:
    buf = io.BytesIO()
    dtorch.onnx.export(model, (x,), buf, opset_version=opset, input_names=["x"], output_names=["y"], **kw)
    data = buf.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    return data


def _run(data: bytes, x: dtorch.Tensor) -> np.ndarray:
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.numpy()})[0]


def _mlp():
    dtorch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()


def _cnn():
    dtorch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                      nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(), nn.Linear(16, 10), nn.Softmax(-1))
    m[1].running_mean.uniform_(-0.5, 0.5)
    m[1].running_var.uniform_(0.5, 2.0)
    return m.eval()


class _Logits(nn.Module):
    def __init__(self, gpt):
        super().__init__()
        self.gpt = gpt

    def forward(self, idx):
        return self.gpt(idx, idx)[0]


def _gpt(flash: bool):
    from tests.programs.test_char_gpt import GPTConfig, build

    dtorch.manual_seed(0)
    return _Logits(build(dtorch, GPTConfig(), flash)).eval()


@pytest.mark.parametrize("opset", [11, 17, 20])
@pytest.mark.parametrize("name,make,shape,other", [
    ("mlp", _mlp, (3, 8), (7, 8)),
    ("cnn", _cnn, (2, 1, 8, 8), (5, 1, 8, 8)),
])
def test_models_run_in_onnxruntime_with_dynamic_batch(name, make, shape, other, opset):
    model = make()
    data = _export(model, dtorch.randn(*shape), opset, dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    proto = onnx.load_from_string(data)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert proto.opset_import[0].version == opset
    assert proto.ir_version == {11: 6, 17: 8, 20: 9}[opset]
    for s in (shape, other):
        x = dtorch.randn(*s)
        np.testing.assert_allclose(_run(data, x), model(x).detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset", [11, 17, 20])
@pytest.mark.parametrize("flash", [False, True], ids=["manual_attention", "sdpa"])
def test_nanogpt_runs_in_onnxruntime(flash, opset):
    model = _gpt(flash)
    data = _export(model, dtorch.randint(0, 24, (2, 8)), opset,
                   dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    kinds = {n.op_type for n in onnx.load_from_string(data).graph.node}
    assert ("LayerNormalization" in kinds) == (opset >= 17) and ("Gelu" in kinds) == (opset >= 20)
    for batch in (2, 5):  # the head reshapes follow the batch size: no traced size baked in
        x = dtorch.randint(0, 24, (batch, 8))
        np.testing.assert_allclose(_run(data, x), model(x).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_path_export_params_and_names(tmp_path):
    model = _mlp()
    path = tmp_path / "mlp.onnx"
    dtorch.onnx.export(model, dtorch.randn(2, 8), str(path), input_names=["x"], output_names=["y"])
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.initializer] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [i.name for i in proto.graph.input] == ["x"] and [o.name for o in proto.graph.output] == ["y"]
    buf = io.BytesIO()
    dtorch.onnx.export(model, dtorch.randn(2, 8), buf, export_params=False)
    proto = onnx.load_from_string(buf.getvalue())
    assert len(proto.graph.initializer) == 0 and len(proto.graph.input) == 5


def test_unsupported_operator_and_opset_errors():
    class Cumulative(nn.Module):
        def forward(self, x):
            return x.cumsum(0)

    with pytest.raises(dtorch.onnx.errors.UnsupportedOperatorError,
                       match="Exporting the operator 'aten::cumsum' to ONNX opset version 17 is not supported"):
        dtorch.onnx.export(Cumulative(), dtorch.randn(3), io.BytesIO())
    with pytest.raises(ValueError, match="Unsupported ONNX opset version: 9"):
        dtorch.onnx.export(_mlp(), dtorch.randn(2, 8), io.BytesIO(), opset_version=9)


def test_dynamically_quantized_model_exports_to_integer_kernels():
    float_model = _mlp()
    q = dtorch.ao.quantization.quantize_dynamic(float_model, {nn.Linear}, dtype=dtorch.qint8)
    x = dtorch.randn(16, 8)
    data = _export(q, x, 17, dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    kinds = [n.op_type for n in onnx.load_from_string(data).graph.node]
    assert kinds.count("DynamicQuantizeLinear") == 2 and kinds.count("MatMulInteger") == 2
    proto = onnx.load_from_string(data)
    assert {i.name: onnx.numpy_helper.to_array(i).dtype for i in proto.graph.initializer}[
        "0._packed_params.weight"] == np.int8
    for n in (16, 3):
        xb = dtorch.randn(n, 8)
        got, ours, ref = _run(data, xb), q(xb).numpy(), float_model(xb).detach().numpy()
        span = np.abs(ref).max()
        assert np.abs(got - ours).max() < 0.05 * span and np.abs(got - ref).max() < 0.05 * span


@pytest.mark.parametrize("opset", [11, 17])
@pytest.mark.parametrize("make", [
    lambda: nn.LSTM(4, 3, num_layers=2, batch_first=True),
    lambda: nn.LSTM(4, 3, bidirectional=True, num_layers=2),
    lambda: nn.GRU(4, 3, bidirectional=True),
    lambda: nn.GRU(4, 3, num_layers=2, bias=False),
], ids=["lstm_2layer_batch_first", "lstm_bidirectional", "gru_bidirectional", "gru_no_bias"])
def test_recurrent_layers_export_to_onnx_lstm_and_gru(make, opset):
    dtorch.manual_seed(0)
    model = make().eval()
    x = dtorch.randn(2, 5, 4) if model.batch_first else dtorch.randn(5, 2, 4)
    data = _export(model, x, opset)
    assert {n.op_type for n in onnx.load_from_string(data).graph.node} & {"LSTM", "GRU"}
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x.numpy()})
    out, state = model(x)
    want = [out] + (list(state) if isinstance(state, tuple) else [state])
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.detach().numpy(), rtol=1e-5, atol=1e-6)

"""Dynamic quantized LSTM/GRU and RNN cells against torch's quantize_dynamic, state_dict size, a word LM."""
from __future__ import annotations

import copy
import io
import os
import warnings

import numpy as np
import pytest

import dtorch
from dtorch.ao.nn.quantized import dynamic as nnqd
from dtorch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates its eager quantization
        yield


def _fill(lib, module, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    with lib.no_grad():
        for _, p in module.named_parameters():
            p.copy_(lib.tensor((rng.standard_normal(tuple(p.shape)) * scale).astype(np.float32)))
    return module


def _quantized(lib, module, per_channel=False, dtype="qint8"):
    """``module`` (one LSTM/GRU/cell) swapped by quantize_dynamic inside a Sequential, as users meet it."""
    spec = {type(module): lib.ao.quantization.per_channel_dynamic_qconfig} if per_channel else None
    return lib.ao.quantization.quantize_dynamic(lib.nn.Sequential(module), spec, dtype=getattr(lib, dtype))[0]


def _pair(torch, cls, *args, per_channel=False, dtype="qint8", **kw):
    return tuple(_quantized(lib, _fill(lib, getattr(lib.nn, cls)(*args, **kw)), per_channel, dtype)
                 for lib in (torch, dtorch))


def _close(dt_out, torch_out):
    outs_d = dt_out if isinstance(dt_out, (tuple, list)) else (dt_out,)
    outs_t = torch_out if isinstance(torch_out, (tuple, list)) else (torch_out,)
    assert len(outs_d) == len(outs_t)
    for d, t in zip(outs_d, outs_t):
        if isinstance(d, tuple):
            _close(d, t)
            continue
        np.testing.assert_allclose(d.numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
@pytest.mark.parametrize("layers,bidirectional,batch_first,h0,per_channel,dtype", [
    (1, False, False, False, False, "qint8"), (1, False, False, True, False, "qint8"),
    (2, True, False, False, False, "qint8"), (2, True, True, True, False, "qint8"),
    (2, True, False, True, True, "qint8"), (2, False, True, False, False, "float16"),
])
def test_outputs_equal_torchs(torch, cls, layers, bidirectional, batch_first, h0, per_channel, dtype):
    qt, qd = _pair(torch, cls, 8, 16, layers, batch_first=batch_first, bidirectional=bidirectional,
                   per_channel=per_channel, dtype=dtype)
    assert isinstance(qd, getattr(nnqd, cls)) and repr(qd) == repr(qt)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 7, 8) if batch_first else (7, 3, 8)).astype(np.float32)
    args = {lib: [lib.tensor(x)] for lib in (torch, dtorch)}
    if h0:
        h = (rng.standard_normal((layers * (1 + bidirectional), 3, 16)) * 0.5).astype(np.float32)
        for lib in args:
            args[lib].append((lib.tensor(h), lib.tensor(-h)) if cls == "LSTM" else lib.tensor(h))
    _close(qd(*args[dtorch]), qt(*args[torch]))
    if dtype == "qint8":
        wt, wd = qt.get_weight(), qd.get_weight()
        assert list(wd) == list(wt)
        for name in wt:
            np.testing.assert_array_equal(wd[name].int_repr().numpy(), wt[name].int_repr().numpy())
            assert wd[name].qscheme().name == str(wt[name].qscheme()).split(".")[-1]


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_packed_sequences_equal_torchs(torch, cls):
    qt, qd = _pair(torch, cls, 5, 7, 2, bidirectional=True)
    x = np.random.default_rng(2).standard_normal((6, 3, 5)).astype(np.float32)
    out = {}
    for lib, q in ((torch, qt), (dtorch, qd)):
        packed = lib.nn.utils.rnn.pack_padded_sequence(lib.tensor(x), [4, 6, 2], enforce_sorted=False)
        y, h = q(packed)
        out[lib] = (lib.nn.utils.rnn.pad_packed_sequence(y)[0], h)
    _close(out[dtorch], out[torch])


@pytest.mark.parametrize("cls,kw", [("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", {}),
                                    ("RNNCell", {"nonlinearity": "relu"})])
@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_cells_equal_torchs(torch, cls, kw, dtype):
    qt, qd = _pair(torch, cls, 6, 10, dtype=dtype, **kw)
    assert isinstance(qd, getattr(nnqd, cls)) and repr(qd) == repr(qt)
    rng = np.random.default_rng(3)
    x, h = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal((4, 10)).astype(np.float32)
    for lib, q in ((torch, qt), (dtorch, qd)):
        hx = (lib.tensor(h), lib.tensor(h * 0.5)) if cls == "LSTMCell" else lib.tensor(h)
        q.res = (q(lib.tensor(x), hx), q(lib.tensor(x)))
    _close(qd.res, qt.res)
    if dtype == "qint8":
        for name, w in qt.get_weight().items():
            np.testing.assert_array_equal(qd.get_weight()[name].int_repr().numpy(), w.int_repr().numpy())
    np.testing.assert_array_equal(qd.bias_ih.numpy(), qd.get_bias()["bias_ih"].numpy())


def test_state_dict_is_int8_smaller_and_round_trips(tmp_path):
    model = dtorch.nn.Sequential(dtorch.nn.LSTM(256, 256))
    q = quantize_dynamic(model)
    sd = q.state_dict()
    assert sd["0._all_weight_values.0.param.ih.weight"].dtype is dtorch.int8
    assert sd["0._all_weight_values.0.param.hh.scale"].dim() == 0
    dtorch.save(model.state_dict(), tmp_path / "f.pt")
    dtorch.save(sd, tmp_path / "q.pt")
    assert os.path.getsize(tmp_path / "f.pt") >= 3.5 * os.path.getsize(tmp_path / "q.pt")
    fresh = nnqd.LSTM(256, 256)
    x = dtorch.randn(5, 2, 256)
    assert not np.array_equal(fresh(x)[0].numpy(), q[0](x)[0].numpy())
    missing = fresh.load_state_dict({k[2:]: v for k, v in dtorch.load(tmp_path / "q.pt").items()})
    assert not missing.missing_keys and not missing.unexpected_keys
    np.testing.assert_array_equal(fresh(x)[0].numpy(), q[0](x)[0].numpy())
    pc = quantize_dynamic(dtorch.nn.Sequential(dtorch.nn.GRUCell(8, 4)),
                          {dtorch.nn.GRUCell: per_channel_dynamic_qconfig})
    cell = nnqd.GRUCell(8, 4)
    cell.load_state_dict({k[2:]: v for k, v in pc.state_dict().items()})  # per-channel into per-tensor: its scheme
    assert cell.get_weight()["weight_ih"].qscheme() is dtorch.per_channel_affine
    xc = dtorch.randn(3, 8)
    np.testing.assert_array_equal(cell(xc).numpy(), pc[0](xc).numpy())


def test_quantize_dynamic_specs_api_and_errors():
    model = dtorch.nn.Sequential(dtorch.nn.LSTM(4, 6), dtorch.nn.GRU(6, 3), dtorch.nn.RNN(3, 3),
                                 dtorch.nn.LSTMCell(4, 2), dtorch.nn.Linear(3, 2))
    q = quantize_dynamic(model)
    assert [type(m).__name__ for m in q] == ["LSTM", "GRU", "RNN", "LSTMCell", "Linear"]
    assert isinstance(q[0], nnqd.LSTM) and isinstance(q[1], nnqd.GRU) and type(q[2]) is dtorch.nn.RNN
    assert isinstance(q[3], nnqd.LSTMCell) and isinstance(q[4], nnqd.Linear)
    only = quantize_dynamic(model, {dtorch.nn.LSTM, dtorch.nn.GRU})
    assert isinstance(only[1], nnqd.GRU) and type(only[3]) is dtorch.nn.LSTMCell and type(only[4]) is dtorch.nn.Linear
    half = quantize_dynamic(model, dtype=dtorch.float16)
    assert half[0].state_dict()["_all_weight_values.0.param.ih.weight"].dtype is dtorch.float16
    assert half[0].get_weight()["weight_ih_l0"].dtype is dtorch.float32
    y, (h, c) = q[0](dtorch.randn(3, 2, 4, requires_grad=True))
    assert not y.requires_grad and tuple(y.shape) == (3, 2, 6) and tuple(c.shape) == (1, 2, 6)
    np.testing.assert_array_equal(copy.deepcopy(q[0])(dtorch.ones(2, 1, 4))[0].numpy(),
                                  q[0](dtorch.ones(2, 1, 4))[0].numpy())
    with pytest.raises(RuntimeError, match="input must have 3 dimensions, got 2"):
        q[0](dtorch.randn(3, 4))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[1\] size \(1, 2, 6\), got \[1, 2, 5\]"):
        q[0](dtorch.randn(3, 2, 4), (dtorch.zeros(1, 2, 6), dtorch.zeros(1, 2, 5)))
    with pytest.raises(RuntimeError, match="input has inconsistent input_size: got 5, expected 4"):
        q[3](dtorch.randn(2, 5))
    with pytest.raises(RuntimeError, match="quantized LSTM with projections is not supported"):
        quantize_dynamic(dtorch.nn.Sequential(dtorch.nn.LSTM(4, 6, proj_size=2)))
    with pytest.raises(AssertionError, match="mod.bias must be True"):
        quantize_dynamic(dtorch.nn.Sequential(dtorch.nn.GRU(4, 6, bias=False)))
    with pytest.raises(AssertionError, match="only works for nn.LSTM and nn.GRU"):
        nnqd.LSTM.from_float(dtorch.nn.RNN(2, 2))
    direct = nnqd.GRU(4, 5, 2, bidirectional=True)  # torch's placeholder weights: runs, reprs as torch's
    assert repr(direct) == "DynamicQuantizedGRU(4, 5, num_layers=2, bidirectional=True)"
    assert tuple(direct(dtorch.randn(3, 2, 4))[1].shape) == (4, 2, 5)


def test_onnx_export_refuses_by_name():
    pytest.importorskip("onnx")
    q = quantize_dynamic(dtorch.nn.Sequential(dtorch.nn.LSTM(3, 4)))
    with pytest.raises(dtorch.onnx.UnsupportedOperatorError, match="quantized_lstm_layer_dynamic"):
        dtorch.onnx.export(q, (dtorch.randn(2, 1, 3),), io.BytesIO())


def _lm(lib, vocab=12, emb=16, hid=32):
    nn = lib.nn

    class WordLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.rnn, self.decoder = nn.Embedding(vocab, emb), nn.LSTM(emb, hid, 2), nn.Linear(hid, vocab)

        def forward(self, tokens):
            out, _ = self.rnn(self.encoder(tokens))
            return self.decoder(out).reshape(-1, vocab)

    return WordLM()


def test_word_language_model_keeps_its_loss_when_quantized(torch):
    rng = np.random.default_rng(0)
    stream = np.arange(600) % 10
    noisy = rng.random(600) < 0.1
    stream[noisy] = rng.integers(0, 12, noisy.sum())
    data = dtorch.tensor(stream.reshape(20, 30).T.copy())  # (time, batch) as word_language_model batchifies
    inputs, targets = data[:-1], data[1:].reshape(-1)
    dtorch.manual_seed(0)
    model = _lm(dtorch)
    opt = dtorch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = dtorch.nn.functional.cross_entropy
    for _ in range(40):
        opt.zero_grad()
        loss_fn(model(inputs), targets).backward()
        opt.step()
    model.eval()
    with dtorch.no_grad():
        loss = loss_fn(model(inputs), targets).item()
    q = quantize_dynamic(model)
    assert isinstance(q.rnn, nnqd.LSTM) and isinstance(q.decoder, nnqd.Linear)
    q_loss = loss_fn(q(inputs), targets).item()
    assert loss < 1.2 and abs(q_loss - loss) < 0.02 * loss
    twin = _lm(torch)  # torch quantizing the same trained weights gives the same logits
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    qt = torch.ao.quantization.quantize_dynamic(twin.eval())
    np.testing.assert_allclose(q(inputs).numpy(), qt(torch.tensor(inputs.numpy())).detach().numpy(), rtol=1e-5,
                               atol=1e-5)

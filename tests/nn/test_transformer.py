"""TransformerEncoderLayer / TransformerEncoder: torch's state_dict keys and outputs with torch's weights."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from tests.oracle import check_op, load_from_torch, rand, raises_like_torch

TOL = {"rtol": 1e-6, "atol": 1e-9}  # float64 throughout


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch_in_eval(batch_first, norm_first, activation, torch):
    args = dict(dim_feedforward=16, dropout=0.1, activation=activation, batch_first=batch_first,
                norm_first=norm_first)
    tm = torch.nn.TransformerEncoderLayer(8, 2, **args).double().eval()
    dm = dtorch.nn.TransformerEncoderLayer(8, 2, **args).double().eval()
    assert list(dm.state_dict()) == list(tm.state_dict())
    assert repr(dm).replace("dtorch", "torch") == repr(tm)
    load_from_torch(dm, tm)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 8) if batch_first else (5, 3, 8))
    kpm = np.zeros((3, 5), bool)
    kpm[:, -1] = True
    causal = torch.nn.Transformer.generate_square_subsequent_mask(5).double()
    for kwargs in [{}, {"src_key_padding_mask": kpm}, {"src_mask": causal, "is_causal": True}]:
        dk = {k: dtorch.tensor(np.asarray(v)) if not isinstance(v, bool) else v for k, v in kwargs.items()}
        tk = {k: torch.as_tensor(v) if not isinstance(v, bool) else v for k, v in kwargs.items()}
        check_op(lambda x, dk=dk: dm(x, **dk), lambda x, tk=tk: tm(x, **tk), inputs=[dtorch.tensor(x)],
                 params=(dm.parameters(), tm.parameters()), **TOL)


def test_encoder_layer_training_gradients_match_torch(torch):
    tm = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).double()
    dm = dtorch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).double()
    load_from_torch(dm, tm)
    assert [n for n, _ in dm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    check_op(dm, tm, inputs=[rand(2, 4, 8)], params=(dm.parameters(), tm.parameters()), **TOL)


def test_encoder_layer_dropout_active_in_training():
    m = dtorch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = dtorch.randn(4, 2, 8)
    assert not np.allclose(m(x).detach().numpy(), m(x).detach().numpy())
    m.eval()
    assert np.allclose(m(x).detach().numpy(), m(x).detach().numpy())


def test_transformer_encoder_stack(torch):
    tl = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    dl = dtorch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    tm = torch.nn.TransformerEncoder(tl, 2, norm=torch.nn.LayerNorm(8), enable_nested_tensor=False).double().eval()
    dm = dtorch.nn.TransformerEncoder(dl, 2, norm=dtorch.nn.LayerNorm(8)).double().eval()
    assert list(dm.state_dict()) == list(tm.state_dict())
    load_from_torch(dm, tm)
    x = np.random.default_rng(3).standard_normal((2, 5, 8))
    check_op(dm, tm, inputs=[dtorch.tensor(x)], params=(dm.parameters(), tm.parameters()), **TOL)


def _masks(lib, tgt_len: int, src_len: int, batch: int, kind: str) -> dict:
    """Decoder masks of one kind, the same values in dtorch and torch."""
    kpm = np.zeros((batch, tgt_len), bool)
    kpm[:, -1] = True
    mkpm = np.zeros((batch, src_len), bool)
    mkpm[0, -2:] = True
    mem_mask = np.zeros((tgt_len, src_len))
    mem_mask[0, 1] = -np.inf
    causal = lib.nn.Transformer.generate_square_subsequent_mask(tgt_len).double()
    as_t = (lambda a: lib.tensor(a))
    return {"none": {}, "causal": {"tgt_mask": causal, "tgt_is_causal": True},
            "detected": {"tgt_mask": causal},
            "padding": {"tgt_key_padding_mask": as_t(kpm), "memory_key_padding_mask": as_t(mkpm)},
            "all": {"tgt_mask": causal, "memory_mask": as_t(mem_mask), "tgt_key_padding_mask": as_t(kpm),
                    "memory_key_padding_mask": as_t(mkpm)}}[kind]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("masks", ["none", "causal", "detected", "padding", "all"])
def test_decoder_layer_matches_torch(batch_first, norm_first, activation, masks, torch):
    args = dict(dim_feedforward=16, dropout=0.0, activation=activation, batch_first=batch_first, norm_first=norm_first)
    tm = torch.nn.TransformerDecoderLayer(8, 2, **args).double()
    dm = dtorch.nn.TransformerDecoderLayer(8, 2, **args).double()
    assert list(dm.state_dict()) == list(tm.state_dict())
    assert repr(dm).replace("dtorch", "torch") == repr(tm)
    load_from_torch(dm, tm)
    tgt, mem = (rand(3, 4, 8), rand(3, 5, 8)) if batch_first else (rand(4, 3, 8), rand(5, 3, 8))
    dk, tk = _masks(dtorch, 4, 5, 3, masks), _masks(torch, 4, 5, 3, masks)
    for mode in ("train", "eval"):
        dm.train(mode == "train")
        tm.train(mode == "train")
        check_op(lambda t, m: dm(t, m, **dk), lambda t, m: tm(t, m, **tk), inputs=[tgt, mem],
                 params=(dm.parameters(), tm.parameters()), **TOL)


def test_decoder_layer_callable_activation_and_unbatched(torch):
    tm = torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, activation=torch.nn.functional.silu).double()
    dm = dtorch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, activation=dtorch.nn.functional.silu).double()
    load_from_torch(dm, tm)
    check_op(dm, tm, inputs=[rand(4, 8), rand(5, 8)], params=(dm.parameters(), tm.parameters()), **TOL)


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_matches_torch(batch_first, torch):
    kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=16, dropout=0.0,
              batch_first=batch_first)
    torch.manual_seed(0)
    tm = torch.nn.Transformer(**kw).double()
    dm = dtorch.nn.Transformer(**kw).double()
    assert list(dm.state_dict()) == list(tm.state_dict())
    assert repr(dm).replace("dtorch", "torch") == repr(tm)
    w = dm.encoder.layers[0].linear1.weight.detach().numpy()
    bound = np.sqrt(6 / (8 + 16))
    assert np.abs(w).max() <= bound and np.abs(w).max() > bound / 2  # xavier_uniform_
    load_from_torch(dm, tm)
    src, tgt = (rand(3, 5, 8), rand(3, 4, 8)) if batch_first else (rand(5, 3, 8), rand(4, 3, 8))
    spm = np.zeros((3, 5), bool)
    spm[1, -1] = True
    dmask = dtorch.nn.Transformer.generate_square_subsequent_mask(4, dtype=dtorch.float64)
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    assert np.array_equal(dmask.numpy(), tmask.numpy())
    check_op(lambda s, t: dm(s, t, tgt_mask=dmask, src_key_padding_mask=dtorch.tensor(spm),
                             memory_key_padding_mask=dtorch.tensor(spm)),
             lambda s, t: tm(s, t, tgt_mask=tmask, src_key_padding_mask=torch.tensor(spm),
                             memory_key_padding_mask=torch.tensor(spm)),
             inputs=[src, tgt], params=(dm.parameters(), tm.parameters()), **TOL)


def test_transformer_errors_and_decoder_stack(torch):
    dm = dtorch.nn.Transformer(8, 2, 1, 1, 16).double()
    tm = torch.nn.Transformer(8, 2, 1, 1, 16).double()
    for s, t in ((rand(5, 3, 8), rand(4, 2, 8)), (rand(5, 3, 8), rand(4, 3, 6))):
        raises_like_torch(dm, tm, s, t)
    tl = torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0)
    dl = dtorch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0)
    td = torch.nn.TransformerDecoder(tl, 3, norm=torch.nn.LayerNorm(8)).double()
    dd = dtorch.nn.TransformerDecoder(dl, 3, norm=dtorch.nn.LayerNorm(8)).double()
    assert list(dd.state_dict()) == list(td.state_dict())
    load_from_torch(dd, td)
    check_op(dd, td, inputs=[rand(4, 2, 8), rand(6, 2, 8)], params=(dd.parameters(), td.parameters()), **TOL)


def test_encoder_nested_tensor_flags_and_warning(torch):
    layer = dtorch.nn.TransformerEncoderLayer(8, 2, 16)
    with pytest.warns(UserWarning, match="self.use_nested_tensor is False because encoder_layer.self_attn.batch_first"):
        enc = dtorch.nn.TransformerEncoder(layer, 2)
    assert (enc.enable_nested_tensor, enc.use_nested_tensor, enc.mask_check) == (True, False, True)
    assert layer.activation_relu_or_gelu == 1
    assert dtorch.nn.TransformerEncoderLayer(8, 2, activation="gelu").activation_relu_or_gelu == 2
    assert dtorch.nn.TransformerEncoderLayer(8, 2, activation=dtorch.tanh).activation_relu_or_gelu == 0

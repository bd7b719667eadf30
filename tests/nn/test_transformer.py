"""TransformerEncoderLayer / TransformerEncoder: torch's state_dict keys and outputs with torch's weights."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from tests.oracle import check_op, load_from_torch, rand

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

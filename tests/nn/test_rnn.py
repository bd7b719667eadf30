"""RNN / LSTM / GRU and the cells against torch with the same weights: outputs, final states, gradients."""
from __future__ import annotations

import math
import warnings
from functools import partial

import numpy as np
import pytest

import dtorch
from tests.oracle import check_grads, check_op, load_from_torch, rand, raises_like_torch

TOL = {"rtol": 1e-8, "atol": 1e-10}  # float64 throughout

CONFIGS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("LSTM", {"proj_size": 3}), ("GRU", {})]


def _pair(torch, kind: str, *args, **kw):
    tm = getattr(torch.nn, kind)(*args, **kw).double()
    dm = getattr(dtorch.nn, kind)(*args, **kw).double()
    load_from_torch(dm, tm)
    return dm, tm


def _flat(out) -> tuple:
    """(output, h_n[, c_n]) of a recurrent module's result (a PackedSequence's data)."""
    y, h = out
    y = y.data if hasattr(y, "batch_sizes") else y
    return (y, *h) if isinstance(h, tuple) else (y, h)


@pytest.mark.parametrize("kind,extra", CONFIGS, ids=["tanh", "relu", "lstm", "lstm_proj", "gru"])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True), (2, False)])
@pytest.mark.parametrize("batch_first", [False, True])
def test_layer_matches_torch(kind, extra, num_layers, bidirectional, batch_first, torch):
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, **extra)
    dm, tm = _pair(torch, kind, 4, 5, **kw)
    assert list(dm.state_dict()) == list(tm.state_dict())
    assert [tuple(p.shape) for p in dm.parameters()] == [tuple(p.shape) for p in tm.parameters()]
    assert repr(dm) == repr(tm)
    x = rand(2, 6, 4) if batch_first else rand(6, 2, 4)
    check_op(lambda x: _flat(dm(x)), lambda x: _flat(tm(x)), inputs=[x], params=(dm.parameters(), tm.parameters()),
             **TOL)


@pytest.mark.parametrize("kind,extra", CONFIGS, ids=["tanh", "relu", "lstm", "lstm_proj", "gru"])
def test_initial_state_and_unbatched(kind, extra, torch):
    dm, tm = _pair(torch, kind, 3, 4, num_layers=2, bidirectional=True, bias=False, **extra)
    hsize = extra.get("proj_size", 4)
    x, h0, c0 = rand(5, 2, 3), rand(4, 2, hsize), rand(4, 2, 4)
    hx = (lambda h, c: (h, c)) if kind == "LSTM" else (lambda h, c: h)
    check_op(lambda x, h, c: _flat(dm(x, hx(h, c))), lambda x, h, c: _flat(tm(x, hx(h, c))), inputs=[x, h0, c0],
             params=(dm.parameters(), tm.parameters()), **TOL)
    xu, hu, cu = rand(5, 3), rand(4, hsize), rand(4, 4)
    check_op(lambda x, h, c: _flat(dm(x, hx(h, c))), lambda x, h, c: _flat(tm(x, hx(h, c))), inputs=[xu, hu, cu],
             **TOL)
    check_op(lambda x: _flat(dm(x)), lambda x: _flat(tm(x)), inputs=[xu], **TOL)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_packed_sequence_matches_torch(kind, enforce_sorted, torch):
    dm, tm = _pair(torch, kind, 3, 4, num_layers=2, bidirectional=True, batch_first=True)
    lengths = [5, 4, 4, 2] if enforce_sorted else [2, 5, 1, 4]
    x = rand(4, 5, 3)
    pack_d, pad_d = dtorch.nn.utils.rnn.pack_padded_sequence, dtorch.nn.utils.rnn.pad_packed_sequence
    pack_t, pad_t = torch.nn.utils.rnn.pack_padded_sequence, torch.nn.utils.rnn.pad_packed_sequence

    def run(m, pack, pad, x):
        packed = pack(x, lengths, batch_first=True, enforce_sorted=enforce_sorted)
        out, h = m(packed)
        padded, lens = pad(out, batch_first=True, total_length=6)
        return (padded, lens, out.data, out.batch_sizes) + ((*h,) if isinstance(h, tuple) else (h,))

    check_op(lambda x: run(dm, pack_d, pad_d, x), lambda x: run(tm, pack_t, pad_t, x), inputs=[x],
             params=(dm.parameters(), tm.parameters()), **TOL)


def test_packed_with_initial_state_permuted(torch):
    dm, tm = _pair(torch, "LSTM", 2, 3)
    seqs = [rand(2, 2), rand(4, 2), rand(3, 2)]
    h0, c0 = rand(1, 3, 3), rand(1, 3, 3)

    def run(lib, m, h, c, *s):
        out, (hn, cn) = m(lib.nn.utils.rnn.pack_sequence(list(s), enforce_sorted=False), (h, c))
        return (*lib.nn.utils.rnn.unpack_sequence(out), hn, cn)

    check_op(lambda *a: run(dtorch, dm, *a), lambda *a: run(torch, tm, *a), inputs=[h0, c0, *seqs],
             params=(dm.parameters(), tm.parameters()), **TOL)


@pytest.mark.parametrize("kind,extra", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}),
                                        ("GRUCell", {}), ("GRUCell", {"bias": False})])
def test_cells_match_torch(kind, extra, torch):
    dm, tm = _pair(torch, kind, 3, 4, **extra)
    assert list(dm.state_dict()) == list(tm.state_dict())
    assert repr(dm) == repr(tm)
    hx = (lambda h, c: (h, c)) if kind == "LSTMCell" else (lambda h, c: h)
    check_op(lambda x, h, c: dm(x, hx(h, c)), lambda x, h, c: tm(x, hx(h, c)),
             inputs=[rand(2, 3), rand(2, 4), rand(2, 4)], params=(dm.parameters(), tm.parameters()), **TOL)
    check_op(dm, tm, inputs=[rand(3)], **TOL)


@pytest.mark.parametrize("mode", ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"])
def test_fused_layer_gradcheck(mode):
    from dtorch.nn._functional.rnn import GATES, rnn_layer
    g = GATES[mode]
    x, h0, c0 = rand(3, 2, 2), rand(2, 3), rand(2, 3)
    ws = [rand(g * 3, 2), rand(g * 3, 3), rand(g * 3), rand(g * 3)]
    if mode == "RNN_RELU":
        x = dtorch.tensor(np.abs(x.detach().numpy()) + 0.1, requires_grad=True)  # away from relu's kink
    cx = c0 if mode == "LSTM" else None
    check_grads(lambda x, h, *w: rnn_layer(mode, x, h, cx, w, reverse=True), x, h0, *ws)
    packed = rand(5, 2)
    check_grads(lambda x, h, *w: rnn_layer(mode, x, h, cx, w, batch_sizes=[2, 2, 1]), packed, h0, *ws)


def test_lstm_projection_gradcheck():
    from dtorch.nn._functional.rnn import rnn_layer
    x, h0, c0 = rand(3, 2, 2), rand(2, 2), rand(2, 3)
    ws = [rand(12, 2), rand(12, 2), rand(12), rand(12), rand(2, 3)]
    check_grads(lambda x, h, c, *w: rnn_layer("LSTM", x, h, c, w), x, h0, c0, *ws)


def test_init_flat_weights_and_all_weights():
    m = dtorch.nn.LSTM(3, 16, num_layers=2, bidirectional=True, proj_size=4)
    bound = 1 / math.sqrt(16)
    for p in m.parameters():
        v = p.detach().numpy()
        assert v.min() >= -bound and v.max() <= bound and v.std() > bound / 4
    assert [p is q for p, q in zip(m._flat_weights, m.parameters())] == [True] * 20
    assert m._flat_weights_names[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    assert len(m.all_weights) == 4 and m.all_weights[1][0] is m.weight_ih_l0_reverse
    assert m.weight_ih_l1.shape == (64, 8) and m.weight_hh_l0.shape == (64, 4)
    m.weight_hh_l0 = dtorch.nn.Parameter(dtorch.zeros(64, 4))
    assert m._flat_weights[1] is m.weight_hh_l0
    assert m.flatten_parameters() is None


def test_dropout_between_layers():
    m = dtorch.nn.GRU(3, 8, num_layers=2, dropout=0.5)
    x = dtorch.randn(4, 2, 3)
    assert not np.allclose(m(x)[0].detach().numpy(), m(x)[0].detach().numpy())
    m.eval()
    assert np.array_equal(m(x)[0].detach().numpy(), m(x)[0].detach().numpy())
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        dtorch.nn.LSTM(3, 4, dropout=0.2)


def test_constructor_errors_like_torch(torch):
    cases = [("LSTM", (3, 4), {"dropout": 1.5}, ValueError), ("GRU", (3, 4), {"proj_size": 2}, ValueError),
             ("LSTM", (3, 4), {"proj_size": 4}, ValueError), ("RNN", (3, 4), {"nonlinearity": "gelu"}, ValueError),
             ("LSTM", (3, 0), {}, ValueError), ("LSTM", (3.0, 4), {}, TypeError), ("LSTM", (3, 4, 0), {}, ValueError)]
    for kind, args, kw, exc in cases:
        raises_like_torch(partial(getattr(dtorch.nn, kind), **kw), partial(getattr(torch.nn, kind), **kw), *args,
                          exc=exc)


def _with_state(m):
    return lambda x, h, c: m(x, (h, c))


def test_forward_errors_like_torch(torch):
    dm, tm = _pair(torch, "LSTM", 3, 4, num_layers=2)
    raises_like_torch(dm, tm, rand(5, 2, 2))
    raises_like_torch(_with_state(dm), _with_state(tm), rand(5, 2, 3), rand(2, 3, 4), rand(2, 2, 4))
    raises_like_torch(_with_state(dm), _with_state(tm), rand(5, 2, 3), rand(2, 2, 4), rand(2, 2, 5))
    raises_like_torch(_with_state(dm), _with_state(tm), rand(5, 2, 3), rand(2, 4), rand(2, 4))
    raises_like_torch(dm, tm, rand(2, 5, 2, 3), exc=ValueError)
    with pytest.raises(ValueError, match=r"RNN input dtype \(dtorch.float32\) does not match weight dtype "
                       r"\(dtorch.float64\). Convert input: input.to\(dtorch.float64\)"):
        dm(rand(5, 2, 3, dtype=dtorch.float32))
    dg, tg = _pair(torch, "GRU", 3, 4)
    raises_like_torch(dg, tg, rand(5, 2, 3), rand(2, 4))
    raises_like_torch(dg, tg, rand(5, 3), rand(1, 2, 4))
    raises_like_torch(dg, tg, rand(5, 2, 3), rand(1, 3, 4))
    dc, tc = _pair(torch, "LSTMCell", 3, 4)
    raises_like_torch(dc, tc, rand(2, 5))
    raises_like_torch(_with_state(dc), _with_state(tc), rand(2, 3), rand(3, 4), rand(3, 4))
    raises_like_torch(_with_state(dc), _with_state(tc), rand(2, 3), rand(2, 4), rand(2, 5))
    raises_like_torch(dc, tc, rand(1, 2, 3), exc=ValueError)
    dr, tr = _pair(torch, "RNNCell", 3, 4)
    raises_like_torch(dr, tr, rand(2, 3), rand(2, 2, 4), exc=ValueError)


def test_training_step_matches_torch(torch):
    """A few SGD steps of an LSTM regressor from the same weights: the same losses."""
    dm, tm = _pair(torch, "LSTM", 2, 6, num_layers=2, batch_first=True)
    dl, tl = _pair(torch, "Linear", 6, 1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 7, 2)), rng.standard_normal((3, 1))
    losses = []
    for lib, m, lin in ((dtorch, dm, dl), (torch, tm, tl)):
        opt = lib.optim.SGD(list(m.parameters()) + list(lin.parameters()), lr=0.1)
        run = []
        for _ in range(4):
            opt.zero_grad()
            out, (h, _) = m(lib.tensor(x))
            loss = ((lin(out[:, -1]) - lib.tensor(y)) ** 2).mean() + h.pow(2).mean()
            loss.backward()
            opt.step()
            run.append(loss.item())
        losses.append(run)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-9)
    assert losses[0][-1] < losses[0][0]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_layers_on_each_device(kind, device, torch):
    """The fused kernels are array-module generic: the same results on every device (cuda where present)."""
    dm, tm = _pair(torch, kind, 3, 4, num_layers=2, bidirectional=True)
    dm.to(device)
    x = rand(5, 2, 3, device=device)
    check_op(lambda x: _flat(dm(x)), lambda x: _flat(tm(x)), inputs=[x], params=(dm.parameters(), tm.parameters()),
             **TOL)
    seqs = [rand(4, 3, device=device), rand(2, 3, device=device)]
    packed = dtorch.nn.utils.rnn.pack_sequence(seqs)
    t_packed = torch.nn.utils.rnn.pack_sequence([torch.tensor(s.detach().cpu().numpy()) for s in seqs])
    ours, theirs = _flat(dm(packed)), _flat(tm(t_packed))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().numpy(), **TOL)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_saturated_gates_stay_quiet(kind):
    """Gate pre-activations far outside float32's exp range: exact 0/1 gates and no numpy overflow warning."""
    m = getattr(dtorch.nn, kind)(3, 4)
    with dtorch.no_grad():
        for p in m.parameters():
            p.fill_(-100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, _ = m(dtorch.full((5, 2, 3), 100.0))
    assert np.isfinite(out.detach().numpy()).all()


def test_inconsistent_packed_sequence_is_refused():
    m = dtorch.nn.GRU(2, 3)
    bad = dtorch.nn.utils.rnn.PackedSequence(dtorch.randn(5, 2), dtorch.tensor([2, 2, 2]))
    with pytest.raises(RuntimeError, match=r"batch_sizes \[2, 2, 2\] do not describe 5 packed rows"):
        m(bad)
    with pytest.raises(RuntimeError, match="non-increasing"):
        m(dtorch.nn.utils.rnn.PackedSequence(dtorch.randn(5, 2), dtorch.tensor([2, 3])))

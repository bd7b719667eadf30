"""scaled_dot_product_attention and MultiheadAttention against torch."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch.autograd import gradcheck
from tests.oracle import assert_close, to_torch, torch_or_skip


def _t(a, device="cpu", rg=True):
    return dtorch.tensor(a).to(device).requires_grad_(rg)


@pytest.mark.parametrize("case", ["plain", "causal", "bool", "bool_full_row", "float", "float_grad", "scale", "3d"])
def test_sdpa_matches_torch(device, case):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    lead = (3,) if case == "3d" else (2, 3)
    q, k, v = (_t(rng.standard_normal(lead + s), device) for s in [(4, 6), (5, 6), (5, 7)])
    kw, tkw = {}, {}
    if case == "causal":
        kw = tkw = {"is_causal": True}
    elif case.startswith("bool"):
        m = rng.random((4, 5)) > 0.4
        m[:, 0] = True
        if case == "bool_full_row":
            m[2] = False
        kw, tkw = {"attn_mask": dtorch.tensor(m).to(device)}, {"attn_mask": torch.tensor(m)}
    elif case.startswith("float"):
        m = _t(rng.standard_normal((2, 1, 4, 5)), device, case == "float_grad")
        kw, tkw = {"attn_mask": m}, {"attn_mask": to_torch(m)}
    elif case == "scale":
        kw = tkw = {"scale": 0.3}
    tq, tk, tv = to_torch(q), to_torch(k), to_torch(v)
    out = F.scaled_dot_product_attention(q, k, v, **kw)
    tout = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **tkw)
    assert_close(out, tout, rtol=1e-6, atol=1e-9)
    g = rng.standard_normal(tuple(out.shape))
    out.backward(dtorch.tensor(g).to(device))
    tout.backward(torch.tensor(g))
    for a, ta in [(q, tq), (k, tk), (v, tv)] + ([(kw["attn_mask"], tkw["attn_mask"])] if case == "float_grad" else []):
        assert_close(a.grad, ta.grad, rtol=1e-6, atol=1e-9)


def test_sdpa_gradcheck_and_double_backward():
    q, k, v = (dtorch.randn(2, n, 4, dtype=dtorch.float64, requires_grad=True) for n in (3, 5, 5))
    fn = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert gradcheck(fn, (q, k, v))
    go = dtorch.randn(2, 3, 4, dtype=dtorch.float64, requires_grad=True)

    def first(q, k, v, go):
        with dtorch.enable_grad():
            return dtorch.autograd.grad(fn(q, k, v), (q, k, v), (go,), create_graph=True)

    assert gradcheck(first, (q, k, v, go))


def test_sdpa_dropout_and_errors():
    x = dtorch.ones(1, 1, 64, 64, requires_grad=True)
    dtorch.manual_seed(0)
    a = F.scaled_dot_product_attention(x, x, x, dropout_p=0.5)
    dtorch.manual_seed(0)
    b = F.scaled_dot_product_attention(x, x, x, dropout_p=0.5)
    assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    assert abs(a.mean().item() - 1.0) < 0.1
    a.sum().backward()
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when is_causal=True"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=dtorch.ones(64, 64), is_causal=True)


def _load_from(dm, tm):
    dm.load_state_dict({k: dtorch.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kv_dims", [None, (4, 6)])
def test_multihead_attention_matches_torch(batch_first, kv_dims):
    torch = torch_or_skip()
    kdim, vdim = kv_dims or (None, None)
    dm = dtorch.nn.MultiheadAttention(8, 2, kdim=kdim, vdim=vdim, batch_first=batch_first).double()
    tm = torch.nn.MultiheadAttention(8, 2, kdim=kdim, vdim=vdim, batch_first=batch_first).double()
    assert repr(dm) == repr(tm)
    assert list(dm.state_dict()) == list(tm.state_dict())
    _load_from(dm, tm)
    rng = np.random.default_rng(1)
    n, l, s = 3, 5, 7

    def seq(length, dim):
        return rng.standard_normal((n, length, dim) if batch_first else (length, n, dim))

    q = _t(seq(l, 8))
    k, v = (_t(seq(s, 8)), None) if kv_dims is None else (_t(seq(s, 4)), _t(seq(s, 6)))
    v = k if v is None else v
    kpm = np.zeros((n, s), bool)
    kpm[:, -2:] = True
    mask = rng.standard_normal((l, s))
    for kwargs in [{}, {"key_padding_mask": kpm}, {"attn_mask": mask, "average_attn_weights": False},
                   {"need_weights": False, "attn_mask": mask > 1.5, "key_padding_mask": kpm}]:
        dk = {key: dtorch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kwargs.items()}
        tk = {key: torch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kwargs.items()}
        q, k = q.detach().requires_grad_(), k.detach().requires_grad_()
        tq, tk_ = to_torch(q), to_torch(k)
        dm.zero_grad(), tm.zero_grad()
        out, w = dm(q, k, v if v is not k else k, **dk)
        tout, tw = tm(tq, tk_, to_torch(v) if v is not k else tk_, **tk)
        assert_close(out, tout, rtol=1e-6, atol=1e-9)
        if tw is None:
            assert w is None
        else:
            assert_close(w, tw, rtol=1e-6, atol=1e-9)
        out.sum().backward()
        tout.sum().backward()
        assert_close(q.grad, tq.grad, rtol=1e-6, atol=1e-9)
        for p, tp in zip(dm.parameters(), tm.parameters()):
            assert_close(p.grad, tp.grad, rtol=1e-6, atol=1e-9)


def test_multihead_attention_self_attention_unbatched_and_no_bias():
    torch = torch_or_skip()
    dm, tm = dtorch.nn.MultiheadAttention(6, 3, bias=False).double(), torch.nn.MultiheadAttention(6, 3, bias=False)
    tm = tm.double()
    assert list(dm.state_dict()) == list(tm.state_dict())
    _load_from(dm, tm)
    x = _t(np.random.default_rng(2).standard_normal((4, 6)))
    out, w = dm(x, x, x)
    tx = to_torch(x)
    tout, tw = tm(tx, tx, tx)
    assert_close(out, tout, rtol=1e-6, atol=1e-9)
    assert_close(w, tw, rtol=1e-6, atol=1e-9)

"""scaled_dot_product_attention and MultiheadAttention against torch."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from tests.oracle import check_grads, check_op, leaf, load_from_torch


@pytest.mark.parametrize("case", ["plain", "causal", "bool", "bool_full_row", "float", "float_grad", "scale", "3d"])
def test_sdpa_matches_torch(device, case, torch):
    rng = np.random.default_rng(0)
    lead = (3,) if case == "3d" else (2, 3)
    q, k, v = (leaf(rng.standard_normal(lead + s), device) for s in [(4, 6), (5, 6), (5, 7)])
    mask, kw = None, {}
    if case == "causal":
        kw = {"is_causal": True}
    elif case.startswith("bool"):
        m = rng.random((4, 5)) > 0.4
        m[:, 0] = True
        if case == "bool_full_row":
            m[2] = False
        mask = dtorch.tensor(m).to(device)
    elif case.startswith("float"):
        mask = leaf(rng.standard_normal((2, 1, 4, 5)), device, requires_grad=case == "float_grad")
    elif case == "scale":
        kw = {"scale": 0.3}
    check_op(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw),
             lambda q, k, v, m: torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw),
             inputs=[q, k, v, mask], rtol=1e-6, atol=1e-9)


def test_sdpa_gradcheck_and_double_backward():
    q, k, v = (dtorch.randn(2, n, 4, dtype=dtorch.float64, requires_grad=True) for n in (3, 5, 5))
    fn = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    check_grads(fn, q, k, v)


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


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kv_dims", [None, (4, 6)])
def test_multihead_attention_matches_torch(batch_first, kv_dims, torch):
    kdim, vdim = kv_dims or (None, None)
    dm = dtorch.nn.MultiheadAttention(8, 2, kdim=kdim, vdim=vdim, batch_first=batch_first).double()
    tm = torch.nn.MultiheadAttention(8, 2, kdim=kdim, vdim=vdim, batch_first=batch_first).double()
    assert repr(dm) == repr(tm)
    assert list(dm.state_dict()) == list(tm.state_dict())
    load_from_torch(dm, tm)
    rng = np.random.default_rng(1)
    n, l, s = 3, 5, 7

    def seq(length, dim):
        return rng.standard_normal((n, length, dim) if batch_first else (length, n, dim))

    # self-attention (one tensor as key and value) or separate key and value of their own sizes
    inputs = [leaf(seq(l, 8))] + ([leaf(seq(s, 8))] if kv_dims is None else [leaf(seq(s, 4)), leaf(seq(s, 6))])
    kpm = np.zeros((n, s), bool)
    kpm[:, -2:] = True
    mask = rng.standard_normal((l, s))
    for kwargs in [{}, {"key_padding_mask": kpm}, {"attn_mask": mask, "average_attn_weights": False},
                   {"need_weights": False, "attn_mask": mask > 1.5, "key_padding_mask": kpm}]:
        dk = {key: dtorch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kwargs.items()}
        tk = {key: torch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kwargs.items()}
        check_op(lambda q, k, *v, dk=dk: dm(q, k, *(v or (k,)), **dk),
                 lambda q, k, *v, tk=tk: tm(q, k, *(v or (k,)), **tk),
                 inputs=inputs, params=(dm.parameters(), tm.parameters()), rtol=1e-6, atol=1e-9)


def test_multihead_attention_self_attention_unbatched_and_no_bias(torch):
    dm, tm = dtorch.nn.MultiheadAttention(6, 3, bias=False).double(), torch.nn.MultiheadAttention(6, 3, bias=False)
    tm = tm.double()
    assert list(dm.state_dict()) == list(tm.state_dict())
    load_from_torch(dm, tm)
    x = leaf(np.random.default_rng(2).standard_normal((4, 6)))
    check_op(lambda x: dm(x, x, x), lambda x: tm(x, x, x), inputs=[x], params=(dm.parameters(), tm.parameters()),
             rtol=1e-6, atol=1e-9)

"""The CPU fast paths of softmax over the last axis and of scaled_dot_product_attention's backward.

softmax_last skips the row max when every row total is in range, and otherwise takes the max-shifted form
for the whole array; each kind of row (normal, overflowing, tiny, NaN, all -inf, long, many short) is
compared with torch in float32 and float64, forward and backward.
"""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from dtorch._ops import softmax as sm
from tests.oracle import check_grads, check_op, leaf

_ROWS = {
    "normal": lambda rng: rng.standard_normal((6, 5)) * 3,
    "overflowing": lambda rng: rng.standard_normal((6, 5)) + np.array([[0], [85], [90], [0], [500], [0]]),
    "tiny_totals": lambda rng: rng.standard_normal((6, 5)) - np.array([[0], [60], [120], [800], [0], [0]]),
    "underflowing_entries": lambda rng: np.where(rng.random((6, 5)) < 0.5, -130.0, rng.standard_normal((6, 5))),
    "long_rows": lambda rng: rng.standard_normal((3, sm._BLAS_ROWS + 7)),
    "many_short_rows": lambda rng: rng.standard_normal((4, 512, 2)),
}


@pytest.mark.parametrize("dtype", [dtorch.float32, dtorch.float64])
@pytest.mark.parametrize("rows", list(_ROWS))
def test_softmax_last_axis_matches_torch(rows, dtype):
    x = leaf(_ROWS[rows](np.random.default_rng(1)), dtype=dtype)
    tol = {"rtol": 1e-5, "atol": 1e-7} if dtype == dtorch.float32 else {"rtol": 1e-12, "atol": 1e-15}
    check_op(lambda m, t: m.softmax(t, -1), inputs=(x,), as_leaves=True, **tol)
    check_op(lambda m, t: m.nn.functional.softmax(t.transpose(0, -1), dim=-1), inputs=(x,), as_leaves=True, **tol)


def test_rows_with_nan_or_all_minus_inf(torch):
    inf = float("inf")
    x = np.array([[0.5, 1.0, 2.0], [np.nan, 1.0, 0.0], [-inf, -inf, -inf], [-inf, 3.0, -inf], [inf, 0.0, 1.0]])
    for dtype in (dtorch.float32, dtorch.float64):
        ours = dtorch.tensor(x, dtype=dtype).softmax(-1).numpy()
        theirs = torch.tensor(x).softmax(-1).numpy()
        assert np.array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours[~np.isnan(ours)], theirs[~np.isnan(theirs)], rtol=1e-6)
    q = dtorch.tensor(np.random.default_rng(2).standard_normal((1, 3, 4)), dtype=dtorch.float32)
    mask = dtorch.ones(3, 3, dtype=dtorch.bool)
    mask[1] = False                                          # a fully masked row: zeros in attention
    out = F.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    assert np.all(out[0, 1].numpy() == 0) and np.all(np.isfinite(out.numpy()))


@pytest.mark.parametrize("lq, s", [(0, 5), (3, 0), (0, 0)])
def test_sdpa_with_empty_query_or_key(torch, lq, s):
    rng = np.random.default_rng(7)
    q, k = leaf(rng.standard_normal((2, lq, 4)), dtype=dtorch.float32), leaf(rng.standard_normal((2, s, 4)),
                                                                            dtype=dtorch.float32)
    check_op(lambda m, q, k: m.nn.functional.scaled_dot_product_attention(q, k, k), inputs=[q, k])
    check_op(lambda m, q: m.softmax(q, -1), inputs=[q])


def test_fast_path_is_within_rounding_of_the_shifted_form():
    rng = np.random.default_rng(3)
    s = (rng.standard_normal((64, 64)) * 10 - 30).astype(np.float32)
    s[::7, ::3] = -200.0                                    # entries whose exp underflows
    ref = np.exp(s.astype(np.float64) - s.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    fast = sm.softmax_last(s.copy())
    assert np.max(np.abs(fast - ref)) < 1e-6 and np.max(np.abs(fast - ref) / np.maximum(ref, 1e-30)) < 1e-5
    np.testing.assert_allclose(sm.row_sums(s), s.sum(-1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(sm.row_dots(s, fast), (s * fast).sum(-1, keepdims=True), rtol=1e-5)


@pytest.mark.parametrize("dtype", [dtorch.float32, dtorch.float64])
@pytest.mark.parametrize("case", ["causal", "float_mask_grad", "only_v", "only_mask"])
def test_sdpa_numpy_backward_matches_torch(case, dtype):
    rng = np.random.default_rng(4)
    q, k, v = (leaf(rng.standard_normal((2, 3, n, 8)), dtype=dtype) for n in (6, 7, 7))
    mask = None
    if case in ("float_mask_grad", "only_mask"):
        mask = leaf(rng.standard_normal((2, 1, 6, 7)), dtype=dtype)
    if case == "only_v":
        q.requires_grad_(False)
        k.requires_grad_(False)
    if case == "only_mask":
        for t in (q, k, v):
            t.requires_grad_(False)
    kw = {"is_causal": True} if case == "causal" else {}
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == dtorch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    check_op(lambda m, q, k, v, b: m.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=b, **kw),
             inputs=[q, k, v, mask], **tol)


def test_sdpa_dropout_backward_by_gradcheck():
    """The same dropout mask on every call (seeded), so the function is deterministic: finite differences check
    the backward with the dropout's scale and mask folded into dP, also with a float mask's gradient."""
    rng = np.random.default_rng(5)
    q, k, v = (leaf(rng.standard_normal((1, 2, n, 3))) for n in (4, 5, 5))
    mask = leaf(rng.standard_normal((1, 1, 4, 5)))

    def fn(q, k, v, mask):
        dtorch.manual_seed(7)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.4)

    out = fn(q, k, v, mask)
    dtorch.manual_seed(7)
    plain = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert not np.allclose(out.detach().numpy(), plain.detach().numpy())    # the dropout did something
    check_grads(fn, q, k, v, mask, gradgrad=False)


def test_sdpa_output_is_laid_out_as_torchs(torch):
    """Heads split from a (B, L, 3E) projection give an output in (B, L, H, E) memory, as torch's, so the usual
    ``y.transpose(1, 2).contiguous().view(B, L, E)`` copies nothing; contiguous heads give contiguous output."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 5, 3 * 4 * 3)).astype(np.float32)
    outs = []
    for lib in (dtorch, torch):
        t = lib.tensor(x, requires_grad=True)
        q, k, v = (a.reshape(2, 5, 4, 3).transpose(1, 2) for a in t.split(12, dim=2))
        y = lib.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        flat = y.transpose(1, 2).contiguous().view(2, 5, 12)
        (flat * lib.arange(12.0)).sum().backward()
        c = lib.nn.functional.scaled_dot_product_attention(q.contiguous(), k, v)
        outs.append((y.stride(), c.stride(), flat.detach().numpy(), t.grad.numpy()))
    (ys, cs, flat, grad), (tys, tcs, tflat, tgrad) = outs
    assert tuple(ys) == tuple(tys) and tuple(cs) == tuple(tcs)
    np.testing.assert_allclose(flat, tflat, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, tgrad, rtol=1e-4, atol=1e-5)

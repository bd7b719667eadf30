"""One recurrent layer in one direction as one graph node: RNN (tanh/relu), LSTM (with projection), GRU.

The input part of every gate for the whole sequence is one GEMM before the time loop; each step is then one
GEMM, computed as ``(W_hh @ h.T).T`` (OpenBLAS is markedly faster with the small batch as the last dim than
as the first), and a few in-place elementwise passes. The backward walks the steps in reverse with the
gate activations the forward kept (``ctx._extra``) and ends with one GEMM each for the input and weight
gradients. A packed sequence (``batch_sizes``, decreasing) runs the first ``batch_sizes[t]`` rows at step ``t``,
so rows that have finished keep their last state, as torch's packed RNNs do. Double backward recomputes the
layer with recorded ops (``rnn_reference``) and differentiates that.
"""
from __future__ import annotations

from typing import Sequence

from ..._device import xp_of
from ..._dispatch import TENSOR_NS, apply, defop
from ..._ops.unary import _sigmoid_fwd
from ...tensor import Tensor
from .rnn_reference import reference_grads

__all__ = ["rnn_layer"]

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _steps(x, batch_sizes, reverse: bool) -> list:
    """(row offset, rows) of each time step of the (T*B or packed) rows, in processing order."""
    if batch_sizes is None:
        t, b = x.shape[0], x.shape[1]
        steps = [(i * b, b) for i in range(t)]
    else:
        steps, off = [], 0
        for bs in batch_sizes:
            steps.append((off, bs))
            off += bs
    return steps[::-1] if reverse else steps


def _input_gates(x2, w_ih, b_ih, b_hh, fold_hh: bool):
    gi = x2 @ w_ih.T
    if b_ih is not None:
        gi += b_ih
        if fold_hh:
            gi += b_hh
    return gi


# ---- forward kernels ----------------------------------------------------------------------------
def _lstm_fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes=None, reverse=False):
    xp = xp_of(x)
    x2 = x.reshape(-1, x.shape[-1])
    acts = _input_gates(x2, w_ih, b_ih, b_hh, True)
    n, hid = acts.shape[0], w_hh.shape[0] // 4
    hout = h0.shape[-1]
    h, c = h0.copy(), c0.copy()
    out = xp.empty((n, hout), x.dtype)
    hp = xp.empty((n, hout), x.dtype)
    cp = xp.empty((n, hid), x.dtype)
    tc = xp.empty((n, hid), x.dtype)
    hc = xp.empty((n, hid), x.dtype) if w_hr is not None else None
    for off, bs in _steps(x, batch_sizes, reverse):
        rows = slice(off, off + bs)
        g = acts[rows]
        hb, cb = h[:bs], c[:bs]
        g += (w_hh @ hb.T).T
        hp[rows] = hb
        cp[rows] = cb
        g[:, :2 * hid] = _sigmoid_fwd(g[:, :2 * hid])
        g[:, 3 * hid:] = _sigmoid_fwd(g[:, 3 * hid:])
        xp.tanh(g[:, 2 * hid:3 * hid], out=g[:, 2 * hid:3 * hid])
        cb *= g[:, hid:2 * hid]
        cb += g[:, :hid] * g[:, 2 * hid:3 * hid]
        t = tc[rows]
        xp.tanh(cb, out=t)
        if hc is None:
            xp.multiply(g[:, 3 * hid:], t, out=out[rows])
        else:
            xp.multiply(g[:, 3 * hid:], t, out=hc[rows])
            xp.matmul(hc[rows], w_hr.T, out=out[rows])
        hb[...] = out[rows]
    saved = {"acts": acts, "hp": hp, "cp": cp, "tc": tc, "hc": hc}
    return (out.reshape(x.shape[:-1] + (hout,)), h, c), saved


def _gru_fwd(x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes=None, reverse=False):
    xp = xp_of(x)
    x2 = x.reshape(-1, x.shape[-1])
    acts = _input_gates(x2, w_ih, b_ih, b_hh, False)
    n, hid = acts.shape[0], w_hh.shape[1]
    h = h0.copy()
    out = xp.empty((n, hid), x.dtype)
    hp = xp.empty((n, hid), x.dtype)
    ghn = xp.empty((n, hid), x.dtype)
    for off, bs in _steps(x, batch_sizes, reverse):
        rows = slice(off, off + bs)
        g = acts[rows]
        hb = h[:bs]
        gh = (w_hh @ hb.T).T
        if b_hh is not None:
            gh += b_hh
        hp[rows] = hb
        g[:, :2 * hid] += gh[:, :2 * hid]
        g[:, :2 * hid] = _sigmoid_fwd(g[:, :2 * hid])
        ghn[rows] = gh[:, 2 * hid:]
        nn_ = g[:, 2 * hid:]
        nn_ += g[:, :hid] * gh[:, 2 * hid:]
        xp.tanh(nn_, out=nn_)
        o = out[rows]
        xp.subtract(hb, nn_, out=o)
        o *= g[:, hid:2 * hid]
        o += nn_
        hb[...] = o
    saved = {"acts": acts, "hp": hp, "ghn": ghn}
    return (out.reshape(x.shape[:-1] + (hid,)), h), saved


def _rnn_fwd(x, h0, w_ih, w_hh, b_ih, b_hh, relu=False, batch_sizes=None, reverse=False):
    xp = xp_of(x)
    x2 = x.reshape(-1, x.shape[-1])
    out = _input_gates(x2, w_ih, b_ih, b_hh, True)
    n, hid = out.shape
    h = h0.copy()
    hp = xp.empty((n, hid), x.dtype)
    for off, bs in _steps(x, batch_sizes, reverse):
        rows = slice(off, off + bs)
        o = out[rows]
        hb = h[:bs]
        hp[rows] = hb
        o += (w_hh @ hb.T).T
        if relu:
            xp.maximum(o, 0, out=o)
        else:
            xp.tanh(o, out=o)
        hb[...] = o
    return (out.reshape(x.shape[:-1] + (hid,)), h), {"hp": hp, "out": out.copy()}


# ---- backward -----------------------------------------------------------------------------------
def _needs(ctx, i: int) -> bool:
    return ctx.next_functions[i][0] is not None


def _weight_grads(ctx, x2, w_ih, dgi, dgh, hp, first: int, bias: bool) -> list:
    """Gradients of (x, W_ih, W_hh, b_ih, b_hh) from the gate gradients of the whole sequence."""
    dx = dgi @ w_ih if _needs(ctx, 0) else None
    dw_ih = dgi.T @ x2 if _needs(ctx, first) else None
    dw_hh = dgh.T @ hp if _needs(ctx, first + 1) else None
    db_ih = dgi.sum(0) if bias and _needs(ctx, first + 2) else None
    db_hh = dgh.sum(0) if bias and _needs(ctx, first + 3) else None
    return [dx, dw_ih, dw_hh, db_ih, db_hh]


def _lstm_bw_arrays(ctx, grads, x, w_hh, w_hr):
    xp = xp_of(x)
    gout, gh, gc = grads
    s, p = ctx._extra, ctx._args
    acts, tc, cp, hc = s["acts"], s["tc"], s["cp"], s["hc"]
    hid = tc.shape[1]
    gout = gout.reshape(-1, gout.shape[-1])
    dh, dc = gh.copy(), gc.copy()
    dg = xp.empty_like(acts)
    dht_all = xp.empty_like(gout) if hc is not None else None
    for off, bs in reversed(_steps(x, p.get("batch_sizes"), p.get("reverse", False))):
        rows = slice(off, off + bs)
        dht = dh[:bs] + gout[rows]
        if hc is not None:
            dht_all[rows] = dht
            dht = dht @ w_hr
        a, t, d = acts[rows], tc[rows], dg[rows]
        i, f, g, o = a[:, :hid], a[:, hid:2 * hid], a[:, 2 * hid:3 * hid], a[:, 3 * hid:]
        dct = dc[:bs] + dht * o * (1 - t * t)
        d[:, 3 * hid:] = dht * t * o * (1 - o)
        d[:, :hid] = dct * g * i * (1 - i)
        d[:, hid:2 * hid] = dct * cp[rows] * f * (1 - f)
        d[:, 2 * hid:3 * hid] = dct * i * (1 - g * g)
        dc[:bs] = dct * f
        dh[:bs] = d @ w_hh
    dw_hr = dht_all.T @ hc if hc is not None and _needs(ctx, 7) else None
    return dg, dh, dc, dw_hr


def _lstm_bw(ns, ctx, grads, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
    if ns is TENSOR_NS:
        return reference_grads("LSTM", ctx, grads, (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr))
    dg, dh, dc, dw_hr = _lstm_bw_arrays(ctx, grads, x, w_hh, w_hr)
    x2 = x.reshape(-1, x.shape[-1])
    dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(ctx, x2, w_ih, dg, dg, ctx._extra["hp"], 3, b_ih is not None)
    return (dx.reshape(x.shape) if dx is not None else None), dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr


def _gru_bw_arrays(ctx, grads, x, w_hh):
    xp = xp_of(x)
    gout, gh = grads
    s, p = ctx._extra, ctx._args
    acts, hp, ghn = s["acts"], s["hp"], s["ghn"]
    hid = hp.shape[1]
    gout = gout.reshape(-1, hid)
    dh = gh.copy()
    dgi = xp.empty_like(acts)
    dgh = xp.empty_like(acts)
    for off, bs in reversed(_steps(x, p.get("batch_sizes"), p.get("reverse", False))):
        rows = slice(off, off + bs)
        dht = dh[:bs] + gout[rows]
        a, di, dd = acts[rows], dgi[rows], dgh[rows]
        r, z, n = a[:, :hid], a[:, hid:2 * hid], a[:, 2 * hid:]
        dnp = dht * (1 - z) * (1 - n * n)
        di[:, 2 * hid:] = dnp
        dd[:, 2 * hid:] = dnp * r
        di[:, :hid] = dnp * ghn[rows] * r * (1 - r)
        di[:, hid:2 * hid] = dht * (hp[rows] - n) * z * (1 - z)
        dd[:, :2 * hid] = di[:, :2 * hid]
        dh[:bs] = dht * z + dd @ w_hh
    return dgi, dgh, dh


def _gru_bw(ns, ctx, grads, x, h0, w_ih, w_hh, b_ih, b_hh):
    if ns is TENSOR_NS:
        return reference_grads("GRU", ctx, grads, (x, h0, None, w_ih, w_hh, b_ih, b_hh, None))
    dgi, dgh, dh = _gru_bw_arrays(ctx, grads, x, w_hh)
    x2 = x.reshape(-1, x.shape[-1])
    dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(ctx, x2, w_ih, dgi, dgh, ctx._extra["hp"], 2, b_ih is not None)
    return (dx.reshape(x.shape) if dx is not None else None), dh, dw_ih, dw_hh, db_ih, db_hh


def _rnn_bw(ns, ctx, grads, x, h0, w_ih, w_hh, b_ih, b_hh):
    p = ctx._args
    if ns is TENSOR_NS:
        mode = "RNN_RELU" if p.get("relu") else "RNN_TANH"
        return reference_grads(mode, ctx, grads, (x, h0, None, w_ih, w_hh, b_ih, b_hh, None))
    xp = xp_of(x)
    gout, gh = grads
    out, hp = ctx._extra["out"], ctx._extra["hp"]
    gout = gout.reshape(-1, out.shape[1])
    dh = gh.copy()
    dg = xp.empty_like(out)
    for off, bs in reversed(_steps(x, p.get("batch_sizes"), p.get("reverse", False))):
        rows = slice(off, off + bs)
        dht = dh[:bs] + gout[rows]
        o = out[rows]
        if p.get("relu"):
            xp.multiply(dht, o > 0, out=dg[rows])
        else:
            xp.multiply(dht, 1 - o * o, out=dg[rows])
        dh[:bs] = dg[rows] @ w_hh
    x2 = x.reshape(-1, x.shape[-1])
    dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(ctx, x2, w_ih, dg, dg, hp, 2, b_ih is not None)
    return (dx.reshape(x.shape) if dx is not None else None), dh, dw_ih, dw_hh, db_ih, db_hh


_lstm_op = defop("lstm_layer", save=(0, 1, 2, 3, 4, 5, 6, 7), n_out=3, extra=True)(_lstm_fwd)
_lstm_op.backward(_lstm_bw, "LstmLayerBackward0")
_gru_op = defop("gru_layer", save=(0, 1, 2, 3, 4, 5), n_out=2, extra=True)(_gru_fwd)
_gru_op.backward(_gru_bw, "GruLayerBackward0")
_rnn_op = defop("rnn_layer", save=(0, 1, 2, 3, 4, 5), n_out=2, extra=True)(_rnn_fwd)
_rnn_op.backward(_rnn_bw, "RnnLayerBackward0")


def rnn_layer(mode: str, input: Tensor, hx: Tensor, cx: Tensor | None, weights: Sequence,
              batch_sizes: Sequence[int] | None = None, reverse: bool = False) -> tuple:
    """One layer in one direction: ``(output, h_n)`` (LSTM: ``(output, h_n, c_n)``).

    input: (T, B, I), or packed rows (N, I) with ``batch_sizes``; hx/cx: (B, H); weights: torch's
    (w_ih, w_hh[, b_ih, b_hh][, w_hr]) of the layer and direction.
    """
    w_ih, w_hh = weights[0], weights[1]
    b_ih, b_hh = (weights[2], weights[3]) if len(weights) >= 4 else (None, None)
    w_hr = weights[-1] if mode == "LSTM" and len(weights) in (3, 5) else None
    bs = None if batch_sizes is None else tuple(int(b) for b in batch_sizes)
    if bs is not None and (sum(bs) != input.shape[0] or min(bs, default=1) <= 0
                           or any(a < b for a, b in zip(bs, bs[1:]))):
        raise RuntimeError(f"batch_sizes {list(bs)} do not describe {input.shape[0]} packed rows: they must be "
                           "positive, non-increasing and sum to the number of rows")
    params = {"batch_sizes": bs, "reverse": reverse}
    if mode == "LSTM":
        (out, h, c), _ = apply(_lstm_op, (input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr), params)
        return out, h, c
    if mode == "GRU":
        (out, h), _ = apply(_gru_op, (input, hx, w_ih, w_hh, b_ih, b_hh), params)
        return out, h
    params["relu"] = mode == "RNN_RELU"
    (out, h), _ = apply(_rnn_op, (input, hx, w_ih, w_hh, b_ih, b_hh), params)
    return out, h

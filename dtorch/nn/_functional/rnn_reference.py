"""The recurrent layers written with recorded Tensor ops, one step at a time.

The fused layers in ``rnn.py`` differentiate this for double backward (``create_graph=True``): the
recomputed graph is built from the saved inputs themselves, so second derivatives reach them.
"""
from __future__ import annotations

from ..._ops.joining import cat
from ...autograd._api import grad as _grad
from ...tensor import Tensor

__all__ = ["reference_layer", "reference_grads"]


def _cell(mode: str, gi: Tensor, h: Tensor, c, w_hh: Tensor, b_hh, w_hr):
    """One step from the input part of the gates ``gi``: the new (h, c)."""
    gh = h.matmul(w_hh.t())
    if b_hh is not None:
        gh = gh + b_hh
    if mode == "GRU":
        hid = h.shape[1]
        r = (gi[:, :hid] + gh[:, :hid]).sigmoid()
        z = (gi[:, hid:2 * hid] + gh[:, hid:2 * hid]).sigmoid()
        n = (gi[:, 2 * hid:] + r * gh[:, 2 * hid:]).tanh()
        return (1 - z) * n + z * h, None
    pre = gi + gh
    if mode == "RNN_TANH":
        return pre.tanh(), None
    if mode == "RNN_RELU":
        return pre.relu(), None
    hid = c.shape[1]
    i, f = pre[:, :hid].sigmoid(), pre[:, hid:2 * hid].sigmoid()
    g, o = pre[:, 2 * hid:3 * hid].tanh(), pre[:, 3 * hid:].sigmoid()
    c = f * c + i * g
    h = o * c.tanh()
    return (h.matmul(w_hr.t()) if w_hr is not None else h), c


def _merge(new: Tensor, old: Tensor, bs: int) -> Tensor:
    return new if bs == old.shape[0] else cat([new, old[bs:]], 0)


def reference_layer(mode: str, x: Tensor, h0: Tensor, c0, w_ih: Tensor, w_hh: Tensor, b_ih, b_hh, w_hr,
                    batch_sizes=None, reverse: bool = False) -> tuple:
    """``(output, h_n, c_n)`` of one layer in one direction (c_n is None but for LSTM)."""
    x2 = x.reshape(-1, x.shape[-1])
    gi = x2.matmul(w_ih.t())
    if b_ih is not None:
        gi = gi + b_ih
    if batch_sizes is None:
        batch_sizes = [x.shape[1]] * x.shape[0]
    offs = [sum(batch_sizes[:t]) for t in range(len(batch_sizes))]
    order = range(len(batch_sizes) - 1, -1, -1) if reverse else range(len(batch_sizes))
    h, c = h0, c0
    outs = [None] * len(batch_sizes)
    for t in order:
        bs, off = batch_sizes[t], offs[t]
        hn, cn = _cell(mode, gi[off:off + bs], h[:bs], None if c is None else c[:bs], w_hh, b_hh, w_hr)
        outs[t] = hn
        h = _merge(hn, h, bs)
        c = None if c is None else _merge(cn, c, bs)
    out = cat(outs, 0)
    return out.reshape(tuple(x.shape[:-1]) + (out.shape[-1],)), h, c


def reference_grads(mode: str, ctx, grads, inputs: tuple) -> tuple:
    """The gradients of the fused op's inputs through the recomputed layer, with their own graph."""
    p = ctx._args
    out, h, c = reference_layer(mode, *inputs, batch_sizes=p.get("batch_sizes"), reverse=p.get("reverse", False))
    outs = (out, h, c) if mode == "LSTM" else (out, h)
    # the op's inputs: (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr) for LSTM, without c0 and w_hr otherwise
    positions = range(8) if mode == "LSTM" else (0, 1, 3, 4, 5, 6)
    wanted = [(k, inputs[j]) for k, j in enumerate(positions)
              if ctx.next_functions[k][0] is not None and isinstance(inputs[j], Tensor)]
    res = [None] * len(positions)
    if wanted:
        got = _grad(outs, [t for _, t in wanted], list(grads), create_graph=True, allow_unused=True)
        for (k, _), g in zip(wanted, got):
            res[k] = g
    return tuple(res)

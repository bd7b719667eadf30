"""One dynamic quantized recurrent layer in one direction, with torch's (fbgemm's) CPU arithmetic.

torch's quantized LSTM/GRU run each layer as: the input projection ``linear_ih`` of the whole sequence in
one dynamic quantized linear (the activations quantized from the min and max of every step of every
sequence together), then per step ``gates = linear_hh(h) + input_gates``, with ``h`` quantized per step from
the rows still running. Each linear carries its own bias inside (``b_ih`` in ``linear_ih``, ``b_hh`` in
``linear_hh``). The cells are the one-step case. float16 weights multiply float32 activations.

The layer is one registered op (forward only) so ``jit.trace`` records it and the ONNX exporter refuses
it by name (``UnsupportedOperatorError``) instead of baking a constant.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ....._device import xp_of
from ....._dispatch import apply, defop
from .....nn._functional.rnn import _steps
from .....tensor import Tensor
from .linear import _int8_linear

__all__ = ["quantized_rnn_layer"]


def _linear_fn(w, scale, zero_point, bias) -> Callable:
    """``rows -> rows @ W.T + b`` for one packed weight: int8 (``scale`` given) or float16."""
    if scale is None:
        w32 = w.astype(np.float32).T

        def fp16(rows):
            y = rows @ w32
            if bias is not None:
                y += bias
            return y
        return fp16
    w32 = w.astype(np.float32)
    w_absmax = float(xp_of(w32).abs(w32).max()) if w32.size else 0.0

    def int8(rows):
        return _int8_linear(rows, w, scale, zero_point, bias, w32, w_absmax)
    return int8


def _sigmoid(a):
    """float32 ``1 / (1 + exp(-a))`` with the exponential rounded from double: torch's CPU sigmoid's results
    far more often than a float32 exp (whose ulp errors would flip the next step's activation rounding)."""
    e = xp_of(a).exp(-a.astype(np.float64)).astype(np.float32)
    e += np.float32(1)
    return np.float32(1) / e


def _tanh(a):
    """float32 tanh rounded from double (torch's float32 tanh is almost always the correctly rounded one)."""
    return xp_of(a).tanh(a.astype(np.float64)).astype(np.float32)


def _lstm_step(gi, h, c, linear_hh):
    g = linear_hh(h)
    g += gi
    hid = c.shape[1]
    i, f = _sigmoid(g[:, :hid]), _sigmoid(g[:, hid:2 * hid])
    cell, o = _tanh(g[:, 2 * hid:3 * hid]), _sigmoid(g[:, 3 * hid:])
    cy = f * c
    cy += i * cell
    return o * _tanh(cy), cy


def _gru_step(gi, h, linear_hh):
    gh = linear_hh(h)
    hid = h.shape[1]
    r = _sigmoid(gh[:, :hid] + gi[:, :hid])
    z = _sigmoid(gh[:, hid:2 * hid] + gi[:, hid:2 * hid])
    n = gh[:, 2 * hid:] * r
    n += gi[:, 2 * hid:]
    n = _tanh(n)
    hy = h - n
    hy *= z
    hy += n
    return (hy,)


def _rnn_step(gi, h, linear_hh, relu: bool):
    g = linear_hh(h)
    g += gi
    xp = xp_of(g)
    return (xp.maximum(g, 0, out=g) if relu else _tanh(g),)


def _layer(x, states: list, ih: tuple, hh: tuple, mode: str, batch_sizes, reverse: bool) -> tuple:
    """(output rows shaped like ``x``, final states...) of one layer and direction on arrays."""
    xp = xp_of(x)
    x32 = x.astype(np.float32, copy=False)
    gi = _linear_fn(*ih)(x32.reshape(-1, x.shape[-1]))
    linear_hh = _linear_fn(*hh)
    states = [s.astype(np.float32, copy=True) for s in states]
    hid = states[0].shape[-1]
    out = xp.empty((gi.shape[0], hid), np.float32)
    for off, bs in _steps(x, batch_sizes, reverse):
        rows = slice(off, off + bs)
        cur = [s[:bs] for s in states]
        if mode == "LSTM":
            new = _lstm_step(gi[rows], cur[0], cur[1], linear_hh)
        elif mode == "GRU":
            new = _gru_step(gi[rows], cur[0], linear_hh)
        else:
            new = _rnn_step(gi[rows], cur[0], linear_hh, mode == "RNN_RELU")
        for s, v in zip(cur, new):
            s[...] = v
        out[rows] = new[0]
    out = out.reshape(x.shape[:-1] + (hid,)).astype(x.dtype, copy=False)
    return (out, *(s.astype(x.dtype, copy=False) for s in states))


@defop("quantized_lstm_layer_dynamic", n_out=3)
def _lstm_layer(x, h0, c0, *weights, batch_sizes=None, reverse=False):
    return _layer(x, [h0, c0], weights[:4], weights[4:], "LSTM", batch_sizes, reverse)


@defop("quantized_rnn_layer_dynamic", n_out=2)
def _rnn_layer(x, h0, *weights, mode="GRU", batch_sizes=None, reverse=False):
    return _layer(x, [h0], weights[:4], weights[4:], mode, batch_sizes, reverse)


def quantized_rnn_layer(mode: str, input: Tensor, hx: Tensor, cx: Tensor | None, ih: tuple, hh: tuple,
                        batch_sizes=None, reverse: bool = False) -> tuple:
    """``(output, h_n)`` (LSTM: ``(output, h_n, c_n)``) of one layer and direction, without gradients.

    input: (T, B, I), or packed rows (N, I) with ``batch_sizes``; ih/hh: (weight, scale, zero_point, bias)
    of the packed input and hidden weights (scale and zero_point None for float16 weights).
    """
    bs = None if batch_sizes is None else tuple(int(b) for b in batch_sizes)
    params = {"batch_sizes": bs, "reverse": reverse}
    args = (input.detach(), hx.detach())
    if mode == "LSTM":
        return apply(_lstm_layer, args + (cx.detach(), *ih, *hh), params)
    params["mode"] = mode
    return apply(_rnn_layer, args + (*ih, *hh), params)

"""Training steps/s of word_language_model's LSTM setup: dtorch against torch in the same run.

The model: Embedding(ntoken, 256) -> LSTM(256, 256, num_layers=2, dropout=0.2) -> Linear(256, ntoken) with
tied weights, sequence 35, batch 20, cross-entropy, clip_grad_norm_(0.25) and an SGD step, the hidden state
detached between steps (as the example's ``repackage_hidden``). Also the LSTM alone (forward + backward of
the recurrent stack). Both libraries start from the same weights and data; each step is timed alone, the
libraries taking turns, and a figure is the median over ``rounds * steps`` steps. BLAS/OpenMP threads are
set before numpy and torch load (``--threads``, default 1). Prints ONE JSON line.
Usage: ``python bench/rnn_step.py [--rounds 5] [--steps 6] [--threads 1] [--ntoken 2000]``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
SEQ, BATCH, HID, LAYERS, LR, CLIP = 35, 20, 256, 2, 20.0, 0.25


class LM:
    """The language-model step on one library (``lib`` is dtorch or torch)."""

    def __init__(self, lib, ntoken: int, state: dict | None) -> None:
        nn = lib.nn
        self.lib = lib
        self.enc = nn.Embedding(ntoken, HID)
        self.rnn = nn.LSTM(HID, HID, LAYERS, dropout=0.2)
        self.dec = nn.Linear(HID, ntoken)
        self.dec.weight = self.enc.weight
        self.model = nn.ModuleList([self.enc, self.rnn, self.dec])
        if state is not None:
            self.model.load_state_dict({k: lib.tensor(v) for k, v in state.items()})
        self.hidden = None

    def step(self, x, y) -> float:
        lib = self.lib
        self.model.train()
        if self.hidden is not None:
            self.hidden = tuple(h.detach() for h in self.hidden)
        for p in self.model.parameters():
            p.grad = None
        out, self.hidden = self.rnn(self.enc(x), self.hidden)
        logits = self.dec(out).view(-1, self.dec.out_features)
        loss = lib.nn.functional.cross_entropy(logits, y)
        loss.backward()
        lib.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
        with lib.no_grad():
            for p in self.model.parameters():
                p.add_(p.grad, alpha=-LR)
        return loss.item()


class LSTMOnly:
    """Forward and backward of the 2-layer LSTM alone (eval mode: no dropout)."""

    def __init__(self, lib, state: dict | None) -> None:
        self.rnn = lib.nn.LSTM(HID, HID, LAYERS)
        if state is not None:
            self.rnn.load_state_dict({k: lib.tensor(v) for k, v in state.items()})

    def step(self, x, y) -> float:
        for p in self.rnn.parameters():
            p.grad = None
        out, (h, c) = self.rnn(x)
        loss = (out * y).sum() + h.sum() + c.sum()
        loss.backward()
        return loss.item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ntoken", type=int, default=2000)
    args = ap.parse_args()
    for v in THREAD_VARS:
        os.environ[v] = str(args.threads)
    import numpy as np
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import dtorch
    from _interleave import steps_per_s

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    ref = LM(torch, args.ntoken, None)
    state = {k: v.detach().numpy().copy() for k, v in ref.model.state_dict().items()}
    x = rng.integers(0, args.ntoken, (SEQ, BATCH))
    y = rng.integers(0, args.ntoken, SEQ * BATCH)
    lm = {"dtorch": (LM(dtorch, args.ntoken, state), dtorch.tensor(x), dtorch.tensor(y)),
          "torch": (ref, torch.tensor(x), torch.tensor(y))}
    # dropout draws differ between the libraries: the losses agree only in the first step
    lm_out = steps_per_s(lm, args.rounds, args.steps)
    lstm_state = {k: v.detach().numpy().copy() for k, v in torch.nn.LSTM(HID, HID, LAYERS).state_dict().items()}
    xs = rng.standard_normal((SEQ, BATCH, HID)).astype(np.float32)
    ys = rng.standard_normal((SEQ, BATCH, HID)).astype(np.float32)
    lstm = {"dtorch": (LSTMOnly(dtorch, lstm_state), dtorch.tensor(xs), dtorch.tensor(ys)),
            "torch": (LSTMOnly(torch, lstm_state), torch.tensor(xs), torch.tensor(ys))}
    lstm_out = steps_per_s(lstm, args.rounds, args.steps)
    print(json.dumps({"bench": "rnn_step", "seq": SEQ, "batch": BATCH, "hidden": HID, "layers": LAYERS,
                      "ntoken": args.ntoken, "threads": args.threads, "lm": lm_out, "lstm_fwd_bwd": lstm_out}))


if __name__ == "__main__":
    main()

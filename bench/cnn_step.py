"""CNN training step (conv3x3 1->16, ReLU, maxpool, conv3x3 16->32, ReLU, maxpool, Linear -> 10) on 28x28,
batch 64, float32, SGD lr 0.01 + cross-entropy: steps/s for dtorch, torch (when installed) and a hand-written
numpy im2col implementation, in the same run.

Each thread count runs in its own subprocess (thread variables set before numpy loads); steps are timed one at
a time, the implementations taking turns, and a figure is the median over ``rounds * steps`` steps. Prints ONE
JSON line with dtorch's ratio to torch and to numpy per thread count.

Usage: ``python bench/cnn_step.py [--rounds 7] [--steps 10] [--threads 1 2] [--clock wall|cpu]``;
``--profile 50`` prints a cProfile table of dtorch's steps at 1 thread.
"""
from __future__ import annotations

import json

import numpy as np

from _interleave import run_per_thread, run_worker, step_arguments

BATCH = 64
LR = 0.01


def _model(nn):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


class _Framework:
    def __init__(self, lib) -> None:
        lib.manual_seed(0)
        self.lib = lib
        self.model = _model(lib.nn)
        self.opt = lib.optim.SGD(self.model.parameters(), lr=LR)

    def step(self, x, y):
        self.opt.zero_grad()
        loss = self.lib.nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss


# ---- plain numpy reference ------------------------------------------------------------------------
def _im2col(x, k=3, p=1):
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + 2 * p, w + 2 * p), x.dtype)
    xp[:, :, p:p + h, p:p + w] = x
    s = xp.strides
    v = np.lib.stride_tricks.as_strided(xp, (n, c, k, k, h, w), s[:2] + s[2:] + s[2:])
    return np.ascontiguousarray(v).reshape(n, c * k * k, h * w)


def _col2im(cols, shape, k=3, p=1):
    n, c, h, w = shape
    cols = cols.reshape(n, c, k, k, h, w)
    acc = np.zeros((n, c, h + 2 * p, w + 2 * p), cols.dtype)
    for i in range(k):
        for j in range(k):
            acc[:, :, i:i + h, j:j + w] += cols[:, :, i, j]
    return acc[:, :, p:p + h, p:p + w]


def _conv_fwd(x, w, b):
    cols = _im2col(x)
    y = np.matmul(w.reshape(w.shape[0], -1), cols) + b[:, None]
    return y.reshape(x.shape[0], w.shape[0], x.shape[2], x.shape[3]), cols


def _conv_bw(g, x_shape, w, cols, need_dx=True):
    n, o = g.shape[:2]
    g2 = g.reshape(n, o, -1)
    dw = np.matmul(g2, cols.transpose(0, 2, 1)).sum(0).reshape(w.shape)
    db = g2.sum((0, 2))
    dx = _col2im(np.matmul(w.reshape(o, -1).T, g2), x_shape) if need_dx else None
    return dx, dw, db


def _pool_fwd(x):
    n, c, h, w = x.shape
    r = x.reshape(n, c, h // 2, 2, w // 2, 2)
    out = r.max(axis=(3, 5))
    mask = r == out[:, :, :, None, :, None]
    return out, mask


def _pool_bw(g, mask):
    n, c, h, _, w, _ = mask.shape
    return (mask * g[:, :, :, None, :, None]).reshape(n, c, 2 * h, 2 * w)


class _Numpy:
    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.params = {
            "w1": rng.uniform(-1 / 3, 1 / 3, (16, 1, 3, 3)).astype(np.float32), "b1": np.zeros(16, np.float32),
            "w2": rng.uniform(-1 / 12, 1 / 12, (32, 16, 3, 3)).astype(np.float32), "b2": np.zeros(32, np.float32),
            "w3": rng.uniform(-0.025, 0.025, (10, 32 * 49)).astype(np.float32), "b3": np.zeros(10, np.float32)}

    def step(self, x, y):
        P = self.params
        a1, c1 = _conv_fwd(x, P["w1"], P["b1"])
        r1 = np.maximum(a1, 0)
        p1, m1 = _pool_fwd(r1)
        a2, c2 = _conv_fwd(p1, P["w2"], P["b2"])
        r2 = np.maximum(a2, 0)
        p2, m2 = _pool_fwd(r2)
        f = p2.reshape(len(x), -1)
        logits = f @ P["w3"].T + P["b3"]
        z = logits - logits.max(1, keepdims=True)
        sm = np.exp(z)
        sm /= sm.sum(1, keepdims=True)
        loss = float(-np.log(sm[np.arange(len(y)), y]).mean())
        gl = sm
        gl[np.arange(len(y)), y] -= 1
        gl /= len(x)
        grads = {"w3": gl.T @ f, "b3": gl.sum(0)}
        gp2 = (gl @ P["w3"]).reshape(p2.shape)
        ga2 = _pool_bw(gp2, m2) * (a2 > 0)
        gp1, grads["w2"], grads["b2"] = _conv_bw(ga2, p1.shape, P["w2"], c2)
        ga1 = _pool_bw(gp1, m1) * (a1 > 0)
        _, grads["w1"], grads["b1"] = _conv_bw(ga1, x.shape, P["w1"], c1, need_dx=False)
        for k, g in grads.items():
            P[k] -= LR * g
        return loss


def make_impls(threads: int) -> dict:
    import dtorch

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int64)
    impls = {"dtorch": (_Framework(dtorch), dtorch.from_numpy(x), dtorch.from_numpy(y))}
    try:
        import torch

        torch.set_num_threads(threads)
        impls["torch"] = (_Framework(torch), torch.from_numpy(x), torch.from_numpy(y))
    except ImportError:
        pass
    impls["numpy"] = (_Numpy(), x, y)
    return impls


def main() -> None:
    ap = step_arguments(__doc__, rounds=7, steps=10)
    args = ap.parse_args()
    if args.worker is not None:
        impls = make_impls(args.worker)
        run_worker(impls, args)
        return
    result = {"bench": "cnn_step", "batch": BATCH, "dtype": "float32", "optimizer": "SGD(lr=0.01)",
              "clock": args.clock}
    argv = ["--rounds", str(args.rounds), "--steps", str(args.steps), "--clock", args.clock]
    result.update(run_per_thread(__file__, args.threads, argv, args.profile))
    if not args.profile:
        print(json.dumps(result))


if __name__ == "__main__":
    main()

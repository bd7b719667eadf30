"""CNN training step (conv3x3 1->16, ReLU, maxpool, conv3x3 16->32, ReLU, maxpool, Linear -> 10) on 28x28,
batch 64, float32, SGD lr 0.01 + cross-entropy, at one thread: steps/s for dtorch, torch (when installed)
and a hand-written numpy im2col implementation. Prints one JSON line (medians over rounds)."""
from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

BATCH, STEPS, ROUNDS, WARMUP = 64, 10, 7, 3
LR = 0.01


def _rates(steps: dict) -> dict:
    """Median steps/s of each step function; rounds interleave them so machine noise hits all alike."""
    for step in steps.values():
        for _ in range(WARMUP):
            step()
    rates = {name: [] for name in steps}
    for _ in range(ROUNDS):
        for name, step in steps.items():
            t = time.perf_counter()
            for _ in range(STEPS):
                step()
            rates[name].append(STEPS / (time.perf_counter() - t))
    return {name: statistics.median(r) for name, r in rates.items()}


def _model(nn):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def _framework_step(lib, x_np, y_np):
    lib.manual_seed(0)
    model = _model(lib.nn)
    opt = lib.optim.SGD(model.parameters(), lr=LR)
    x, y = lib.from_numpy(x_np), lib.from_numpy(y_np)
    F = lib.nn.functional

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


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


def _numpy_step(x, y):
    rng = np.random.default_rng(0)
    params = {"w1": rng.uniform(-1 / 3, 1 / 3, (16, 1, 3, 3)).astype(np.float32), "b1": np.zeros(16, np.float32),
              "w2": rng.uniform(-1 / 12, 1 / 12, (32, 16, 3, 3)).astype(np.float32), "b2": np.zeros(32, np.float32),
              "w3": rng.uniform(-0.025, 0.025, (10, 32 * 49)).astype(np.float32), "b3": np.zeros(10, np.float32)}
    onehot = np.eye(10, dtype=np.float32)[y]

    def step():
        P = params
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
        gl = (sm - onehot) / len(x)
        grads = {"w3": gl.T @ f, "b3": gl.sum(0)}
        gp2 = (gl @ P["w3"]).reshape(p2.shape)
        ga2 = _pool_bw(gp2, m2) * (a2 > 0)
        gp1, grads["w2"], grads["b2"] = _conv_bw(ga2, p1.shape, P["w2"], c2)
        ga1 = _pool_bw(gp1, m1) * (a1 > 0)
        _, grads["w1"], grads["b1"] = _conv_bw(ga1, x.shape, P["w1"], c1, need_dx=False)
        for k, g in grads.items():
            P[k] -= LR * g
    return step


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int64)
    import dtorch

    steps = {"numpy": _numpy_step(x, y), "dtorch": _framework_step(dtorch, x, y)}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(1)
        steps["torch"] = _framework_step(torch, x, y)
    rates = _rates(steps)
    res = {"bench": "cnn_step", "batch": BATCH, "threads": 1,
           "dtorch_steps_per_s": round(rates["dtorch"], 2),
           "torch_steps_per_s": round(rates["torch"], 2) if torch is not None else None,
           "numpy_steps_per_s": round(rates["numpy"], 2),
           "ratio_dtorch_torch": round(rates["dtorch"] / rates["torch"], 3) if torch is not None else None}
    print(json.dumps(res))


if __name__ == "__main__":
    main()

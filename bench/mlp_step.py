"""Training steps/s of an MLP 784-1024-1024-10 (ReLU, cross-entropy, SGD momentum 0.9, batch 256, float32).

Compares dtorch, torch (when installed) and the same step written by hand in numpy, at 1 and 2
BLAS threads. Each thread count runs in its own subprocess so that the thread variables are set
before numpy loads. Prints ONE JSON line: steps/s (median of rounds), the ratios dtorch/numpy and
dtorch/torch, and each implementation's loss after the timed steps (same init, same data: they
should agree). Steps are timed one at a time, the implementations taking turns; a figure is the
median over ``rounds * steps`` steps. Usage: ``python bench/mlp_step.py [--rounds 7] [--steps 8]``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _interleave import steps_per_s

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
SIZES = (784, 1024, 1024, 10)
BATCH, LR, MOMENTUM = 256, 0.01, 0.9


# ---- the three implementations ------------------------------------------------------------
def init_params(np, seed: int = 0) -> list:
    """nn.Linear-style uniform init, [W1, b1, W2, b2, W3, b3], float32."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / fan_in ** 0.5
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    return params


class NumpyMLP:
    """Forward, backward and the momentum update written by hand."""

    def __init__(self, np, params: list) -> None:
        self.np = np
        self.params = [p.copy() for p in params]
        self.bufs = None

    def step(self, x, y) -> float:
        np = self.np
        W1, b1, W2, b2, W3, b3 = self.params
        n = x.shape[0]
        a1 = x @ W1.T
        a1 += b1
        np.maximum(a1, 0, out=a1)
        a2 = a1 @ W2.T
        a2 += b2
        np.maximum(a2, 0, out=a2)
        z = a2 @ W3.T
        z += b3
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = float(np.log(s).mean() - z[rows, y].mean())
        g3 = e / s  # softmax - onehot, over the batch
        g3[rows, y] -= 1
        g3 /= n
        g2 = g3 @ W3
        g2 *= a2 > 0
        g1 = g2 @ W2
        g1 *= a1 > 0
        grads = [g1.T @ x, g1.sum(0), g2.T @ a1, g2.sum(0), g3.T @ a2, g3.sum(0)]
        if self.bufs is None:
            self.bufs = [g.copy() for g in grads]
        else:
            for b, g in zip(self.bufs, grads):
                b *= MOMENTUM
                b += g
        for p, b in zip(self.params, self.bufs):
            p -= LR * b
        return loss


class LibMLP:
    """dtorch or torch: nn.Sequential of Linear/ReLU, F.cross_entropy, optim.SGD."""

    def __init__(self, lib, params: list) -> None:
        nn = lib.nn
        self.lib = lib
        self.model = nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(SIZES[1], SIZES[2]),
                                   nn.ReLU(), nn.Linear(SIZES[2], SIZES[3]))
        with lib.no_grad():
            for p, a in zip(self.model.parameters(), params):
                p.copy_(lib.from_numpy(a.copy()))
        self.opt = lib.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)

    def step(self, x, y) -> float:
        self.opt.zero_grad()
        loss = self.lib.nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss


# ---- one thread count (a subprocess) --------------------------------------------------------
def worker(threads: int, rounds: int, steps: int) -> dict:

    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import dtorch

    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    params = init_params(np)
    impls = {"numpy": (NumpyMLP(np, params), x, y),
             "dtorch": (LibMLP(dtorch, params), dtorch.from_numpy(x), dtorch.from_numpy(y))}
    try:
        import torch

        torch.set_num_threads(threads)
        impls["torch"] = (LibMLP(torch, params), torch.from_numpy(x), torch.from_numpy(y))
    except ImportError:
        pass
    return steps_per_s(impls, rounds, steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=8, help="training steps per timed round")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.rounds, args.steps)))
        return
    result = {"bench": "mlp_step", "model": "784-1024-1024-10 relu", "batch": BATCH, "dtype": "float32"}
    for n in args.threads:
        env = dict(os.environ, **{v: str(n) for v in THREAD_VARS})
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(n), "--rounds", str(args.rounds),
               "--steps", str(args.steps)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        result[f"threads_{n}"] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result))


if __name__ == "__main__":
    main()

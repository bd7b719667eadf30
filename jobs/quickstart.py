"""A small training demo on raw dtorch tensors and autograd (no nn needed).

Trains a two-layer MLP classifier on a synthetic two-spirals data set with plain SGD
and prints the loss and accuracy as it learns. Runs in a few seconds on one core.
"""
from __future__ import annotations

import math
import sys
import time

import dtorch


def spirals(n_per_class: int, generator: dtorch.Generator) -> tuple[dtorch.Tensor, dtorch.Tensor]:
    t = dtorch.rand(n_per_class, generator=generator) * 3 * math.pi + 0.5
    noise = dtorch.randn(2 * n_per_class, 2, generator=generator) * 0.15
    arm = dtorch.stack([t * t.cos(), t * t.sin()], dim=1) / 5
    x = dtorch.cat([arm, -arm]) + noise
    y = dtorch.cat([dtorch.zeros(n_per_class, dtype=dtorch.int64), dtorch.ones(n_per_class, dtype=dtorch.int64)])
    return x, y


def main(steps: int = 2500, hidden: int = 64, lr: float = 0.5) -> float:
    gen = dtorch.Generator().manual_seed(0)
    x, y = spirals(512, gen)
    w1 = (dtorch.randn(2, hidden, generator=gen) * (2 / 2) ** 0.5).requires_grad_()
    b1 = dtorch.zeros(hidden, requires_grad=True)
    w2 = (dtorch.randn(hidden, 2, generator=gen) * (2 / hidden) ** 0.5).requires_grad_()
    b2 = dtorch.zeros(2, requires_grad=True)
    params = [w1, b1, w2, b2]
    onehot = dtorch.zeros(y.shape[0], 2)
    onehot[dtorch.arange(y.shape[0]), y] = 1.0
    start = time.perf_counter()
    for step in range(1, steps + 1):
        logits = (x @ w1 + b1).relu() @ w2 + b2
        loss = -(logits.log_softmax(dim=1) * onehot).sum(dim=1).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with dtorch.no_grad():
            for p in params:
                p -= lr * p.grad
        if step % 250 == 0 or step == 1:
            acc = (logits.argmax(dim=1) == y).float().mean().item()
            print(f"step {step:4d}  loss {loss.item():.4f}  accuracy {acc:.3f}", flush=True)
    print(f"done in {time.perf_counter() - start:.1f} s")
    return acc


if __name__ == "__main__":
    final = main()
    sys.exit(0 if final > 0.9 else 1)

"""The training loop the example jobs share: config defaults, endless batches, an LR schedule, train, evaluate."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import dtorch


def with_defaults(defaults: dict, config: dict | None) -> dict:
    """``defaults`` updated by ``config``; an unknown key is an error (a typo must not pass silently)."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise KeyError(f"unknown config keys {unknown}; known: {sorted(defaults)}")
    return {**defaults, **config}


def forever(loader: Iterable) -> Iterator:
    """The loader's batches, epoch after epoch (a shuffling loader reshuffles each time)."""
    while True:
        yield from loader


def warmup_cosine(optimizer: dtorch.optim.Optimizer, warmup: int, total: int) -> dtorch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 10% of the base LR at step ``total``."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return dtorch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train(model: dtorch.nn.Module, loss_fn: Callable[[Any, Any], dtorch.Tensor], batches: Iterator,
          optimizer: dtorch.optim.Optimizer, steps: int, scheduler: Any = None, clip_norm: float | None = None,
          log_every: int = 100, log: Callable[[str], None] = print) -> list[float]:
    """Run ``steps`` optimizer steps on ``(inputs, targets)`` from ``batches``; returns the loss of every step.

    ``loss_fn(model(inputs), targets)`` gives the loss; the scheduler (if any) steps once per step.
    """
    model.train()
    losses: list[float] = []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        inputs, targets = next(batches)
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        if clip_norm is not None:
            dtorch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step in (1, steps)):
            recent = losses[-log_every:]
            lr = optimizer.param_groups[0]["lr"]
            log(f"step {step:5d}  loss {sum(recent) / len(recent):.4f}  lr {lr:.2e}  "
                f"{time.perf_counter() - start:6.1f} s")
    return losses


@dtorch.no_grad()
def accuracy(model: dtorch.nn.Module, loader: Iterable) -> float:
    """The fraction of samples whose arg-max logit is the label."""
    model.eval()
    right = total = 0
    for inputs, targets in loader:
        right += (model(inputs).argmax(dim=1) == targets).sum().item()
        total += targets.shape[0]
    return right / total

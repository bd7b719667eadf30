"""The optimizer and learning-rate schedule named by a config's ``optimizer`` and ``scheduler`` sections."""
from __future__ import annotations

import math
from collections.abc import Iterable

import dtorch


def optimizer(params: Iterable, cfg: dict) -> dtorch.optim.Optimizer:
    """SGD, Adam or AdamW with the section's hyper-parameters."""
    name = cfg["name"]
    if name == "sgd":
        return dtorch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["nesterov"],
                                weight_decay=cfg["weight_decay"])
    kind = {"adam": dtorch.optim.Adam, "adamw": dtorch.optim.AdamW}[name]
    return kind(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"], weight_decay=cfg["weight_decay"])


def lr_factor(cfg: dict, base_lr: float, total_steps: int, step: int) -> float:
    """The multiple of the base learning rate at optimizer step ``step`` (0-based)."""
    warmup = cfg["warmup_steps"]
    if step < warmup:
        return (step + 1) / warmup
    floor = cfg["min_lr"] / base_lr
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if cfg["name"] == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg["name"] == "linear":
        return floor + (1 - floor) * (1 - progress)
    if cfg["name"] == "step":
        return cfg["gamma"] ** ((step - warmup) // cfg["step_size"])
    return 1.0  # constant


def scheduler(opt: dtorch.optim.Optimizer, cfg: dict, total_steps: int) -> dtorch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then the named decay (to ``min_lr`` at ``total_steps``)."""
    base = opt.param_groups[0]["lr"]
    return dtorch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(cfg, base, total_steps, step))

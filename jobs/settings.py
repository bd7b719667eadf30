"""A job's config: the launcher's nested sections, with defaults for running a job without the launcher.

Under ``dtorch-run`` the config arrives validated and complete (see launcher/README.md, "Schema"),
plus ``run = {dir, rank, world_size, local_rank, restart}``. ``python jobs/NAME.py`` passes nothing
and gets COMMON updated by the job's own defaults: one process, no run directory (so no metrics,
checkpoints or plot). ``model`` and ``data`` are the job's own sections: an unknown key there is an
error, as the launcher's validation makes it for every other section.
"""
from __future__ import annotations

import copy
from typing import Any

# The launcher's schema defaults, with configs/base.yaml's choices where it makes them.
COMMON: dict[str, dict[str, Any]] = {
    "model": {},
    "data": {},
    "optimizer": {"name": "adamw", "lr": 3e-3, "momentum": 0.0, "nesterov": False, "weight_decay": 1e-4,
                  "betas": [0.9, 0.999], "eps": 1e-8},
    "scheduler": {"name": "cosine", "warmup_steps": 0, "min_lr": 0.0, "step_size": 1000, "gamma": 0.1},
    "train": {"max_steps": None, "epochs": None, "batch_size": 64, "grad_accum_steps": 1, "clip_norm": None,
              "seed": 0, "log_every": 50},
    "distributed": {"backend": "mpi", "nproc": 1, "bucket_cap_mb": 25, "timeout": 600},
    "checkpoint": {"dir": "checkpoints", "every_steps": 0, "keep_last": 2, "async": False},
    "run": {"dir": None, "rank": 0, "world_size": 1, "local_rank": 0, "restart": 0},
}
FREE_FORM = ("model", "data")
LENGTHS = ("max_steps", "epochs")


def resolve(job_defaults: dict, config: dict | None) -> dict:
    """COMMON, updated by ``job_defaults``, updated by ``config`` (section by section, key by key).

    Exactly one of ``train.max_steps`` / ``train.epochs`` stays set: the one ``config`` gives wins.
    """
    config = config or {}
    out = copy.deepcopy(COMMON)
    for layer in (job_defaults, config):
        for section, values in layer.items():
            if isinstance(values, dict) and isinstance(out.get(section), dict):
                out[section].update(copy.deepcopy(values))
            else:
                out[section] = copy.deepcopy(values)
    for section in FREE_FORM:
        unknown = sorted(set(config.get(section) or {}) - set(job_defaults.get(section, {})))
        if unknown:
            raise KeyError(f"unknown {section} keys {unknown}; known: {sorted(job_defaults.get(section, {}))}")
    given = [k for k in LENGTHS if (config.get("train") or {}).get(k) is not None]
    if len(given) == 1:
        out["train"][next(k for k in LENGTHS if k not in given)] = None
    if sum(out["train"][k] is not None for k in LENGTHS) != 1:
        raise ValueError("exactly one of train.max_steps and train.epochs must be set")
    return out

"""An MLP classifier on scikit-learn's bundled 8x8 handwritten digits: about 97% test accuracy in seconds.

``python jobs/digits_mlp.py`` trains with the defaults below; the launcher calls ``main(config)``.
"""
from __future__ import annotations

import sys
import time

import dtorch
import dtorch.nn.functional as F

try:
    from .data import digits
    from .models import mlp
    from .training import accuracy, forever, train, warmup_cosine, with_defaults
except ImportError:  # run as a script
    from data import digits
    from models import mlp
    from training import accuracy, forever, train, warmup_cosine, with_defaults

DEFAULTS = {"epochs": 15, "batch_size": 64, "hidden": 128, "lr": 3e-3, "weight_decay": 1e-4, "seed": 0,
            "log_every": 50}


def main(config: dict | None = None) -> dict:
    """Train, then return ``{"test_accuracy", "final_loss", "steps", "seconds"}``."""
    cfg = with_defaults(DEFAULTS, config)
    start = time.perf_counter()
    dtorch.manual_seed(cfg["seed"])
    train_loader, test_loader = digits(cfg["batch_size"], seed=cfg["seed"])
    model = mlp(dtorch, (64, cfg["hidden"], cfg["hidden"], 10))
    optimizer = dtorch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    steps = cfg["epochs"] * len(train_loader)
    losses = train(model, F.cross_entropy, forever(train_loader), optimizer, steps,
                   scheduler=warmup_cosine(optimizer, warmup=steps // 20, total=steps), log_every=cfg["log_every"])
    result = {"test_accuracy": accuracy(model, test_loader), "final_loss": losses[-1], "steps": steps,
              "seconds": round(time.perf_counter() - start, 2)}
    print(f"test accuracy {result['test_accuracy']:.4f}  ({result['seconds']} s)")
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["test_accuracy"] >= 0.95 else 1)

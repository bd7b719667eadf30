"""A small CNN on scikit-learn's bundled 8x8 handwritten digits: about 98% test accuracy in seconds.

``dtorch-run configs/digits_cnn.yaml`` trains it data-parallel on 2 ranks; ``python jobs/digits_cnn.py``
trains it in one process with the defaults below (jobs/settings.py adds the rest).
"""
from __future__ import annotations

import sys

import dtorch
import dtorch.nn.functional as F
from dtorch.utils.data import DataLoader

try:
    from .data import digits
    from .models import cnn
    from .settings import resolve
    from .training import accuracy, fit, summary
except ImportError:  # run as a script
    from data import digits
    from models import cnn
    from settings import resolve
    from training import accuracy, fit, summary

DEFAULTS = {"model": {"channels": [16, 32]}, "optimizer": {"lr": 1e-2}, "train": {"epochs": 15}}


def main(config: dict | None = None) -> dict:
    """Train, then return the summary dict with ``test_accuracy`` (absent when a signal stopped training)."""
    cfg = resolve(DEFAULTS, config)
    dtorch.manual_seed(cfg["train"]["seed"])
    train_set, test_set = digits(seed=cfg["train"]["seed"], images=True)
    model = cnn(dtorch, tuple(cfg["model"]["channels"]))
    outcome = fit(cfg, model, F.cross_entropy, train_set)
    if outcome.stopped:
        return summary(outcome, cfg["run"])
    return summary(outcome, cfg["run"], test_accuracy=accuracy(model, DataLoader(test_set, batch_size=512)))


if __name__ == "__main__":
    sys.exit(0 if main()["test_accuracy"] >= 0.95 else 1)

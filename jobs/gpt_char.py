"""A character-level GPT (nanoGPT-like) on Python standard-library docstrings; it learns in well under a minute.

The loss starts at the uniform baseline ln(vocab) (~4.5 nats) and falls far below it as the model picks up
letters, words and layout; a held-out tail of the text gives the validation loss, and a short sample is
printed at the end. ``dtorch-run configs/gpt_char.yaml`` trains it on 2 ranks; ``python jobs/gpt_char.py``
in one process with the defaults below.
"""
from __future__ import annotations

import math
import sys

import dtorch
import dtorch.nn.functional as F
from dtorch.utils.data import DataLoader

try:
    from .data import CharWindows, char_corpus
    from .models import gpt
    from .settings import resolve
    from .training import fit, summary
except ImportError:  # run as a script
    from data import CharWindows, char_corpus
    from models import gpt
    from settings import resolve
    from training import fit, summary

DEFAULTS = {
    "model": {"context": 32, "layers": 2, "heads": 4, "width": 64},
    "data": {"val_fraction": 0.1, "eval_batches": 8, "sample_chars": 200, "stride": 1},
    "optimizer": {"lr": 3e-3, "weight_decay": 0.1, "betas": [0.9, 0.95]},
    "scheduler": {"warmup_steps": 30},
    "train": {"max_steps": 600, "batch_size": 32, "clip_norm": 1.0, "log_every": 100},
}


def sequence_loss(logits: dtorch.Tensor, targets: dtorch.Tensor) -> dtorch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@dtorch.no_grad()
def mean_loss(model: dtorch.nn.Module, data: CharWindows, batch_size: int, n: int, seed: int) -> float:
    """The mean loss over ``n`` batches of windows drawn (by ``seed``) from ``data``."""
    model.eval()
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=dtorch.Generator().manual_seed(seed))
    losses = [sequence_loss(model(x), y).item() for (x, y), _ in zip(loader, range(n))]
    return sum(losses) / len(losses)


@dtorch.no_grad()
def sample(model: dtorch.nn.Module, data: CharWindows, prompt: str, n: int) -> str:
    """``n`` characters continuing ``prompt``, drawn from the model's softmax."""
    model.eval()
    ids = dtorch.tensor([[data.vocab.index(ch) for ch in prompt]])
    for _ in range(n):
        logits = model(ids[:, -model.context:])[:, -1]
        ids = dtorch.cat([ids, dtorch.multinomial(logits.softmax(dim=-1), 1)], dim=1)
    return data.decode(ids[0].tolist())


def main(config: dict | None = None) -> dict:
    """Train, then return the summary dict with ``val_loss``, ``baseline_loss`` and ``vocab``."""
    cfg = resolve(DEFAULTS, config)
    m, d, seed = cfg["model"], cfg["data"], cfg["train"]["seed"]
    dtorch.manual_seed(seed)
    text = char_corpus()
    split = int(len(text) * (1 - d["val_fraction"]))
    vocab = sorted(set(text))
    train_set = CharWindows(text[:split], m["context"], vocab, d["stride"])
    val_set = CharWindows(text[split:], m["context"], vocab)
    baseline = math.log(len(vocab))
    if cfg["run"]["rank"] == 0:
        print(f"corpus {len(text)} chars, vocab {len(vocab)}, uniform baseline loss {baseline:.3f}")
    model = gpt(dtorch, len(vocab), m["context"], m["layers"], m["heads"], m["width"])
    outcome = fit(cfg, model, sequence_loss, train_set)
    if outcome.stopped:
        return summary(outcome, cfg["run"])
    val = mean_loss(model, val_set, cfg["train"]["batch_size"], d["eval_batches"], seed + 1)
    if d["sample_chars"] and cfg["run"]["rank"] == 0:
        print("sample:", repr(sample(model, train_set, "The ", d["sample_chars"])))
    return summary(outcome, cfg["run"], val_loss=val, baseline_loss=baseline, vocab=len(vocab))


if __name__ == "__main__":
    out = main()
    sys.exit(0 if out["val_loss"] < out["baseline_loss"] - 1.5 else 1)

"""A character-level GPT (nanoGPT-like) on Python standard-library docstrings; it learns in well under a minute.

The loss starts at the uniform baseline ln(vocab) (~4.5 nats) and falls far below it as the model picks up
letters, words and layout; a held-out tail of the text gives the validation loss, and a short sample is
printed at the end. ``python jobs/gpt_char.py`` trains with the defaults below; the launcher calls
``main(config)``.
"""
from __future__ import annotations

import math
import sys
import time

import dtorch
import dtorch.nn.functional as F

try:
    from .data import CharBatches, char_corpus
    from .models import gpt
    from .training import train, warmup_cosine, with_defaults
except ImportError:  # run as a script
    from data import CharBatches, char_corpus
    from models import gpt
    from training import train, warmup_cosine, with_defaults

DEFAULTS = {"steps": 600, "batch_size": 32, "context": 32, "layers": 2, "heads": 4, "width": 64, "lr": 3e-3,
            "weight_decay": 0.1, "clip_norm": 1.0, "warmup": 30, "val_fraction": 0.1, "eval_batches": 8,
            "sample_chars": 200, "seed": 0, "log_every": 100}


def sequence_loss(logits: dtorch.Tensor, targets: dtorch.Tensor) -> dtorch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@dtorch.no_grad()
def mean_loss(model: dtorch.nn.Module, batches: CharBatches, n: int) -> float:
    model.eval()
    return sum(sequence_loss(model(x), y).item() for x, y in (next(batches) for _ in range(n))) / n


@dtorch.no_grad()
def sample(model: dtorch.nn.Module, data: CharBatches, prompt: str, n: int) -> str:
    """``n`` characters continuing ``prompt``, drawn from the model's softmax."""
    model.eval()
    ids = dtorch.tensor([[data.vocab.index(ch) for ch in prompt]])
    for _ in range(n):
        logits = model(ids[:, -model.context:])[:, -1]
        ids = dtorch.cat([ids, dtorch.multinomial(logits.softmax(dim=-1), 1)], dim=1)
    return data.decode(ids[0].tolist())


def main(config: dict | None = None) -> dict:
    """Train, then return ``{"train_loss", "val_loss", "baseline_loss", "vocab", "steps", "seconds"}``."""
    cfg = with_defaults(DEFAULTS, config)
    start = time.perf_counter()
    dtorch.manual_seed(cfg["seed"])
    text = char_corpus()
    split = int(len(text) * (1 - cfg["val_fraction"]))
    vocab = sorted(set(text))
    train_data = CharBatches(text[:split], cfg["context"], cfg["batch_size"], cfg["seed"], vocab)
    val_data = CharBatches(text[split:], cfg["context"], cfg["batch_size"], cfg["seed"] + 1, vocab)
    baseline = math.log(len(vocab))
    print(f"corpus {len(text)} chars, vocab {len(vocab)}, uniform baseline loss {baseline:.3f}")
    model = gpt(dtorch, len(vocab), cfg["context"], cfg["layers"], cfg["heads"], cfg["width"])
    optimizer = dtorch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    losses = train(model, sequence_loss, train_data, optimizer, cfg["steps"],
                   scheduler=warmup_cosine(optimizer, cfg["warmup"], cfg["steps"]), clip_norm=cfg["clip_norm"],
                   log_every=cfg["log_every"])
    tail = losses[-max(1, cfg["steps"] // 10):]
    result = {"train_loss": sum(tail) / len(tail), "val_loss": mean_loss(model, val_data, cfg["eval_batches"]),
              "baseline_loss": baseline, "vocab": len(vocab), "steps": cfg["steps"]}
    if cfg["sample_chars"]:
        print("sample:", repr(sample(model, train_data, "The ", cfg["sample_chars"])))
    result["seconds"] = round(time.perf_counter() - start, 2)
    print(f"val loss {result['val_loss']:.3f} (uniform {baseline:.3f})  ({result['seconds']} s)")
    return result


if __name__ == "__main__":
    out = main()
    sys.exit(0 if out["val_loss"] < out["baseline_loss"] - 1.5 else 1)

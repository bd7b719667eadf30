"""The example jobs' data, all shipped inside installed packages (nothing is downloaded).

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images), split into train/test loaders.
* ``char_corpus`` / ``CharBatches``: English text from Python standard-library docstrings, as characters.
"""
from __future__ import annotations

import importlib
import inspect

import numpy as np

import dtorch
from dtorch.utils.data import DataLoader, TensorDataset

# pure-Python stdlib modules with plenty of prose in their docstrings
CORPUS_MODULES = ("argparse", "collections", "functools", "itertools", "json", "pathlib", "random", "string",
                  "textwrap", "statistics", "logging", "difflib", "fractions", "heapq", "csv", "tempfile")


def digits(batch_size: int, seed: int = 0, test_fraction: float = 0.2, images: bool = False,
           ) -> tuple[DataLoader, DataLoader]:
    """Train and test loaders of (pixels scaled to [0, 1], label); a stratified split fixed by ``seed``.

    ``images=True`` gives ``(N, 1, 8, 8)`` inputs for convolutions, otherwise ``(N, 64)``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    if images:
        x = x.reshape(-1, 1, 8, 8)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    train = TensorDataset(dtorch.from_numpy(x_tr), dtorch.from_numpy(y_tr.astype(np.int64)))
    test = TensorDataset(dtorch.from_numpy(x_te), dtorch.from_numpy(y_te.astype(np.int64)))
    shuffle_gen = dtorch.Generator().manual_seed(seed)
    return (DataLoader(train, batch_size=batch_size, shuffle=True, generator=shuffle_gen),
            DataLoader(test, batch_size=512))


def char_corpus(modules: tuple[str, ...] = CORPUS_MODULES) -> str:
    """The docstrings of ``modules`` and of their public classes and functions, printable ASCII only."""
    docs = []
    for name in modules:
        mod = importlib.import_module(name)
        members = [mod] + [obj for key, obj in sorted(vars(mod).items())
                           if not key.startswith("_") and getattr(obj, "__module__", None) == mod.__name__]
        docs += [doc for doc in map(inspect.getdoc, members) if doc]
    text = "\n\n".join(docs)
    return "".join(ch for ch in text if ch == "\n" or " " <= ch <= "~")


class CharBatches:
    """Random windows of a text as ``(inputs, next characters)`` batches of token ids, ``(B, T)`` each."""

    def __init__(self, text: str, context: int, batch_size: int, seed: int = 0, vocab: list[str] | None = None,
                 ) -> None:
        self.vocab = vocab if vocab is not None else sorted(set(text))
        index = {ch: i for i, ch in enumerate(self.vocab)}
        self.ids = np.array([index[ch] for ch in text], dtype=np.int64)
        self.context, self.batch_size = context, batch_size
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> CharBatches:
        return self

    def __next__(self) -> tuple[dtorch.Tensor, dtorch.Tensor]:
        starts = self.rng.integers(0, len(self.ids) - self.context - 1, self.batch_size)
        windows = self.ids[starts[:, None] + np.arange(self.context + 1)]
        return dtorch.from_numpy(windows[:, :-1].copy()), dtorch.from_numpy(windows[:, 1:].copy())

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i] for i in ids)

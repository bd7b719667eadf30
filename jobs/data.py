"""The example jobs' data, all shipped inside installed packages (nothing is downloaded).

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images), split into train/test sets.
* ``char_corpus`` / ``CharWindows``: English text from Python standard-library docstrings, as character windows.
"""
from __future__ import annotations

import gzip
import importlib
import importlib.util
import inspect
from pathlib import Path

import numpy as np

import dtorch
from dtorch.utils.data import Dataset, TensorDataset

# pure-Python stdlib modules with plenty of prose in their docstrings
CORPUS_MODULES = ("argparse", "collections", "functools", "itertools", "json", "pathlib", "random", "string",
                  "textwrap", "statistics", "logging", "difflib", "fractions", "heapq", "csv", "tempfile")


def _digits_file() -> Path:
    """scikit-learn's bundled digits.csv.gz, found without importing scikit-learn (that takes a second)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the digits data ship with scikit-learn: pip install scikit-learn", name="sklearn")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): ``test_fraction`` of every class in the test set, chosen by ``seed``."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[:int(round(len(members) * test_fraction))])
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test_idx), test_idx


def digits(seed: int = 0, test_fraction: float = 0.2, images: bool = False) -> tuple[TensorDataset, TensorDataset]:
    """Train and test sets of (pixels scaled to [0, 1], label); a stratified split fixed by ``seed``.

    ``images=True`` gives ``(N, 1, 8, 8)`` inputs for convolutions, otherwise ``(N, 64)``.
    """
    with gzip.open(_digits_file(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x, y = table[:, :-1] / 16.0, table[:, -1].astype(np.int64)
    if images:
        x = x.reshape(-1, 1, 8, 8)
    train, test = stratified_split(y, test_fraction, seed)
    return tuple(TensorDataset(dtorch.from_numpy(np.ascontiguousarray(x[i])), dtorch.from_numpy(y[i]))
                 for i in (train, test))


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


class CharWindows(Dataset):
    """Item ``i``: the window of ``context`` token ids starting at ``i * stride`` and the next characters."""

    def __init__(self, text: str, context: int, vocab: list[str], stride: int = 1) -> None:
        self.vocab = vocab
        index = {ch: i for i, ch in enumerate(vocab)}
        self.ids = np.array([index[ch] for ch in text], dtype=np.int64)
        self.context, self.stride = context, stride

    def __len__(self) -> int:
        return (len(self.ids) - self.context - 1) // self.stride + 1

    def __getitem__(self, i: int) -> tuple[dtorch.Tensor, dtorch.Tensor]:
        w = self.ids[i * self.stride:i * self.stride + self.context + 1]
        return dtorch.from_numpy(w[:-1].copy()), dtorch.from_numpy(w[1:].copy())

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i] for i in ids)

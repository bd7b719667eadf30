"""RNGState: every random generator in play — dtorch's (CPU and each CUDA device), numpy's, Python's."""
from __future__ import annotations

import random
from typing import Any

import numpy as np

from ... import random as dt_random
from ...tensor import _make


class RNGState:
    """Stateful view of the process's global generators; per-rank in a checkpoint.

    ``extra`` names further ``dtorch.Generator`` objects to carry (e.g. a DataLoader's).
    A rank that did not exist when the checkpoint was written keeps its own generators.
    """

    checkpoint_scope = "per_rank"

    def __init__(self, **extra: Any) -> None:
        self.extra = extra

    def state_dict(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        py_version, py_words, py_gauss = random.getstate()
        return {
            "dtorch": {"cpu": dt_random.default_generator.get_state(),
                       "cuda": {i: g.get_state() for i, g in dt_random._cuda_generators.items()},
                       "extra": {k: g.get_state() for k, g in self.extra.items()}},
            "numpy": {"kind": np_state[0], "keys": _make(np.asarray(np_state[1], np.int64)),
                      "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
            "python": {"version": py_version, "words": _make(np.asarray(py_words, np.int64)),
                       "gauss_next": py_gauss},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        dt = state["dtorch"]
        dt_random.default_generator.set_state(dt["cpu"])
        for i, s in dt.get("cuda", {}).items():
            dt_random.cuda_generator(int(i)).set_state(s)
        for k, s in dt.get("extra", {}).items():
            if k in self.extra:
                self.extra[k].set_state(s)
        n = state["numpy"]
        keys = n["keys"].numpy().astype(np.uint32)
        np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
        p = state["python"]
        random.setstate((p["version"], tuple(int(w) for w in p["words"].numpy()), p["gauss_next"]))

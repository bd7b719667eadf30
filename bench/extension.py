"""A C++ extension's elementwise add (dtorch.utils.cpp_extension, built -O3) vs dtorch.add vs numpy.

Prints one JSON line: per-call microseconds on 16 floats (call overhead: argument conversion, allocation through
dtorch) and throughput in GB/s on 1M floats (two reads and one write per element), medians of interleaved rounds,
with ratios to dtorch.add measured in the same run. ``python bench/extension.py [--rounds N]``; the first run
compiles the extension (cached in $DTORCH_EXTENSIONS_DIR or ~/.cache/dtorch_extensions).
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import dtorch  # noqa: E402
from dtorch.utils.cpp_extension import load  # noqa: E402

SOURCE = ROOT / "tests" / "utils" / "cpp_ext" / "add.cpp"


def per_call_us(fn, inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner * 1e6


def measure(impls: dict, inner: int, rounds: int) -> dict:
    """Median over rounds of each implementation's per-call time, the implementations interleaved per round."""
    samples = {k: [] for k in impls}
    for fn in impls.values():
        fn()
    for _ in range(rounds):
        for k, fn in impls.items():
            samples[k].append(per_call_us(fn, inner))
    return {k: statistics.median(v) for k, v in samples.items()}


def _impls(ext, a, b) -> dict:
    x, y = a.numpy(), b.numpy()
    return {"cpp": lambda: ext.add(a, b), "dtorch": lambda: dtorch.add(a, b), "numpy": lambda: x + y}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    t0 = time.perf_counter()
    ext = load("dtorch_bench_add", [str(SOURCE)], extra_cflags=["-O3", "-march=native"])
    load_s = time.perf_counter() - t0
    result = {"bench": "extension", "load_s": round(load_s, 3), "rounds": args.rounds}
    for label, n, inner in (("small", 16, 2000), ("large", 1 << 20, 20)):
        a, b = dtorch.randn(n), dtorch.randn(n)
        np.testing.assert_array_equal(ext.add(a, b).numpy(), a.numpy() + b.numpy())
        us = measure(_impls(ext, a, b), inner, args.rounds)
        result[f"{label}_n"] = n
        result.update({f"{label}_{k}_us": round(v, 3) for k, v in us.items()})
        result[f"{label}_cpp_over_dtorch"] = round(us["cpp"] / us["dtorch"], 3)
        if label == "large":
            result.update({f"large_{k}_GBps": round(3 * 4 * n / (v * 1e-6) / 1e9, 2) for k, v in us.items()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Per-op overhead on 4x4 float32 tensors: dtorch vs torch (when installed) vs raw numpy.

Prints one JSON line: microseconds per call (median of rounds) and dtorch/torch ratios
measured in the same run. Run at one thread: ``python bench/ops_overhead.py``.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import dtorch  # noqa: E402


def per_call_us(fn, inner: int, rounds: int) -> float:
    """Median over ``rounds`` of the mean time of ``inner`` calls, in microseconds."""
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner * 1e6)
    return statistics.median(samples)


def chain_lib(lib, x, w):
    y = x * w
    y = y + x
    y = y.relu()
    y = y @ w
    y = y * 2.0
    y = y - x
    y = y.sigmoid()
    y = y @ w
    y = y + 1.0
    return y.sum()


def chain_numpy(x, w):
    """The same chain forward and backward written by hand in numpy."""
    a = x * w
    b = a + x
    c = np.maximum(b, 0)
    d = c @ w
    e = d * 2.0
    f = e - x
    s = 1 / (1 + np.exp(-f))
    h = s @ w
    k = h + 1.0
    loss = k.sum()
    gk = np.ones_like(k)
    gh = gk
    gs = gh @ w.T
    gw = s.T @ gh
    gf = gs * s * (1 - s)
    ge = gf
    gx = -gf
    gd = ge * 2.0
    gc = gd @ w.T
    gw = gw + c.T @ gd
    gb = gc * (b > 0)
    ga = gb
    gx = gx + gb
    gx = gx + ga * w
    gw = gw + ga * x
    return loss, gx, gw


def bench_lib(lib, inner: int, rounds: int) -> dict:
    """The same calls through dtorch or torch (``lib``)."""
    a = lib.randn(4, 4)
    b = lib.randn(4, 4)
    ag = lib.randn(4, 4, requires_grad=True)
    x = lib.randn(4, 4, requires_grad=True)
    w = lib.randn(4, 4, requires_grad=True)

    def chain():
        x.grad = None
        w.grad = None
        chain_lib(lib, x, w).backward()

    return {
        "add": per_call_us(lambda: a + b, inner, rounds),
        "mul": per_call_us(lambda: a * b, inner, rounds),
        "matmul": per_call_us(lambda: a @ b, inner, rounds),
        "relu": per_call_us(lambda: a.relu(), inner, rounds),
        "sum": per_call_us(lambda: a.sum(), inner, rounds),
        "add_recorded": per_call_us(lambda: ag + b, inner, rounds),
        "chain_fwd_bwd": per_call_us(chain, max(inner // 20, 10), rounds),
    }


def bench_torch(inner: int, rounds: int) -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return bench_lib(torch, inner, rounds)


def bench_numpy(inner: int, rounds: int) -> dict:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 4, 4), dtype=np.float32)
    x, w = rng.standard_normal((2, 4, 4), dtype=np.float32)
    return {
        "add": per_call_us(lambda: a + b, inner, rounds),
        "mul": per_call_us(lambda: a * b, inner, rounds),
        "matmul": per_call_us(lambda: a @ b, inner, rounds),
        "relu": per_call_us(lambda: np.maximum(a, 0), inner, rounds),
        "sum": per_call_us(lambda: a.sum(), inner, rounds),
        "chain_fwd_bwd": per_call_us(lambda: chain_numpy(x, w), max(inner // 20, 10), rounds),
    }


def main() -> None:
    inner = int(os.environ.get("BENCH_INNER", "2000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "15"))
    results = {"dtorch": bench_lib(dtorch, inner, rounds), "numpy": bench_numpy(inner, rounds)}
    t = bench_torch(inner, rounds)
    out = {"bench": "ops_overhead", "unit": "us_per_call", "threads": 1, **results}
    if t is not None:
        out["torch"] = t
        out["ratio_dtorch_over_torch"] = {k: round(results["dtorch"][k] / t[k], 3) for k in t}
    for lib in ("dtorch", "numpy", "torch"):
        if lib in out:
            out[lib] = {k: round(v, 3) for k, v in out[lib].items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

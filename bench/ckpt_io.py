"""Checkpoint I/O on a ~100 MB state: dtorch checkpoint vs raw write+fsync vs torch.save; one JSON line.

Figures (medians over rounds, all from this one run): MB/s of save and load; async_block_ms, the
time an AsyncCheckpointer.save keeps the training thread (snapshot only, after the first save
warmed its buffers) against sync_save_ms. torch.save is followed by an fsync, as the others.
Usage: python bench/ckpt_io.py [--mb 100] [--rounds 5] [--dir /tmp]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dtorch  # noqa: E402
import dtorch.distributed.checkpoint as dcp  # noqa: E402


def _state(mb: int) -> dict:
    n = mb * 2 ** 20 // 4 // 8
    params = {f"layer{i}.weight": dtorch.randn(n // 1024, 1024) for i in range(4)}
    moments = {f"layer{i}.momentum": dtorch.randn(n // 1024, 1024) for i in range(4)}
    return {"model": params, "optimizer": moments, "rng": dcp.RNGState(), "step": 1}


def _timed(fn, *args, **kw) -> float:
    t = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t


def _raw_write(path: str, arrays: list) -> None:
    with open(path, "wb") as f:
        for a in arrays:
            f.write(memoryview(a).cast("B"))
        f.flush()
        os.fsync(f.fileno())


def _torch_save(torch, obj, path: str) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _raw_read(path: str) -> None:
    with open(path, "rb") as f:
        f.read()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args()
    state = _state(args.mb)
    arrays = [t._data for part in ("model", "optimizer") for t in state[part].values()]
    mb = sum(a.nbytes for a in arrays) / 2 ** 20
    root = tempfile.mkdtemp(prefix="ckpt_io-", dir=args.dir)
    try:
        import torch
    except ImportError:
        torch = None
    tstate = ({k: torch.from_numpy(a) for k, a in zip(range(len(arrays)), arrays)} if torch else None)
    times: dict[str, list[float]] = {k: [] for k in ("raw_save", "raw_load", "dcp_save", "dcp_load",
                                                     "torch_save", "torch_load", "async_block", "async_total")}
    ck = dcp.AsyncCheckpointer()
    ck.save(state, f"{root}/warm")        # first async save allocates the snapshot buffers
    ck.wait()
    for r in range(args.rounds):          # implementations in turn within each round (robust to bursts)
        raw = f"{root}/raw{r}.bin"
        times["raw_save"].append(_timed(_raw_write, raw, arrays))
        # retention (deleting older checkpoints) is left out of the timed save, as the raw file's unlink is
        if r >= 1:
            shutil.rmtree(f"{root}/run/s{r - 1}")
        times["dcp_save"].append(_timed(dcp.save, state, f"{root}/run/s{r}"))
        if torch:
            times["torch_save"].append(_timed(_torch_save, torch, tstate, f"{root}/t{r}.pt"))
        t0 = time.perf_counter()
        ck.save(state, f"{root}/arun/s{r}", keep_last=2)
        times["async_block"].append(time.perf_counter() - t0)
        ck.wait()
        times["async_total"].append(time.perf_counter() - t0)
        times["raw_load"].append(_timed(_raw_read, raw))
        target = {"model": {k: dtorch.zeros(1) for k in state["model"]}, "optimizer": {}, "rng": dcp.RNGState(),
                  "step": 0}
        times["dcp_load"].append(_timed(dcp.load, target, f"{root}/run/s{r}"))
        if torch:
            times["torch_load"].append(_timed(torch.load, f"{root}/t{r}.pt", weights_only=True))
        os.unlink(raw)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    out = {"bench": "ckpt_io", "mb": round(mb, 1), "rounds": args.rounds, "cores": os.cpu_count(),
           **{f"{k}_mbps": round(mb / v, 1) for k, v in med.items() if not k.startswith("async")},
           "save_vs_raw": round(med["raw_save"] / med["dcp_save"], 3),
           "sync_save_ms": round(med["dcp_save"] * 1e3, 1), "async_block_ms": round(med["async_block"] * 1e3, 1),
           "async_total_ms": round(med["async_total"] * 1e3, 1),
           "async_block_frac": round(med["async_block"] / med["dcp_save"], 3), "numpy": np.__version__}
    print(json.dumps(out))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

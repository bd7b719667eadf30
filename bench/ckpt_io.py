"""Checkpoint I/O on a ~100 MB state: dtorch checkpoint and dtorch.save vs raw write+fsync vs torch.save; one JSON line.

The state is a training loop's: an MLP's parameters (half the bytes) and SGD's momentum (the other
half), plus RNG state. Figures (medians over rounds, all from this one run): MB/s of save and load;
for the AsyncCheckpointer, async_block_ms is the time the training thread spent in save() and
waiting for staging (its ``blocked_s``), async_loop_delay_ms what a save followed by one training
step costs beyond that step alone; both against sync_save_ms. torch.save is followed by an
fsync, as the others. plain_save/plain_load: dtorch.save/dtorch.load of the same state dicts to one
file (atomic, sha256 over header and data); plain_save_vs_raw and plain_load_vs_raw compare them with
the raw write+fsync and read of the same bytes, plain_*_vs_torch with torch.save/torch.load.
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


def _training(mb: int):
    width = int((mb * 2 ** 20 / 2 / 4 / 4) ** 0.5)          # 4 square layers hold half the bytes
    model = dtorch.nn.Sequential(*[dtorch.nn.Linear(width, width) for _ in range(4)])
    opt = dtorch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    batch = dtorch.randn(8, width)

    def step() -> None:
        opt.zero_grad()
        model(batch).square().mean().backward()
        opt.step()

    step()                                                   # momentum buffers exist from here on
    return {"model": model, "optimizer": opt, "rng": dcp.RNGState(), "step": 1}, step


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
    state, train_step = _training(args.mb)
    arrays = [t._data for t in state["model"].state_dict().values()]
    arrays += [t._data for s in state["optimizer"].state_dict()["state"].values() for t in s.values()
               if isinstance(t, dtorch.Tensor)]
    mb = sum(a.nbytes for a in arrays) / 2 ** 20
    root = tempfile.mkdtemp(prefix="ckpt_io-", dir=args.dir)
    try:
        import torch
    except ImportError:
        torch = None
    tstate = ({k: torch.from_numpy(a) for k, a in zip(range(len(arrays)), arrays)} if torch else None)
    plain = {"model": state["model"].state_dict(), "optimizer": state["optimizer"].state_dict()}
    times: dict[str, list[float]] = {k: [] for k in ("raw_save", "raw_load", "dcp_save", "dcp_load",
                                                     "plain_save", "plain_load",
                                                     "torch_save", "torch_load", "async_block", "async_total",
                                                     "step", "save_and_step")}
    ck = dcp.AsyncCheckpointer()
    ck.save(state, f"{root}/warm")        # first async save allocates the snapshot buffers
    ck.wait()
    for r in range(args.rounds):          # implementations in turn within each round (robust to bursts)
        raw = f"{root}/raw{r}.bin"
        # each timed save starts on a synced disk, so none pays for another's writeback or deletions
        # (retention is left out of the timed save, as the raw file's unlink is)
        os.sync()
        times["raw_save"].append(_timed(_raw_write, raw, arrays))
        if r >= 1:
            shutil.rmtree(f"{root}/run/s{r - 1}")
        os.sync()
        times["dcp_save"].append(_timed(dcp.save, state, f"{root}/run/s{r}"))
        os.sync()
        times["plain_save"].append(_timed(dtorch.save, plain, f"{root}/plain.pt"))
        if torch:
            os.sync()
            times["torch_save"].append(_timed(_torch_save, torch, tstate, f"{root}/t{r}.pt"))
        os.sync()
        times["step"].append(_timed(train_step))
        blocked = ck.blocked_s
        t0 = time.perf_counter()
        ck.save(state, f"{root}/arun/s{r}", keep_last=2)
        train_step()
        times["save_and_step"].append(time.perf_counter() - t0)
        times["async_block"].append(ck.blocked_s - blocked)
        ck.wait()
        times["async_total"].append(time.perf_counter() - t0)
        times["raw_load"].append(_timed(_raw_read, raw))
        target = {"model": {k: dtorch.zeros(1) for k in state["model"].state_dict()}, "optimizer": {},
                  "rng": dcp.RNGState(), "step": 0}
        times["dcp_load"].append(_timed(dcp.load, target, f"{root}/run/s{r}"))
        times["plain_load"].append(_timed(dtorch.load, f"{root}/plain.pt"))
        if torch:
            times["torch_load"].append(_timed(torch.load, f"{root}/t{r}.pt", weights_only=True))
        os.unlink(raw)
        if torch:
            os.unlink(f"{root}/t{r}.pt")
    med = {k: statistics.median(v) for k, v in times.items() if v}
    out = {"bench": "ckpt_io", "mb": round(mb, 1), "rounds": args.rounds, "cores": os.cpu_count(),
           **{f"{k}_mbps": round(mb / v, 1) for k, v in med.items() if k.endswith(("save", "load"))},
           "save_vs_raw": round(med["raw_save"] / med["dcp_save"], 3),
           "plain_save_vs_raw": round(med["raw_save"] / med["plain_save"], 3),
           "plain_load_vs_raw": round(med["raw_load"] / med["plain_load"], 3),
           **({"plain_save_vs_torch": round(med["torch_save"] / med["plain_save"], 3),
               "plain_load_vs_torch": round(med["torch_load"] / med["plain_load"], 3)} if torch else {}),
           "sync_save_ms": round(med["dcp_save"] * 1e3, 1), "async_block_ms": round(med["async_block"] * 1e3, 1),
           "async_total_ms": round(med["async_total"] * 1e3, 1), "step_ms": round(med["step"] * 1e3, 1),
           "async_loop_delay_ms": round((med["save_and_step"] - med["step"]) * 1e3, 1),
           "async_block_frac": round(med["async_block"] / med["dcp_save"], 3), "numpy": np.__version__}
    print(json.dumps(out))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

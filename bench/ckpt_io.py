"""Checkpoint I/O: dtorch.save/load vs raw write+fsync/read of the same bytes vs torch.save/load; one JSON line.

Each size (default 15 MB and 100 MB) is a training loop's state: an MLP's parameters and Adam's two
moment buffers (plus step counts). Per size, medians over interleaved rounds of this one run:

- plain_save: ``dtorch.save({"model": ..., "optimizer": ...}, path)`` — atomic (temporary file,
  fsync, rename, fsync of the directory) with a blake3 (format dtorch.v3) over the header and data, hashed
  as the data is written (as it is read, by plain_load), all inside the timing;
  raw_save: ``os.write`` of the same arrays + fsync; torch_save: torch.save + fsync. All three replace
  the previous round's file (rename over it, or truncate it), so each pays for freeing the old blocks.
- plain_load / raw_load / torch_load are COLD reads: every file is fsynced and its pages dropped from the
  page cache (posix_fadvise DONTNEED) before it is read. raw_load reads the file into a fresh numpy
  buffer (the same allocation dtorch makes), no checksum. ``*_warm`` columns read the same files again
  at once (page cache warm).
- dcp_save/dcp_load: dtorch.distributed.checkpoint (sync) of the same state; for the largest size also
  the AsyncCheckpointer: async_block_ms (time the training thread spent in save()), async_loop_delay_ms
  (a save followed by one step, beyond the step alone).

Ratios ``*_vs_raw`` are raw time / dtorch time (1.0 = the disk's speed); ``*_vs_raw_best`` the same with
each column's fastest round (what a quiet moment allows: dtorch's checksum needs CPU while raw I/O
mostly waits, so on a busy machine dtorch loses more; dcp_* hash each file with a sha256). ``load_avg`` is
the machine's 1-minute load before and after: on a busy machine compare the ratios, not the MB/s.
Usage: python bench/ckpt_io.py [--sizes 15 100] [--rounds 5] [--dir /tmp]
"""
from __future__ import annotations

import argparse
import glob
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


def _training(mb: float):
    width = int((mb * 2 ** 20 / 3 / 4 / 4) ** 0.5)          # 4 square layers: a third of the bytes, Adam the rest
    model = dtorch.nn.Sequential(*[dtorch.nn.Linear(width, width) for _ in range(4)])
    opt = dtorch.optim.Adam(model.parameters(), lr=1e-4)
    batch = dtorch.randn(8, width)

    def step() -> None:
        opt.zero_grad()
        model(batch).square().mean().backward()
        opt.step()

    step()                                                   # the moment buffers exist from here on
    return model, opt, step


def _timed(fn, *args, **kw) -> float:
    t = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t


def _drop_cache(*paths: str) -> None:
    """Evict the files' (clean, fsynced) pages so the next read comes from the disk."""
    for path in paths:
        for name in ([path] if os.path.isfile(path) else glob.glob(f"{path}/**", recursive=True)):
            if os.path.isfile(name):
                fd = os.open(name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def _raw_write(path: str, arrays: list) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for a in arrays:
            mv = memoryview(a).cast("B")
            pos = 0
            while pos < len(mv):
                pos += os.write(fd, mv[pos:])
        os.fsync(fd)
    finally:
        os.close(fd)


def _raw_read(path: str) -> np.ndarray:
    buf = np.empty(os.path.getsize(path), np.uint8)
    with open(path, "rb", buffering=0) as f:
        f.readinto(memoryview(buf))
    return buf


def _torch_save(torch, obj, path: str) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _one_round(s: dict, root: str, r: int, torch, times: dict) -> None:
    """Saves (each from a synced disk), then cold loads, then warm loads; implementations interleaved."""
    raw, plain, tpath, dpath = f"{root}/raw.bin", f"{root}/plain.pt", f"{root}/t.pt", f"{root}/dcp/s{r}"
    saves = [("raw_save", _raw_write, raw, s["arrays"]), ("plain_save", dtorch.save, s["plain"], plain),
             ("dcp_save", dcp.save, s["state"], dpath)]
    if torch:
        saves.append(("torch_save", _torch_save, torch, s["tstate"], tpath))
    for key, fn, *args in saves:
        os.sync()
        times[key].append(_timed(fn, *args))
    loads = [("raw_load", _raw_read, raw), ("plain_load", dtorch.load, plain),
             ("dcp_load", dcp.load, s["target"], dpath)]
    if torch:
        loads.append(("torch_load", lambda p: torch.load(p, weights_only=True), tpath))
    _drop_cache(raw, plain, dpath, *([tpath] if torch else []))
    for key, fn, *args in loads:
        times[key].append(_timed(fn, *args))
    for key, fn, *args in loads:
        times[f"{key}_warm"].append(_timed(fn, *args))
    shutil.rmtree(dpath)


def _async_round(s: dict, root: str, r: int, times: dict) -> None:
    ck = s["async"]
    os.sync()
    times["step"].append(_timed(s["train_step"]))
    blocked = ck.blocked_s
    t0 = time.perf_counter()
    ck.save(s["state"], f"{root}/arun/s{r}", keep_last=2)
    s["train_step"]()
    times["save_and_step"].append(time.perf_counter() - t0)
    times["async_block"].append(ck.blocked_s - blocked)
    ck.wait()


def _setup(mb: float, torch, with_async: bool) -> dict:
    model, opt, step = _training(mb)
    arrays = [t._data for t in model.state_dict().values()]
    arrays += [t._data for st in opt.state_dict()["state"].values() for t in st.values()
               if isinstance(t, dtorch.Tensor)]
    s = {"arrays": arrays, "plain": {"model": model.state_dict(), "optimizer": opt.state_dict()},
         "state": {"model": model, "optimizer": opt, "rng": dcp.RNGState(), "step": 1}, "train_step": step,
         "target": {"model": {k: dtorch.zeros(1) for k in model.state_dict()}, "optimizer": {},
                    "rng": dcp.RNGState(), "step": 0},
         "tstate": {str(i): torch.from_numpy(a) for i, a in enumerate(arrays)} if torch else None}
    if with_async:
        s["async"] = dcp.AsyncCheckpointer()
    return s


def _report(mb: float, times: dict, torch) -> dict:
    med = {k: statistics.median(v) for k, v in times.items() if v}
    out = {"mb": round(mb, 1), **{f"{k}_mbps": round(mb / v) for k, v in med.items()
                                  if k.endswith(("save", "load", "warm"))}}
    best = {k: min(v) for k, v in times.items() if v}
    for op in ("save", "load", "load_warm"):
        out[f"plain_{op}_vs_raw"] = round(med[f"raw_{op}"] / med[f"plain_{op}"], 3)
        out[f"plain_{op}_vs_raw_best"] = round(best[f"raw_{op}"] / best[f"plain_{op}"], 3)
        if torch:
            out[f"plain_{op}_vs_torch"] = round(med[f"torch_{op}"] / med[f"plain_{op}"], 3)
        out[f"dcp_{op}_vs_raw"] = round(med[f"raw_{op}"] / med[f"dcp_{op}"], 3)
    if med.get("async_block") is not None:
        out.update({"sync_save_ms": round(med["dcp_save"] * 1e3, 1),
                    "async_block_ms": round(med["async_block"] * 1e3, 1), "step_ms": round(med["step"] * 1e3, 1),
                    "async_loop_delay_ms": round((med["save_and_step"] - med["step"]) * 1e3, 1)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=float, nargs="+", default=[15, 100], help="state sizes in MB")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    load_before = os.getloadavg()[0]
    root = tempfile.mkdtemp(prefix="ckpt_io-", dir=args.dir)
    results = {}
    try:
        for mb in args.sizes:
            with_async = mb == max(args.sizes)
            s = _setup(mb, torch, with_async)
            real_mb = sum(a.nbytes for a in s["arrays"]) / 2 ** 20
            keys = [f"{k}_{op}" for k in ("raw", "plain", "dcp", "torch") for op in ("save", "load", "load_warm")]
            times: dict[str, list[float]] = {k: [] for k in keys + ["step", "save_and_step", "async_block"]}
            if with_async:
                s["async"].save(s["state"], f"{root}/awarm")     # the first async save allocates its buffers
                s["async"].wait()
            _one_round(s, root, -1, torch, {k: [] for k in times})   # warm-up: imports, first allocations
            for r in range(args.rounds):
                _one_round(s, root, r, torch, times)
                if with_async:
                    _async_round(s, root, r, times)
            results[f"{round(real_mb)}MB"] = _report(real_mb, times, torch)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"bench": "ckpt_io", "rounds": args.rounds, "cores": os.cpu_count(),
                      "reads": "cold: each file fsynced and its pages dropped (posix_fadvise DONTNEED) before "
                               "the timed read; *_warm: read again at once",
                      "raw": "os.write of the arrays over the last round's file + fsync; readinto a fresh numpy buffer",
                      "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                      **results, "numpy": np.__version__}))


if __name__ == "__main__":
    main()

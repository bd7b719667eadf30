"""GPU verification bench: dtorch vs torch CUDA eager training steps/s, float32 and autocast, in one run.

Models: MLP 784-1024-1024-10 (batch 256, SGD momentum) and the GPT of jobs.models.gpt (AdamW, batch 16,
context 64), each the same code for both libraries from the same weights. Steps are timed with CUDA
synchronisation, the libraries taking turns; figures are medians. NCCL: dtorch's all_reduce over its
NCCL backend vs the raw ``NcclCommunicator.allReduce`` on the same buffer, 1-64 MB (``"nccl"``; world
size 1 under plain python, needs mpi4py). Prints ONE JSON line.

Usage: ``python bench/gpu_step.py [--steps 20] [--rounds 3]`` (needs CuPy, torch with CUDA, a GPU).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

GPT = {"vocab": 65, "context": 64, "layers": 4, "heads": 4, "width": 128}


def _setup(lib, kind: str, seed_state: dict | None, amp: bool):
    from dtorch.jobs.models import gpt, mlp

    lib.manual_seed(0)
    model = mlp(lib, (784, 1024, 1024, 10)) if kind == "mlp" else gpt(lib, **GPT)
    if seed_state is not None:
        model.load_state_dict({k: lib.tensor(v) for k, v in seed_state.items()})
    model.to("cuda")
    rng = np.random.default_rng(0)
    if kind == "mlp":
        x = lib.tensor(rng.standard_normal((256, 784)).astype(np.float32), device="cuda")
        y = lib.tensor(rng.integers(0, 10, 256), device="cuda")
        opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    else:
        x = lib.tensor(rng.integers(0, GPT["vocab"], (16, GPT["context"])), device="cuda")
        y = lib.tensor(rng.integers(0, GPT["vocab"], (16, GPT["context"])), device="cuda")
        opt = lib.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    scaler = lib.amp.GradScaler("cuda") if amp else None

    def step() -> float:
        opt.zero_grad()
        with lib.autocast("cuda", enabled=amp):
            out = model(x)
            loss = lib.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]).float(), y.reshape(-1))
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        return loss

    return model, step


def _timed(step, sync, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        sync()
        out.append(time.perf_counter() - t)
    return out


def bench_model(kind: str, amp: bool, steps: int, rounds: int) -> dict:
    import torch

    import dtorch

    dmodel, dstep = _setup(dtorch, kind, None, amp)
    state = {k: v.detach().cpu().numpy() for k, v in dmodel.state_dict().items()}
    _, tstep = _setup(torch, kind, state, amp)
    for s in (dstep, tstep):  # warm-up: compile kernels, fill the pools
        for _i in range(3):
            s()
    times = {"dtorch": [], "torch": []}
    for _r in range(rounds):
        times["dtorch"] += _timed(dstep, dtorch.cuda.synchronize, steps)
        times["torch"] += _timed(tstep, torch.cuda.synchronize, steps)
    rate = {k: 1 / statistics.median(v) for k, v in times.items()}
    dloss, tloss = float(dstep().item()), float(tstep().item())
    return {"dtorch_steps_s": round(rate["dtorch"], 1), "torch_steps_s": round(rate["torch"], 1),
            "dtorch_over_torch": round(rate["dtorch"] / rate["torch"], 3), "dtorch_loss": dloss, "torch_loss": tloss}


def _nccl_size(dtorch, dist, group, pg, lib, mb: int, iters: int, rounds: int) -> dict:
    t = dtorch.zeros(mb * (1 << 20) // 4, device="cuda")
    dist.all_reduce(t, group=group)  # the first use makes the communicator
    comm, stream, buf = pg.nccl.comm, pg.nccl.stream, t._data

    def ours():
        dist.all_reduce(t, group=group)

    def raw():
        comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, lib.NCCL_FLOAT32, lib.NCCL_SUM, stream.ptr)
        stream.synchronize()

    for f in (ours, raw):
        for _i in range(3):
            f()
    times = {"dtorch": [], "raw": []}
    for _r in range(rounds):
        times["dtorch"] += _timed(ours, lambda: None, iters)
        times["raw"] += _timed(raw, lambda: None, iters)
    sec = {k: statistics.median(v) for k, v in times.items()}
    algbw = {k: buf.nbytes / v / 1e9 for k, v in sec.items()}
    n = dist.get_world_size(group)
    factor = 2 * (n - 1) / n
    return {"dtorch_us": round(sec["dtorch"] * 1e6, 1), "raw_us": round(sec["raw"] * 1e6, 1),
            "dtorch_algbw_GBps": round(algbw["dtorch"], 2), "raw_algbw_GBps": round(algbw["raw"], 2),
            "dtorch_busbw_GBps": round(algbw["dtorch"] * factor, 2), "raw_busbw_GBps": round(algbw["raw"] * factor, 2),
            "dtorch_over_raw": round(sec["raw"] / sec["dtorch"], 3)}


def nccl(iters: int, rounds: int) -> str | dict:
    """dtorch.distributed.all_reduce on a CUDA tensor vs the raw NcclCommunicator.allReduce (the group's own
    communicator and stream, the same CuPy buffer), float32 SUM in place, 1 MB ... 64 MB, world size as
    launched (1 under plain python). Each op is timed to completion (dtorch's synchronous all_reduce returns
    once the op's event is done; the raw call is followed by a stream synchronize), the two taking turns.
    busbw = algbw x 2(n-1)/n (nccl-tests' definition) is 0 at n = 1, so algbw is reported too; there the
    ratio measures dtorch's per-op overhead."""
    import dtorch
    import dtorch.distributed as dist

    if not dist.is_available():
        return "skipped: mpi4py missing (pip install 'dtorch[mpi]')"
    if not dist.is_nccl_available():
        return "skipped: CuPy has no NCCL (pip install nvidia-nccl-cu12)"
    made = not dist.is_initialized()
    if made:
        dist.init_process_group("nccl")
    group = None if made else dist.new_group(backend="nccl")
    pg = group if group is not None else dist.GroupMember.WORLD
    n = dist.get_world_size(group)
    try:
        from dtorch.distributed.nccl import load

        lib = load()
        sizes = {f"{mb}MB": _nccl_size(dtorch, dist, group, pg, lib, mb, iters, rounds)
                 for mb in (1, 2, 4, 8, 16, 32, 64)}
        ratios = [v["dtorch_over_raw"] for v in sizes.values()]
        return {"world_size": n, "nccl_version": lib.get_version(), "op": "all_reduce float32 sum, in place",
                "sizes": sizes, "dtorch_over_raw_median": round(statistics.median(ratios), 3)}
    finally:
        if made:
            dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import dtorch

    result = {"bench": "gpu_step", "device": dtorch.cuda.get_device_name()}
    for kind in ("mlp", "gpt"):
        for amp in (False, True):
            name = f"{kind}_{'autocast' if amp else 'fp32'}"
            try:
                result[name] = bench_model(kind, amp, args.steps, args.rounds)
            except Exception as e:  # one failing configuration must not hide the others
                result[name] = {"error": f"{type(e).__name__}: {e}"}
    try:
        result["nccl"] = nccl(args.steps, args.rounds)
    except Exception as e:  # reported, not fatal: the model figures above still print
        result["nccl"] = {"error": f"{type(e).__name__}: {e}"}
    result["memory_peak_bytes"] = dtorch.cuda.max_memory_allocated()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

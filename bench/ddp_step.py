"""Data-parallel scaling of an MLP step: t(1 rank) / t(2 ranks), each divided by the no-communication ceiling.

MLP 784-1024-1024-10, per-rank batch 128, SGD with momentum, 1 thread per rank. Variants:
nocomm (each rank trains alone: the ceiling — the ranks share cores and memory
bandwidth), dtorch DDP with its default and, allreducing over MPI (DTORCH_DDP_COMM=mpi), with
both overlap modes (DTORCH_DDP_OVERLAP: test, end), DDP averaging through a shared-memory window
(DTORCH_DDP_COMM=shm: ddp_shm, and ddp_shm_view with gradient_as_bucket_view), one flat mpi4py
Allreduce after backward, torch DDP over gloo
(when torch is installed; its t(1) is torch without DDP), and ZeRO-2
(DDP + ZeroRedundancyOptimizer attached: reduce-scatter, sharded update, all-gather) over MPI
collectives (zero_mpi) and through a shared-memory window (zero_shm). Steps are timed one at a time,
variants interleaved in rounds; medians. Launches itself under mpiexec; one JSON line.

``shm_averaging`` says, per step and rank (mean of the ranks), where the shared-window averaging of
the DDP variants that use it spent its time, from the perf_counter sums its averager keeps
(``_shm_clock.py``): ``work_ms`` = copy-in + averaging + copy-out; ``overlapped_ms`` = the part
done in gradient hooks while backward still had nodes to run (a pause of > 100 us before the next
hook); ``tail_ms`` = the rest, after backward's last node; ``end_wait_ms`` = time spent waiting for
other ranks' flags after the last hook; ``overlapped_fraction`` = overlapped_ms / work_ms;
``step_overhead_ms`` = the variant's step time minus nocomm's (2 ranks, same run). With one core
per rank the overlapped work is interleaved with backward, not hidden: the same core does it, so
step_overhead_ms >= work_ms + end_wait_ms is expected; what overlap buys is that ranks' skew
is absorbed early.

    python bench/ddp_step.py [--rounds 6] [--steps 8]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
MODES = ("test", "end")


def _dtorch_variants(n: int) -> dict:
    import numpy as np

    import dtorch
    from dtorch import nn

    def model():
        dtorch.manual_seed(0)
        return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))

    rng = np.random.default_rng(0)
    x = dtorch.tensor(rng.standard_normal((128, 784)).astype(np.float32))
    y = dtorch.tensor(rng.integers(0, 10, 128))

    def stepper(m, after_backward=None, opt=None):
        opt = opt or dtorch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

        def step():
            opt.zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            if after_backward is not None:
                after_backward(m)
            opt.step()
        return step

    plain = model()
    out = {"nocomm": stepper(plain)}
    OPT_STATE["plain"] = lambda: 4 * sum(p.numel() for p in plain.parameters())  # the momentum buffer
    if n == 1:
        return out
    import dtorch.distributed as dist
    from dtorch.distributed.optim import ZeroRedundancyOptimizer
    from dtorch.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group()
    os.environ.pop("DTORCH_DDP_OVERLAP", None)
    os.environ.pop("DTORCH_DDP_COMM", None)
    out["ddp_default"] = stepper(_shm_watched("ddp_default", DDP(model())))
    os.environ["DTORCH_DDP_COMM"] = "mpi"  # the overlap modes matter only there
    for mode in MODES:
        os.environ["DTORCH_DDP_OVERLAP"] = mode
        out[f"ddp_{mode}"] = stepper(DDP(model()))
    os.environ.pop("DTORCH_DDP_OVERLAP")
    os.environ["DTORCH_DDP_COMM"] = "shm"
    out["ddp_shm"] = stepper(_shm_watched("ddp_shm", DDP(model())))
    out["ddp_shm_view"] = stepper(_shm_watched("ddp_shm_view", DDP(model(), gradient_as_bucket_view=True)))
    os.environ.pop("DTORCH_DDP_COMM")
    out["flat_allreduce"] = stepper(model(), _flat_allreduce(dist.group.WORLD.comm.Dup()))
    for comm in ("mpi", "shm"):  # ZeRO-2: DDP reduce-scatters into ZeroRedundancyOptimizer
        ddp = DDP(model())
        zero = ZeroRedundancyOptimizer(ddp.parameters(), dtorch.optim.SGD, comm=comm, lr=0.01, momentum=0.9)
        zero.attach(ddp)
        out[f"zero_{comm}"] = stepper(ddp, opt=zero)
        OPT_STATE[f"zero_{comm}"] = lambda z=zero: _state_bytes(z.optim)
    return out


OPT_STATE: dict = {}  # variant -> () -> optimizer state bytes on this rank
SHM: dict = {}        # variant -> its DDP's shared-window averager (perf_counter sums in .stats)


def _shm_watched(name: str, ddp):
    if ddp.reducer.shm is not None:
        SHM[name] = ddp.reducer.shm
    return ddp


def _shm_report(before: dict) -> dict:
    """Per-step means of the averager's time sums since ``before`` (see the module docstring)."""
    out = {}
    for name, shm in SHM.items():
        d = {k: shm.stats[k] - before[name][k] for k in shm.stats}
        ms = 1e3 / max(d["steps"], 1)
        work = d["copy_in_s"] + d["average_s"] + d["copy_out_s"]
        out[name] = {"work_ms": work * ms, "overlapped_ms": d["overlapped_s"] * ms, "tail_ms": d["tail_work_s"] * ms,
                     "end_wait_ms": (d["final_s"] - d["final_work_s"]) * ms,
                     "overlapped_fraction": d["overlapped_s"] / work if work else 0.0}
    return out


def _state_bytes(opt) -> int:
    return sum(t._data.nbytes for st in opt.state.values() for t in st.values() if hasattr(t, "_data"))


def _flat_allreduce(comm):
    import numpy as np
    from mpi4py import MPI

    def run(m) -> None:
        grads = [p.grad._data for p in m.parameters()]
        flat = np.concatenate([g.reshape(-1) for g in grads])
        comm.Allreduce(MPI.IN_PLACE, flat)
        off = 0
        for g in grads:
            np.multiply(flat[off:off + g.size].reshape(g.shape), 1.0 / comm.Get_size(), out=g)
            off += g.size
    return run


def _torch_variants(n: int) -> dict:
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(1)
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024),
                            torch.nn.ReLU(), torch.nn.Linear(1024, 10))
    x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))
    name = "torch_nocomm"
    if n > 1:
        import torch.distributed as tdist
        from mpi4py import MPI

        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ.get("BENCH_PORT", "29533"),
                          RANK=str(MPI.COMM_WORLD.Get_rank()), WORLD_SIZE=str(n))
        tdist.init_process_group("gloo")
        m = torch.nn.parallel.DistributedDataParallel(m)
        name = "torch_ddp"
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    return {name: step}


def worker(rounds: int, steps: int) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    n = comm.Get_size()
    variants = {**_dtorch_variants(n), **_torch_variants(n)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for step in variants.values():  # warm up
        for _ in range(2):
            step()
    before = {name: dict(shm.stats) for name, shm in SHM.items()}
    for _ in range(rounds):
        for name, step in variants.items():
            comm.Barrier()
            for _ in range(steps):
                t0 = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t0)
    shm = comm.gather(_shm_report(before))
    if comm.Get_rank() == 0:
        shm = {k: {f: round(statistics.mean(r[k][f] for r in shm), 3) for f in shm[0][k]} for k in shm[0]}
        print("SHM " + json.dumps(shm), flush=True)
        print("RESULT " + json.dumps({k: statistics.median(v) for k, v in times.items()}), flush=True)
        print("MEMORY " + json.dumps({k: f() for k, f in OPT_STATE.items()}), flush=True)


def _launch(n: int, rounds: int, steps: int) -> dict:
    here = os.path.dirname(sys.executable)
    mpiexec = shutil.which("mpiexec", path=here + os.pathsep + os.environ.get("PATH", ""))
    env = dict(os.environ, PYTHONPATH=str(ROOT), **THREADS)
    cmd = [mpiexec, "-n", str(n), sys.executable, "-m", "mpi4py", __file__, "--worker", "--rounds", str(rounds),
           "--steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    mem = next((line for line in out.splitlines() if line.startswith("MEMORY ")), "MEMORY {}")
    shm = next((line for line in out.splitlines() if line.startswith("SHM ")), "SHM {}")
    return {**json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:]),
            "_memory": json.loads(mem[7:]), "_shm": json.loads(shm[4:])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--worker", action="store_true")
    a = ap.parse_args()
    if a.worker:
        worker(a.rounds, a.steps)
        return
    t1 = _launch(1, a.rounds, a.steps)
    t2 = _launch(2, a.rounds, a.steps)
    ceiling = t1["nocomm"] / t2["nocomm"]
    res = {"bench": "ddp_step", "model": "MLP 784-1024-1024-10", "per_rank_batch": 128, "ranks": 2,
           "t1_ms": round(t1["nocomm"] * 1e3, 2), "ceiling_scaling": round(ceiling, 3)}
    memory = t2.pop("_memory")
    shm = t2.pop("_shm")
    t1.pop("_shm")
    for name, t in t2.items():
        if name == "nocomm" or name.startswith("torch") or name == "_memory":
            continue
        s = t1["nocomm"] / t
        res[name] = {"t2_ms": round(t * 1e3, 2), "scaling": round(s, 3), "of_ceiling": round(s / ceiling, 3)}
    if "torch_ddp" in t2:
        s = t1["torch_nocomm"] / t2["torch_ddp"]
        res["torch_ddp_gloo"] = {"t1_ms": round(t1["torch_nocomm"] * 1e3, 2), "t2_ms": round(t2["torch_ddp"] * 1e3, 2),
                                 "scaling": round(s, 3), "of_ceiling": round(s / ceiling, 3)}
    # SGD-momentum state: one fp32 momentum buffer; plain DDP keeps all of it on every rank
    for name, d in shm.items():
        d["step_overhead_ms"] = round((t2[name] - t2["nocomm"]) * 1e3, 2)
    res["shm_averaging"] = shm
    res["opt_state_mb_per_rank"] = {("ddp" if k == "plain" else k): round(v / 2**20, 2) for k, v in memory.items()}
    print(json.dumps(res))


if __name__ == "__main__":
    main()

"""Allreduce of 7.45 MB float32 (the MLP's gradients) through dtorch.distributed vs raw mpi4py Allreduce.

Interleaved rounds on 2 ranks, medians; busbw = algbw * 2 (n - 1) / n (equal to algbw at 2
ranks). Launches itself under mpiexec; prints one JSON line.

    python bench/allreduce.py [--ranks 2] [--rounds 30]
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


def worker(rounds: int) -> None:
    import numpy as np
    from mpi4py import MPI

    import dtorch
    import dtorch.distributed as dist

    dist.init_process_group()
    comm = MPI.COMM_WORLD.Dup()
    n = comm.Get_size()
    count = 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
    raw = np.ones(count, np.float32)
    t = dtorch.ones(count)
    times = {"mpi4py": [], "dtorch": [], "dtorch_async": []}
    for i in range(rounds + 3):
        comm.Barrier()
        t0 = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, raw)
        t1 = time.perf_counter()
        comm.Barrier()
        t2 = time.perf_counter()
        dist.all_reduce(t)
        t3 = time.perf_counter()
        comm.Barrier()
        t4 = time.perf_counter()
        dist.all_reduce(t, async_op=True).wait()
        t5 = time.perf_counter()
        if i >= 3:
            times["mpi4py"].append(t1 - t0)
            times["dtorch"].append(t3 - t2)
            times["dtorch_async"].append(t5 - t4)
    if comm.Get_rank() == 0:
        nbytes = count * 4
        res = {"bench": "allreduce", "ranks": n, "mbytes": round(nbytes / 1e6, 2)}
        for k, v in times.items():
            med = statistics.median(v)
            algbw = nbytes / med / 1e9
            res[k] = {"median_ms": round(med * 1e3, 3), "algbw_GBps": round(algbw, 2),
                      "busbw_GBps": round(algbw * 2 * (n - 1) / n, 2)}
        res["dtorch_over_mpi4py"] = round(res["dtorch"]["median_ms"] / res["mpi4py"]["median_ms"], 3)
        print(json.dumps(res), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--worker", action="store_true")
    a = ap.parse_args()
    if a.worker:
        worker(a.rounds)
        return
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([mpiexec, "-n", str(a.ranks), sys.executable, "-m", "mpi4py", __file__, "--worker",
                          "--rounds", str(a.rounds)], capture_output=True, text=True, env=env, check=True).stdout
    print(out.strip().splitlines()[-1])


if __name__ == "__main__":
    main()

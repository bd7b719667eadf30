"""Allreduce through dtorch.distributed vs raw mpi4py Allreduce, 4 KB to 64 MB of float32.

Interleaved rounds on 2 ranks (the same numpy buffers), medians; busbw = algbw * 2 (n - 1) / n
(equal to algbw at 2 ranks). 7.45 MB is the MLP's gradient size. Launches itself under
mpiexec; prints one JSON line.

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


SIZES = {"4KB": 4 << 10, "64KB": 64 << 10, "1MB": 1 << 20, "7.45MB": 7_450_664 // 4 * 4, "16MB": 16 << 20,
         "64MB": 64 << 20}


def _time_size(comm, dist, nbytes: int, rounds: int) -> dict:
    import numpy as np
    from mpi4py import MPI

    import dtorch

    count = nbytes // 4
    raw = np.ones(count, np.float32)
    t = dtorch.ones(count)
    times = {"mpi4py": [], "dtorch": [], "dtorch_async": []}
    for i in range(rounds + 3):
        for key in times:  # interleaved: machine noise hits the three alike
            raw[:] = 1.0
            t._data[:] = 1.0
            comm.Barrier()
            t0 = time.perf_counter()
            if key == "mpi4py":
                comm.Allreduce(MPI.IN_PLACE, raw)
            elif key == "dtorch":
                dist.all_reduce(t)
            else:
                dist.all_reduce(t, async_op=True).wait()
            if i >= 3:
                times[key].append(time.perf_counter() - t0)
    n = comm.Get_size()
    res = {}
    for k, v in times.items():
        med = statistics.median(v)
        algbw = nbytes / med / 1e9
        res[k] = {"median_ms": round(med * 1e3, 4), "algbw_GBps": round(algbw, 3),
                  "busbw_GBps": round(algbw * 2 * (n - 1) / n, 3)}
    res["dtorch_over_raw_bw"] = round(res["mpi4py"]["median_ms"] / res["dtorch"]["median_ms"], 3)
    return res


def worker(rounds: int) -> None:
    from mpi4py import MPI

    import dtorch.distributed as dist

    dist.init_process_group()
    comm = MPI.COMM_WORLD.Dup()
    out = {"bench": "allreduce", "ranks": comm.Get_size(), "dtype": "float32"}
    for name, nbytes in SIZES.items():
        out[name] = _time_size(comm, dist, nbytes, rounds if nbytes < (16 << 20) else max(rounds // 3, 5))
    if comm.Get_rank() == 0:
        print(json.dumps(out), flush=True)


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

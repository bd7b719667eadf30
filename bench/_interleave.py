"""The timing loop the step benchmarks share: implementations stepped in turn, medians of per-step rates."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Callable


def steps_per_s(impls: dict, rounds: int, steps: int, clock: Callable[[], float] = time.perf_counter) -> dict:
    """``impls``: name -> (model with ``.step(x, y) -> loss``, x, y). Returns ``{name}_steps_per_s``,
    ``dtorch_over_{peer}`` for every other implementation, and ``final_loss`` per implementation.

    One step of each implementation in turn, timed alone: load bursts on a shared machine hit all
    implementations alike, and the median of the per-step rates ignores them.
    """
    samples: dict[str, list[float]] = {k: [] for k in impls}
    losses: dict[str, float] = {}
    for impl, xx, yy in impls.values():  # warm up
        for _ in range(2):
            impl.step(xx, yy)
    for _ in range(rounds * steps):
        for name, (impl, xx, yy) in impls.items():
            t0 = clock()
            loss = impl.step(xx, yy)
            samples[name].append(1.0 / (clock() - t0))
            losses[name] = float(loss)
    out = {f"{k}_steps_per_s": round(statistics.median(v), 3) for k, v in samples.items()}
    for peer in impls:
        if peer != "dtorch" and "dtorch" in impls:
            out[f"dtorch_over_{peer}"] = round(out["dtorch_steps_per_s"] / out[f"{peer}_steps_per_s"], 3)
    out["final_loss"] = {k: round(v, 6) for k, v in losses.items()}
    return out


def profile_steps(impl, xx, yy, steps: int, top: int = 30) -> None:
    """cProfile ``steps`` training steps of ``impl`` after two warm-up steps; top entries by own time on stderr."""
    import cProfile
    import pstats

    for _ in range(2):
        impl.step(xx, yy)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        impl.step(xx, yy)
    prof.disable()
    pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(top)


def run_per_thread(script: str, threads: list[int], argv: list[str], profile: int | None = None) -> dict:
    """Run ``script --worker N *argv`` once per thread count N, each in its own subprocess with the BLAS/OpenMP
    thread variables set to N before numpy loads; returns ``{"threads_N": <the worker's last JSON line>}``.
    With ``profile``, runs one worker at 1 thread with ``--profile STEPS`` (its table goes to stderr) instead."""
    import json
    import os
    import subprocess

    from gpt_step import MMAP_THRESHOLD, ROOT, THREAD_VARS

    out = {}
    for n in [1] if profile else threads:
        env = dict(os.environ, **{v: str(n) for v in THREAD_VARS})
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
        cmd = [sys.executable, os.path.abspath(script), "--worker", str(n), *argv]
        if profile:
            subprocess.run(cmd + ["--profile", str(profile)], env=env, check=True)
            return out
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        out[f"threads_{n}"] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def step_arguments(doc: str, rounds: int, steps: int) -> argparse.ArgumentParser:
    """The options every step benchmark takes: --rounds, --steps, --threads, --clock, --profile (and the
    internal --worker)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--steps", type=int, default=steps, help="training steps per timed round")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: the calling thread's CPU time (meaningful at 1 thread only)")
    ap.add_argument("--profile", type=int, default=None, metavar="STEPS", help="cProfile dtorch's step at 1 thread")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    return ap


def clock_of(name: str) -> Callable[[], float]:
    return time.perf_counter if name == "wall" else time.thread_time


def run_worker(impls: dict, args: argparse.Namespace) -> None:
    """A ``--worker`` process: profile dtorch's step, or print the interleaved rates as one JSON line."""
    if args.profile:
        profile_steps(*impls["dtorch"], args.profile, top=30)
    else:
        print(json.dumps(steps_per_s(impls, args.rounds, args.steps, clock_of(args.clock))))

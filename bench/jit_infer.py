"""Inference (no_grad) latency: ``dtorch.compile``d vs dtorch eager vs torch eager (when installed).

Models: MLP 784-1024-1024-10 at batch 256; the small CNN of bench/cnn_step.py at batch 64; nanoGPT-mini as
bench/gpt_step.py builds it (4 layers, 4 heads, width 128, context 64, batch 16, manual attention, exact GELU),
all with the same weights (copied through numpy). Each thread count runs in its own subprocess so the
thread variables are set before numpy loads; implementations take turns call by call and a figure is the
median over ``rounds * calls`` calls. Prints ONE JSON line: milliseconds per call, speedups of the compiled
model over torch and over dtorch eager (>1: compiled is faster), and the largest output difference.

Usage: ``python bench/jit_infer.py [--rounds 5] [--calls 5] [--threads 1 2] [--backends]``; ``--backends``
times the CPU fusion candidates instead (exact GELU, bias+ReLU and softmax rows as one pass over memory, with
numba and numexpr where installed: ``pip install numba numexpr``, and dtorch.compile's generated C, which also
runs nanoGPT's scale+mask+softmax and residual add+layer norm groups against dtorch's unfused kernels).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")


def _models(lib, gpt_step, cnn_step):
    """name -> (model in eval mode, input) for one library, seeded identically."""
    import numpy as np

    from dtorch.jobs.models import gpt

    nn = lib.nn
    lib.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    cnn = cnn_step._model(nn)
    model = gpt(lib, **gpt_step.CONFIG)
    for block in model.blocks:
        gpt_step._manual_attention(lib, block)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, gpt_step.CONFIG["vocab"], (gpt_step.BATCH, gpt_step.CONFIG["context"]))
    return {
        "mlp": (mlp.eval(), lib.from_numpy(rng.standard_normal((256, 784), dtype=np.float32))),
        "cnn": (cnn.eval(), lib.from_numpy(rng.standard_normal((64, 1, 28, 28), dtype=np.float32))),
        "gpt": (model.eval(), lib.from_numpy(tokens)),
    }


def _share_weights(src: dict, dst: dict, lib) -> None:
    import numpy as np

    for name, (m, _) in src.items():
        state = {k: np.array(v.detach().numpy()) for k, v in m.state_dict().items()}
        with lib.no_grad():
            for k, v in dst[name][0].state_dict().items():
                v.copy_(lib.from_numpy(state[k]))


def worker(threads: int, rounds: int, calls: int) -> dict:
    import numpy as np

    sys.path.insert(0, os.path.join(HERE, ".."))
    sys.path.insert(0, HERE)
    import cnn_step
    import gpt_step

    import dtorch

    ours = _models(dtorch, gpt_step, cnn_step)
    impls = {name: {"dtorch_eager": (m, x), "dtorch_compiled": (dtorch.compile(m), x)} for name, (m, x) in ours.items()}
    grad_off = {"dtorch_eager": dtorch.no_grad, "dtorch_compiled": dtorch.no_grad}
    try:
        import torch

        torch.set_num_threads(threads)
        theirs = _models(torch, gpt_step, cnn_step)
        _share_weights(ours, theirs, torch)
        for name, (m, _) in theirs.items():
            impls[name]["torch_eager"] = (m, torch.from_numpy(ours[name][1].numpy()))
        grad_off["torch_eager"] = torch.no_grad
    except ImportError:
        pass
    out = {}
    for name, group in impls.items():
        times = {k: [] for k in group}
        results = {}
        for k, (m, x) in group.items():  # warm up (the compiled model traces here)
            with grad_off[k]():
                results[k] = np.asarray(m(x).detach().numpy(), np.float64)
        for _ in range(rounds):
            for _ in range(calls):
                for k, (m, x) in group.items():
                    with grad_off[k]():
                        t0 = time.perf_counter()
                        m(x)
                        times[k].append(time.perf_counter() - t0)
        ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        row = {"ms": {k: round(v, 3) for k, v in ms.items()},
               "compiled_over_dtorch_eager": round(ms["dtorch_eager"] / ms["dtorch_compiled"], 3),
               "max_abs_diff_vs_eager": float(np.max(np.abs(results["dtorch_compiled"] - results["dtorch_eager"])))}
        if "torch_eager" in ms:
            row["compiled_over_torch"] = round(ms["torch_eager"] / ms["dtorch_compiled"], 3)
            row["eager_over_torch"] = round(ms["torch_eager"] / ms["dtorch_eager"], 3)
        out[name] = row
    return out


# ---- CPU fusion backends: one pass over memory per chain, measured before choosing -----------------------
_AS_P, _AS_A = 0.3275911, (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _numpy_chains(np):
    """The chains as dtorch's numpy kernels run them (several passes, temporaries)."""
    from dtorch._ops.activation import _gelu_erf_float32
    from dtorch._ops.softmax import _softmax

    def bias_relu(x, b, out):
        np.maximum(x + b, 0, out=out)

    return {"gelu": lambda x, out: np.copyto(out, _gelu_erf_float32(x)[0]), "bias_relu": bias_relu,
            "softmax": lambda x, out: np.copyto(out, _softmax.cpu_kernel(x, -1))}


def _chunked(np, chains, threads: int, rows: int = 64):
    """numpy ufuncs with out= over row chunks, in a thread pool (numpy releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(threads)

    def run(name):
        fn = chains[name]

        def call(x, *rest):
            out = rest[-1]
            x2, o2 = x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1])
            extra = rest[:-1]
            list(pool.map(lambda i: fn(x2[i:i + rows], *extra, o2[i:i + rows]), range(0, x2.shape[0], rows)))
        return call

    return {k: run(k) for k in chains}


def _numexpr_chains(np):
    import numexpr as ne

    consts = {"p": np.float32(_AS_P / 2 ** 0.5), **{f"a{i}": np.float32(a) for i, a in enumerate(_AS_A)}}
    gelu = ("x * (0.5 + where(x < 0, -0.5, 0.5) * (1 - t * (a0 + t * (a1 + t * (a2 + t * (a3 + t * a4)))) * "
            "exp(-0.5 * x * x)))")

    def gelu_fn(x, out):
        t = ne.evaluate("1 / (1 + p * abs(x))", local_dict={"x": x, **consts})
        ne.evaluate(gelu, local_dict={"x": x, "t": t, **consts}, out=out)

    def softmax(x, out):
        m = x.max(-1, keepdims=True)
        ne.evaluate("exp(x - m)", local_dict={"x": x, "m": m}, out=out)
        out /= out.sum(-1, keepdims=True)

    return {"gelu": gelu_fn, "bias_relu": lambda x, b, out: ne.evaluate("where(x + b > 0, x + b, 0)", out=out),
            "softmax": softmax}


def _numba_chains(np):
    import math

    import numba

    p = np.float32(_AS_P / 2 ** 0.5)
    a0, a1, a2, a3, a4 = (np.float32(c) for c in _AS_A)

    @numba.njit(parallel=True, fastmath=True)
    def gelu(x, out):
        xf, of = x.reshape(-1), out.reshape(-1)
        for i in numba.prange(xf.size):
            v = xf[i]
            t = np.float32(1) / (np.float32(1) + p * abs(v))
            y = t * (a0 + t * (a1 + t * (a2 + t * (a3 + t * a4)))) * math.exp(np.float32(-0.5) * v * v)
            of[i] = v * (np.float32(1) - np.float32(0.5) * y if v >= 0 else np.float32(0.5) * y)

    @numba.njit(parallel=True, fastmath=True)
    def bias_relu(x, b, out):
        x2, o2 = x.reshape(-1, b.size), out.reshape(-1, b.size)
        for r in numba.prange(x2.shape[0]):
            for j in range(b.size):
                o2[r, j] = max(x2[r, j] + b[j], np.float32(0))

    @numba.njit(parallel=True, fastmath=True)
    def softmax(x, out):
        n = x.shape[-1]
        x2, o2 = x.reshape(-1, n), out.reshape(-1, n)
        for r in numba.prange(x2.shape[0]):
            m = x2[r].max()
            s = np.float32(0)
            for j in range(n):
                e = math.exp(x2[r, j] - m)
                o2[r, j] = e
                s += e
            o2[r] /= s

    return {"gelu": gelu, "bias_relu": bias_relu, "softmax": softmax}


def _generated_c_chains(np):
    """dtorch.compile's fused groups (prim::FusionGroup): generated C, compiled once, then from the disk cache."""
    from dtorch.jit._fuse_run import Program

    def group(body, n_in):
        prog = Program(body, (n_in + len(body) - 1,), n_in)
        return lambda *a: np.copyto(a[-1], prog(list(a[:-1]))[0])

    mask_softmax = ((("prim::Constant", (), (("value", 0.125),)), ("mul", (0, 2), ()),
                     ("prim::Constant", (), (("value", float("-inf")),)), ("masked_fill", (3, 1, 4), ()),
                     ("softmax", (5,), (("dim", -1),))))
    add_ln = (("add", (0, 1), ()), ("native_layer_norm", (4, 2, 3), (("eps", 1e-5), ("n_axes", 1))))
    return {"gelu": group((("gelu", (0,), ()),), 1), "bias_relu": group((("add", (0, 1), ()), ("relu", (2,), ())), 2),
            "softmax": group((("softmax", (0,), (("dim", -1),)),), 1), "mask_softmax": group(mask_softmax, 2),
            "add_layer_norm": group(add_ln, 4)}


def _numpy_extra_chains(np):
    """Two more of nanoGPT's chains as dtorch's kernels run them unfused (only the generated C has them too)."""
    from dtorch._ops.softmax import _softmax
    from dtorch.nn._functional.normalization import _layer_norm

    def mask_softmax(x, mask, out):
        np.copyto(out, _softmax.cpu_kernel(np.where(mask, np.float32(-np.inf), x * np.float32(0.125)), -1))

    def add_ln(x, r, w, b, out):
        np.copyto(out, _layer_norm.cpu_kernel(x + r, w, b, 1, 1e-5)[0])

    return {"mask_softmax": mask_softmax, "add_layer_norm": add_ln}


def backends(threads: int, rounds: int) -> dict:
    """ms per call of three chains (exact GELU, bias+ReLU, softmax rows) on nanoGPT-mini's shapes, per backend."""
    import numpy as np

    sys.path.insert(0, os.path.join(HERE, ".."))
    rng = np.random.default_rng(0)
    data = {"gelu": (rng.standard_normal((16, 64, 512), dtype=np.float32),),
            "bias_relu": (rng.standard_normal((256, 1024), dtype=np.float32),
                          rng.standard_normal(1024, dtype=np.float32)),
            "softmax": (rng.standard_normal((16, 4, 64, 64), dtype=np.float32),),
            "mask_softmax": (rng.standard_normal((16, 4, 64, 64), dtype=np.float32),
                             np.triu(np.ones((64, 64), bool), 1)[None, None]),
            "add_layer_norm": tuple(rng.standard_normal(s, dtype=np.float32) for s in ((16, 64, 128), (16, 64, 128),
                                                                                        (128,), (128,)))}
    cands = {"numpy": {**_numpy_chains(np), **_numpy_extra_chains(np)}}
    cands["numpy_chunks_pool"] = _chunked(np, _numpy_chains(np), threads)
    for name, make in (("numexpr", _numexpr_chains), ("numba", _numba_chains), ("generated_c", _generated_c_chains)):
        try:
            cands[name] = make(np)
        except ImportError:
            continue
    ref = {k: np.empty_like(v[0]) for k, v in data.items()}
    for k, args in data.items():
        cands["numpy"][k](*args, ref[k])
    out = {}
    for chain, args in data.items():
        times = {c: [] for c in cands if chain in cands[c]}
        res = {c: np.empty_like(args[0]) for c in times}
        for c in times:
            cands[c][chain](*args, res[c])  # compile / warm up
        for _ in range(rounds):
            for c in times:
                t0 = time.perf_counter()
                cands[c][chain](*args, res[c])
                times[c].append(time.perf_counter() - t0)
        out[chain] = {c: {"ms": round(statistics.median(t) * 1e3, 3),
                          "max_abs_err": float(np.max(np.abs(res[c] - ref[chain])))} for c, t in times.items()}
        out[chain]["numpy_over_generated_c"] = round(out[chain]["numpy"]["ms"] / out[chain]["generated_c"]["ms"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--backends", action="store_true",
                    help="instead: the CPU fusion backends (numpy, numpy chunks in a thread pool, numexpr, numba, "
                         "generated C) on nanoGPT-mini's elementwise chains")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        fn = backends(args.worker, args.rounds * args.calls) if args.backends else \
            worker(args.worker, args.rounds, args.calls)
        print(json.dumps(fn))
        return
    report = {"bench": "jit_infer_backends" if args.backends else "jit_infer", "unit": "ms_per_call", "threads": {}}
    for n in args.threads:
        env = dict(os.environ, **{v: str(n) for v in THREAD_VARS})
        cmd = [sys.executable, __file__, "--worker", str(n), "--rounds", str(args.rounds), "--calls", str(args.calls)]
        res = subprocess.run(cmd + (["--backends"] if args.backends else []), env=env, capture_output=True, text=True,
                             check=True)
        report["threads"][str(n)] = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(report))


if __name__ == "__main__":
    main()

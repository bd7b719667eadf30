"""The three convolution kernels of every conv layer of bench/mnist_step.py, bench/cnn_step.py and
bench/dcgan_step.py, one at a time, dtorch against torch in the same run.

Per layer (batch 64, float32): the forward, the input gradient and the weight gradient, as the kernels themselves:
dtorch's registered array kernels (``convolution``, ``conv_input_grad``, ``conv_weight_grad``), torch's
``aten.convolution`` and ``aten.convolution_backward`` with one output mask each. The generator's transposed
convolutions are these kernels on the discriminator's geometries (its forward is the input gradient of the
conv with the same shapes), plus ``g1``, its 1x1 -> 4x4 first layer. The implementations take turns step by
step and a figure is the median over ``rounds * steps`` calls (bench/_interleave.py); ``gflop_s`` is dtorch's
rate on the kernel's multiply-adds. A third implementation, ``numpy_loops``, is dtorch without its C kernels
(``nn/_functional/_conv_c.py``), as on a machine without a C compiler. Prints ONE JSON line.

Usage: ``python bench/conv_layers.py [--rounds 5] [--steps 5] [--threads 1] [--clock wall|cpu]``.
"""
from __future__ import annotations

import json

import numpy as np

from _interleave import clock_of, run_per_thread, step_arguments, steps_per_s

# name: (input channels, image size, output channels, kernel, stride, padding, kernels timed)
LAYERS = {
    "mnist_conv1": (1, 28, 32, 3, 1, 0, "fw"),
    "mnist_conv2": (32, 26, 64, 3, 1, 0, "fiw"),
    "cnn_conv1": (1, 28, 16, 3, 1, 1, "fw"),
    "cnn_conv2": (16, 14, 32, 3, 1, 1, "fiw"),
    "dcgan_d1": (3, 64, 16, 4, 2, 1, "fiw"),
    "dcgan_d2": (16, 32, 32, 4, 2, 1, "fiw"),
    "dcgan_d3": (32, 16, 64, 4, 2, 1, "fiw"),
    "dcgan_d4": (64, 8, 128, 4, 2, 1, "fiw"),
    "dcgan_d5": (128, 4, 1, 4, 1, 0, "fiw"),
    "dcgan_g1": (128, 4, 100, 4, 1, 0, "fiw"),
}
KERNELS = {"f": "forward", "i": "input_grad", "w": "weight_grad"}
BATCH = 64


class _Call:
    def __init__(self, fn, without_c: bool = False) -> None:
        self.fn, self.without_c = fn, without_c

    def step(self, _x, _y) -> float:
        if not self.without_c:
            self.fn()
            return 0.0
        from dtorch.nn._functional import _conv_c

        saved, _conv_c.KERNELS.fns = _conv_c.KERNELS.get(), {}
        try:
            self.fn()
        finally:
            _conv_c.KERNELS.fns = saved
        return 0.0


def _calls(cin: int, size: int, cout: int, k: int, s: int, p: int, rng) -> tuple[dict, dict]:
    import torch

    from dtorch._dispatch import ARRAY_NS as A

    x = rng.standard_normal((BATCH, cin, size, size)).astype(np.float32)
    w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
    kw = {"stride": (s, s), "padding": ((p, p), (p, p)), "dilation": (1, 1), "groups": 1}
    g = rng.standard_normal(A.convolution(x, w, None, **kw).shape).astype(np.float32)
    tx, tw, tg = (torch.from_numpy(a) for a in (x, w, g))

    def back(mask):
        return lambda: torch.ops.aten.convolution_backward(tg, tx, tw, None, [s, s], [p, p], [1, 1], False, [0, 0], 1,
                                                           mask)

    ours = {"f": lambda: A.convolution(x, w, None, **kw),
            "i": lambda: A.conv_input_grad(g, w, None, size=(size, size), **kw),
            "w": lambda: A.conv_weight_grad(x, g, kernel=(k, k), **kw)}
    theirs = {"f": lambda: torch.ops.aten.convolution(tx, tw, None, [s, s], [p, p], [1, 1], False, [0, 0], 1),
              "i": back([True, False, False]), "w": back([False, True, False])}
    return ours, theirs


def _worker(args) -> dict:
    import torch

    from dtorch.nn._functional import _conv_c

    torch.set_num_threads(args.worker)
    assert _conv_c.KERNELS.get(), "no C compiler: dtorch runs numpy's loops"
    rng = np.random.default_rng(0)
    out = {}
    for name, (cin, size, cout, k, s, p, kinds) in LAYERS.items():
        ours, theirs = _calls(cin, size, cout, k, s, p, rng)
        osize = (size + 2 * p - k) // s + 1
        flop = 2 * BATCH * cout * cin * k * k * osize * osize
        for kind in kinds:
            impls = {"dtorch": (_Call(ours[kind]), None, None), "torch": (_Call(theirs[kind]), None, None),
                     "numpy_loops": (_Call(ours[kind], without_c=True), None, None)}
            res = steps_per_s(impls, args.rounds, args.steps, clock_of(args.clock))
            ms = {k: 1e3 / res[f"{k}_steps_per_s"] for k in impls}
            out[f"{name}_{KERNELS[kind]}"] = {**{f"{k}_ms": round(v, 3) for k, v in ms.items()},
                                             "dtorch_over_torch": res["dtorch_over_torch"],
                                             "dtorch_over_numpy_loops": res["dtorch_over_numpy_loops"],
                                             "gflop_s": round(flop / ms["dtorch"] / 1e6, 1)}
    total = {k: sum(v[f"{k}_ms"] for v in out.values()) for k in impls}
    out["sum"] = {**{f"{k}_ms": round(v, 2) for k, v in total.items()},
                  "dtorch_over_torch": round(total["torch"] / total["dtorch"], 3),
                  "dtorch_over_numpy_loops": round(total["numpy_loops"] / total["dtorch"], 3)}
    return out


def main() -> None:
    ap = step_arguments(__doc__, rounds=5, steps=5)
    ap.set_defaults(threads=[1])
    args = ap.parse_args()
    if args.worker is not None:
        print(json.dumps(_worker(args)))
        return
    result = {"bench": "conv_layers", "batch": BATCH, "dtype": "float32", "clock": args.clock}
    argv = ["--rounds", str(args.rounds), "--steps", str(args.steps), "--clock", args.clock]
    result.update(run_per_thread(__file__, args.threads, argv))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Forward + backward of the non-convolution ops of bench/mnist_step.py and bench/dcgan_step.py, one op at a time
at the shapes those models run it on, dtorch against torch in the same run.

MNIST (batch 64): ReLU after each conv and fc1, ``max_pool2d(x, 2)``, dropout 0.25, ``log_softmax`` +
``nll_loss``. DCGAN (batch 64, ngf = ndf = 16): ``LeakyReLU(0.2, inplace=True)`` (on ``x * 1``, so that the
in-place op has a non-leaf to write to; the product is timed on both sides), ``BatchNorm2d`` in training mode with
its affine parameters on each of the model's four shapes, ``ReLU(True)`` (also on ``x * 1``), ``tanh`` on the
generator's output, ``sigmoid`` + ``binary_cross_entropy``. A step is the op's forward and its backward with a
fixed gradient; the implementations take turns step by step and a figure is the median over ``rounds * steps``
steps (bench/_interleave.py). Prints ONE JSON line: per op, dtorch's and torch's steps/s and their ratio.

Usage: ``python bench/cnn_ops.py [--rounds 5] [--steps 10] [--threads 1] [--clock wall|cpu] [--only NAME...]``.
"""
from __future__ import annotations

import json

import numpy as np

from _interleave import run_per_thread, steps_per_s, step_arguments, clock_of


def _bn(c):
    def fn(lib, x):
        w = lib.ones(c, requires_grad=True)
        b = lib.zeros(c, requires_grad=True)
        return lib.nn.functional.batch_norm(x, None, None, w, b, training=True)
    return fn


def _nll(lib, x):
    target = lib.from_numpy(np.arange(x.shape[0]) % x.shape[1])
    return lib.nn.functional.nll_loss(lib.nn.functional.log_softmax(x, dim=1), target)


def _bce(lib, x):
    return lib.nn.functional.binary_cross_entropy(lib.sigmoid(x), lib.ones(x.shape[0]))


CASES = {
    "mnist_relu_32x26x26": ((64, 32, 26, 26), lambda lib, x: lib.nn.functional.relu(x)),
    "mnist_relu_64x24x24": ((64, 64, 24, 24), lambda lib, x: lib.nn.functional.relu(x)),
    "mnist_max_pool2d": ((64, 64, 24, 24), lambda lib, x: lib.nn.functional.max_pool2d(x, 2)),
    "mnist_dropout": ((64, 64, 12, 12), lambda lib, x: lib.nn.functional.dropout(x, 0.25)),
    "mnist_log_softmax_nll": ((64, 10), _nll),
    "dcgan_leaky_relu_16x32x32": ((64, 16, 32, 32), lambda lib, x: lib.nn.functional.leaky_relu(x * 1, 0.2, True)),
    "dcgan_leaky_relu_32x16x16": ((64, 32, 16, 16), lambda lib, x: lib.nn.functional.leaky_relu(x * 1, 0.2, True)),
    "dcgan_batch_norm_16x32x32": ((64, 16, 32, 32), _bn(16)),
    "dcgan_batch_norm_32x16x16": ((64, 32, 16, 16), _bn(32)),
    "dcgan_batch_norm_64x8x8": ((64, 64, 8, 8), _bn(64)),
    "dcgan_batch_norm_128x4x4": ((64, 128, 4, 4), _bn(128)),
    "dcgan_relu_inplace_16x32x32": ((64, 16, 32, 32), lambda lib, x: lib.nn.functional.relu(x * 1, True)),
    "dcgan_tanh_3x64x64": ((64, 3, 64, 64), lambda lib, x: lib.tanh(x)),
    "dcgan_sigmoid_bce": ((64,), _bce),
}


class _OpStep:
    """One op's forward and backward on a fixed input and output gradient."""

    def __init__(self, lib, fn, x: np.ndarray, g: np.ndarray | None) -> None:
        self.lib, self.fn = lib, fn
        self.x = lib.from_numpy(x.copy()).requires_grad_()
        self.g = None if g is None else lib.from_numpy(g)

    def step(self, _x, _y) -> float:
        self.x.grad = None
        y = self.fn(self.lib, self.x)
        y.backward(self.g)
        return 0.0


def _worker(args) -> dict:
    import dtorch
    import torch

    torch.set_num_threads(args.worker)
    out = {}
    rng = np.random.default_rng(0)
    for name, (shape, fn) in CASES.items():
        if args.only and name not in args.only:
            continue
        x = rng.standard_normal(shape).astype(np.float32)
        y = fn(torch, torch.from_numpy(x.copy()))
        g = None if y.ndim == 0 else rng.standard_normal(tuple(y.shape)).astype(np.float32)
        impls = {lib.__name__: (_OpStep(lib, fn, x, g), None, None) for lib in (dtorch, torch)}
        res = steps_per_s(impls, args.rounds, args.steps, clock_of(args.clock))
        out[name] = {"dtorch_ms": round(1e3 / res["dtorch_steps_per_s"], 3),
                     "torch_ms": round(1e3 / res["torch_steps_per_s"], 3),
                     "dtorch_over_torch": res["dtorch_over_torch"]}
    return out


def main() -> None:
    ap = step_arguments(__doc__, rounds=5, steps=10)
    ap.set_defaults(threads=[1])
    ap.add_argument("--only", nargs="+", default=None, choices=sorted(CASES))
    args = ap.parse_args()
    if args.worker is not None:
        print(json.dumps(_worker(args)))
        return
    result = {"bench": "cnn_ops", "dtype": "float32", "clock": args.clock, "step": "forward + backward"}
    argv = ["--rounds", str(args.rounds), "--steps", str(args.steps), "--clock", args.clock]
    if args.only:
        argv += ["--only", *args.only]
    result.update(run_per_thread(__file__, args.threads, argv))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

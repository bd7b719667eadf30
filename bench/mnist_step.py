"""Training steps/s of pytorch/examples' MNIST (mnist/main.py) as written, dtorch against torch in the same run.

The model is the example's ``Net`` with the library passed in: Conv2d(1, 32, 3, 1), ReLU, Conv2d(32, 64, 3, 1),
ReLU, ``F.max_pool2d(x, 2)``, Dropout(0.25), ``torch.flatten(x, 1)``, Linear(9216, 128), ReLU, Dropout(0.5),
Linear(128, 10), ``F.log_softmax(x, dim=1)``; the step is the example's ``train`` body: ``zero_grad()``,
``F.nll_loss(output, target)``, backward, Adadelta (lr 1.0). 28x28 inputs, batch 64 (the example's default).
dtorch and torch start from the same weights and see the same batch; their losses differ by their dropout draws.

Each thread count runs in its own subprocess (thread variables set before numpy loads); steps are timed one at
a time, the implementations taking turns, and a figure is the median over ``rounds * steps`` steps. Prints ONE
JSON line with the ratio to torch.

Usage: ``python bench/mnist_step.py [--rounds 5] [--steps 5] [--threads 1 2] [--clock wall|cpu] [--batch 64]``;
``--profile 20`` prints a cProfile table of dtorch's steps at 1 thread.
"""
from __future__ import annotations

import functools
import json

import numpy as np

from _interleave import run_per_thread, run_worker, step_arguments

LR = 1.0


@functools.cache
def _net(lib):
    """mnist/main.py's Net, written against ``lib``."""
    nn, F = lib.nn, lib.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = self.conv1(x)
            x = F.relu(x)
            x = self.conv2(x)
            x = F.relu(x)
            x = F.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = lib.flatten(x, 1)
            x = self.fc1(x)
            x = F.relu(x)
            x = self.dropout2(x)
            x = self.fc2(x)
            return F.log_softmax(x, dim=1)

    return Net


class Trainer:
    """The example's ``train`` body on one fixed batch."""

    def __init__(self, lib, params: dict[str, np.ndarray]) -> None:
        self.lib = lib
        lib.manual_seed(0)
        self.model = _net(lib)()
        with lib.no_grad():
            for name, p in self.model.named_parameters():
                p.copy_(lib.from_numpy(params[name].copy()))
        self.model.train()
        self.optimizer = lib.optim.Adadelta(self.model.parameters(), lr=LR)

    def step(self, data, target):
        self.optimizer.zero_grad()
        output = self.model(data)
        loss = self.lib.nn.functional.nll_loss(output, target)
        loss.backward()
        self.optimizer.step()
        return loss


def make_impls(threads: int, batch: int) -> dict:
    import dtorch

    dtorch.manual_seed(0)
    params = {k: v.numpy().copy() for k, v in _net(dtorch)().state_dict().items()}
    rng = np.random.default_rng(1)
    x = ((rng.uniform(0, 1, (batch, 1, 28, 28)) - 0.1307) / 0.3081).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    impls = {"dtorch": (Trainer(dtorch, params), dtorch.from_numpy(x), dtorch.from_numpy(y))}
    try:
        import torch

        torch.set_num_threads(threads)
        impls["torch"] = (Trainer(torch, params), torch.from_numpy(x), torch.from_numpy(y))
    except ImportError:
        pass
    return impls


def main() -> None:
    ap = step_arguments(__doc__, rounds=5, steps=5)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    if args.worker is not None:
        impls = make_impls(args.worker, args.batch)
        run_worker(impls, args)
        return
    result = {"bench": "mnist_step", "batch": args.batch, "dtype": "float32", "optimizer": "Adadelta(lr=1.0)",
              "clock": args.clock}
    argv = ["--rounds", str(args.rounds), "--steps", str(args.steps), "--clock", args.clock,
            "--batch", str(args.batch)]
    result.update(run_per_thread(__file__, args.threads, argv, args.profile))
    if not args.profile:
        print(json.dumps(result))


if __name__ == "__main__":
    main()

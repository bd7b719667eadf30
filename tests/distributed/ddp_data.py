"""Data shared by the DDP tests: per-rank slices of one global batch, and the float comparison they use."""
from __future__ import annotations

import numpy as np

import dtorch

PER_RANK = 5


def data(world, steps: int = 3, seed: int = 0):
    """``steps`` global batches (inputs of width 4, labels in 0..2) of PER_RANK rows per rank."""
    rng = np.random.default_rng(seed)
    n = PER_RANK * world.get_world_size()
    xs = [dtorch.tensor(rng.standard_normal((n, 4)).astype(np.float32)) for _ in range(steps)]
    ys = [dtorch.tensor(rng.integers(0, 3, n)) for _ in range(steps)]
    return xs, ys


def mine(world, t):
    """This rank's rows of a global batch."""
    r = world.get_rank()
    return t[PER_RANK * r: PER_RANK * (r + 1)]


def close(a, b, atol=1e-6):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=atol)


def train_beside_reference(world, ddp, ref, steps: int = 4, set_to_none: bool = True) -> None:
    """SGD-train ``ddp`` on each rank's rows and ``ref`` on the whole batch; gradients must match after every
    backward and parameters at the end (DDP equals single-process training on the concatenated batch)."""
    from dtorch import nn

    opt = dtorch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    ref_opt = dtorch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    xs, ys = data(world, steps=steps)
    for x, y in zip(xs, ys):
        opt.zero_grad(set_to_none=set_to_none)
        ref_opt.zero_grad(set_to_none=set_to_none)
        nn.functional.cross_entropy(ddp(mine(world, x)), mine(world, y)).backward()
        nn.functional.cross_entropy(ref(x), y).backward()
        for p, q in zip(ddp.parameters(), ref.parameters()):
            close(p.grad, q.grad)  # final when backward returns
        opt.step()
        ref_opt.step()
    for p, q in zip(ddp.parameters(), ref.parameters()):
        close(p, q)

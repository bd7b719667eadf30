"""ZeroRedundancyOptimizer under a GradScaler equals DDP + the plain optimizer under one (pytest-mpi).

The scale makes every gradient 2**k times larger; an injected inf on one rank must make every rank
skip the same step and back off the scale, on every ZeRO path (ZeRO-1 and ZeRO-2/attach).
"""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from dtorch import nn
from dtorch.distributed.optim import ZeroRedundancyOptimizer
from dtorch.nn.parallel import DistributedDataParallel as DDP

pytestmark = pytest.mark.mpi(min_size=2)


def _mlp(seed: int) -> nn.Module:
    dtorch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 7), nn.Tanh(), nn.Linear(7, 3))


@pytest.mark.parametrize("comm", ["shm", "mpi"])
@pytest.mark.parametrize("attach", [False, True], ids=["zero1", "zero2"])
def test_grad_scaler_with_zero_matches_plain(world, comm, attach):
    r, n = world.get_rank(), world.get_world_size()
    ddp, ref = DDP(_mlp(5 + r)), DDP(_mlp(5 + r))
    zero = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=dtorch.optim.SGD, comm=comm,
                                               lr=0.05, momentum=0.9)
    if attach:
        zero.attach(ddp)
    ref_opt = dtorch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    scalers = [dtorch.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=2) for _ in range(2)]
    rng = np.random.default_rng(0)
    for step in range(6):
        x = rng.standard_normal((4 * n, 4)).astype(np.float32)[4 * r:4 * (r + 1)]
        if step == 2 and r == n - 1:
            x[0, 0] = np.inf  # an overflow on one rank only: every rank must skip this step
        y = dtorch.tensor(rng.integers(0, 3, 4 * n)[4 * r:4 * (r + 1)])
        for model, opt, scaler in ((ddp, zero, scalers[0]), (ref, ref_opt, scalers[1])):
            opt.zero_grad()
            scaler.scale(nn.functional.cross_entropy(model(dtorch.tensor(x)), y)).backward()
            scaler.step(opt)
            scaler.update()
        assert scalers[0].get_scale() == scalers[1].get_scale()
        for p, q in zip(ddp.parameters(), ref.parameters()):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert scalers[0].get_scale() == 2.0 ** 11  # grew after steps 0-1, backed off at 2, grew after 3-4

"""nn.DataParallel as torch has it on a machine without a GPU: it calls the module; `.module`, `module.`-prefixed
state dict keys, the functional data_parallel; several devices in one process are refused with a clear message."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from dtorch import nn


def test_cpu_data_parallel_calls_the_module_and_prefixes_state_dict(torch):
    dtorch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    dp = nn.DataParallel(model)
    assert dp.module is model and dp.device_ids == []
    x = dtorch.randn(5, 4)
    np.testing.assert_array_equal(dp(x).detach().numpy(), model(x).detach().numpy())
    theirs = torch.nn.DataParallel(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)))
    assert list(dp.state_dict()) == list(theirs.state_dict())
    assert all(k.startswith("module.") for k in dp.state_dict())
    fresh = nn.DataParallel(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)))
    fresh.load_state_dict(dp.state_dict())
    fresh.eval(), dp.eval()
    np.testing.assert_array_equal(fresh(x).detach().numpy(), dp(x).detach().numpy())


def test_training_through_data_parallel_updates_the_module():
    model = nn.Linear(3, 1)
    dp = nn.DataParallel(model)
    opt = dtorch.optim.SGD(dp.parameters(), lr=0.1)
    before = model.weight.detach().clone()
    dp(dtorch.ones(2, 3)).sum().backward()
    opt.step()
    assert not dtorch.equal(model.weight, before)
    out = nn.parallel.data_parallel(model, dtorch.ones(2, 3))
    assert tuple(out.shape) == (2, 1)


@pytest.mark.cuda
@pytest.mark.skipif(dtorch.cuda.device_count() < 2, reason="needs two GPUs")
def test_several_devices_are_refused():
    with pytest.raises(NotImplementedError, match="use DistributedDataParallel"):
        nn.DataParallel(nn.Linear(2, 2), device_ids=[0, 1])

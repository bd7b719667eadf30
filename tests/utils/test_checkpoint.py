"""dtorch.utils.checkpoint: recomputed forward gives the gradients of the plain forward (dropout included: the RNG
state is replayed), both variants, keyword arguments, checkpoint_sequential, torch's warnings and errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import dtorch
from dtorch import nn
from dtorch.utils.checkpoint import checkpoint, checkpoint_sequential


def _net(drop: float) -> nn.Module:
    dtorch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Dropout(drop), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))


def _grads(net: nn.Module, x: dtorch.Tensor, y: dtorch.Tensor) -> list[np.ndarray]:
    y.pow(2).sum().backward()
    out = [y.detach().numpy().copy()] + [p.grad.numpy().copy() for p in net.parameters()]
    return out + ([x.grad.numpy().copy()] if x.requires_grad else [])


@pytest.mark.parametrize("reentrant", [True, False])
@pytest.mark.parametrize("drop", [0.0, 0.5])
def test_gradients_equal_the_plain_forward(reentrant, drop):
    results = []
    for use_checkpoint in (False, True):
        net = _net(drop)
        x = dtorch.randn(5, 4, generator=dtorch.Generator().manual_seed(3), requires_grad=True)
        dtorch.manual_seed(7)
        y = checkpoint(net, x, use_reentrant=reentrant) if use_checkpoint else net(x)
        dtorch.randn(100)  # draws between forward and backward must not change the recomputation
        results.append(_grads(net, x, y))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_non_reentrant_gives_parameter_grads_without_input_grad_and_passes_kwargs():
    net = _net(0.0)
    x = dtorch.randn(5, 4)
    y = checkpoint(lambda a, scale=1.0: net(a) * scale, x, use_reentrant=False, scale=2.0)
    assert y.grad_fn is not None
    y.sum().backward()
    ref = _net(0.0)
    (ref(x) * 2.0).sum().backward()
    for p, q in zip(net.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_nothing_recorded_in_forward():
    net = _net(0.0)
    x = dtorch.randn(5, 4, requires_grad=True)
    y = checkpoint(net, x, use_reentrant=True)
    assert type(y.grad_fn).__name__ == "CheckpointFunctionBackward"
    assert y.grad_fn.next_functions[-1][0] is not None  # the input's accumulator, not the layers'


def test_checkpoint_sequential_equals_sequential():
    results = []
    for segments in (None, 2, 3):
        net = _net(0.0)
        x = dtorch.randn(5, 4, generator=dtorch.Generator().manual_seed(3), requires_grad=True)
        y = net(x) if segments is None else checkpoint_sequential(net, segments, x, use_reentrant=False)
        results.append(_grads(net, x, y))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_torch_warnings_and_errors():
    net = _net(0.0)
    x = dtorch.randn(2, 4, requires_grad=True)
    with pytest.warns(UserWarning, match="the use_reentrant parameter should be passed explicitly"):
        checkpoint(net, x)
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True. Gradients will be None"):
        checkpoint(net, x.detach(), use_reentrant=True)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        checkpoint(net, x, use_reentrant=True, scale=2.0)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        checkpoint_sequential(net, 2, x, use_reentrant=True, scale=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checkpoint(net, x, use_reentrant=False).shape == (2, 3)


def test_torch_parity_of_messages(torch):
    from torch.utils.checkpoint import checkpoint as torch_checkpoint

    with pytest.raises(ValueError) as theirs:
        torch_checkpoint(lambda a: a, torch.ones(1), use_reentrant=True, scale=2.0)
    with pytest.raises(ValueError) as ours:
        checkpoint(lambda a: a, dtorch.ones(1), use_reentrant=True, scale=2.0)
    assert str(ours.value) == str(theirs.value)

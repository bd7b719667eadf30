"""dtorch.compile: capture per input signature, optimized inference, grad through the ops, eager fallback."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import dtorch
from dtorch import nn
from dtorch.jit import _compile
from tests.jit.models import cnn, gpt_block, mlp


@pytest.mark.parametrize("make,shape", [(mlp, (3, 8)), (cnn, (3, 3, 8, 8)), (gpt_block, (3, 8, 16))])
def test_compiled_models_equal_eager_and_retrace_per_signature(make, shape):
    model = make(dtorch).eval()
    compiled = dtorch.compile(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with dtorch.no_grad():
            for batch in (shape[0], 5, shape[0]):
                x = dtorch.randn(batch, *shape[1:])
                np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    assert len(compiled._compiled.cache) == 2


def test_grad_mode_is_part_of_the_guard_and_training_works():
    model = mlp(dtorch)
    compiled = dtorch.compile(model)
    x = dtorch.randn(4, 8)
    compiled(x).square().sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x).square().sum().backward()
    for g, p in zip(got, model.parameters()):
        np.testing.assert_allclose(g.numpy(), p.grad.numpy(), rtol=1e-6)
    with dtorch.no_grad():
        compiled(x)
    assert len(compiled._compiled.cache) == 2


def test_inference_follows_parameter_updates():
    model = mlp(dtorch).eval()
    compiled = dtorch.compile(model)
    opt = dtorch.optim.SGD(model.parameters(), lr=0.5)
    x = dtorch.randn(4, 8)
    for _ in range(2):
        with dtorch.no_grad():
            np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-6)
        model(x).sum().backward()
        opt.step()
        opt.zero_grad()
    model.double()
    with dtorch.no_grad():
        xd = x.double()
        np.testing.assert_allclose(compiled(xd).numpy(), model(xd).numpy(), rtol=1e-12)


def _branchy(x):
    if x.sum() > 0:  # data-dependent: cannot be captured
        return x * 2
    return x - 1


def test_fallback_warns_once_naming_the_reason_and_fullgraph_raises():
    f = dtorch.compile(_branchy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert f(dtorch.ones(2)).tolist() == [2, 2]
        assert f(-dtorch.ones(2)).tolist() == [-2, -2]
        assert f(dtorch.ones(3)).tolist() == [2, 2, 2]
    msg = str(caught[0].message)
    assert len(caught) == 1 and "runs eagerly: the trace might not generalize (" in msg
    assert "test_compile.py" in msg and "Converting a tensor to a Python boolean" in msg
    with pytest.raises(RuntimeError, match="fullgraph=True.*cannot be captured"):
        dtorch.compile(_branchy, fullgraph=True)(dtorch.ones(2))


def test_training_dropout_and_the_cache_limit_fall_back():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    compiled = dtorch.compile(model)
    with pytest.warns(UserWarning, match="random op.*dropout"):
        with dtorch.no_grad():
            compiled(dtorch.randn(2, 4))
    f = dtorch.compile(lambda x: x + 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, _compile.CACHE_SIZE_LIMIT + 3):
            assert f(dtorch.zeros(n)).tolist() == [1.0] * n
    assert len(caught) == 1 and "cache size limit" in str(caught[0].message)


def test_non_tensor_arguments_are_guarded_constants():
    @dtorch.compile
    def scale(x, k):
        return x * k

    assert scale(dtorch.ones(2), 3).tolist() == [3, 3] and scale(dtorch.ones(2), 4).tolist() == [4, 4]
    assert len(scale.cache) == 2

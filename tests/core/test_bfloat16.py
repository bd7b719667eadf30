"""bfloat16 on the CPU through ml_dtypes: conversions round as torch's do, elementwise math, reductions and
matmul (accumulated in float32, rounded back) equal torch's bfloat16 results, gradients flow, promotion rules,
finfo, and the nanoGPT pattern that selects a dtype by name."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch

VALUES = np.array([[1.0, -2.5, 3.14159, 1e-3], [65504.0, 1e30, -7.77, 0.1]], dtype=np.float32)


def _both(torch, fn):
    ours = fn(dtorch, dtorch.tensor(VALUES).to(dtorch.bfloat16))
    theirs = fn(torch, torch.tensor(VALUES).to(torch.bfloat16))
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    return ours.float().numpy(), theirs.float().numpy()


@pytest.mark.parametrize("name,fn", [
    ("convert", lambda m, x: x),
    ("add", lambda m, x: x + x * 3),
    ("div_scalar", lambda m, x: x / 3),
    ("exp_clamped", lambda m, x: x.clamp(max=5).exp()),
    ("tanh", lambda m, x: m.tanh(x)),
    ("sum", lambda m, x: x.sum(1)),
    ("mean", lambda m, x: x.abs().clamp(max=100).mean()),
    ("matmul", lambda m, x: x.clamp(-10, 10) @ x.clamp(-10, 10).T),
    ("softmax", lambda m, x: x.clamp(-10, 10).softmax(-1)),
])
def test_values_like_torch(name, fn, torch):
    ours, theirs = _both(torch, fn)
    np.testing.assert_allclose(ours, theirs, rtol=1.6e-2, atol=1e-2)  # one bfloat16 ulp: 2^-7 relative


def test_rounding_is_torchs(torch):
    x = np.random.default_rng(0).standard_normal(10000).astype(np.float32) * 100
    ours = dtorch.from_numpy(x).to(dtorch.bfloat16).float().numpy()
    theirs = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    assert np.array_equal(ours, theirs)


def test_training_step_and_grads():
    dtorch.manual_seed(0)
    model = dtorch.nn.Sequential(dtorch.nn.Linear(4, 8), dtorch.nn.GELU(), dtorch.nn.Linear(8, 1)).to(dtorch.bfloat16)
    opt = dtorch.optim.AdamW(model.parameters(), lr=1e-2)
    x = dtorch.randn(32, 4).to(dtorch.bfloat16)
    y = x.sum(1, keepdim=True)
    losses = []
    for _ in range(60):
        loss = (model(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.dtype == dtorch.bfloat16 and p.grad.dtype == dtorch.bfloat16 for p in model.parameters())
    assert losses[-1] < 0.1 * losses[0]  # as float32 does (0.23 from 4.6 here; torch's bfloat16: 0.15 from 4.4)


def test_promotion_finfo_and_names(torch):
    for other in ("float16", "float32", "float64", "int64", "bool"):
        ours = dtorch.promote_types(dtorch.bfloat16, getattr(dtorch, other))
        theirs = torch.promote_types(torch.bfloat16, getattr(torch, other))
        assert str(ours).split(".")[-1] == str(theirs).split(".")[-1]
    fi, tfi = dtorch.finfo(dtorch.bfloat16), torch.finfo(torch.bfloat16)
    assert (fi.eps, fi.max, fi.tiny, fi.bits) == (tfi.eps, tfi.max, tfi.tiny, tfi.bits)
    assert dtorch.bfloat16.is_floating_point and dtorch.bfloat16.itemsize == 2
    # nanoGPT: dtype chosen by name, looked up in a dict of torch dtypes
    dtype = "bfloat16" if dtorch.cuda.is_available() and dtorch.cuda.is_bf16_supported() else "float16"
    ptdtype = {"float32": dtorch.float32, "bfloat16": dtorch.bfloat16, "float16": dtorch.float16}[dtype]
    assert ptdtype is dtorch.float16
    assert repr(dtorch.ones(2, dtype=dtorch.bfloat16)) == repr(torch.ones(2, dtype=torch.bfloat16)).replace(
        "torch.", "dtorch.")

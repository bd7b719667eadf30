"""Adam/AdamW's and Adadelta's C steps (optim/_fused_cpu.py): the same parameters and state, bit for bit, as the
numpy steps they replace, over several steps, for float32 and float64 and each option that changes the
arithmetic (amsgrad, maximize, weight decay, torch's other lerp form, a learning rate other than 1)."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from dtorch.optim import _fused_cpu


def _run(make_opt, dtype, steps: int = 4):
    dtorch.manual_seed(0)
    params = [dtorch.nn.Parameter(dtorch.randn(300, 70, dtype=dtype)),
              dtorch.nn.Parameter(dtorch.randn(70, dtype=dtype))]
    opt = make_opt(params)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        for p in params:
            p.grad = dtorch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(p.detach().numpy().dtype))
        opt.step()
    state = [{k: v.numpy().copy() for k, v in opt.state[p].items() if isinstance(v, dtorch.Tensor)} for p in params]
    return [p.detach().numpy().copy() for p in params], state


def _both(make_opt, dtype, monkeypatch):
    calls = []
    for name in ("adam", "adadelta"):
        real = getattr(_fused_cpu, name)
        monkeypatch.setattr(_fused_cpu, name, lambda *a, _r=real: calls.append(1) or _r(*a))
    fused = _run(make_opt, dtype)
    assert calls, "the C step ran"
    monkeypatch.setattr(_fused_cpu.KERNELS, "fns", {})
    return fused, _run(make_opt, dtype)


ADAMS = {
    "adam": lambda ps: dtorch.optim.Adam(ps, lr=1e-3),
    "adam amsgrad maximize": lambda ps: dtorch.optim.Adam(ps, lr=3e-3, amsgrad=True, maximize=True),
    "adam L2, beta1 0.3 (lerp's other form)": lambda ps: dtorch.optim.Adam(ps, lr=1e-2, betas=(0.3, 0.99),
                                                                          weight_decay=0.1),
    "adamw": lambda ps: dtorch.optim.AdamW(ps, lr=1e-3, weight_decay=0.05),
    "adadelta": lambda ps: dtorch.optim.Adadelta(ps),
    "adadelta lr 0.5, decay": lambda ps: dtorch.optim.Adadelta(ps, lr=0.5, rho=0.8, weight_decay=0.01),
}


@pytest.mark.parametrize("case", list(ADAMS))
@pytest.mark.parametrize("dtype", [dtorch.float32, dtorch.float64])
def test_c_step_equals_numpy_step(case, dtype, monkeypatch):
    (p_c, s_c), (p_np, s_np) = _both(ADAMS[case], dtype, monkeypatch)
    for a, b in zip(p_c, p_np):
        np.testing.assert_array_equal(a, b)
    for sa, sb in zip(s_c, s_np):
        assert sa.keys() == sb.keys()
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def test_unserved_arrays_are_refused():
    a = np.ones(8, np.float32)
    assert not _fused_cpu.adam(a, a.astype(np.float64), a, a, None, 0.1, 0.999, 1.0, 1e-8, -1e-3)
    assert not _fused_cpu.adadelta(a, a[::2], a, a, 0.9, 1e-6, -1.0)
    assert not _fused_cpu.adadelta(a.astype(np.float16), a, a, a, 0.9, 1e-6, -1.0)

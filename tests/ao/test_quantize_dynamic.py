"""Dynamic quantization: quantize_dynamic / dynamic Linear against torch, state_dict size, a trained digits MLP."""
from __future__ import annotations

import copy
import os
import warnings

import numpy as np
import pytest

import dtorch
from dtorch.ao.nn.quantized import dynamic as nnqd
from dtorch.ao.nn.quantized.dynamic import linear as qlinear
from dtorch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates its eager quantization
        yield


def _mlp(lib, sizes, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        lin = lib.nn.Linear(fan_in, fan_out)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor((rng.standard_normal((fan_out, fan_in)) * scale).astype(np.float32)))
            lin.bias.copy_(lib.tensor((rng.standard_normal(fan_out) * 0.1).astype(np.float32)))
        layers += [lin, lib.nn.ReLU()]
    return lib.nn.Sequential(*layers[:-1])


def _pair(torch, sizes, per_channel=False, dtype="qint8", seed=0):
    spec_t = {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig} if per_channel else None
    spec_d = {dtorch.nn.Linear: per_channel_dynamic_qconfig} if per_channel else None
    qt = torch.ao.quantization.quantize_dynamic(_mlp(torch, sizes, seed), spec_t, dtype=getattr(torch, dtype))
    qd = quantize_dynamic(_mlp(dtorch, sizes, seed), spec_d, dtype=getattr(dtorch, dtype))
    return qt, qd


@pytest.mark.parametrize("sizes,per_channel,x_scale", [
    ((64, 128, 128, 10), False, 1.0), ((64, 128, 128, 10), True, 1.0), ((20, 30, 5), False, 50.0),
    ((784, 1024), False, 1.0), ((3000, 16), False, 3.0),
])
def test_int8_outputs_equal_torchs(torch, sizes, per_channel, x_scale):
    qt, qd = _pair(torch, sizes, per_channel)
    x = (np.random.default_rng(5).standard_normal((64, sizes[0])) * x_scale).astype(np.float32)
    yt = qt(torch.tensor(x)).detach().numpy()
    yd = qd(dtorch.tensor(x)).numpy()
    np.testing.assert_allclose(yd, yt, rtol=1e-5, atol=1e-5 * np.abs(yt).max())
    for mt, md in zip(qt, qd):
        if isinstance(md, nnqd.Linear):
            np.testing.assert_array_equal(md.weight().int_repr().numpy(), mt.weight().int_repr().numpy())
            assert repr(md) == repr(mt).replace("torch.", "dtorch.")


def test_float64_fallback_past_sgemm_exactness(torch, monkeypatch):
    # every product is 127 * 127: the sums pass 2**24 where float32 holds only even (then 4k...) integers
    models = []
    for lib in (torch, dtorch):
        lin = lib.nn.Linear(20001, 2)
        with lib.no_grad():
            lin.weight.fill_(0.5)
            lin.bias.zero_()
        models.append(lib.ao.quantization.quantize_dynamic(lib.nn.Sequential(lin)))
    x = np.ones((2, 20001), np.float32)
    yt = models[0](torch.tensor(x)).detach().numpy()
    np.testing.assert_array_equal(models[1](dtorch.tensor(x)).numpy(), yt)
    monkeypatch.setattr(qlinear, "_SGEMM_EXACT", float("inf"))  # without the check the float32 sums round
    assert not np.array_equal(models[1](dtorch.tensor(x)).numpy(), yt)


def test_float16_outputs_match_torch(torch):
    qt, qd = _pair(torch, (64, 128, 10), dtype="float16")
    x = np.random.default_rng(7).standard_normal((32, 64)).astype(np.float32)
    yt = qt(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(qd(dtorch.tensor(x)).numpy(), yt, rtol=1e-5, atol=1e-5 * np.abs(yt).max())
    assert repr(qd[0]) == repr(qt[0]).replace("torch.", "dtorch.")
    np.testing.assert_array_equal(qd[0].weight().numpy(), qt[0].weight().detach().numpy())
    assert qd.state_dict()["0._packed_params.weight"].dtype is dtorch.float16


def test_state_dict_int8_save_is_smaller_and_round_trips(tmp_path):
    model = _mlp(dtorch, (64, 128, 128, 10))
    q = quantize_dynamic(model)
    sd = q.state_dict()
    assert sd["0._packed_params.weight"].dtype is dtorch.int8 and sd["0._packed_params.scale"].dim() == 0
    dtorch.save(model.state_dict(), tmp_path / "f.pt")
    dtorch.save(sd, tmp_path / "q.pt")
    assert os.path.getsize(tmp_path / "f.pt") >= 3.5 * os.path.getsize(tmp_path / "q.pt")
    fresh = quantize_dynamic(_mlp(dtorch, (64, 128, 128, 10), seed=9))
    fresh.load_state_dict(dtorch.load(tmp_path / "q.pt"))
    x = dtorch.randn(4, 64)
    np.testing.assert_array_equal(fresh(x).numpy(), q(x).numpy())
    pc = quantize_dynamic(_mlp(dtorch, (64, 128, 128, 10)), {dtorch.nn.Linear: per_channel_dynamic_qconfig})
    fresh.load_state_dict(pc.state_dict())  # per-channel weights into a per-tensor model: takes their scheme
    np.testing.assert_array_equal(fresh(x).numpy(), pc(x).numpy())
    assert fresh[0].weight().qscheme() is dtorch.per_channel_affine


def test_spec_forms_inplace_and_errors():
    model = dtorch.nn.Sequential(dtorch.nn.Linear(4, 3), dtorch.nn.Sequential(dtorch.nn.Linear(3, 2)))
    q = quantize_dynamic(model, {"1.0"})
    assert isinstance(q[0], dtorch.nn.Linear) and isinstance(q[1][0], nnqd.Linear)
    assert isinstance(model[1][0], dtorch.nn.Linear)  # not in place by default
    assert not any("qconfig" in m.__dict__ for m in q.modules())
    quantize_dynamic(model, {dtorch.nn.Linear}, inplace=True)
    assert isinstance(model[0], nnqd.Linear) and isinstance(model[1][0], nnqd.Linear)
    lone = dtorch.nn.Linear(4, 3)
    assert quantize_dynamic(lone) is not lone and type(quantize_dynamic(lone)) is dtorch.nn.Linear  # as torch
    with pytest.raises(ValueError, match="Don't know how to quantize with default settings for dtorch.int8"):
        quantize_dynamic(model, dtype=dtorch.int8)
    with pytest.raises(AssertionError, match="Input float module must have qconfig defined"):
        nnqd.Linear.from_float(dtorch.nn.Linear(2, 2))
    with pytest.raises(AssertionError, match="only works for one of"):
        nnqd.Linear.from_float(dtorch.nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="QConfig received observer instance"):
        dtorch.ao.quantization.QConfig(dtorch.ao.quantization.MinMaxObserver(), None)
    assert dtorch.quantization.quantize_dynamic is quantize_dynamic


def test_observers_match_torch(torch):
    x = np.random.default_rng(3).standard_normal((5, 7)).astype(np.float32)
    for cls, kw in [("MinMaxObserver", {}), ("MinMaxObserver", {"qscheme": "per_tensor_symmetric", "dtype": "qint8"}),
                    ("MinMaxObserver", {"reduce_range": True}),
                    ("PerChannelMinMaxObserver", {"qscheme": "per_channel_symmetric", "dtype": "qint8"}),
                    ("PerChannelMinMaxObserver", {"ch_axis": 1})]:
        obs = []
        for lib in (dtorch, torch):
            args = {k: getattr(lib, v) if isinstance(v, str) else v for k, v in kw.items()}
            o = getattr(lib.ao.quantization, cls)(**args)
            o(lib.tensor(x))
            o(lib.tensor(x * 2 - 1))
            obs.append([t.numpy() for t in o.calculate_qparams()])
        for a, b in zip(*obs):
            np.testing.assert_array_equal(a, b.astype(a.dtype))


def test_deepcopy_and_no_grad_output():
    q = quantize_dynamic(dtorch.nn.Sequential(dtorch.nn.Linear(8, 4)))
    x = dtorch.randn(3, 8, requires_grad=True)
    y = q(x)
    assert not y.requires_grad and y.dtype is dtorch.float32
    np.testing.assert_array_equal(copy.deepcopy(q)(x).numpy(), y.numpy())
    assert tuple(q(dtorch.randn(2, 5, 8)).shape) == (2, 5, 4)


def test_trained_digits_mlp_keeps_its_accuracy_and_shrinks(tmp_path):
    from jobs.data import digits
    from jobs.models import mlp

    dtorch.manual_seed(0)
    train, test = digits(seed=0)
    x, y = train.tensors
    model = mlp(dtorch, (64, 128, 128, 10))
    opt = dtorch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(10):
        perm = dtorch.randperm(x.shape[0])
        for i in range(0, x.shape[0], 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            dtorch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    tx, ty = test.tensors
    with dtorch.no_grad():
        acc = (model(tx).argmax(1) == ty).float().mean().item()
    q = quantize_dynamic(model)
    q_acc = (q(tx).argmax(1) == ty).float().mean().item()
    assert acc > 0.9 and abs(acc - q_acc) <= 0.01
    dtorch.save(model.state_dict(), tmp_path / "f.pt")
    dtorch.save(q.state_dict(), tmp_path / "q.pt")
    assert os.path.getsize(tmp_path / "f.pt") >= 3.5 * os.path.getsize(tmp_path / "q.pt")

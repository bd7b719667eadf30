"""nn.DataParallel and its parts (scatter/scatter_kwargs/gather, replicate, parallel_apply, data_parallel).

Without a GPU DataParallel calls the module; `.module` and `module.`-prefixed state dict keys as torch. The
parts are device-generic, so the whole multi-device path is checked here over CPU device lists: chunking
against torch.chunk, nesting against torch's own scatter/gather (their CUDA-only Scatter/Gather functions
replaced by chunk/cat), and replicas + threads + gather against one call of the module on the whole batch."""
from __future__ import annotations

import threading
from collections import namedtuple

import numpy as np
import pytest

import dtorch
from dtorch import nn
from dtorch.nn.parallel import data_parallel, gather, parallel_apply, replicate, scatter, scatter_kwargs

Pair = namedtuple("Pair", "a b")
CPUS = ["cpu", "cpu", "cpu"]


def _plain(obj):
    """Nested containers with tensors (dtorch or torch) as numpy arrays, and namedtuple types by name."""
    if hasattr(obj, "detach") and hasattr(obj, "numpy"):
        return ("T", obj.detach().numpy().tolist())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return (type(obj).__name__, [_plain(x) for x in obj])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [_plain(x) for x in obj])
    if isinstance(obj, dict):
        return ("dict", [(k, _plain(v)) for k, v in obj.items()])
    return obj


@pytest.fixture
def torch_parts(torch, monkeypatch):
    """torch's scatter/gather with their CUDA-only autograd functions replaced by chunk and cat on the CPU."""
    import torch.nn.parallel.scatter_gather as sg

    class Scatter:
        apply = staticmethod(lambda gpus, sizes, dim, t: t.chunk(len(gpus), dim))

    class Gather:
        apply = staticmethod(lambda target, dim, *ts: torch.cat(ts, dim))

    monkeypatch.setattr(sg, "Scatter", Scatter)
    monkeypatch.setattr(sg, "Gather", Gather)
    return sg


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 3)).double()


@pytest.mark.parametrize("shape,n,dim", [((7, 4), 3, 0), ((2, 5), 4, 0), ((3, 10), 4, 1), ((9, 2), 3, -1),
                                         ((1, 3), 3, 0), ((12,), 5, 0)])
def test_scatter_chunks_as_torch_chunk(torch, shape, n, dim):
    x = dtorch.randn(*shape, dtype=dtorch.float64)
    got = scatter(x, ["cpu"] * n, dim)
    want = torch.from_numpy(x.numpy()).chunk(n, dim)
    assert isinstance(got, tuple) and len(got) == len(want)  # a small batch gives fewer chunks than devices
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_scatter_nesting_as_torch(torch, torch_parts):
    x, y, z = dtorch.randn(6, 2), dtorch.arange(10).reshape(5, 2), dtorch.randn(2, 6)
    marker = object()
    ours = ((x, [y, 3, "s"], {"k": z, "m": marker}, Pair(x, None), (), []), {"w": y, "o": 7})
    tx, ty, tz = (torch.from_numpy(t.numpy()) for t in (x, y, z))
    theirs = ((tx, [ty, 3, "s"], {"k": tz, "m": marker}, Pair(tx, None), (), []), {"w": ty, "o": 7})
    for obj, tobj in [(ours[0], theirs[0]), (ours[0][1], theirs[0][1]), (ours[1], theirs[1]),
                      (ours[0][3], theirs[0][3]), (5, 5), ((), ())]:
        got, want = scatter(obj, CPUS, 0), torch_parts.scatter(tobj, [0, 1, 2], 0)
        assert _plain(got) == _plain(want)
    got, want = scatter_kwargs(ours[0], ours[1], CPUS, 0), torch_parts.scatter_kwargs(theirs[0], theirs[1], [0, 1, 2])
    assert _plain(got) == _plain(want)
    pieces = scatter(ours[0], CPUS)
    assert all(p[2]["m"] is marker for p in pieces)  # non-tensors by reference
    assert _plain(scatter(ours[0], CPUS, 1)) == _plain(torch_parts.scatter(theirs[0], [0, 1, 2], 1))


def test_scatter_kwargs_pads_the_shorter_side():
    x = dtorch.randn(4, 2)
    inputs, kwargs = scatter_kwargs((x,), None, CPUS[:2])
    assert len(inputs) == 2 and kwargs == ({}, {})
    inputs, kwargs = scatter_kwargs((), {"x": x}, CPUS[:2])
    assert inputs == ((), ()) and [tuple(k["x"].shape) for k in kwargs] == [(2, 2), (2, 2)]
    assert scatter_kwargs((), None, CPUS) == ((), ())


def test_gather_dicts_tuples_namedtuples_as_torch(torch, torch_parts):
    rows = [dtorch.randn(2, 3, dtype=dtorch.float64) for _ in range(3)]
    outs = [{"y": (r, [r * 2, None]), "p": Pair(r.sum(1), r[:, :1])} for r in rows]
    touts = [{"y": (t, [t * 2, None]), "p": Pair(t.sum(1), t[:, :1])}
             for t in (torch.from_numpy(r.numpy()) for r in rows)]
    for dim in (0, 1):
        if dim == 1:  # the sums are 1-d: gather the rest along dim 1
            outs, touts = [o["y"] for o in outs], [o["y"] for o in touts]
        got, want = gather(outs, -1, dim), torch_parts.gather(touts, "cpu", dim)
        assert _plain(got) == _plain(want)
    with pytest.raises(ValueError, match="All dicts must have the same number of keys"):
        gather([{"a": rows[0]}, {"a": rows[1], "b": rows[2]}], "cpu")
    with pytest.warns(UserWarning, match="all input tensors were scalars; will instead unsqueeze"):
        v = gather([r.sum() for r in rows], "cpu")
    np.testing.assert_allclose(v.numpy(), [r.sum().item() for r in rows])


def test_scatter_and_gather_carry_gradients():
    x = dtorch.randn(7, 3, dtype=dtorch.float64, requires_grad=True)
    parts = scatter(x, CPUS)
    y = gather([p * (i + 1) for i, p in enumerate(parts)], "cpu")
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[:, 0], [1, 1, 1, 2, 2, 2, 3])


def test_replicate_parallel_apply_gather_equal_one_call_on_the_whole_batch():
    dtorch.manual_seed(1)
    model = _mlp()
    x = dtorch.randn(11, 5, dtype=dtorch.float64)
    target = dtorch.randn(11, 3, dtype=dtorch.float64)
    want = model(x)
    ((want - target) ** 2).mean().backward()
    want_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    replicas = replicate(model, CPUS)
    got = gather(parallel_apply(replicas, scatter(x, CPUS), devices=CPUS), -1)
    ((got - target) ** 2).mean().backward()
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-13, atol=1e-13)
    for p, g in zip(model.parameters(), want_grads):
        np.testing.assert_allclose(p.grad.numpy(), g.numpy(), rtol=1e-12, atol=1e-13)


def test_replicas_share_nothing_mutable_with_the_original():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).double()
    r0, r1 = replicate(model, ["cpu", "cpu"])
    assert r0 is not model and r0[0] is not model[0] and r1[1] is not r0[1]
    assert list(r1.parameters()) == [] and not any(r is m for r in (r0, r1) for m in model.modules())
    assert isinstance(r1[0].weight, dtorch.Tensor) and not isinstance(r1[0].weight, nn.Parameter)
    r1[0].register_buffer("extra", dtorch.zeros(1))
    r1.add_module("tail", nn.ReLU())
    assert "extra" not in model[0]._buffers and "tail" not in model._modules
    # as torch: the replica on devices[0] shares storage with the original; the others are copies
    assert np.shares_memory(r0[0].weight.detach().numpy(), model[0].weight.detach().numpy())
    assert r0[1].running_mean is model[1].running_mean
    assert not np.shares_memory(r1[0].weight.detach().numpy(), model[0].weight.detach().numpy())
    assert r1[1].running_mean is not model[1].running_mean
    assert replicate(model, []) == []
    detached = replicate(model, ["cpu", "cpu"], detach=True)
    assert detached[1][0].weight.grad_fn is None and not detached[1][0].weight.requires_grad


def test_replicate_keeps_tied_weights_tied():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(6, 4)
            self.head = nn.Linear(4, 6, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, idx):
            return self.head(self.emb(idx))

    model = Tied().double()
    for r in replicate(model, CPUS):
        assert r.head.weight is r.emb.weight


def test_parallel_apply_reraises_with_torchs_wording():
    class Boom(nn.Module):
        def __init__(self, exc):
            super().__init__()
            self.exc = exc

        def forward(self, x):
            if self.exc is not None:
                raise self.exc
            return x

    x = dtorch.ones(2)
    with pytest.raises(ValueError, match=r"Caught ValueError in replica 1 on device cpu\.\nOriginal Traceback") as e:
        parallel_apply([Boom(None), Boom(ValueError("bad shape"))], [x, x], devices=["cpu", "cpu"])
    assert "bad shape" in str(e.value)
    with pytest.raises(KeyError, match="Caught KeyError in replica 0 on device cpu"):
        parallel_apply([Boom(KeyError("k")), Boom(None)], [x, x])  # device from the input tensor

    class TwoArgs(Exception):
        def __init__(self, a, b):
            super().__init__(a, b)

    with pytest.raises(RuntimeError, match="Caught TwoArgs in replica 0 on device cpu"):
        parallel_apply([Boom(TwoArgs(1, 2))], [x], devices=["cpu"])
    if not dtorch.cuda.is_available():  # a CUDA index is named as torch names it
        with pytest.raises(RuntimeError, match="Caught RuntimeError in replica 1 on device 3.(.|\n)*CUDA is not"):
            parallel_apply([Boom(None)] * 2, [x, x], devices=["cpu", 3])
    with pytest.raises(RuntimeError, match="in replica 0, no device was provided and no tensor input was found"):
        parallel_apply([Boom(None)], [(1,)])
    with pytest.raises(AssertionError, match="The number of modules 2 is not equal to the number of inputs 1"):
        parallel_apply([Boom(None)] * 2, [x])


def test_parallel_apply_runs_in_threads_with_the_callers_grad_mode():
    seen = []

    class Probe(nn.Module):
        def forward(self, x, scale=1.0):
            seen.append((threading.current_thread().name, dtorch.is_grad_enabled()))
            with dtorch.no_grad():  # per thread: does not switch off recording in the other replicas
                _ = x * 2
            return x * scale

    w = dtorch.ones(3, requires_grad=True)
    outs = parallel_apply([Probe(), Probe(), Probe()], [(w,), w, [w]], [{}, {"scale": 2.0}, {}], CPUS)
    assert all(o.requires_grad for o in outs) and outs[1].tolist() == [2.0] * 3
    assert {name for name, _ in seen} == {"dtorch-replica-0", "dtorch-replica-1", "dtorch-replica-2"}
    with dtorch.no_grad():
        outs = parallel_apply([Probe(), Probe()], [w, w], devices=CPUS[:2])
    assert not any(o.requires_grad for o in outs) and [g for _, g in seen[-2:]] == [False, False]


def test_grad_mode_is_per_thread():
    states = {}

    def worker():
        states["start"] = dtorch.is_grad_enabled()
        dtorch.set_grad_enabled(False)
        states["set"] = dtorch.is_grad_enabled()

    with dtorch.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert not dtorch.is_grad_enabled()
    assert states == {"start": True, "set": False} and dtorch.is_grad_enabled()


def test_data_parallel_over_cpu_devices_matches_the_module():
    dtorch.manual_seed(2)
    model = _mlp()
    x = dtorch.randn(10, 5, dtype=dtorch.float64)
    want = model(x)
    want.sum().backward()
    want_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    dp = nn.DataParallel(model, device_ids=["cpu"] * 4, output_device=-1)
    assert dp.module is model and dp.output_device == -1 and len(dp.device_ids) == 4
    got = dp(x)
    got.sum().backward()
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-13, atol=1e-13)
    for p, g in zip(model.parameters(), want_grads):
        np.testing.assert_allclose(p.grad.numpy(), g.numpy(), rtol=1e-12, atol=1e-13)
    assert all(k.startswith("module.") for k in dp.state_dict())
    small = dp(x[:2])  # two chunks for four devices: two replicas
    np.testing.assert_allclose(small.detach().numpy(), want.detach().numpy()[:2], rtol=1e-13)
    with dtorch.no_grad():
        assert not dp(x).requires_grad


def test_data_parallel_kwargs_dicts_and_scalars_over_cpu_devices():
    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2).double()

        def forward(self, x, *, mask=None, tag="t"):
            y = self.lin(x) * mask
            return {"y": y, "tag": None, "both": (y, y.sum(1))}, y.sum()

    m = Heads()
    x, mask = dtorch.randn(6, 4, dtype=dtorch.float64), dtorch.rand(6, 1, dtype=dtorch.float64)
    with pytest.warns(UserWarning, match="scalars"):
        out, loss = nn.DataParallel(m, device_ids=["cpu", "cpu"])(x, mask=mask, tag="u")
    ref, _ = m(x, mask=mask)
    np.testing.assert_allclose(out["y"].detach().numpy(), ref["y"].detach().numpy(), rtol=1e-13)
    assert out["tag"] is None and tuple(out["both"][1].shape) == (6,) and tuple(loss.shape) == (2,)
    np.testing.assert_allclose(loss.sum().item(), ref["y"].sum().item(), rtol=1e-12)
    with pytest.warns(UserWarning, match="scalars"):
        got = data_parallel(m, (x,), ["cpu", "cpu"], module_kwargs={"mask": mask})[0]["y"]
    np.testing.assert_allclose(got.detach().numpy(), ref["y"].detach().numpy(), rtol=1e-13)


def test_data_parallel_keeps_running_stats_of_the_first_replica():
    """As torch: the replica on device_ids[0] updates the module's BatchNorm buffers; the others' are lost."""
    bn = nn.BatchNorm1d(3).double()
    x = dtorch.randn(8, 3, dtype=dtorch.float64)
    nn.DataParallel(bn, device_ids=["cpu", "cpu"])(x)
    ref = nn.BatchNorm1d(3).double()
    ref(x[:4])
    np.testing.assert_allclose(bn.running_mean.numpy(), ref.running_mean.numpy(), rtol=1e-13)
    assert int(bn.num_batches_tracked) == 1


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


@pytest.mark.skipif(dtorch.cuda.is_available(), reason="the CPU fallback: no CUDA device")
def test_training_through_data_parallel_updates_the_module():
    model = nn.Linear(3, 1)
    dp = nn.DataParallel(model, device_ids=[0, 1])  # CUDA ids without CUDA: the module is called, as torch
    assert dp.device_ids == []
    opt = dtorch.optim.SGD(dp.parameters(), lr=0.1)
    before = model.weight.detach().clone()
    dp(dtorch.ones(2, 3)).sum().backward()
    opt.step()
    assert not dtorch.equal(model.weight, before)
    out = nn.parallel.data_parallel(model, dtorch.ones(2, 3))
    assert tuple(out.shape) == (2, 1)


def _gpu_ids(kind: str) -> list:
    n = dtorch.cuda.device_count() if dtorch.cuda.is_available() else 0
    return {"one": [0], "twice-on-0": ["cuda:0", "cuda:0"], "all": list(range(n))}[kind]


@pytest.mark.cuda
@pytest.mark.skipif(not dtorch.cuda.is_available(), reason="no CUDA device (cupy + NVIDIA GPU)")
@pytest.mark.parametrize("kind", ["one", "twice-on-0", "all"])
def test_data_parallel_on_gpus_matches_the_module(kind):
    """device_ids=[0]; two replicas on GPU 0; every GPU (needs two): output on device_ids[0], same grads."""
    ids = _gpu_ids(kind)
    if kind == "all" and len(ids) < 2:
        pytest.skip("needs two GPUs")
    model = _mlp()
    x = dtorch.randn(4 * len(ids) + 1, 5, dtype=dtorch.float64)
    want = model(x)
    want.sum().backward()
    want_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    if len(ids) > 1:  # one device: DataParallel moves the module itself
        with pytest.raises(RuntimeError, match=r"module must have its parameters and buffers on device cuda:0 "
                                                r"\(device_ids\[0\]\) but found one of them on device: cpu"):
            nn.DataParallel(model, device_ids=ids)(x)
    dp = nn.DataParallel(model.to("cuda:0"), device_ids=ids)
    got = dp(x)  # inputs on the CPU, output on device_ids[0]
    assert got.device == dtorch.device("cuda:0")
    got.sum().backward()
    np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-12)
    for p, g in zip(model.parameters(), want_grads):
        assert p.grad.device == dtorch.device("cuda:0")
        np.testing.assert_allclose(p.grad.cpu().numpy(), g.numpy(), rtol=1e-10, atol=1e-12)
    parts = [t.to(dtorch.device(d)) for d, t in zip(ids, x.chunk(len(ids)))]
    np.testing.assert_array_equal(dp.gather(parts, -1).numpy(), x.numpy())

"""Tensor creation, random sampling, generators and the default dtype."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from tests.oracle import assert_close, check_op


# ---- tensor / as_tensor / from_numpy -----------------------------------------------------------
@pytest.mark.parametrize("data", [
    [1, 2, 3], [1.0, 2.5], [True, False], [1, 2.5], [True, 1], [[1, 2], [3, 4]], 3, 2.5, True, [],
    (1, 2), [[1.5], [2.5]],
], ids=repr)
def test_tensor_infers_dtype_like_torch(data, torch):
    got, want = dtorch.tensor(data), torch.tensor(data)
    assert got.dtype.name == str(want.dtype).split(".")[1]
    assert got.shape == tuple(want.shape)
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize("np_dtype", [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
                                      np.uint8, np.bool_])
def test_tensor_from_numpy_keeps_dtype(np_dtype):
    arr = np.array([1, 0, 1], dtype=np_dtype)
    t = dtorch.tensor(arr)
    assert t.dtype.np == np.dtype(np_dtype)
    assert not np.shares_memory(t.numpy(), arr)  # tensor() always copies
    scalar = dtorch.tensor(arr[0])  # a numpy scalar keeps its dtype too
    assert scalar.dtype.np == np.dtype(np_dtype) and scalar.shape == ()


def test_tensor_errors():
    with pytest.raises(TypeError):
        dtorch.tensor("abc")
    with pytest.raises(TypeError, match="can't convert np.ndarray of type uint16"):
        dtorch.tensor(np.zeros(2, np.uint16))
    with pytest.raises(ValueError):
        dtorch.tensor([[1, 2], [3]])


def test_tensor_options(device):
    t = dtorch.tensor([1.5, 2.5], dtype=dtorch.int32, device=device)
    assert t.dtype is dtorch.int32 and t.tolist() == [1, 2] and t.device.type == device
    r = dtorch.tensor([1.0], requires_grad=True)
    assert r.requires_grad and r.is_leaf
    assert dtorch.tensor([1, 2], dtype=float).dtype is dtorch.float64
    assert dtorch.tensor([1, 2], dtype=int).dtype is dtorch.int64
    assert dtorch.zeros(2, dtype=bool).dtype is dtorch.bool


def test_tensor_of_a_tensor_copies_and_warns():
    src = dtorch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match="sourceTensor.detach"):
        t = dtorch.tensor(src)
    assert not t.requires_grad and t.data_ptr() != src.data_ptr() and t.tolist() == [1.0, 2.0]
    ts = dtorch.tensor([dtorch.tensor(1.0), dtorch.tensor(2.0)])
    assert ts.tolist() == [1.0, 2.0] and ts.dtype is dtorch.float32


def test_as_tensor_shares_when_it_can():
    arr = np.ones(3, dtype=np.float32)
    t = dtorch.as_tensor(arr)
    assert np.shares_memory(t.numpy(), arr)
    arr[0] = 7
    assert t.tolist()[0] == 7
    converted = dtorch.as_tensor(arr, dtype=dtorch.float64)
    assert converted.dtype is dtorch.float64 and not np.shares_memory(converted.numpy(), arr)
    x = dtorch.ones(3)
    assert dtorch.as_tensor(x) is x and dtorch.as_tensor(x, dtype=dtorch.float32) is x
    assert dtorch.as_tensor(x, dtype=dtorch.float64).dtype is dtorch.float64
    assert dtorch.as_tensor([1, 2]).dtype is dtorch.int64
    assert dtorch.asarray is dtorch.as_tensor


def test_from_numpy_shares_memory_both_ways():
    arr = np.arange(6.0).reshape(2, 3)
    t = dtorch.from_numpy(arr)
    assert t.dtype is dtorch.float64 and t.shape == (2, 3)
    arr[1, 2] = 100.0
    assert t.tolist()[1][2] == 100.0
    t.mul_(2)
    assert arr[0, 1] == 2.0
    strided = dtorch.from_numpy(arr[:, ::2])
    assert strided.stride() == (3, 2) and not strided.is_contiguous()
    with pytest.raises(TypeError, match="expected np.ndarray"):
        dtorch.from_numpy([1, 2])
    with pytest.raises(TypeError, match="can't convert np.ndarray of type uint32"):
        dtorch.from_numpy(np.zeros(2, np.uint32))


# ---- zeros / ones / full / empty and _like ---------------------------------------------------------
@pytest.mark.parametrize("size", [(2, 3), ((2, 3),), ([2, 3],), (dtorch.Size([2, 3]),), ((),), (0,)], ids=repr)
def test_size_arguments(size):
    for fn in (dtorch.zeros, dtorch.ones, dtorch.empty):
        t = fn(*size)
        expected = size[0] if len(size) == 1 and not isinstance(size[0], int) else size
        assert t.shape == tuple(expected) and t.dtype is dtorch.float32


def test_zeros_ones_full_values(device):
    assert dtorch.zeros(2, 2, device=device).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    o = dtorch.ones(3, dtype=dtorch.int32, device=device)
    assert o.dtype is dtorch.int32 and o.tolist() == [1, 1, 1]
    assert dtorch.ones(2, requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match="negative dimension"):
        dtorch.zeros(-1)
    with pytest.raises(TypeError):
        dtorch.zeros(2.5)
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        dtorch.ones(2, dtype=dtorch.int64, requires_grad=True)


@pytest.mark.parametrize("fill,dtype", [(3, None), (3.0, None), (True, None), (3, dtorch.float16), (1.5, None),
                                        (2.7, dtorch.int64)], ids=repr)
def test_full_dtype_like_torch(fill, dtype, torch):
    tdt = None if dtype is None else getattr(torch, dtype.name)
    assert_close(dtorch.full((2, 2), fill, dtype=dtype), torch.full((2, 2), fill, dtype=tdt))


def test_like_constructors(device):
    src = dtorch.ones(2, 3, dtype=dtorch.int32, device=device)
    for fn in (dtorch.zeros_like, dtorch.ones_like, dtorch.empty_like):
        t = fn(src)
        assert t.shape == (2, 3) and t.dtype is dtorch.int32 and t.device == src.device
        assert t.data_ptr() != src.data_ptr()
    assert dtorch.zeros_like(src).tolist() == [[0] * 3] * 2
    assert dtorch.ones_like(src, dtype=dtorch.float64).dtype is dtorch.float64
    f = dtorch.full_like(src, 2.7)
    assert f.dtype is dtorch.int32 and f.tolist() == [[2] * 3] * 2
    g = dtorch.zeros_like(dtorch.ones(2), requires_grad=True)
    assert g.requires_grad and g.is_leaf
    assert not dtorch.zeros_like(dtorch.ones(2, requires_grad=True)).requires_grad


# ---- arange / linspace / eye -----------------------------------------------------------------------
ARANGE_CASES = [
    ((5,), {}), ((5.0,), {}), ((1, 4), {}), ((0, 1, 0.1), {}), ((0, 1, 0.3), {}), ((10, 0, -3), {}),
    ((1, 2.5, 0.5), {}), ((-1.5, 1.5), {}), ((0, 5), {"dtype": "float64"}), ((0.5, 5), {"dtype": "int64"}),
    ((0, 5, 2), {"dtype": "float32"}), ((0, 1e-3, 1e-4), {}), ((0, 1, 0.1), {"dtype": "float64"}),
    ((3, 3), {}),
]


@pytest.mark.parametrize("args,kw", ARANGE_CASES, ids=repr)
def test_arange_like_torch(args, kw, torch):
    got = dtorch.arange(*args, **{k: getattr(dtorch, v) for k, v in kw.items()})
    want = torch.arange(*args, **{k: getattr(torch, v) for k, v in kw.items()})
    assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_arange_errors_and_tensor_bounds():
    with pytest.raises(RuntimeError, match="step must be nonzero"):
        dtorch.arange(0, 10, 0)
    with pytest.raises(RuntimeError, match="upper bound and lower bound inconsistent with step sign"):
        dtorch.arange(10, 0)
    assert dtorch.arange(dtorch.tensor(3)).tolist() == [0, 1, 2]


LINSPACE_CASES = [(0, 1, 5, None), (0, 1, 1, None), (0, 1, 0, None), (-1, 1, 7, "float64"), (0, 10, 5, "int64"),
                  (0, 10, 4, "int64"), (1, 0, 5, None), (-3.5, 7.25, 100, None), (0, 1, 12, "float16")]


@pytest.mark.parametrize("start,end,steps,dtype", LINSPACE_CASES, ids=repr)
def test_linspace_like_torch(start, end, steps, dtype, torch):
    got = dtorch.linspace(start, end, steps, dtype=None if dtype is None else getattr(dtorch, dtype))
    want = torch.linspace(start, end, steps, dtype=None if dtype is None else getattr(torch, dtype))
    assert_close(got, want, rtol=1e-6, atol=1e-6)
    if steps > 1 and dtype != "int64":  # both ends exact
        vals = got.tolist()
        assert vals[0] == start and vals[-1] == end


def test_linspace_negative_steps():
    with pytest.raises(RuntimeError, match="number of steps must be non-negative"):
        dtorch.linspace(0, 1, -1)


@pytest.mark.filterwarnings("ignore:torch.range is deprecated")
def test_logspace_and_range():
    check_op(lambda m: m.logspace(0, 2, 3))
    check_op(lambda m: m.range(0, 1, 0.25))


@pytest.mark.parametrize("args,dtype", [((3,), None), ((2, 3), None), ((3, 2), None), ((2,), "int64"),
                                        ((0,), None)], ids=repr)
def test_eye_like_torch(args, dtype, torch):
    assert_close(dtorch.eye(*args, dtype=None if dtype is None else getattr(dtorch, dtype)),
                 torch.eye(*args, dtype=None if dtype is None else getattr(torch, dtype)))


def test_eye_negative():
    with pytest.raises(RuntimeError, match="n must be greater or equal to 0"):
        dtorch.eye(-1)
    assert dtorch.eye(3, requires_grad=True).requires_grad


def test_scalar_tensor():
    t = dtorch.scalar_tensor(3)
    assert t.shape == () and t.dtype is dtorch.float32 and t.item() == 3.0
    assert dtorch.scalar_tensor(3, dtype=dtorch.int64).dtype is dtorch.int64


# ---- default dtype -------------------------------------------------------------------------------
def test_default_dtype_get_set():
    assert dtorch.get_default_dtype() is dtorch.float32
    dtorch.set_default_dtype(dtorch.float64)
    assert dtorch.get_default_dtype() is dtorch.float64
    assert dtorch.tensor([1.5]).dtype is dtorch.float64
    assert dtorch.tensor(np.array([1.5], np.float32)).dtype is dtorch.float32
    assert dtorch.zeros(2).dtype is dtorch.float64
    assert dtorch.arange(0.5, 3).dtype is dtorch.float64
    assert dtorch.arange(3).dtype is dtorch.int64
    assert dtorch.linspace(0, 1, 3).dtype is dtorch.float64
    assert dtorch.rand(2).dtype is dtorch.float64 and dtorch.randn(2).dtype is dtorch.float64
    assert dtorch.full((2,), 1.5).dtype is dtorch.float64
    assert (dtorch.tensor([1, 2]) * 2.5).dtype is dtorch.float64
    assert (dtorch.tensor([1, 2]) / 2).dtype is dtorch.float64
    assert (dtorch.ones(2, dtype=dtorch.float32) * 2.5).dtype is dtorch.float32
    dtorch.set_default_dtype(dtorch.float16)
    assert dtorch.tensor([1.5]).dtype is dtorch.float16
    dtorch.set_default_dtype(dtorch.float32)
    assert dtorch.tensor([1.5]).dtype is dtorch.float32


def test_set_default_dtype_rejects_non_float():
    with pytest.raises(TypeError, match="only floating-point types are supported as the default type"):
        dtorch.set_default_dtype(dtorch.int32)
    assert dtorch.get_default_dtype() is dtorch.float32


# ---- random sampling ------------------------------------------------------------------------------
def test_rand_randn_shapes_dtypes_and_ranges(device):
    r = dtorch.rand(200, 50, device=device)
    assert r.shape == (200, 50) and r.dtype is dtorch.float32 and r.device.type == device
    a = r.cpu().numpy()
    assert a.min() >= 0.0 and a.max() < 1.0 and abs(a.mean() - 0.5) < 0.02
    n = dtorch.randn((200, 50), dtype=dtorch.float64, device=device).cpu().numpy()
    assert n.dtype == np.float64 and abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05
    assert dtorch.randn(3, dtype=dtorch.float16).dtype is dtorch.float16
    assert dtorch.randn(2, requires_grad=True).requires_grad
    with pytest.raises(NotImplementedError):
        dtorch.rand(2, dtype=dtorch.int64)
    with pytest.raises(NotImplementedError):
        dtorch.randn(2, dtype=dtorch.int64)


def test_randint(device):
    t = dtorch.randint(3, 7, (1000,), device=device)
    assert t.dtype is dtorch.int64 and t.shape == (1000,)
    assert set(t.tolist()) == {3, 4, 5, 6}
    assert dtorch.randint(5, (2, 3)).shape == (2, 3)
    assert dtorch.randint(0, 5, (2,), dtype=dtorch.int32).dtype is dtorch.int32
    assert dtorch.randint(0, 5, (2,), dtype=dtorch.float32).dtype is dtorch.float32
    with pytest.raises(RuntimeError, match="random_ expects 'from' to be less than 'to'"):
        dtorch.randint(3, 3, (3,))


def test_randperm(device):
    p = dtorch.randperm(50, device=device)
    assert p.dtype is dtorch.int64 and sorted(p.tolist()) == list(range(50))
    assert p.tolist() != list(range(50))
    assert dtorch.randperm(0).shape == (0,)
    assert dtorch.randperm(4, dtype=dtorch.float32).dtype is dtorch.float32


def test_normal_forms():
    a = dtorch.normal(2.0, 3.0, (20000,)).numpy()
    assert abs(a.mean() - 2.0) < 0.1 and abs(a.std() - 3.0) < 0.1
    mean = dtorch.arange(4.0) * 100
    s = dtorch.normal(mean, 1e-3)
    assert s.shape == (4,) and np.allclose(s.numpy(), mean.numpy(), atol=0.1)
    s2 = dtorch.normal(mean, dtorch.full((4,), 1e-3))
    assert s2.dtype is dtorch.float32 and np.allclose(s2.numpy(), mean.numpy(), atol=0.1)
    assert dtorch.normal(0.0, dtorch.ones(3)).shape == (3,)
    with pytest.raises(RuntimeError, match="normal expects std >= 0.0"):
        dtorch.normal(0.0, -1.0, (2,))
    with pytest.raises(RuntimeError, match="normal expects all elements of std >= 0.0"):
        dtorch.normal(dtorch.zeros(3), -dtorch.ones(3))


def test_bernoulli():
    assert dtorch.bernoulli(dtorch.zeros(5)).tolist() == [0.0] * 5
    assert dtorch.bernoulli(dtorch.ones(5)).tolist() == [1.0] * 5
    assert dtorch.bernoulli(dtorch.ones(3, dtype=dtorch.float64)).dtype is dtorch.float64
    assert dtorch.bernoulli(dtorch.full((3,), 0.5), 1.0).tolist() == [1.0] * 3
    m = dtorch.bernoulli(dtorch.full((20000,), 0.3)).numpy().mean()
    assert abs(m - 0.3) < 0.02
    with pytest.raises(RuntimeError, match="Expected p_in >= 0 && p_in <= 1"):
        dtorch.bernoulli(dtorch.full((3,), 2.0))


def test_multinomial():
    assert dtorch.multinomial(dtorch.tensor([0.0, 1.0, 0.0]), 3, replacement=True).tolist() == [1, 1, 1]
    two_d = dtorch.multinomial(dtorch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), 1)
    assert two_d.dtype is dtorch.int64 and two_d.tolist() == [[1], [0]]
    s = dtorch.multinomial(dtorch.tensor([0.0, 1.0, 1.0]), 2)
    assert sorted(s.tolist()) == [1, 2]
    # without replacement, zero-probability categories come after the others, as torch
    z = dtorch.multinomial(dtorch.tensor([0.0, 1.0, 0.0]), 2)
    assert z.tolist()[0] == 1 and sorted(z.tolist()) in ([0, 1], [1, 2])
    counts = np.bincount(dtorch.multinomial(dtorch.tensor([1.0, 3.0]), 4000, replacement=True).numpy())
    assert abs(counts[1] / 4000 - 0.75) < 0.03
    with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist.size"):
        dtorch.multinomial(dtorch.tensor([0.0, 1.0, 0.0]), 4)
    with pytest.raises(RuntimeError, match="probability tensor contains either `inf`, `nan` or element < 0"):
        dtorch.multinomial(dtorch.tensor([0.0, -1.0, 0.0]), 1)


def test_like_samplers():
    assert dtorch.rand_like(dtorch.zeros(2, dtype=dtorch.float64)).dtype is dtorch.float64
    assert dtorch.randn_like(dtorch.zeros(2, 2)).shape == (2, 2)
    r = dtorch.randint_like(dtorch.zeros(50), 5)
    assert r.dtype is dtorch.float32 and set(r.tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert dtorch.randint_like(dtorch.zeros(2, dtype=dtorch.int32), 3, 5).dtype is dtorch.int32


# ---- seeds, generators, rng state ------------------------------------------------------------------
def _draw_all(generator=None):
    """One of every sampler, so a stream position covers them all."""
    kw = {} if generator is None else {"generator": generator}
    return [
        dtorch.rand(3, **kw).tolist(),
        dtorch.randn(2, 2, **kw).tolist(),
        dtorch.randint(0, 100, (4,), **kw).tolist(),
        dtorch.randperm(6, **kw).tolist(),
        dtorch.normal(0.0, 1.0, (3,), **kw).tolist(),
        dtorch.normal(dtorch.zeros(2), 1.0, **kw).tolist(),
        dtorch.bernoulli(dtorch.full((5,), 0.5), **kw).tolist(),
        dtorch.multinomial(dtorch.tensor([0.2, 0.3, 0.5]), 2, **kw).tolist(),
        dtorch.empty(3).uniform_(-1, 1, **kw).tolist(),
        dtorch.empty(3).normal_(**kw).tolist(),
    ]


def test_manual_seed_reproducible():
    dtorch.manual_seed(123)
    first = _draw_all()
    dtorch.manual_seed(123)
    assert _draw_all() == first
    dtorch.manual_seed(124)
    assert _draw_all() != first
    assert dtorch.manual_seed(7) is dtorch.default_generator
    assert dtorch.initial_seed() == 7


def test_rng_state_restores_exact_stream():
    dtorch.manual_seed(0)
    dtorch.rand(10)
    state = dtorch.get_rng_state()
    assert state.dtype is dtorch.uint8
    expected = _draw_all()
    dtorch.rand(100)
    dtorch.set_rng_state(state)
    assert _draw_all() == expected
    again = dtorch.get_rng_state()
    dtorch.rand(5)
    dtorch.random.set_rng_state(again)
    assert dtorch.get_rng_state().tolist() == again.tolist()


def test_set_rng_state_rejects_garbage():
    with pytest.raises((TypeError, RuntimeError)):
        dtorch.set_rng_state(dtorch.zeros(4))
    with pytest.raises(RuntimeError):
        dtorch.set_rng_state(dtorch.zeros(4, dtype=dtorch.uint8))


def test_generator_is_independent_of_global_stream():
    g1 = dtorch.Generator().manual_seed(42)
    g2 = dtorch.Generator().manual_seed(42)
    dtorch.manual_seed(0)
    global_before = dtorch.rand(3).tolist()
    a = _draw_all(g1)
    dtorch.manual_seed(0)
    dtorch.rand(3, generator=dtorch.Generator().manual_seed(5))  # other generators do not move it
    assert dtorch.rand(3).tolist() == global_before
    assert _draw_all(g2) == a
    assert g1.initial_seed() == 42
    assert dtorch.Generator().manual_seed(-1).initial_seed() == 2 ** 64 - 1


def test_generator_state_roundtrip():
    g = dtorch.Generator().manual_seed(3)
    dtorch.randn(4, generator=g)
    st = g.get_state()
    first = dtorch.randn(6, generator=g).tolist()
    g.set_state(st)
    assert dtorch.randn(6, generator=g).tolist() == first
    other = dtorch.Generator()
    other.set_state(st)
    assert dtorch.randn(6, generator=other).tolist() == first


def test_seed_returns_new_seed():
    s = dtorch.seed()
    assert isinstance(s, int) and dtorch.initial_seed() == s


def test_fork_rng_restores_the_stream():
    dtorch.manual_seed(3)
    expected = dtorch.rand(4).tolist()
    dtorch.manual_seed(3)
    with dtorch.random.fork_rng():
        inside = dtorch.rand(4).tolist()
        dtorch.randn(100)
    assert inside == expected
    assert dtorch.rand(4).tolist() == expected  # the block's draws did not move the outer stream
    dtorch.manual_seed(5)
    dtorch.rand(1)
    after_one = dtorch.rand(4).tolist()
    dtorch.manual_seed(5)
    with dtorch.random.fork_rng(enabled=False):  # not forked: the draw moves the stream
        dtorch.rand(1)
    assert dtorch.rand(4).tolist() == after_one

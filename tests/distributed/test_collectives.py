"""Every collective on every dtype, 0-size and non-contiguous tensors, async, subgroups (pytest-mpi)."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch

pytestmark = pytest.mark.mpi(min_size=2)

DTYPES = [dtorch.float32, dtorch.float64, dtorch.float16, dtorch.int64, dtorch.int32, dtorch.int16, dtorch.int8,
          dtorch.uint8, dtorch.bool]


def _value(rank: int, shape, dtype) -> dtorch.Tensor:
    base = (dtorch.arange(int(np.prod(shape))) % 3 + rank + 1).reshape(shape)
    if dtype == dtorch.bool:
        return (base % 2) == 0
    return base.to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_all_reduce_sum_every_dtype(world, dtype):
    r, n = world.get_rank(), world.get_world_size()
    t = _value(r, (2, 3), dtype)
    world.all_reduce(t)
    expected = sum(_value(i, (2, 3), dtype).numpy().astype(np.float64) for i in range(n))
    if dtype == dtorch.bool:
        expected = sum(_value(i, (2, 3), dtype).numpy() for i in range(n)) > 0
        assert t.tolist() == expected.tolist()
    elif dtype in (dtorch.int8, dtorch.uint8):
        assert t.numpy().tolist() == expected.astype(dtype.np).tolist()
    else:
        np.testing.assert_allclose(t.numpy().astype(np.float64), expected)
    assert t.dtype == dtype


@pytest.mark.parametrize("op", ["PRODUCT", "MIN", "MAX", "AVG"])
def test_all_reduce_ops(world, op):
    r, n = world.get_rank(), world.get_world_size()
    t = dtorch.tensor([r + 1.0, -(r + 1.0), 2.0], dtype=dtorch.float64)
    world.all_reduce(t, op=getattr(world.ReduceOp, op))
    vals = np.array([[i + 1.0, -(i + 1.0), 2.0] for i in range(n)])
    expected = {"PRODUCT": vals.prod(0), "MIN": vals.min(0), "MAX": vals.max(0), "AVG": vals.mean(0)}[op]
    np.testing.assert_allclose(t.numpy(), expected)


def test_avg_of_integers_is_refused(world):
    with pytest.raises(ValueError, match="AVG needs a floating-point tensor"):
        world.all_reduce(dtorch.ones(2, dtype=dtorch.int64), op=world.ReduceOp.AVG)


def test_zero_size_and_non_contiguous(world):
    r, n = world.get_rank(), world.get_world_size()
    z = dtorch.zeros(0, 3)
    world.all_reduce(z)
    assert z.shape == (0, 3)
    base = dtorch.arange(12.0).reshape(3, 4) * (r + 1)
    view = base.t()[1:3]  # non-contiguous view: the result must land in base's storage
    assert not view.is_contiguous()
    world.all_reduce(view)
    expected = (np.arange(12.0).reshape(3, 4) * sum(range(1, n + 1))).T[1:3]
    np.testing.assert_allclose(view.numpy(), expected)
    np.testing.assert_allclose(base.numpy().T[1:3], expected)


@pytest.mark.parametrize("dtype", [dtorch.float32, dtorch.float16, dtorch.int64, dtorch.bool], ids=str)
def test_broadcast_reduce_gather_scatter(world, dtype):
    r, n = world.get_rank(), world.get_world_size()
    src = n - 1
    t = _value(r, (4,), dtype)
    world.broadcast(t, src=src)
    assert t.tolist() == _value(src, (4,), dtype).tolist()

    g = _value(r, (3,), dtype)
    out = [dtorch.zeros(3, dtype=dtype) for _ in range(n)] if r == 0 else None
    world.gather(g, out, dst=0)
    if r == 0:
        assert [o.tolist() for o in out] == [_value(i, (3,), dtype).tolist() for i in range(n)]

    recv = dtorch.zeros(2, dtype=dtype)
    parts = [_value(i, (2,), dtype) for i in range(n)] if r == src else None
    world.scatter(recv, parts, src=src)
    assert recv.tolist() == _value(r, (2,), dtype).tolist()

    if dtype != dtorch.bool:
        red = _value(r, (2,), dtype)
        world.reduce(red, dst=0)
        if r == 0:
            assert red.tolist() == sum(_value(i, (2,), dtype).numpy() for i in range(n)).tolist()


def test_all_gather_variants(world):
    r, n = world.get_rank(), world.get_world_size()
    lst = [dtorch.zeros(2, 2) for _ in range(n)]
    world.all_gather(lst, dtorch.full((2, 2), float(r)))
    assert [x[0, 0].item() for x in lst] == list(range(n))
    flat = dtorch.zeros(2 * n, 3)
    world.all_gather_into_tensor(flat, dtorch.full((2, 3), float(r)))
    assert flat[:, 0].tolist() == [float(i) for i in range(n) for _ in range(2)]
    stacked = dtorch.zeros(n, 2)
    world.all_gather_into_tensor(stacked, dtorch.full((2,), float(r)))
    assert stacked[:, 1].tolist() == [float(i) for i in range(n)]
    with pytest.raises(ValueError, match="tensor_list has"):
        world.all_gather([dtorch.zeros(1)], dtorch.zeros(1))


def test_reduce_scatter_variants(world):
    r, n = world.get_rank(), world.get_world_size()
    out = dtorch.zeros(2)
    world.reduce_scatter_tensor(out, dtorch.arange(2.0 * n) * (r + 1))
    total = sum(range(1, n + 1))
    assert out.tolist() == [float(2 * r * total), float((2 * r + 1) * total)]
    out2 = dtorch.zeros(3)
    world.reduce_scatter(out2, [dtorch.full((3,), float(i)) for i in range(n)])
    assert out2.tolist() == [float(r * n)] * 3


def test_all_to_all(world):
    r, n = world.get_rank(), world.get_world_size()
    outs = [dtorch.zeros(i + 1) for i in range(n)]
    ins = [dtorch.full((r + 1,), float(10 * r + j)) for j in range(n)]
    world.all_to_all(outs, ins)
    assert [o.tolist() for o in outs] == [[float(10 * j + r)] * (j + 1) for j in range(n)]
    single_out = dtorch.zeros(n, 2)
    world.all_to_all_single(single_out, dtorch.arange(2.0 * n).reshape(n, 2) + 100 * r)
    assert single_out[:, 0].tolist() == [float(2 * r + 100 * j) for j in range(n)]


def test_async_work(world):
    t = dtorch.ones(1000)
    work = world.all_reduce(t, async_op=True)
    assert work.wait(timeout=30) and work.is_completed()
    assert t[0].item() == world.get_world_size()
    assert work.result()[0] is t


def test_point_to_point(world):
    r = world.get_rank()
    if r == 0:
        world.send(dtorch.tensor([7.0, 8.0]), dst=1, tag=3)
        w = world.isend(dtorch.tensor([9.0]), dst=1)
        w.wait()
    elif r == 1:
        x = dtorch.zeros(2)
        assert world.recv(x, tag=3) == 0 and x.tolist() == [7.0, 8.0]
        y = dtorch.zeros(1)
        world.irecv(y, src=0).wait()
        assert y.tolist() == [9.0]
    world.barrier()


def test_subgroups(world):
    r, n = world.get_rank(), world.get_world_size()
    g = world.new_group([0, n - 1])
    t = dtorch.ones(1) * (r + 1)
    world.all_reduce(t, group=g)
    if r in (0, n - 1):
        assert t.item() == 1 + n and world.get_rank(g) == (0 if r == 0 else 1)
    else:
        assert t.item() == r + 1 and world.get_rank(g) == -1
    world.destroy_process_group(g) if r in (0, n - 1) else None


def test_object_collectives(world):
    r, n = world.get_rank(), world.get_world_size()
    objs = [None] * n
    world.all_gather_object(objs, {"rank": r, "name": f"r{r}", "t": dtorch.tensor([r])})
    assert [o["rank"] for o in objs] == list(range(n)) and objs[-1]["t"].tolist() == [n - 1]
    lst = [{"cfg": [1, 2]}, "x"] if r == 0 else [None, None]
    world.broadcast_object_list(lst, src=0)
    assert lst == [{"cfg": [1, 2]}, "x"]
    got = [None] * n if r == 0 else None
    world.gather_object(r * 10, got, dst=0)
    if r == 0:
        assert got == [10 * i for i in range(n)]
    with pytest.raises(TypeError, match="cannot store"):
        world.all_gather_object([None] * n, object())

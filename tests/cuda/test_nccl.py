"""The NCCL backend on a GPU, world size 1 in-process (MPI singleton): every CUDA collective against numpy.

Expected values are written for any world size n (value of rank i: ``base + i``), so the same checks hold
under ``mpiexec -n N`` on N GPUs. At n = 1 reductions are identities, so the write-back of staged
(non-contiguous) buffers is checked through the ops whose output differs from their input.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dtorch

pytestmark = pytest.mark.cuda
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env():
    """(dist, group): the world made with backend 'nccl' (or an 'nccl' subgroup if a world exists)."""
    if not dtorch.cuda.is_available():
        pytest.skip("no CUDA device (cupy + NVIDIA GPU)")
    pytest.importorskip("mpi4py")
    import dtorch.distributed as dist

    if not dist.is_nccl_available():
        pytest.skip("CuPy has no NCCL (pip install nvidia-nccl-cu12)")
    made = not dist.is_initialized()
    if made:
        dist.init_process_group("nccl")
    group = None if made else dist.new_group(backend="nccl")
    yield dist, group
    if made:
        dist.destroy_process_group()


def _ranks(dist, group):
    return dist.get_rank(group), dist.get_world_size(group)


def _value(rank: int, shape=(3, 4), dtype=np.float32) -> np.ndarray:
    base = (np.arange(int(np.prod(shape))) % 5 + 1).reshape(shape)
    if dtype == np.bool_:
        return (base + rank) % 2 == 0
    return (base + rank).astype(dtype)


def _cuda(a: np.ndarray) -> dtorch.Tensor:
    return dtorch.tensor(a, device="cuda")


def test_init_process_group_nccl(env):
    dist, group = env
    assert dist.get_backend(group) == "nccl"
    assert dist.is_nccl_available()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.uint8, np.int32, np.int64,
                                   np.uint32, np.uint64, np.bool_], ids=lambda d: np.dtype(d).name)
def test_all_reduce_sum_every_dtype(env, dtype):
    dist, group = env
    r, n = _ranks(dist, group)
    t = _cuda(_value(r, dtype=dtype))
    dist.all_reduce(t, group=group)
    if dtype == np.bool_:
        expected = np.logical_or.reduce([_value(i, dtype=dtype) for i in range(n)])
    else:
        expected = sum(_value(i, dtype=np.float64) for i in range(n)).astype(dtype)
    got = t.cpu().numpy()
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64), rtol=1e-3)


@pytest.mark.parametrize("op", ["SUM", "PRODUCT", "MIN", "MAX", "AVG"])
def test_all_reduce_ops(env, op):
    dist, group = env
    r, n = _ranks(dist, group)
    t = _cuda(_value(r, dtype=np.float64))
    dist.all_reduce(t, op=getattr(dist.ReduceOp, op), group=group)
    vals = np.stack([_value(i, dtype=np.float64) for i in range(n)])
    expected = {"SUM": vals.sum(0), "PRODUCT": vals.prod(0), "MIN": vals.min(0), "MAX": vals.max(0),
                "AVG": vals.mean(0)}[op]
    np.testing.assert_allclose(t.cpu().numpy(), expected)


def test_all_reduce_bool_product_is_and(env):
    dist, group = env
    r, n = _ranks(dist, group)
    t = _cuda(_value(r, dtype=np.bool_))
    dist.all_reduce(t, op=dist.ReduceOp.PRODUCT, group=group)
    assert t.cpu().numpy().tolist() == np.logical_and.reduce([_value(i, dtype=np.bool_) for i in range(n)]).tolist()


@pytest.mark.parametrize("native", [True, False], ids=["ncclAvg", "sum-then-divide"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_avg_both_ways(env, native, dtype):
    from dtorch.distributed import nccl

    dist, group = env
    nccl.load()
    if native and not nccl._LIB[1]:
        pytest.skip("NCCL < 2.10 has no ncclAvg")
    r, n = _ranks(dist, group)
    t = _cuda(_value(r, dtype=dtype))
    saved, nccl._LIB[1] = nccl._LIB[1], native
    try:
        dist.all_reduce(t, op=dist.ReduceOp.AVG, group=group)
    finally:
        nccl._LIB[1] = saved
    expected = np.mean([_value(i, dtype=np.float64) for i in range(n)], axis=0)
    np.testing.assert_allclose(t.cpu().numpy().astype(np.float64), expected, rtol=1e-3)


def test_unsupported_reduction_dtype_is_named(env):
    dist, group = env
    with pytest.raises(TypeError, match="dtype int16 is not supported by NCCL reductions"):
        dist.all_reduce(_cuda(np.ones(3, np.int16)), group=group)
    with pytest.raises(ValueError, match="ReduceOp.BXOR is not supported"):
        dist.all_reduce(_cuda(np.ones(3, np.int32)), op=dist.ReduceOp.BXOR, group=group)


def test_broadcast_moves_any_dtype(env):
    dist, group = env
    r, n = _ranks(dist, group)
    for dtype in (np.float32, np.int16, np.bool_):
        t = _cuda(_value(r, dtype=dtype))
        dist.broadcast(t, src=0, group=group)
        assert t.cpu().numpy().tolist() == _value(0, dtype=dtype).tolist()


def test_reduce_to_dst(env):
    dist, group = env
    r, n = _ranks(dist, group)
    t = _cuda(_value(r))
    dist.reduce(t, dst=0, op=dist.ReduceOp.MAX, group=group)
    expected = np.max([_value(i) for i in range(n)], axis=0) if r == 0 else _value(r)
    np.testing.assert_allclose(t.cpu().numpy(), expected)


def test_all_gather_list_and_into_tensor(env):
    dist, group = env
    r, n = _ranks(dist, group)
    outs = [dtorch.zeros(3, 4, device="cuda") for _ in range(n)]
    dist.all_gather(outs, _cuda(_value(r)), group=group)
    for i, o in enumerate(outs):
        np.testing.assert_allclose(o.cpu().numpy(), _value(i))
    big = dtorch.zeros(3 * n, 4, device="cuda")
    dist.all_gather_into_tensor(big, _cuda(_value(r)), group=group)
    np.testing.assert_allclose(big.cpu().numpy(), np.concatenate([_value(i) for i in range(n)]))


def test_reduce_scatter_list_and_tensor(env):
    dist, group = env
    r, n = _ranks(dist, group)
    out = dtorch.zeros(3, 4, device="cuda")
    dist.reduce_scatter(out, [_cuda(_value(r + j)) for j in range(n)], group=group)
    np.testing.assert_allclose(out.cpu().numpy(), sum(_value(i + r) for i in range(n)))
    out2 = dtorch.zeros(3, 4, device="cuda")
    dist.reduce_scatter_tensor(out2, _cuda(np.concatenate([_value(r + j) for j in range(n)])), group=group)
    np.testing.assert_allclose(out2.cpu().numpy(), sum(_value(i + r) for i in range(n)))


def test_all_to_all_and_single(env):
    dist, group = env
    r, n = _ranks(dist, group)
    ins = [_cuda(_value(10 * r + j, shape=(2, 3))) for j in range(n)]
    outs = [dtorch.zeros(2, 3, device="cuda") for _ in range(n)]
    dist.all_to_all(outs, ins, group=group)
    for j, o in enumerate(outs):
        np.testing.assert_allclose(o.cpu().numpy(), _value(10 * j + r, shape=(2, 3)))
    single_in = _cuda(np.concatenate([_value(10 * r + j, shape=(2, 3)) for j in range(n)]))
    single_out = dtorch.zeros(2 * n, 3, device="cuda")
    dist.all_to_all_single(single_out, single_in, group=group)
    np.testing.assert_allclose(single_out.cpu().numpy(),
                               np.concatenate([_value(10 * j + r, shape=(2, 3)) for j in range(n)]))


def test_non_contiguous_results_land_in_the_view(env):
    dist, group = env
    r, n = _ranks(dist, group)
    # all_gather_into_tensor into a (3n, 4) non-contiguous view: the staged result is written back
    base = dtorch.zeros(4, 3 * n + 2, device="cuda")
    view = base.t()[1:1 + 3 * n]
    assert not view.is_contiguous()
    dist.all_gather_into_tensor(view, _cuda(_value(r)), group=group)
    expected = np.zeros((4, 3 * n + 2), np.float32)
    expected[:, 1:1 + 3 * n] = np.concatenate([_value(i) for i in range(n)]).T
    np.testing.assert_allclose(base.cpu().numpy(), expected)
    # reduce_scatter_tensor into a (3, 4) non-contiguous view
    base2 = dtorch.zeros(4, 6, device="cuda")
    dist.reduce_scatter_tensor(base2.t()[1:4], _cuda(np.full((3 * n, 4), 2.0, np.float32)), group=group)
    expected2 = np.zeros((4, 6), np.float32)
    expected2[:, 1:4] = 2.0 * n
    np.testing.assert_allclose(base2.cpu().numpy(), expected2)
    # all_reduce and broadcast through non-contiguous views, inputs computed just before on the current stream
    base3 = dtorch.arange(24.0, device="cuda").reshape(4, 6) * (r + 1)
    dist.all_reduce(base3.t()[2:5], group=group)
    expected3 = np.arange(24.0).reshape(4, 6)
    expected3[:, 2:5] *= sum(i + 1 for i in range(n))
    expected3[:, [0, 1, 5]] *= r + 1
    np.testing.assert_allclose(base3.cpu().numpy(), expected3)
    outs = [dtorch.zeros(4, 3, device="cuda").t() for _ in range(n)]
    dist.all_gather(outs, _cuda(_value(r)), group=group)
    for i, o in enumerate(outs):
        np.testing.assert_allclose(o.cpu().numpy(), _value(i))


def test_async_work_and_future(env):
    dist, group = env
    r, n = _ranks(dist, group)
    t = _cuda(_value(r))
    work = dist.all_reduce(t, group=group, async_op=True)
    assert work is not None
    assert work.wait(timeout=60) is True
    assert work.is_completed()
    assert work.result() == [t]
    np.testing.assert_allclose(t.cpu().numpy(), sum(_value(i) for i in range(n)))
    u = _cuda(_value(r))
    fut = dist.all_reduce(u, op=dist.ReduceOp.MAX, group=group, async_op=True).get_future()
    (out,) = fut.wait()
    np.testing.assert_allclose(out.cpu().numpy(), np.max([_value(i) for i in range(n)], axis=0))


def test_current_stream_semantics(env):
    """Inputs made on a side stream are waited for; wait() orders that stream after the collective."""
    import cupy as cp

    dist, group = env
    r, n = _ranks(dist, group)
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        t = dtorch.ones(1 << 20, device="cuda") * (r + 1)
        work = dist.all_reduce(t, group=group, async_op=True)
        work.wait()
        total = float(t.sum().item())
    s.synchronize()
    assert total == float(sum(i + 1 for i in range(n)) * (1 << 20))


def test_sequence_numbers_and_barrier(env):
    dist, group = env
    pg = group if group is not None else dist.GroupMember.WORLD
    before = pg.seq
    dist.all_reduce(_cuda(np.ones(2, np.float32)), group=group)
    dist.barrier(group=group)
    work = dist.barrier(group=group, async_op=True)
    work.wait()
    assert pg.seq == before + 3
    assert pg.nccl is not None and pg.nccl.stream is not None


def test_zero_size(env):
    dist, group = env
    z = dtorch.zeros(0, 3, device="cuda")
    dist.all_reduce(z, group=group)
    dist.broadcast(z, src=0, group=group)
    assert z.shape == (0, 3)


def test_cpu_and_cuda_tensors_cannot_mix(env):
    dist, group = env
    _, n = _ranks(dist, group)
    with pytest.raises(ValueError, match="every tensor must be on CUDA"):
        dist.all_gather([dtorch.zeros(2) for _ in range(n)], dtorch.zeros(2, device="cuda"), group=group)


HANG = """
import datetime, sys
import cupy as cp
import dtorch, dtorch.distributed as dist
dist.init_process_group("nccl", timeout=datetime.timedelta(seconds=0.5))
spin = cp.RawKernel(r'''
extern "C" __global__ void spin(long long cycles) {
    long long t0 = clock64();
    while (clock64() - t0 < cycles) {}
}''', "spin")
t = dtorch.ones(4, device="cuda")
dist.all_reduce(t)  # connect first: the timeout below is the op's, not the setup's
spin((1,), (1,), (cp.int64(6_000_000_000),))  # the current stream is busy for seconds
dist.all_reduce(t)  # its NCCL stream waits on the current one: past 0.5 s the job must abort
print("not reached")
"""


def test_hung_nccl_op_aborts_with_the_mpi_message(env, tmp_path):
    """In a child process (a stuck kernel and an aborted communicator must not touch this one's GPU state)."""
    script = tmp_path / "hang.py"
    script.write_text(textwrap.dedent(HANG))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), DTORCH_ABORT_GRACE_S="0"))
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "not reached" not in out
    assert "timed out after 0.5 s waiting for all_reduce (seq 2" in out, out
    assert "Aborting the job" in out

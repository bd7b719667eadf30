"""dtorch.multiprocessing: tensors cross processes in shared memory (spawn and fork), spawn's errors name the
failing process, a Hogwild-style shared model is trained by two processes, and tensors still refuse plain pickle."""
from __future__ import annotations

import pickle
import sys

import pytest

import dtorch
import dtorch.multiprocessing as mp

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import mp_workers  # noqa: E402


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_tensors_are_shared_through_processes_and_queues(method):
    ctx = mp.get_context(method)
    t = dtorch.zeros(3)
    if method == "fork":  # fork passes arguments by inheritance, not pickling: share first, as with torch
        t.share_memory_()
    q = ctx.Queue()
    procs = [ctx.Process(target=mp_workers.add_rank, args=(i, t, q)) for i in range(2)]
    for p in procs:
        p.start()
    got = sorted(q.get(timeout=60).tolist() for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert t.tolist() == [3.0, 3.0, 3.0]  # 1 + 2 added in the children, seen here
    assert got == [[0.0, 0.0], [1.0, 1.0]]


def test_spawn_runs_each_index_and_returns_context():
    t = dtorch.zeros(1)
    q = mp.get_context("spawn").SimpleQueue()
    ctx = mp.spawn(mp_workers.add_rank, args=(t, q), nprocs=3, join=False)
    assert len(ctx.pids()) == 3
    while not ctx.join():
        pass
    assert t.item() == 6.0
    assert sorted(q.get().tolist() for _ in range(3)) == [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]


def test_spawn_raises_the_childs_traceback():
    with pytest.raises(mp.ProcessRaisedException, match="rank one failed on purpose") as e:
        mp.spawn(mp_workers.fail_on_one, nprocs=2)
    assert e.value.error_index == 1 and "-- Process 1 terminated with the following error:" in str(e.value)


def test_spawn_names_exit_code_and_signal():
    with pytest.raises(mp.ProcessExitedException, match="process 0 terminated with exit code 3") as e:
        mp.spawn(mp_workers.exit_three, nprocs=1)
    assert e.value.exit_code == 3
    with pytest.raises(mp.ProcessExitedException, match="terminated with signal SIGKILL"):
        mp.spawn(mp_workers.kill_self, nprocs=1)


def test_hogwild_shared_model_is_trained_by_children():
    dtorch.manual_seed(0)
    model = dtorch.nn.Linear(4, 1)
    model.share_memory()
    before = model.weight.detach().clone()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=mp_workers.hogwild_train, args=(r, model, 20)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    x = dtorch.randn(256, 4)
    loss_after = (model(x) - x.sum(1, keepdim=True)).pow(2).mean().item()
    assert not dtorch.equal(model.weight, before)
    loss_before = (x @ before.T - x.sum(1, keepdim=True)).pow(2).mean().item()
    assert loss_after < 0.5 * loss_before


def test_no_segment_is_left_behind():
    """Every segment the root process mapped (its own and its children's) is gone once it exits."""
    import os
    import subprocess

    code = ("import dtorch, dtorch.multiprocessing as mp, sys; sys.path.insert(0, %r); import mp_workers\n"
            "from dtorch.multiprocessing import reductions\n"
            "if __name__ == '__main__':\n"
            "    t = dtorch.zeros(4); q = mp.get_context('spawn').SimpleQueue()\n"
            "    mp.spawn(mp_workers.add_rank, args=(t, q), nprocs=2)\n"
            "    print(sorted(q.get().tolist() for _ in range(2)), t.tolist())\n"
            "    print(' '.join(sorted(reductions._MAPPED)))\n") % __file__.rsplit("/", 1)[0]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "[[0.0, 0.0], [1.0, 1.0]] [3.0, 3.0, 3.0, 3.0]"
    names = lines[1].split()
    assert len(names) == 3  # the shared argument and the two tensors the children put on the queue
    assert [n for n in names if os.path.exists(f"/dev/shm/{n.lstrip('/')}")] == []


def test_plain_pickle_still_refuses_and_non_leaf_refused():
    with pytest.raises(TypeError, match="not picklable by design"):
        pickle.dumps(dtorch.ones(2))
    q = mp.get_context("spawn").SimpleQueue()
    y = dtorch.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="Cowardly refusing to serialize non-leaf tensor"):
        q.put(y)

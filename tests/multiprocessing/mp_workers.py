"""Functions the multiprocessing tests run in child processes (importable by spawned interpreters)."""
import os
import signal

import dtorch


def add_rank(i, t, q):
    t.add_(i + 1)  # in place, in shared memory: the parent sees it
    q.put(dtorch.full((2,), float(i)))


def fail_on_one(i):
    if i == 1:
        raise ValueError("rank one failed on purpose")


def exit_three(i):
    if i == 0:
        raise SystemExit(3)


def kill_self(i):
    os.kill(os.getpid(), signal.SIGKILL)


def hogwild_train(rank, model, steps):
    dtorch.manual_seed(rank)
    opt = dtorch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(steps):
        x = dtorch.randn(16, 4)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

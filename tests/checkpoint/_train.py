"""A small training run for the exact-resume test: python _train.py OUT N [--stop K] [--resume RUN_DIR].

MLP with dropout, shuffled StatefulDataLoader with 2 worker processes (random noise added in
__getitem__), SGD with momentum, StepLR. Writes {"losses": [...], "params_sha": hex} to OUT.
"""
from __future__ import annotations

import hashlib
import json
import sys

import dtorch
import dtorch.distributed.checkpoint as dcp
from dtorch import nn
from dtorch.utils.data import Dataset, StatefulDataLoader


class Noisy(Dataset):
    def __init__(self) -> None:
        g = dtorch.Generator().manual_seed(123)
        self.x = dtorch.randn(40, 6, generator=g)
        self.y = dtorch.randn(40, 1, generator=g)

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i):
        return self.x[i] + 0.01 * dtorch.randn(6), self.y[i]


def main(out: str, n: int, stop: int | None, run_dir: str, resume: bool) -> None:
    dtorch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    opt = dtorch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = dtorch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    loader = StatefulDataLoader(Noisy(), batch_size=6, shuffle=True, num_workers=2, drop_last=True)
    state = dcp.training_state(model=model, optimizer=opt, scheduler=sched, loader=loader)
    losses: list[float] = []
    if resume:
        dcp.load(state, dcp.latest(run_dir))
        losses = json.load(open(out + ".partial"))
    step, epoch = state["step"], state["epoch"]
    while step < n:
        for x, y in loader:
            loss = ((model(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            if step == stop:
                state.update(step=step, epoch=epoch)
                dcp.save(state, f"{run_dir}/step_{step:04d}")
                json.dump(losses, open(out + ".partial", "w"))
                import os
                import signal

                os.kill(os.getpid(), signal.SIGKILL)   # crash right after the save
            if step == n:
                break
        else:
            epoch += 1
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().numpy().tobytes())
    json.dump({"losses": losses, "params_sha": h.hexdigest()}, open(out, "w"))


if __name__ == "__main__":
    args = sys.argv[1:]
    stop = int(args[args.index("--stop") + 1]) if "--stop" in args else None
    run_dir = args[args.index("--run") + 1] if "--run" in args else "."
    main(args[0], int(args[1]), stop, run_dir, "--resume" in args)

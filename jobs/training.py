"""The training loop every job shares.

``fit(cfg, model, loss_fn, train_set)`` reads the launcher's nested config (jobs/settings.py) and:

* shards ``train_set`` over the ranks (DistributedSampler, torch's order) through a StatefulDataLoader,
  ``train.batch_size`` samples per rank per micro-batch, reshuffled each epoch from ``train.seed``;
* wraps the model in DistributedDataParallel when there is more than one rank
  (``distributed.bucket_cap_mb``); ``train.grad_accum_steps`` micro-batches per optimizer step, the
  gradient all-reduce skipped (``no_sync``) on all but the last; ``train.clip_norm``;
* builds the optimizer and schedule (jobs/optim.py) for ``train.max_steps`` or ``train.epochs``;
* resumes from the newest good checkpoint in the run directory, saves every ``checkpoint.every_steps``,
  at the end, and when a rank got SIGUSR1/SIGTERM (jobs/stop_signals.py, installed by the launcher's
  worker): each step one all-reduce carries the loss and a "signal seen" flag, so all ranks stop after
  the same step, save, and return;
* on rank 0: a progress bar or log lines (jobs/progress.py), RUN_DIR/metrics.jsonl (and RUN_DIR/tb/ for
  TensorBoard, with the tensorboard package), RUN_DIR/loss.png (jobs/plot.py, with matplotlib).

Without a run directory (``python jobs/NAME.py``) nothing is written and nothing is resumed.
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dtorch
import dtorch.distributed as dist
import dtorch.distributed.checkpoint as dcp
from dtorch.nn.parallel import DistributedDataParallel
from dtorch.utils.data import DataLoader, DistributedSampler, StatefulDataLoader

try:
    from . import gpu_stats, optim
    from .checkpoints import Checkpoints
    from .metrics import MetricsLog
    from .plot import NO_MATPLOTLIB, loss_curve
    from .progress import Progress
    from .stop_signals import requested as stop_requested
except ImportError:  # run as a script
    import gpu_stats
    import optim
    from checkpoints import Checkpoints
    from metrics import MetricsLog
    from plot import NO_MATPLOTLIB, loss_curve
    from progress import Progress
    from stop_signals import requested as stop_requested


@dataclass
class Outcome:
    """What ``fit`` did. ``stopped``: the signal that ended training early (after a checkpoint), else None."""

    model: dtorch.nn.Module
    step: int
    total_steps: int
    final_loss: float
    stopped: str | None
    seconds: float
    samples_per_s: float
    startup_s: float | None
    curve: Path | None = None  # RUN_DIR/loss.png where it was drawn


class Epochs:
    """Micro-batches from ``loader``, epoch after epoch; ``epoch`` is saved in checkpoints."""

    def __init__(self, loader: StatefulDataLoader) -> None:
        self.loader, self.epoch, self.it = loader, 0, None

    def __next__(self) -> Any:
        if self.it is None:
            self.loader.sampler.set_epoch(self.epoch)
            self.it = iter(self.loader)
        try:
            return next(self.it)
        except StopIteration:
            self.epoch += 1
            self.loader.sampler.set_epoch(self.epoch)
            self.it = iter(self.loader)
            return next(self.it)


def data_loader(dataset: Any, batch_size: int, world: int, rank: int, seed: int) -> StatefulDataLoader:
    """This rank's shuffled share of ``dataset`` in batches of ``batch_size`` (the same count on every rank)."""
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    return StatefulDataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True)


def mean_over_ranks(loss: float, world: int) -> tuple[float, bool]:
    """(the loss averaged over the ranks, whether any rank received a stop signal): one all-reduce."""
    seen = 1.0 if stop_requested() else 0.0
    if world == 1:
        return loss, bool(seen)
    t = dtorch.tensor([loss, seen], dtype=dtorch.float64)
    dist.all_reduce(t)
    total, signalled = t.tolist()
    return total / world, signalled > 0


def startup_seconds() -> float | None:
    """Seconds since dtorch-run started (it exports DTORCH_LAUNCH_TIME), or None without it."""
    t0 = os.environ.get("DTORCH_LAUNCH_TIME")
    return time.time() - float(t0) if t0 else None


def progress_view(cfg: dict, total: int, start_step: int, log: Callable[[str], None]) -> Progress:
    """Rank 0's bar (on a terminal) or log lines, with GPU readings on a GPU; nothing shown on other ranks."""
    run, train = cfg["run"], cfg["train"]
    under_launcher = "DTORCH_LAUNCH_TIME" in os.environ  # then dtorch-run says whether its stdout is a terminal
    bar = os.environ.get("DTORCH_PROGRESS_BAR") == "1" if under_launcher else sys.stdout.isatty()
    gpu = gpu_stats.reader(run.get("local_rank", 0)) if dtorch.cuda.is_available() and run["rank"] == 0 else None
    samples_per_step = train["batch_size"] * train["grad_accum_steps"] * run["world_size"]
    return Progress(total, start_step, samples_per_step, train["log_every"], bar and run["rank"] == 0, log=log,
                    gpu=gpu)


def plot_history(metrics: MetricsLog, path: Path, title: str, log: Callable[[str], None]) -> Path | None:
    """Draw metrics.jsonl's loss curve at ``path``; None (saying how to get it) without matplotlib."""
    history = metrics.read()
    if loss_curve([r["step"] for r in history], [r["loss"] for r in history], path, title):
        return path
    log(NO_MATPLOTLIB)
    return None


def fit(cfg: dict, model: dtorch.nn.Module, loss_fn: Callable[[Any, Any], dtorch.Tensor], train_set: Any,
        ) -> Outcome:
    """Train ``model`` on ``train_set`` (map-style, items ``(input, target)``) as ``cfg`` says."""
    run, train = cfg["run"], cfg["train"]
    world, rank, accum = run["world_size"], run["rank"], train["grad_accum_steps"]
    log = print if rank == 0 else (lambda *a, **k: None)
    loader = data_loader(train_set, train["batch_size"], world, rank, train["seed"])
    if len(loader) < accum:
        raise ValueError(f"{len(loader)} batches per epoch on each rank, fewer than grad_accum_steps={accum}")
    total = train["max_steps"] or train["epochs"] * (len(loader) // accum)
    net = model
    if world > 1:
        net = DistributedDataParallel(model, bucket_cap_mb=cfg["distributed"]["bucket_cap_mb"])
    opt = optim.optimizer(model.parameters(), cfg["optimizer"])
    sched = optim.scheduler(opt, cfg["scheduler"], total)
    batches = Epochs(loader)
    state = dcp.training_state(model=net, optimizer=opt, scheduler=sched, loader=loader)
    ckpts = Checkpoints(run["dir"], cfg["checkpoint"]) if run["dir"] else None
    out_dir = Path(run["dir"]) if run["dir"] and rank == 0 else None
    metrics = MetricsLog(out_dir / "metrics.jsonl", out_dir / "tb") if out_dir is not None else None
    start_step = 0
    if ckpts is not None and (loaded := ckpts.restore(state)) is not None:
        start_step, batches.epoch = state["step"], state["epoch"]
        log(f"resumed from {loaded} (step {start_step}, epoch {batches.epoch})")
    if metrics is not None:
        metrics.resume_at(start_step)
    progress = progress_view(cfg, total, start_step, log)
    startup, stopped, loss, step, saved_at = None, None, math.nan, start_step, start_step
    net.train()
    began = time.perf_counter()
    while step < total and stopped is None:
        local = 0.0
        for micro in range(accum):
            inputs, targets = next(batches)
            with net.no_sync() if world > 1 and micro < accum - 1 else nullcontext():
                micro_loss = loss_fn(net(inputs), targets) / accum
                micro_loss.backward()
            local += micro_loss.item()
        if train["clip_norm"] is not None:
            dtorch.nn.utils.clip_grad_norm_(model.parameters(), train["clip_norm"])
        opt.step()
        opt.zero_grad()
        sched.step()
        step += 1
        loss, signalled = mean_over_ranks(local, world)
        # only the all-reduced flag: a signal landing after this rank's share was sent is seen next step
        stopped = (stop_requested() or "a signal on another rank") if signalled else None
        if startup is None:
            startup = startup_seconds()
            if startup is not None:
                progress.write(f"first step done {startup:.2f} s after dtorch-run started")
        record = progress.update(step, loss, opt.param_groups[0]["lr"])
        if metrics is not None and record is not None:
            metrics.write(**record)
        every = cfg["checkpoint"]["every_steps"]
        if ckpts is not None and (stopped or step == total or (every and step % every == 0)):
            state["step"], state["epoch"] = step, batches.epoch
            ckpts.save(state, step, wait=bool(stopped))
            saved_at = step
    progress.close()
    if ckpts is not None:
        ckpts.wait()
    seconds = time.perf_counter() - began
    if stopped:
        log(f"stopped by {stopped} after step {step}: checkpoint saved (step {saved_at}); "
            "run the same config again with --resume to continue")
    curve = None
    if metrics is not None:
        metrics.close()
        curve = plot_history(metrics, Path(run["dir"]) / "loss.png", cfg.get("name", "training loss"), log)
    return Outcome(model=model, step=step, total_steps=total, final_loss=loss, stopped=stopped, seconds=seconds,
                   samples_per_s=(step - start_step) * progress.samples_per_step / max(seconds, 1e-9),
                   startup_s=startup, curve=curve)


def summary(outcome: Outcome, run: dict, **results: float) -> dict:
    """Print rank 0's one-line summary; the job's result dict (what the worker writes to result.json)."""
    out = {"step": outcome.step, "total_steps": outcome.total_steps, "final_loss": outcome.final_loss,
           "stopped": outcome.stopped, "seconds": round(outcome.seconds, 2),
           "samples_per_s": round(outcome.samples_per_s, 1), "startup_s": outcome.startup_s, **results}
    if run["rank"] == 0:
        extra = "".join(f"  {k} {v:.4f}" if isinstance(v, float) else f"  {k} {v}" for k, v in results.items())
        where = f"  loss curve {outcome.curve}" if outcome.curve else ""
        print(f"summary: step {outcome.step}/{outcome.total_steps}  final loss {outcome.final_loss:.4f}{extra}  "
              f"{outcome.samples_per_s:,.0f} samples/s  {outcome.seconds:.1f} s{where}", flush=True)
    return out


def fit_classifier(cfg: dict, model: dtorch.nn.Module, train_set: Any, test_set: Any) -> dict:
    """``fit`` with cross-entropy, then the summary dict with ``test_accuracy`` (absent when a signal stopped
    training)."""
    outcome = fit(cfg, model, dtorch.nn.functional.cross_entropy, train_set)
    if outcome.stopped:
        return summary(outcome, cfg["run"])
    return summary(outcome, cfg["run"], test_accuracy=accuracy(model, DataLoader(test_set, batch_size=512)))


@dtorch.no_grad()
def accuracy(model: dtorch.nn.Module, loader: Any) -> float:
    """The fraction of samples whose arg-max logit is the label."""
    model.eval()
    right = total = 0
    for inputs, targets in loader:
        right += (model(inputs).argmax(dim=1) == targets).sum().item()
        total += targets.shape[0]
    return right / total

"""training_state(): the dict of everything a DDP training loop needs to resume exactly."""
from __future__ import annotations

from typing import Any

from ._rng import RNGState


def training_state(*, model=None, optimizer=None, scheduler=None, loader=None, step: int = 0, epoch: int = 0,
                   **extra: Any) -> dict[str, Any]:
    """``{"model", "optimizer", "scheduler", "loader", "rng", "step", "epoch", **extra}`` for save/load.

    ``model`` may be a DistributedDataParallel wrapper: its ``.module`` is saved, so the weights keep
    their plain names. ``loader`` must be a ``StatefulDataLoader`` (a plain DataLoader cannot say
    where it is in the epoch). ``rng`` carries every global generator plus the loader's and its
    sampler's own generators. After ``load``, read ``state["step"]`` and ``state["epoch"]``.
    """
    state: dict[str, Any] = {}
    if model is not None:
        state["model"] = getattr(model, "module", model)
    if optimizer is not None:
        state["optimizer"] = optimizer
    if scheduler is not None:
        state["scheduler"] = scheduler
    generators = {}
    if loader is not None:
        if not callable(getattr(loader, "state_dict", None)):
            raise TypeError("training_state: the loader must be a dtorch.utils.data.StatefulDataLoader "
                            f"to resume mid-epoch, got {type(loader).__name__}")
        state["loader"] = loader
        sampler = getattr(loader, "sampler", None)
        if getattr(sampler, "generator", None) is not None and sampler.generator is not loader.generator:
            generators["sampler"] = sampler.generator
    state["rng"] = RNGState(**generators)
    state["step"] = step
    state["epoch"] = epoch
    state.update(extra)
    return state

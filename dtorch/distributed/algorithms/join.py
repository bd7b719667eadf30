"""Join: training with uneven inputs across ranks, as torch.distributed.algorithms.Join.

Every iteration, each rank still training calls ``Join.notify_join_context(joinable)``
(DDP does it in ``forward``): an all_reduce of 1. A rank out of data leaves the ``with``
block and loops: it all_reduces 0 to count the ranks still training and, while some are,
runs each joinable's ``main_hook`` to shadow their collectives (DDP: all_reduces of zero
gradients), so nobody waits forever. When the count reaches 0 everyone runs
``post_hook(is_last_joiner)`` (DDP: the last joiners broadcast the final model).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

from ..collectives import all_reduce
from ..process_group import get_rank


class JoinHook:
    """What a joinable does for a rank that has joined: ``main_hook`` per shadowed iteration, then ``post_hook``."""

    def main_hook(self) -> None:
        pass

    def post_hook(self, is_last_joiner: bool) -> None:
        pass


class _JoinConfig(NamedTuple):
    enable: bool
    throw_on_early_termination: bool
    is_first_joinable: bool

    @staticmethod
    def disabled() -> "_JoinConfig":
        return _JoinConfig(False, False, False)


class Joinable(ABC):
    """A class taking part in Join: it provides ``join_hook``, ``join_device`` and ``join_process_group``."""

    @abstractmethod
    def __init__(self) -> None:
        super().__init__()
        self._join_config = _JoinConfig.disabled()

    @abstractmethod
    def join_hook(self, **kwargs) -> JoinHook:
        ...

    @property
    @abstractmethod
    def join_device(self) -> Any:
        ...

    @property
    @abstractmethod
    def join_process_group(self) -> Any:
        ...


class Join:
    """``with Join([ddp_model]): for batch in my_uneven_share: ...`` — ranks may run out of data at different times."""

    def __init__(self, joinables: list, enable: bool = True, throw_on_early_termination: bool = False,
                 **kwargs) -> None:
        if len(joinables) == 0:
            raise ValueError("The join context manager requires at least one joinable")
        self._joinables = joinables
        self._join_hooks = [j.join_hook(**kwargs) for j in joinables]
        self._enable = enable
        self._throw_on_early_termination = throw_on_early_termination
        groups = {id(j.join_process_group) for j in joinables}
        if len(groups) > 1:
            raise ValueError("Using join context manager with multiple process groups")
        self._process_group = joinables[0].join_process_group
        self._set_configs(enable)

    def _set_configs(self, enable: bool) -> None:
        for i, j in enumerate(self._joinables):
            j._join_config = _JoinConfig(enable, self._throw_on_early_termination, i == 0)

    def __enter__(self) -> "Join":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._enable or exc_type is not None:
            self._set_configs(False)
            return
        is_last_joiner = True
        while self._count_nonjoined() > 0:
            if self._throw_on_early_termination:
                self._notify_procs_to_terminate()
            for hook in self._join_hooks:
                hook.main_hook()
            is_last_joiner = False
        for hook in self._join_hooks:
            hook.post_hook(is_last_joiner)
        self._set_configs(False)

    def _count_nonjoined(self) -> int:
        from ..._creation import zeros

        t = zeros(1)
        all_reduce(t, group=self._process_group)
        return int(t.item())

    def _notify_procs_to_terminate(self) -> None:
        from ..._creation import ones

        all_reduce(ones(1), group=self._process_group)
        raise RuntimeError(f"Rank {get_rank(self._process_group)} exhausted all inputs.")

    @staticmethod
    def notify_join_context(joinable: Joinable):
        """Called by a joinable each iteration on a rank still training (only the first joinable counts)."""
        from ..._creation import ones, zeros

        cfg = getattr(joinable, "_join_config", None)
        if cfg is None:
            raise RuntimeError(f"Check that the {type(joinable)} constructor calls the Joinable constructor")
        if not cfg.is_first_joinable or not cfg.enable:
            return None
        pg = joinable.join_process_group
        all_reduce(ones(1), group=pg)
        if cfg.throw_on_early_termination:
            flag = zeros(1)
            all_reduce(flag, group=pg)
            if flag.item():
                raise RuntimeError("Detected at least one rank that exhausted inputs. Throwing across all ranks.")
        return None

"""torch.utils.hooks: the handle every ``register_*hook`` returns."""
from __future__ import annotations

import weakref
from typing import Callable

__all__ = ["RemovableHandle"]


class RemovableHandle:
    """``handle.remove()`` takes the hook out of every dict it was registered in (also as a context manager)."""

    _next_id = 0

    def __init__(self, hooks_dict: dict, *, extra_dict: dict | list | None = None) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1
        extras = [] if extra_dict is None else extra_dict if isinstance(extra_dict, list) else [extra_dict]
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extras)

    def remove(self) -> None:
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            d = ref()
            if d is not None:
                d.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def add_hook(hooks: dict, fn: Callable) -> RemovableHandle:
    """Register ``fn`` at the end of ``hooks`` (a dict keyed by handle id) and return its handle."""
    handle = RemovableHandle(hooks)
    hooks[handle.id] = fn
    return handle

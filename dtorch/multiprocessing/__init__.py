"""torch.multiprocessing: Python's multiprocessing, with tensors crossing process boundaries through shared memory.

Everything of ``multiprocessing`` is here (Process, Queue, Pool, get_context, set_start_method...). A tensor put
on a queue or passed to a process is moved into named shared memory (``/dev/shm``) and the other side maps the
same pages (``reductions.py``), so updates are seen by both, as in torch. Tensors are pickled nowhere else:
``pickle.dumps(tensor)`` still refuses. ``spawn``/``start_processes`` run ``fn(i, *args)`` in ``nprocs``
processes and raise ``ProcessRaisedException``/``ProcessExitedException`` naming the first that failed.
"""
import multiprocessing as _mp
from multiprocessing import *  # noqa: F401,F403

from .reductions import init_reductions
from .spawn import (  # noqa: F401
    ProcessContext, ProcessException, ProcessExitedException, ProcessRaisedException, spawn, start_processes,
)

__all__ = ["set_sharing_strategy", "get_sharing_strategy", "get_all_sharing_strategies", "spawn", "start_processes",
           "ProcessContext", "ProcessException", "ProcessExitedException", "ProcessRaisedException"]
__all__ += _mp.__all__

_STRATEGY = ["file_descriptor"]


def get_all_sharing_strategies() -> set:
    return {"file_descriptor", "file_system"}


def get_sharing_strategy() -> str:
    return _STRATEGY[0]


def set_sharing_strategy(new_strategy: str) -> None:
    """Accepted for torch's API; both strategies are named POSIX shared memory here."""
    if new_strategy not in get_all_sharing_strategies():
        raise AssertionError(f"invalid sharing strategy {new_strategy!r}")
    _STRATEGY[0] = new_strategy


init_reductions()

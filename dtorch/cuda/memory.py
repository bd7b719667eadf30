"""GPU memory statistics from CuPy's default memory pool (dtorch's CUDA arrays all come from it).

``max_memory_allocated`` is exact from the first ``reset_peak_memory_stats()`` on (which wraps
the pool's allocator to track the peak); before that it is the largest value seen by a query.
"""
from __future__ import annotations

from .._device import cupy_module, require_cupy

_peak = [0]
_tracking = [False]


def _pool():
    return require_cupy().get_default_memory_pool()


def memory_allocated(device=None) -> int:
    """Bytes held by live arrays (0 without a GPU)."""
    return _pool().used_bytes() if cupy_module() is not None else 0


def memory_reserved(device=None) -> int:
    """Bytes the pool holds from the driver, live or cached (0 without a GPU)."""
    return _pool().total_bytes() if cupy_module() is not None else 0


def max_memory_allocated(device=None) -> int:
    _peak[0] = max(_peak[0], memory_allocated(device))
    return _peak[0]


def _track_peak() -> None:
    cp = require_cupy()
    pool = cp.get_default_memory_pool()

    def malloc(size: int):
        mem = pool.malloc(size)
        used = pool.used_bytes()
        if used > _peak[0]:
            _peak[0] = used
        return mem

    cp.cuda.set_allocator(malloc)
    _tracking[0] = True


def reset_peak_memory_stats(device=None) -> None:
    """Start the peak over from the memory allocated now (and track it exactly from here on)."""
    if cupy_module() is None:
        _peak[0] = 0
        return
    if not _tracking[0]:
        _track_peak()
    _peak[0] = memory_allocated(device)


def empty_cache() -> None:
    """Return the pool's cached, unused blocks to the driver."""
    if cupy_module() is not None:
        _pool().free_all_blocks()
        require_cupy().get_default_pinned_memory_pool().free_all_blocks()


def memory_stats(device=None) -> dict:
    """A few of torch's keys: allocated/reserved bytes (current, peak) and the pool's free blocks."""
    return {"allocated_bytes.all.current": memory_allocated(device),
            "allocated_bytes.all.peak": max_memory_allocated(device),
            "reserved_bytes.all.current": memory_reserved(device),
            "num_free_blocks": _pool().n_free_blocks() if cupy_module() is not None else 0}


def memory_summary(device=None, abbreviated: bool = False) -> str:
    """A human-readable table of :func:`memory_stats`."""
    rows = [("Allocated memory", memory_allocated(device)), ("Peak allocated", max_memory_allocated(device)),
            ("Reserved memory", memory_reserved(device))]
    lines = ["|" + "=" * 50 + "|", "|  dtorch CUDA memory summary (CuPy memory pool)".ljust(51) + "|",
             "|" + "-" * 50 + "|"]
    lines += [f"|  {name:<28}{_human(v):>19} |" for name, v in rows]
    lines.append("|" + "=" * 50 + "|")
    return "\n".join(lines) + "\n"


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)

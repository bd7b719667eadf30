"""Keep freed host memory in the process between training steps (glibc only).

numpy allocates every temporary with malloc; at the end of each backward pass glibc would
return the top of the heap to the kernel and the next forward pass fault it all back in
(the measurement: docs/performance.md). A 64 MB top pad (what torch's caching allocator
achieves by other means) keeps it. Setting these freezes glibc's adaptive mmap threshold at
128 KB, so it is raised to 64 MB as well: otherwise every large temporary is a fresh mmap.
Set DTORCH_KEEP_HEAP=0 to leave the allocator alone.
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
PAD_BYTES = 64 << 20


def keep_heap() -> bool:
    """Ask glibc to keep up to 64 MB of freed memory; True when it was applied."""
    if os.environ.get("DTORCH_KEEP_HEAP", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_TOP_PAD, PAD_BYTES) == 1
    ok = mallopt(M_TRIM_THRESHOLD, 2 * PAD_BYTES) == 1 and ok
    ok = mallopt(M_MMAP_THRESHOLD, PAD_BYTES) == 1 and ok
    return ok

"""CUDA implementations of dtorch ops on cupy arrays, registered with ``op.register_kernel("cuda", ...)``.

Each module has an ``install(...)`` called at the end of the op's own module; the numpy kernel
stays the reference (and the fallback for layouts or dtypes a fused kernel does not cover).
Nothing here imports cupy at import time.
"""

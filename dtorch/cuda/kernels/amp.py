"""GradScaler's check-and-unscale: multiply a gradient by 1/scale and raise a flag on inf/NaN."""
from __future__ import annotations

from . import render

UNSCALE = "dtorch_unscale_$SUFFIX"

_SOURCE = r"""
// g *= inv; found[0] = 1 if any product is inf or NaN (x - x is 0 only for finite x).
extern "C" __global__ void dtorch_unscale_$SUFFIX($T* __restrict__ g, const long long n, const double inv,
                                                int* __restrict__ found) {
    $FOR_EACH_I {
        const $ACC v = ($ACC)g[i] * ($ACC)inv;
        g[i] = ($T)v;
        if (v - v != ($ACC)0) found[0] = 1;
    }
}
"""


def source(dtype) -> str:
    """Source of the unscale kernel for ``dtype`` (float32 or float64)."""
    return render(_SOURCE, dtype)


def name(dtype) -> str:
    return render(UNSCALE, dtype)

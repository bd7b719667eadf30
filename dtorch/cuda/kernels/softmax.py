"""Row-wise softmax / log_softmax kernels (one block per row of a contiguous [rows, n] array)."""
from __future__ import annotations

from . import BLOCK_REDUCE, render

FORWARD = "dtorch_softmax_fwd_$SUFFIX"
BACKWARD = "dtorch_softmax_bwd_$SUFFIX"

_SOURCE = BLOCK_REDUCE + r"""
// y = softmax(x) (log_mode 0) or log_softmax(x) (log_mode 1) along each row of n items.
extern "C" __global__ void dtorch_softmax_fwd_$SUFFIX(const $T* __restrict__ x, $T* __restrict__ y,
                                                   const long long n, const int log_mode) {
    __shared__ $ACC buf[$BLOCK];
    const $T* xr = x + (long long)blockIdx.x * n;
    $T* yr = y + (long long)blockIdx.x * n;
    $ACC m = $NEG_INF;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        $ACC v = ($ACC)xr[i];
        if (v > m || v != v) m = v;
    }
    m = block_max(m, buf);
    $ACC s = 0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) s += exp(($ACC)xr[i] - m);
    s = block_sum(s, buf);
    if (log_mode) {
        const $ACC ls = log(s);
        for (long long i = threadIdx.x; i < n; i += blockDim.x) yr[i] = ($T)((($ACC)xr[i] - m) - ls);
    } else {
        for (long long i = threadIdx.x; i < n; i += blockDim.x) yr[i] = ($T)(exp(($ACC)xr[i] - m) / s);
    }
}

// gx from the output y and its gradient g:
//   softmax:     gx = y * (g - sum(g * y))
//   log_softmax: gx = g - exp(y) * sum(g)
extern "C" __global__ void dtorch_softmax_bwd_$SUFFIX(const $T* __restrict__ g, const $T* __restrict__ y,
                                                   $T* __restrict__ gx, const long long n, const int log_mode) {
    __shared__ $ACC buf[$BLOCK];
    const long long off = (long long)blockIdx.x * n;
    $ACC s = 0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x)
        s += log_mode ? ($ACC)g[off + i] : ($ACC)g[off + i] * ($ACC)y[off + i];
    s = block_sum(s, buf);
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        const $ACC gi = ($ACC)g[off + i], yi = ($ACC)y[off + i];
        gx[off + i] = ($T)(log_mode ? gi - exp(yi) * s : yi * (gi - s));
    }
}
"""


def source(dtype) -> str:
    """CUDA source of the softmax forward and backward kernels for ``dtype`` (float32 or float64)."""
    return render(_SOURCE, dtype)


def names(dtype) -> tuple[str, str]:
    """(forward, backward) kernel names for ``dtype``."""
    return render(FORWARD, dtype), render(BACKWARD, dtype)
